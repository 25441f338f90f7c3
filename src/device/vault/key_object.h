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

  // Device-generated GCM IVs drawn under this key (SP 800-38D limit).
  mutable std::atomic<uint64_t> gcm_invocations{0};

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
