// HMAC-SHA-256/384/512 through EVP_MAC, one-shot and on prepared per-key
// contexts (prepared.h).
#include <openssl/err.h>

#include "device/crypto/algorithms.h"
#include "device/crypto/ossl_util.h"
#include "device/crypto/prepared.h"

namespace ihsm::device::crypto {
namespace {

constexpr size_t kMinKey = 14;  // 112 bits
constexpr size_t kMinMac = 16;  // shortest truncated MAC hmac_verify accepts

// HMAC with SHA-2 only (SHA-1 and SHA-224 are not offered).
const char* hmac_digest_name(Hash h) {
  return h == Hash::kSha1 || h == Hash::kSha224 ? nullptr : detail::hash_name(h);
}

// HMAC fetched once, held until the process exits (as aes_gcm_cipher).
EVP_MAC* hmac_algorithm() {
  static EVP_MAC* const mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  return mac;
}

// A fresh context keyed for `name`: EVP_MAC_init with the key, which
// (unlike a restart) hashes the key pads.
EVP_MAC_CTX* keyed_context(const char* name, std::span<const uint8_t> key) {
  EVP_MAC* mac = hmac_algorithm();
  detail::MacCtx ctx(mac != nullptr ? EVP_MAC_CTX_new(mac) : nullptr);
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, const_cast<char*>(name), 0),
      OSSL_PARAM_construct_end()};
  if (!ctx || EVP_MAC_init(ctx.get(), key.data(), key.size(), params) != 1) {
    ERR_clear_error();
    return nullptr;
  }
  return ctx.release();
}

// Data and final on an initialised context.
Status mac_data(EVP_MAC_CTX* ctx, Hash h, std::span<const uint8_t> data, Bytes& mac) {
  Bytes result(hash_size(h));
  size_t len = 0;
  if ((!data.empty() && EVP_MAC_update(ctx, data.data(), data.size()) != 1) ||
      EVP_MAC_final(ctx, result.data(), &len, result.size()) != 1 || len != result.size()) {
    ERR_clear_error();
    return Status::kCryptoFailure;
  }
  mac = std::move(result);
  return Status::kOk;
}

// `mac` (possibly truncated) against the full `expected`, in constant time.
Status compare(std::span<const uint8_t> expected, std::span<const uint8_t> mac) {
  if (mac.size() < kMinMac || mac.size() > expected.size()) return Status::kSignatureInvalid;
  return constant_time_equal(expected.first(mac.size()), mac) ? Status::kOk
                                                              : Status::kSignatureInvalid;
}

size_t pool_index(Hash h) { return h == Hash::kSha256 ? 0 : h == Hash::kSha384 ? 1 : 2; }

}  // namespace

Status hmac(Hash h, std::span<const uint8_t> key, std::span<const uint8_t> data, Bytes& mac) {
  const char* name = hmac_digest_name(h);
  if (name == nullptr) return Status::kMechanismInvalid;
  if (key.size() < kMinKey) return Status::kKeySizeInvalid;
  detail::MacCtx ctx(keyed_context(name, key));
  if (!ctx) return Status::kCryptoFailure;
  return mac_data(ctx.get(), h, data, mac);
}

Status hmac_verify(Hash h, std::span<const uint8_t> key, std::span<const uint8_t> data,
                   std::span<const uint8_t> mac) {
  Bytes expected;
  const Status s = hmac(h, key, data, expected);
  return ok(s) ? compare(expected, mac) : s;
}

// ---- PreparedMac

Status PreparedMac::hmac(Hash h, std::span<const uint8_t> key, std::span<const uint8_t> data,
                         Bytes& mac) {
  const char* name = hmac_digest_name(h);
  if (name == nullptr) return Status::kMechanismInvalid;
  if (key.size() < kMinKey) return Status::kKeySizeInvalid;
  using Pool = detail::ContextPool<EVP_MAC_CTX, EVP_MAC_CTX_free>;
  Pool::Lease lease(by_hash_[pool_index(h)]);
  if (lease.reused()) {
    // A restart with no key: OpenSSL starts again from the key pads it
    // hashed when the context was keyed.
    if (EVP_MAC_init(lease.get(), nullptr, 0, nullptr) != 1) {
      ERR_clear_error();
      return Status::kCryptoFailure;
    }
  } else {
    lease.adopt(keyed_context(name, key));
    if (lease.get() == nullptr) return Status::kCryptoFailure;
  }
  const Status s = mac_data(lease.get(), h, data, mac);
  if (ok(s)) lease.finished_cleanly();
  return s;
}

Status PreparedMac::hmac_verify(Hash h, std::span<const uint8_t> key, std::span<const uint8_t> data,
                                std::span<const uint8_t> mac) {
  Bytes expected;
  const Status s = hmac(h, key, data, expected);
  return ok(s) ? compare(expected, mac) : s;
}

}  // namespace ihsm::device::crypto
