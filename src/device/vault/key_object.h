// A key inside the device. Immutable once created, shared by pointer so an
// operation can run without holding the partition lock; destroyed (and its
// secret cleansed) when the last operation using it ends.
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/secret.h"
#include "device/crypto/backend.h"
#include "ihsm/types.h"

namespace ihsm::device {

using ConnectionId = uint64_t;

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

  // Material: an EC key (private, or public only) or AES key bytes.
  crypto::Pkey pkey;
  SecretBytes secret;

  // Device-generated GCM IVs follow SP 800-38D 8.2.1's deterministic
  // construction: a 32-bit fixed field drawn when the key enters the key
  // table, then a 64-bit invocation counter. Two IVs drawn from one key
  // object can never be equal; the counter stops at 2^32 invocations.
  static constexpr uint64_t kMaxGcmInvocations = 1ull << 32;
  uint32_t gcm_fixed_field = 0;
  mutable std::atomic<uint64_t> gcm_invocations{0};
  // False when the key has used up its invocations.
  bool next_gcm_iv(uint8_t (&iv)[12]) const {
    const uint64_t n = gcm_invocations.fetch_add(1);
    if (n >= kMaxGcmInvocations) return false;
    for (int i = 0; i < 4; ++i) iv[i] = static_cast<uint8_t>(gcm_fixed_field >> (24 - 8 * i));
    for (int i = 0; i < 8; ++i) iv[4 + i] = static_cast<uint8_t>(n >> (56 - 8 * i));
    return true;
  }

  bool has(uint32_t usage_bit) const { return (flags & usage_bit) != 0; }
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
    return i;
  }
};

}  // namespace ihsm::device
