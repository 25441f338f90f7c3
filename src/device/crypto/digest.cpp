// Digests (SHA-1, SHA-2) through EVP_Digest*.
#include <openssl/err.h>

#include "device/crypto/algorithms.h"
#include "device/crypto/ossl_util.h"

namespace ihsm::device::crypto {

size_t hash_size(Hash h) {
  switch (h) {
    case Hash::kSha1:
      return 20;
    case Hash::kSha224:
      return 28;
    case Hash::kSha256:
      return 32;
    case Hash::kSha384:
      return 48;
    case Hash::kSha512:
      return 64;
  }
  return 0;
}

namespace {

// The fetched digest, or the legacy one when the fetch failed.
const EVP_MD* fetched_or(EVP_MD* fetched, const EVP_MD* legacy) {
  if (fetched != nullptr) return fetched;
  ERR_clear_error();
  return legacy;
}

}  // namespace

// Fetched once and held until the process exits (as aes_gcm_cipher): a
// legacy EVP_sha256() would be fetched again by every digest init.
const EVP_MD* hash_md(Hash h) {
  static const EVP_MD* const kSha1 = fetched_or(EVP_MD_fetch(nullptr, "SHA1", nullptr), EVP_sha1());
  static const EVP_MD* const kSha224 =
      fetched_or(EVP_MD_fetch(nullptr, "SHA224", nullptr), EVP_sha224());
  static const EVP_MD* const kSha256 =
      fetched_or(EVP_MD_fetch(nullptr, "SHA256", nullptr), EVP_sha256());
  static const EVP_MD* const kSha384 =
      fetched_or(EVP_MD_fetch(nullptr, "SHA384", nullptr), EVP_sha384());
  static const EVP_MD* const kSha512 =
      fetched_or(EVP_MD_fetch(nullptr, "SHA512", nullptr), EVP_sha512());
  switch (h) {
    case Hash::kSha1:
      return kSha1;
    case Hash::kSha224:
      return kSha224;
    case Hash::kSha256:
      return kSha256;
    case Hash::kSha384:
      return kSha384;
    case Hash::kSha512:
      return kSha512;
  }
  return nullptr;
}

Status digest(Hash h, std::span<const uint8_t> data, Bytes& out) {
  const EVP_MD* md = hash_md(h);
  if (md == nullptr) return Status::kMechanismInvalid;
  Bytes result(hash_size(h));
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), result.data(), &len, md, nullptr) != 1 ||
      len != result.size()) {
    ERR_clear_error();
    return Status::kCryptoFailure;
  }
  out = std::move(result);
  return Status::kOk;
}

DigestStream::DigestStream() = default;

DigestStream::~DigestStream() { EVP_MD_CTX_free(ctx_); }

DigestStream::DigestStream(DigestStream&& other) noexcept : ctx_(other.ctx_) {
  other.ctx_ = nullptr;
}

DigestStream& DigestStream::operator=(DigestStream&& other) noexcept {
  if (this != &other) {
    EVP_MD_CTX_free(ctx_);
    ctx_ = other.ctx_;
    other.ctx_ = nullptr;
  }
  return *this;
}

// The context is "initialised" exactly while it has a digest attached:
// final() and every failure reset it.
Status DigestStream::init(Hash h) {
  const EVP_MD* md = hash_md(h);
  if (md == nullptr) return Status::kMechanismInvalid;
  if (ctx_ == nullptr) {
    ctx_ = EVP_MD_CTX_new();
    if (ctx_ == nullptr) return Status::kCryptoFailure;
  }
  if (EVP_DigestInit_ex2(ctx_, md, nullptr) != 1) {
    EVP_MD_CTX_reset(ctx_);
    ERR_clear_error();
    return Status::kCryptoFailure;
  }
  return Status::kOk;
}

Status DigestStream::update(std::span<const uint8_t> data) {
  if (ctx_ == nullptr || EVP_MD_CTX_get0_md(ctx_) == nullptr) {
    return Status::kOperationNotInitialized;
  }
  if (data.empty()) return Status::kOk;
  if (EVP_DigestUpdate(ctx_, data.data(), data.size()) != 1) {
    EVP_MD_CTX_reset(ctx_);
    ERR_clear_error();
    return Status::kCryptoFailure;
  }
  return Status::kOk;
}

Status DigestStream::final(Bytes& out) {
  if (ctx_ == nullptr || EVP_MD_CTX_get0_md(ctx_) == nullptr) {
    return Status::kOperationNotInitialized;
  }
  Bytes result(static_cast<size_t>(EVP_MD_CTX_get_size(ctx_)));
  unsigned int len = 0;
  const bool good = EVP_DigestFinal_ex(ctx_, result.data(), &len) == 1 && len == result.size();
  EVP_MD_CTX_reset(ctx_);
  if (!good) {
    ERR_clear_error();
    return Status::kCryptoFailure;
  }
  out = std::move(result);
  return Status::kOk;
}

}  // namespace ihsm::device::crypto
