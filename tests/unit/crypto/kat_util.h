// Helpers for the crypto known-answer tests: hex, SecretBytes access, and
// a few independent OpenSSL computations (HMAC through EVP_MAC) that share
// nothing with src/device/crypto.
#pragma once

#include <openssl/evp.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "common/secret.h"
#include "support/util.h"

namespace ihsm::crypto_test {

using Bytes = std::vector<uint8_t>;

// Hex helpers are the suite's one pair (tests/support/util.h).
inline Bytes hex(std::string_view h) { return test::from_hex(h); }
inline std::string to_hex(const Bytes& b) { return test::to_hex(b); }

inline Bytes text(std::string_view s) { return Bytes(s.begin(), s.end()); }

inline Bytes reveal(const SecretBytes& s) { return Bytes(s.reveal().begin(), s.reveal().end()); }

inline Bytes concat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

// Independent HMAC: EVP_Q_mac, not the code under test.
inline Bytes ref_hmac(const char* digest, const Bytes& key, const Bytes& data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  size_t len = 0;
  if (EVP_Q_mac(nullptr, "HMAC", nullptr, digest, nullptr, key.data(), key.size(), data.data(),
                data.size(), out, sizeof(out), &len) == nullptr) {
    throw std::runtime_error("EVP_Q_mac failed");
  }
  return Bytes(out, out + len);
}

// Big-endian 32-bit integer.
inline Bytes be32(uint32_t v) {
  return Bytes{static_cast<uint8_t>(v >> 24), static_cast<uint8_t>(v >> 16),
               static_cast<uint8_t>(v >> 8), static_cast<uint8_t>(v)};
}

}  // namespace ihsm::crypto_test
