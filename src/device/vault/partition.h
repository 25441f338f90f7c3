// A partition: the software analogue of one virtual function of the
// integrated HSM. Own credentials, own identity key, own key table.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

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

  // Guards everything below.
  mutable std::mutex mutex;
  Credential officer;
  Credential user;
  uint32_t open_sessions = 0;

  Credential& credential(Role role) { return role == Role::kCryptoOfficer ? officer : user; }
  // Held for a whole PIN check of one role (outside `mutex`): parallel
  // guesses queue up one by one instead of all passing the back-off check
  // before any failure is counted.
  std::mutex& attempt_mutex(Role role) {
    return role == Role::kCryptoOfficer ? officer_attempt_ : user_attempt_;
  }

  // Key table (session keys for now).
  std::shared_ptr<const KeyObject> find_key(KeyHandle h) const;
  KeyHandle add_key(std::shared_ptr<KeyObject> key);  // assigns the handle
  bool remove_key(KeyHandle h);
  // Swaps in a changed key under its existing handle (SetKeyAttributes).
  bool replace_key(std::shared_ptr<KeyObject> key);
  void remove_session_keys(SessionId session);
  template <typename F>
  void for_each_key(F&& f) const {
    for (const auto& [h, k] : keys_) f(*k);
  }
  size_t key_count() const { return keys_.size(); }

  // May a peer with these credentials open sessions here?
  bool admits(uint32_t uid, uint32_t gid) const {
    if (bound_uid && *bound_uid != uid) return false;
    if (bound_gid && *bound_gid != gid) return false;
    return true;
  }
  PartitionInfo info() const;  // caller holds `mutex`

 private:
  std::mutex officer_attempt_;
  std::mutex user_attempt_;
  std::map<KeyHandle, std::shared_ptr<const KeyObject>> keys_;
  KeyHandle next_handle_ = 1;
};

}  // namespace ihsm::device
