// Internal to src/device/crypto: RAII owners for OpenSSL objects and the
// small helpers the backend's .cpp files share. Not part of backend.h's API.
#pragma once

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include <climits>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include "common/secret.h"
#include "ihsm/status.h"
#include "ihsm/types.h"

namespace ihsm::device::crypto::detail {

struct MdCtxFree {
  void operator()(EVP_MD_CTX* p) const { EVP_MD_CTX_free(p); }
};
struct PkeyCtxFree {
  void operator()(EVP_PKEY_CTX* p) const { EVP_PKEY_CTX_free(p); }
};
struct CipherCtxFree {
  void operator()(EVP_CIPHER_CTX* p) const { EVP_CIPHER_CTX_free(p); }
};
struct KdfFree {
  void operator()(EVP_KDF* p) const { EVP_KDF_free(p); }
};
struct KdfCtxFree {
  void operator()(EVP_KDF_CTX* p) const { EVP_KDF_CTX_free(p); }
};
struct MacFree {
  void operator()(EVP_MAC* p) const { EVP_MAC_free(p); }
};
struct MacCtxFree {
  void operator()(EVP_MAC_CTX* p) const { EVP_MAC_CTX_free(p); }
};
struct SigFree {
  void operator()(ECDSA_SIG* p) const { ECDSA_SIG_free(p); }
};
using MdCtx = std::unique_ptr<EVP_MD_CTX, MdCtxFree>;
using PkeyCtx = std::unique_ptr<EVP_PKEY_CTX, PkeyCtxFree>;
using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, CipherCtxFree>;
using Kdf = std::unique_ptr<EVP_KDF, KdfFree>;
using KdfCtx = std::unique_ptr<EVP_KDF_CTX, KdfCtxFree>;
using Mac = std::unique_ptr<EVP_MAC, MacFree>;
using MacCtx = std::unique_ptr<EVP_MAC_CTX, MacCtxFree>;
using EcdsaSig = std::unique_ptr<ECDSA_SIG, SigFree>;

// OpenSSL's EVP_*Update and friends take int lengths.
inline bool fits_int(size_t n) { return n <= static_cast<size_t>(INT_MAX) - 64; }

// An octet-string OSSL_PARAM for a span that may be empty: OpenSSL wants a
// non-null pointer even for zero bytes.
inline OSSL_PARAM octet_param(const char* name, std::span<const uint8_t> bytes) {
  static unsigned char empty = 0;
  void* p = bytes.empty() ? static_cast<void*>(&empty)
                          : static_cast<void*>(const_cast<uint8_t*>(bytes.data()));
  return OSSL_PARAM_construct_octet_string(name, p, bytes.size());
}

// Run a KDF by name with the given parameter list (terminated) into out.
inline Status kdf_derive(const char* name, const OSSL_PARAM* params, std::span<uint8_t> out) {
  Kdf kdf(EVP_KDF_fetch(nullptr, name, nullptr));
  if (!kdf) return Status::kCryptoFailure;
  KdfCtx ctx(EVP_KDF_CTX_new(kdf.get()));
  if (!ctx || out.empty()) return Status::kCryptoFailure;
  if (EVP_KDF_derive(ctx.get(), out.data(), out.size(), params) != 1) {
    ERR_clear_error();
    return Status::kCryptoFailure;
  }
  return Status::kOk;
}

// AES-GCM for a 16-, 24- or 32-byte key (nullptr otherwise), fetched once
// for the device's lifetime: a legacy EVP_aes_*_gcm() would be fetched
// again by every init.
const EVP_CIPHER* aes_gcm_cipher(size_t key_len);
// The rest of a GCM operation on a context that has its cipher, key, IV
// and direction: AAD, data, tag (16 bytes). gcm_open: kTagMismatch when
// authentication fails; `plaintext` is then empty.
Status gcm_seal(EVP_CIPHER_CTX* ctx, std::span<const uint8_t> aad,
                std::span<const uint8_t> plaintext, Bytes& ciphertext, Bytes& tag);
Status gcm_open(EVP_CIPHER_CTX* ctx, std::span<const uint8_t> aad,
                std::span<const uint8_t> ciphertext, std::span<const uint8_t> tag,
                SecretBytes& plaintext);

// OpenSSL's name of a hash ("SHA256", ...).
const char* hash_name(Hash h);
// The digest of an ECDSA-SHA* mechanism; nullptr for anything else.
const EVP_MD* ecdsa_md(Mechanism m);

// "P-256", "P-384", "P-521" for the Weierstrass curves; "" otherwise.
const char* ec_group_name(Curve c);
// The Weierstrass curve of an EC key, if it is one the device supports.
bool ec_curve_of(EVP_PKEY* key, Curve& out);

// DER ECDSA-Sig-Value <-> fixed-width r || s.
Status ecdsa_der_to_raw(std::span<const uint8_t> der, size_t scalar, Bytes& raw);
Status ecdsa_raw_to_der(std::span<const uint8_t> raw, Bytes& der);

// ECDSA on a digest with a DER signature (EVP_PKEY_sign / EVP_PKEY_verify).
Status ecdsa_sign_digest_der(EVP_PKEY* key, std::span<const uint8_t> digest, Bytes& der);
bool ecdsa_verify_digest_der(EVP_PKEY* key, std::span<const uint8_t> digest,
                             std::span<const uint8_t> der);

}  // namespace ihsm::device::crypto::detail
