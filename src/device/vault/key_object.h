// An object inside the device: a key, or a certificate or data object kept
// next to the keys (these carry no usage flags, so no key command accepts
// them). Immutable once created, shared by pointer so an operation can run
// without holding the partition lock; destroyed (and its secret cleansed)
// when the last operation using it ends.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/secret.h"
#include "device/crypto/backend.h"
#include "device/crypto/key_facts.h"
#include "device/crypto/prepared.h"
#include "ihsm/types.h"

namespace ihsm::device {

using ConnectionId = uint64_t;

// How an object came to be. Travels inside its masked record, so it cannot
// be changed outside the device (attestation reports it).
enum class KeyOrigin : uint8_t {
  kGenerated = 1,  // generated inside the device
  kDerived = 2,    // derived from another key in the device
  kUnwrapped = 3,  // imported wrapped
  kCreated = 4,    // a certificate or data object given by the caller
};

struct KeyObject {
  KeyHandle handle = 0;
  ObjectClass object_class = ObjectClass::kSecretKey;
  KeyType key_type = KeyType::kAes;
  uint32_t key_bits = 0;
  std::optional<Curve> curve;
  std::string label;
  Bytes id;
  uint32_t flags = 0;
  bool local = true;
  KeyHandle pair_handle = 0;
  std::vector<Mechanism> allowed_mechanisms;  // empty: any the key type supports
  // Session objects belong to the session that made them and are visible
  // only to sessions of the same connection (one PKCS#11 application).
  SessionId owner_session = 0;
  ConnectionId owner_connection = 0;
  // Token objects live in the store and are visible to every session of
  // the partition; their handles are below store::kSessionHandleBase.
  bool token = false;
  KeyOrigin origin = KeyOrigin::kGenerated;
  // 16 random bytes naming the object for its whole life, across masked
  // copies, backups and restores (the store's destroyed marks use it).
  Bytes uid;

  // Certificates and data objects: the (public) value and its kind.
  Bytes value;
  uint32_t certificate_type = 0;
  std::string application;

  // Material: an EC key (private, or public only) or AES key bytes.
  crypto::Pkey pkey;
  SecretBytes secret;

  // Contexts keyed with `secret` or `pkey`, kept between operations
  // (AES-GCM, HMAC, ECDSA; crypto/prepared.h): CSPs like the key itself,
  // freed with the object. Each
  // is a pool that hands a context to one operation at a time, so the
  // object stays shareable across threads.
  mutable crypto::PreparedAead prepared_aead;
  mutable crypto::PreparedMac prepared_mac;
  mutable crypto::PreparedSigner prepared_signer;  // ECDSA

  // Device-generated GCM IVs follow SP 800-38D 8.2.1's deterministic
  // construction: a 64-bit fixed field naming this incarnation of the key
  // (Device::next_key_incarnation: never repeats on a device, also for a
  // stored key loaded again after a restart), then a 32-bit invocation
  // counter. Two IVs drawn under one key can never be equal; one
  // incarnation stops at 2^32 invocations.
  static constexpr uint64_t kMaxGcmInvocations = 1ull << 32;
  uint64_t gcm_fixed_field = 0;
  mutable std::atomic<uint64_t> gcm_invocations{0};
  // False when the key has used up its invocations.
  bool next_gcm_iv(uint8_t (&iv)[12]) const {
    const uint64_t n = gcm_invocations.fetch_add(1);
    if (n >= kMaxGcmInvocations) return false;
    for (int i = 0; i < 8; ++i) iv[i] = static_cast<uint8_t>(gcm_fixed_field >> (56 - 8 * i));
    for (int i = 0; i < 4; ++i) iv[8 + i] = static_cast<uint8_t>(n >> (24 - 8 * i));
    return true;
  }

  // Every field, the key material shared or cloned (the prepared contexts
  // are not: the duplicate starts with empty pools): SetKeyAttributes
  // publishes a changed duplicate under the same handle, CopyObject a new
  // object (which then gets its own handle, uid and GCM fixed field).
  std::shared_ptr<KeyObject> duplicate() const {
    auto d = std::make_shared<KeyObject>();
    d->handle = handle;
    d->object_class = object_class;
    d->key_type = key_type;
    d->key_bits = key_bits;
    d->curve = curve;
    d->label = label;
    d->id = id;
    d->flags = flags;
    d->local = local;
    d->pair_handle = pair_handle;
    d->allowed_mechanisms = allowed_mechanisms;
    d->owner_session = owner_session;
    d->owner_connection = owner_connection;
    d->token = token;
    d->origin = origin;
    d->uid = uid;
    d->value = value;
    d->certificate_type = certificate_type;
    d->application = application;
    d->secret = secret.clone();
    d->pkey = crypto::share_key(pkey.get());
    d->gcm_fixed_field = gcm_fixed_field;
    d->gcm_invocations = gcm_invocations.load();
    return d;
  }

  // ihsm::copyable gives the rule and its reason.
  bool copyable() const { return ihsm::copyable(object_class, flags, pair_handle); }

  bool has(uint32_t usage_bit) const { return (flags & usage_bit) != 0; }
  bool is_key() const {
    return object_class != ObjectClass::kData && object_class != ObjectClass::kCertificate;
  }
  KeyInfo info() const {
    KeyInfo i;
    i.handle = handle;
    i.object_class = object_class;
    i.key_type = key_type;
    i.key_bits = key_bits;
    i.curve = curve;
    i.label = label;
    i.id = id;
    i.flags = flags;
    i.local = local;
    i.pair_handle = pair_handle;
    i.allowed_mechanisms = allowed_mechanisms;
    i.token = token;
    i.value_size = static_cast<uint32_t>(value.size());
    i.certificate_type = certificate_type;
    i.application = application;
    return i;
  }
};

}  // namespace ihsm::device
