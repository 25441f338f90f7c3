#include "device/crypto/key_facts.h"

#include <openssl/core_names.h>

#include <string>

namespace ihsm::device::crypto {

Status key_facts(EVP_PKEY* key, KeyFacts& out) {
  if (key == nullptr) return Status::kWrappedKeyInvalid;
  if (EVP_PKEY_is_a(key, "RSA")) {
    const int bits = EVP_PKEY_get_bits(key);
    if (bits != 2048 && bits != 3072 && bits != 4096) return Status::kWrappedKeyInvalid;
    out = KeyFacts{KeyType::kRsa, std::nullopt, static_cast<uint32_t>(bits)};
    return Status::kOk;
  }
  if (EVP_PKEY_is_a(key, "ED25519")) {
    out = KeyFacts{KeyType::kEcEdwards, Curve::kEd25519, 255};
    return Status::kOk;
  }
  if (EVP_PKEY_is_a(key, "X25519")) {
    out = KeyFacts{KeyType::kEcMontgomery, Curve::kX25519, 255};
    return Status::kOk;
  }
  if (EVP_PKEY_is_a(key, "EC")) {
    char group[64] = {0};
    size_t len = 0;
    if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                       &len) != 1) {
      return Status::kWrappedKeyInvalid;
    }
    const std::string name(group, len);
    if (name == "prime256v1" || name == "P-256") {
      out = KeyFacts{KeyType::kEc, Curve::kP256, 256};
    } else if (name == "secp384r1" || name == "P-384") {
      out = KeyFacts{KeyType::kEc, Curve::kP384, 384};
    } else if (name == "secp521r1" || name == "P-521") {
      out = KeyFacts{KeyType::kEc, Curve::kP521, 521};
    } else {
      return Status::kWrappedKeyInvalid;
    }
    return Status::kOk;
  }
  return Status::kWrappedKeyInvalid;
}

Pkey share_key(EVP_PKEY* key) {
  if (key == nullptr || EVP_PKEY_up_ref(key) != 1) return nullptr;
  return Pkey(key);
}

}  // namespace ihsm::device::crypto
