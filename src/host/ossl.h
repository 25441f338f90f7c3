// Small RAII wrappers for the OpenSSL objects libihsm uses. Internal.
#pragma once

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/provider.h>
#include <openssl/x509.h>

#include <memory>

#include "ihsm/types.h"

namespace ihsm::ossl {

template <typename T, void (*Free)(T*)>
struct Deleter {
  void operator()(T* p) const { Free(p); }
};

using Pkey = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;
using PkeyCtx = std::unique_ptr<EVP_PKEY_CTX, Deleter<EVP_PKEY_CTX, EVP_PKEY_CTX_free>>;
using MdCtx = std::unique_ptr<EVP_MD_CTX, Deleter<EVP_MD_CTX, EVP_MD_CTX_free>>;
using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, Deleter<EVP_CIPHER_CTX, EVP_CIPHER_CTX_free>>;
using Bn = std::unique_ptr<BIGNUM, Deleter<BIGNUM, BN_free>>;
using EcdsaSig = std::unique_ptr<ECDSA_SIG, Deleter<ECDSA_SIG, ECDSA_SIG_free>>;

// libihsm's own OpenSSL library context with the default provider: the
// application around it may have set ENGINEs as defaults (the OpenSSL
// PKCS#11 engine does, and may even route to this very module) or loaded
// other providers; none of that may touch how PINs are sealed.
inline OSSL_LIB_CTX* libctx() {
  static OSSL_LIB_CTX* ctx = [] {
    OSSL_LIB_CTX* c = OSSL_LIB_CTX_new();
    if (c != nullptr && OSSL_PROVIDER_load(c, "default") == nullptr) {
      OSSL_LIB_CTX_free(c);
      c = nullptr;
    }
    return c;
  }();
  return ctx;
}

// Drop whatever OpenSSL queued, so a failure here does not leak into an
// unrelated caller's ERR_get_error().
inline void clear_errors() { ERR_clear_error(); }

// A DER SubjectPublicKeyInfo with nothing after it; nullptr otherwise.
inline Pkey parse_spki(const Bytes& der) {
  if (der.empty() || der.size() > 1u << 20) return nullptr;
  const unsigned char* p = der.data();
  Pkey key(d2i_PUBKEY_ex(nullptr, &p, static_cast<long>(der.size()), libctx(), nullptr));
  if (!key || p != der.data() + der.size()) {
    clear_errors();
    return nullptr;
  }
  return key;
}

}  // namespace ihsm::ossl
