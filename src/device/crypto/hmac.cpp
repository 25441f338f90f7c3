// HMAC-SHA-256/384/512 through EVP_MAC.
#include <openssl/err.h>

#include "device/crypto/algorithms.h"
#include "device/crypto/ossl_util.h"

namespace ihsm::device::crypto {
namespace {

constexpr size_t kMinKey = 14;  // 112 bits
constexpr size_t kMinMac = 16;  // shortest truncated MAC hmac_verify accepts

// HMAC with SHA-2 only (SHA-1 and SHA-224 are not offered).
const char* hmac_digest_name(Hash h) {
  return h == Hash::kSha1 || h == Hash::kSha224 ? nullptr : detail::hash_name(h);
}

}  // namespace

Status hmac(Hash h, std::span<const uint8_t> key, std::span<const uint8_t> data, Bytes& mac) {
  const char* name = hmac_digest_name(h);
  if (name == nullptr) return Status::kMechanismInvalid;
  if (key.size() < kMinKey) return Status::kKeySizeInvalid;
  detail::Mac m(EVP_MAC_fetch(nullptr, "HMAC", nullptr));
  detail::MacCtx ctx(m ? EVP_MAC_CTX_new(m.get()) : nullptr);
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, const_cast<char*>(name), 0),
      OSSL_PARAM_construct_end()};
  Bytes result(hash_size(h));
  size_t len = 0;
  if (!ctx || EVP_MAC_init(ctx.get(), key.data(), key.size(), params) != 1 ||
      (!data.empty() && EVP_MAC_update(ctx.get(), data.data(), data.size()) != 1) ||
      EVP_MAC_final(ctx.get(), result.data(), &len, result.size()) != 1 || len != result.size()) {
    ERR_clear_error();
    return Status::kCryptoFailure;
  }
  mac = std::move(result);
  return Status::kOk;
}

Status hmac_verify(Hash h, std::span<const uint8_t> key, std::span<const uint8_t> data,
                   std::span<const uint8_t> mac) {
  Bytes expected;
  const Status s = hmac(h, key, data, expected);
  if (!ok(s)) return s;
  if (mac.size() < kMinMac || mac.size() > expected.size()) return Status::kSignatureInvalid;
  return constant_time_equal(std::span<const uint8_t>(expected.data(), mac.size()), mac)
             ? Status::kOk
             : Status::kSignatureInvalid;
}

}  // namespace ihsm::device::crypto
