// What kind of key an OpenSSL key object holds, for keys that arrive from
// outside (unwrapped PKCS#8).
#pragma once

#include <optional>

#include "device/crypto/backend.h"

namespace ihsm::device::crypto {

struct KeyFacts {
  KeyType type = KeyType::kEc;
  std::optional<Curve> curve;
  uint32_t bits = 0;
};

// kWrappedKeyInvalid for anything the device does not support (other
// curves, RSA outside 2048..4096, DSA, ...).
Status key_facts(EVP_PKEY* key, KeyFacts& out);

// Another owner of the same immutable OpenSSL key (reference counted).
Pkey share_key(EVP_PKEY* key);

}  // namespace ihsm::device::crypto
