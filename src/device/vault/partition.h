// A partition: the software analogue of one virtual function of the
// integrated HSM. Own credentials, own identity key, own key table.
#pragma once

#include <atomic>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "common/cbor.h"
#include "device/crypto/backend.h"
#include "device/vault/credential.h"
#include "device/vault/key_object.h"
#include "ihsm/types.h"

namespace ihsm::device {

class Partition {
 public:
  PartitionId id = 0;
  std::string name;
  std::optional<uint32_t> bound_uid;
  std::optional<uint32_t> bound_gid;
  uint32_t max_sessions = 64;
  crypto::Pkey identity_key;  // ECC P-384, generated with a pairwise-consistency test
  Bytes identity_public_der;
  // Issued by the Alias key at every start and whenever the identity key
  // is new (docs/attestation.md): it chains the partition's reports to
  // the running firmware.
  Bytes identity_cert_der;
  // docs/key-hierarchy.md. The seed is random per partition (new on
  // reset) and kept sealed in the partition record; the masking key is
  // derived from it at load and lives as long as this object. Both are
  // replaced only by a reset, which makes a new Partition object.
  SecretBytes masking_seed;
  SecretBytes masking_key;

  // Guards everything below.
  mutable std::mutex mutex;
  Credential officer;
  Credential user;
  uint32_t open_sessions = 0;
  // Serialises SetKeyAttributes (it checks a rule across both halves of
  // a pair, which may be token objects outside `mutex`).
  std::mutex attribute_change_mutex;

  Credential& credential(Role role) { return role == Role::kCryptoOfficer ? officer : user; }
  // Held for a whole PIN check of one role (outside `mutex`): parallel
  // guesses queue up one by one instead of all passing the back-off check
  // before any failure is counted.
  std::mutex& attempt_mutex(Role role) {
    return role == Role::kCryptoOfficer ? officer_attempt_ : user_attempt_;
  }

  // Session objects (all under `mutex`). Handles come from
  // allocate_session_handle() (no lock needed), from
  // store::kSessionHandleBase up, so they never collide with token handles.
  KeyHandle allocate_session_handle() { return next_session_handle_.fetch_add(1); }
  std::shared_ptr<const KeyObject> find_key(KeyHandle h) const;
  void add_key(std::shared_ptr<KeyObject> key);  // key->handle already allocated
  bool remove_key(KeyHandle h);
  // Swaps in a changed key under its existing handle (SetKeyAttributes).
  bool replace_key(std::shared_ptr<KeyObject> key);
  void remove_session_keys(SessionId session);
  // Session objects in handle order, from `after` up.
  template <typename F>
  void for_each_key(KeyHandle after, F&& f) const {
    for (auto it = keys_.upper_bound(after); it != keys_.end(); ++it) {
      if (!f(it->second)) break;
    }
  }
  size_t key_count() const { return keys_.size(); }

  // Unmasked token objects, so a key in use is not unmasked per operation.
  // Bounded; the store stays the truth. A loader notes `token_generation`
  // before reading the store and caches only if no change or destroy ran
  // in between, so a destroyed object never comes back through the cache.
  static constexpr size_t kTokenCacheCapacity = 4096;
  std::shared_ptr<const KeyObject> cached_token(KeyHandle h) const;
  void cache_token(std::shared_ptr<const KeyObject> key);
  void forget_token(KeyHandle h);  // also bumps token_generation
  uint64_t token_generation = 0;

  // May a peer with these credentials open sessions here?
  bool admits(uint32_t uid, uint32_t gid) const {
    if (bound_uid && *bound_uid != uid) return false;
    if (bound_gid && *bound_gid != gid) return false;
    return true;
  }
  PartitionInfo info(const LoginPolicy& policy) const;  // caller holds `mutex`

  // Zeroization: drops every session object and cached token object,
  // cleanses the masking seed and key, frees the identity key and forgets
  // both credentials. Caller holds no partition lock.
  void zeroize();

 private:
  std::mutex officer_attempt_;
  std::mutex user_attempt_;
  std::map<KeyHandle, std::shared_ptr<const KeyObject>> keys_;
  std::atomic<KeyHandle> next_session_handle_;
  std::unordered_map<KeyHandle, std::shared_ptr<const KeyObject>> token_cache_;
  std::deque<KeyHandle> token_cache_order_;  // oldest first, for eviction

 public:
  Partition();
};

}  // namespace ihsm::device
