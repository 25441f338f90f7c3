// RSA: key generation with a pairwise-consistency test, PKCS#1 v1.5 and
// PSS signatures (message or digest input), and OAEP encryption.
#include <openssl/err.h>
#include <openssl/rsa.h>

#include "device/crypto/algorithms.h"
#include "device/crypto/ossl_util.h"
#include "device/fips/fault.h"
#include "device/fips/state.h"

namespace ihsm::device::crypto {
namespace {

using detail::MdCtx;
using detail::PkeyCtx;

bool is_rsa(EVP_PKEY* key) { return key != nullptr && EVP_PKEY_is_a(key, "RSA") == 1; }

// Everything about the parameters that can be checked before OpenSSL runs.
Status check_sign_params(EVP_PKEY* key, const RsaSignParams& p, size_t data_size) {
  if (!is_rsa(key)) return Status::kKeyTypeMismatch;
  if (hash_md(p.hash) == nullptr) return Status::kMechanismParamInvalid;
  switch (p.padding) {
    case RsaPadding::kPkcs1:
      break;
    case RsaPadding::kPss: {
      if (hash_md(p.mgf1) == nullptr) return Status::kMechanismParamInvalid;
      // RFC 8017 9.1.1: emLen = ceil((modBits - 1) / 8) >= hLen + sLen + 2.
      const int bits = EVP_PKEY_get_bits(key);
      if (bits <= 1) return Status::kCryptoFailure;
      const size_t em_len = (static_cast<size_t>(bits) - 1 + 7) / 8;
      const size_t h_len = hash_size(p.hash);
      if (em_len < h_len + 2 || p.salt_length > em_len - h_len - 2) {
        return Status::kMechanismParamInvalid;
      }
      break;
    }
    default:
      return Status::kMechanismParamInvalid;
  }
  if (p.raw) {
    const int k = EVP_PKEY_get_size(key);
    if (p.padding != RsaPadding::kPkcs1 || p.hash_input) return Status::kMechanismParamInvalid;
    if (data_size == 0 || k < 11 || data_size > static_cast<size_t>(k) - 11) {
      return Status::kDataLengthInvalid;
    }
    return Status::kOk;
  }
  if (!p.hash_input && data_size != hash_size(p.hash)) return Status::kDataLengthInvalid;
  return Status::kOk;
}

// Padding (and for PSS, MGF1 hash and salt length) on a sign/verify context.
bool set_padding(EVP_PKEY_CTX* ctx, const RsaSignParams& p) {
  if (p.padding == RsaPadding::kPkcs1) {
    return EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) == 1;
  }
  return EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PSS_PADDING) == 1 &&
         EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, hash_md(p.mgf1)) == 1 &&
         EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, static_cast<int>(p.salt_length)) == 1;
}

// OAEP digest, MGF1 digest and label on an encrypt/decrypt context.
bool set_oaep(EVP_PKEY_CTX* ctx, const OaepParams& p) {
  if (EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) != 1 ||
      EVP_PKEY_CTX_set_rsa_oaep_md(ctx, hash_md(p.hash)) != 1 ||
      EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, hash_md(p.mgf1)) != 1) {
    return false;
  }
  if (p.label.empty()) return true;
  // Through the parameter API OpenSSL copies the label (the set0 call
  // would take ownership of an OPENSSL_malloc'd buffer instead).
  OSSL_PARAM params[] = {detail::octet_param(OSSL_ASYM_CIPHER_PARAM_OAEP_LABEL, p.label),
                         OSSL_PARAM_construct_end()};
  return EVP_PKEY_CTX_set_params(ctx, params) == 1;
}

Status check_oaep_params(EVP_PKEY* key, const OaepParams& p) {
  if (!is_rsa(key)) return Status::kKeyTypeMismatch;
  if (hash_md(p.hash) == nullptr || hash_md(p.mgf1) == nullptr) {
    return Status::kMechanismParamInvalid;
  }
  const int k = EVP_PKEY_get_size(key);
  if (k <= 0) return Status::kCryptoFailure;
  if (static_cast<size_t>(k) < 2 * hash_size(p.hash) + 2) return Status::kMechanismParamInvalid;
  return Status::kOk;
}

}  // namespace

Status generate_rsa_key(uint32_t bits, Pkey& out) {
  if (bits != 2048 && bits != 3072 && bits != 4096) return Status::kKeySizeInvalid;
  // Public exponent: OpenSSL's default, 65537.
  Pkey key(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(bits)));
  if (!key || rsa_bits(key.get()) != bits) {
    ERR_clear_error();
    return Status::kCryptoFailure;
  }
  // Pairwise-consistency test: sign a fixed digest and verify it. A
  // failure latches the error state.
  static const uint8_t kPctDigest[32] = {0x70, 0x63, 0x74, 0x2d, 0x72, 0x73, 0x61};
  RsaSignParams p;
  p.padding = RsaPadding::kPkcs1;
  p.hash = Hash::kSha256;
  p.hash_input = false;
  Bytes sig;
  if (!ok(rsa_sign(key.get(), p, kPctDigest, sig))) return fips::conditional_test_failed("pct-rsa");
  if (fips::fault_injected("pct-rsa")) sig.back() ^= 0x01;
  if (!ok(rsa_verify(key.get(), p, kPctDigest, sig))) {
    return fips::conditional_test_failed("pct-rsa");
  }
  out = std::move(key);
  return Status::kOk;
}

uint32_t rsa_bits(EVP_PKEY* key) {
  if (!is_rsa(key)) return 0;
  const int bits = EVP_PKEY_get_bits(key);
  return bits > 0 ? static_cast<uint32_t>(bits) : 0;
}

Status rsa_sign(EVP_PKEY* key, const RsaSignParams& p, std::span<const uint8_t> data, Bytes& sig) {
  Status s = check_sign_params(key, p, data.size());
  if (!ok(s)) return s;
  const int k = EVP_PKEY_get_size(key);
  if (k <= 0) return Status::kCryptoFailure;
  Bytes result(static_cast<size_t>(k));
  size_t len = result.size();
  bool good = false;
  if (p.hash_input) {
    MdCtx mctx(EVP_MD_CTX_new());
    EVP_PKEY_CTX* pctx = nullptr;  // owned by mctx
    good = mctx && EVP_DigestSignInit(mctx.get(), &pctx, hash_md(p.hash), nullptr, key) == 1 &&
           set_padding(pctx, p) &&
           EVP_DigestSign(mctx.get(), result.data(), &len, data.data(), data.size()) == 1;
  } else {
    PkeyCtx ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, key, nullptr));
    // Without a signature digest OpenSSL pads the input as it is (raw).
    good = ctx && EVP_PKEY_sign_init(ctx.get()) == 1 && set_padding(ctx.get(), p) &&
           (p.raw || EVP_PKEY_CTX_set_signature_md(ctx.get(), hash_md(p.hash)) == 1) &&
           EVP_PKEY_sign(ctx.get(), result.data(), &len, data.data(), data.size()) == 1;
  }
  if (!good || len != result.size()) {
    ERR_clear_error();
    return Status::kCryptoFailure;
  }
  sig = std::move(result);
  return Status::kOk;
}

Status rsa_verify(EVP_PKEY* key, const RsaSignParams& p, std::span<const uint8_t> data,
                  std::span<const uint8_t> sig) {
  Status s = check_sign_params(key, p, data.size());
  if (!ok(s)) return s;
  const int k = EVP_PKEY_get_size(key);
  if (k <= 0) return Status::kCryptoFailure;
  if (sig.size() != static_cast<size_t>(k)) return Status::kSignatureInvalid;
  bool good = false;
  if (p.hash_input) {
    MdCtx mctx(EVP_MD_CTX_new());
    EVP_PKEY_CTX* pctx = nullptr;  // owned by mctx
    if (!mctx || EVP_DigestVerifyInit(mctx.get(), &pctx, hash_md(p.hash), nullptr, key) != 1 ||
        !set_padding(pctx, p)) {
      ERR_clear_error();
      return Status::kCryptoFailure;
    }
    good = EVP_DigestVerify(mctx.get(), sig.data(), sig.size(), data.data(), data.size()) == 1;
  } else {
    PkeyCtx ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, key, nullptr));
    if (!ctx || EVP_PKEY_verify_init(ctx.get()) != 1 || !set_padding(ctx.get(), p) ||
        (!p.raw && EVP_PKEY_CTX_set_signature_md(ctx.get(), hash_md(p.hash)) != 1)) {
      ERR_clear_error();
      return Status::kCryptoFailure;
    }
    good = EVP_PKEY_verify(ctx.get(), sig.data(), sig.size(), data.data(), data.size()) == 1;
  }
  if (!good) {
    ERR_clear_error();
    return Status::kSignatureInvalid;
  }
  return Status::kOk;
}

Status rsa_oaep_encrypt(EVP_PKEY* key, const OaepParams& p, std::span<const uint8_t> plaintext,
                        Bytes& out) {
  Status s = check_oaep_params(key, p);
  if (!ok(s)) return s;
  const size_t k = static_cast<size_t>(EVP_PKEY_get_size(key));
  // RFC 8017 7.1.1: mLen <= k - 2hLen - 2.
  if (plaintext.size() > k - 2 * hash_size(p.hash) - 2) return Status::kDataLengthInvalid;
  PkeyCtx ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, key, nullptr));
  Bytes result(k);
  size_t len = result.size();
  if (!ctx || EVP_PKEY_encrypt_init(ctx.get()) != 1 || !set_oaep(ctx.get(), p) ||
      EVP_PKEY_encrypt(ctx.get(), result.data(), &len, plaintext.data(), plaintext.size()) != 1 ||
      len != k) {
    ERR_clear_error();
    return Status::kCryptoFailure;
  }
  out = std::move(result);
  return Status::kOk;
}

Status rsa_oaep_decrypt(EVP_PKEY* key, const OaepParams& p, std::span<const uint8_t> ciphertext,
                        SecretBytes& out) {
  // Whatever was in `out` goes (its storage is cleansed as it is freed).
  out = SecretBytes();
  // Key and parameter checks do not depend on the ciphertext: no oracle.
  Status s = check_oaep_params(key, p);
  if (!ok(s)) return s;
  const size_t k = static_cast<size_t>(EVP_PKEY_get_size(key));
  // From here on every failure is the one status, and OpenSSL's OAEP
  // decoding is constant-time; the error queue is emptied so nothing
  // downstream can tell the causes apart either.
  if (ciphertext.size() != k) return Status::kCiphertextInvalid;
  PkeyCtx ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, key, nullptr));
  SecretBytes result(k);
  size_t len = result.size();
  const bool good = ctx && EVP_PKEY_decrypt_init(ctx.get()) == 1 && set_oaep(ctx.get(), p) &&
                    EVP_PKEY_decrypt(ctx.get(), result.reveal_mutable().data(), &len,
                                     ciphertext.data(), ciphertext.size()) == 1 &&
                    len <= k;
  ERR_clear_error();
  if (!good) {
    secure_cleanse(result.reveal_mutable().data(), result.size());
    return Status::kCiphertextInvalid;
  }
  result.resize(len);
  out = std::move(result);
  return Status::kOk;
}

}  // namespace ihsm::device::crypto
