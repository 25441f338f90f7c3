// Independent OpenSSL code for the tests: signature verification, HKDF,
// AES-GCM and ECDH written here from the primitives, sharing nothing with
// the device backend or libihsm, so a test checks the code under test
// against a second implementation.
#pragma once

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <memory>
#include <stdexcept>
#include <string>

#include "support/util.h"

namespace ihsm::test::ossl {

struct PkeyDel {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct PkeyCtxDel {
  void operator()(EVP_PKEY_CTX* p) const { EVP_PKEY_CTX_free(p); }
};
struct MdCtxDel {
  void operator()(EVP_MD_CTX* p) const { EVP_MD_CTX_free(p); }
};
struct CipherCtxDel {
  void operator()(EVP_CIPHER_CTX* p) const { EVP_CIPHER_CTX_free(p); }
};
struct SigDel {
  void operator()(ECDSA_SIG* p) const { ECDSA_SIG_free(p); }
};
struct BioDel {
  void operator()(BIO* p) const { BIO_free(p); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyDel>;
using PkeyCtx = std::unique_ptr<EVP_PKEY_CTX, PkeyCtxDel>;

inline Pkey load_spki(const Bytes& der) {
  const unsigned char* p = der.data();
  Pkey key(d2i_PUBKEY(nullptr, &p, static_cast<long>(der.size())));
  if (!key || p != der.data() + der.size()) return nullptr;
  return key;
}

// The curve's group name ("prime256v1", "secp384r1", "secp521r1").
inline std::string group_of(EVP_PKEY* key) {
  char name[64] = {};
  size_t len = 0;
  if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, name, sizeof(name), &len) !=
      1) {
    return {};
  }
  return std::string(name, len);
}

// r || s (two equal halves) -> DER ECDSA-Sig-Value.
inline Bytes raw_sig_to_der(const Bytes& raw) {
  if (raw.empty() || raw.size() % 2 != 0) return {};
  const int half = static_cast<int>(raw.size() / 2);
  std::unique_ptr<ECDSA_SIG, SigDel> sig(ECDSA_SIG_new());
  BIGNUM* r = BN_bin2bn(raw.data(), half, nullptr);
  BIGNUM* s = BN_bin2bn(raw.data() + half, half, nullptr);
  if (!sig || !r || !s || ECDSA_SIG_set0(sig.get(), r, s) != 1) {
    BN_free(r);
    BN_free(s);
    return {};
  }
  const int len = i2d_ECDSA_SIG(sig.get(), nullptr);
  Bytes der(static_cast<size_t>(len));
  unsigned char* p = der.data();
  i2d_ECDSA_SIG(sig.get(), &p);
  return der;
}

// Verifies a DER ECDSA signature over `data` hashed with `md`, or over
// `data` taken as the digest when md is nullptr.
inline bool verify_ecdsa_der(const Bytes& spki, const EVP_MD* md, const Bytes& data,
                             const Bytes& der_sig) {
  Pkey key = load_spki(spki);
  if (!key || der_sig.empty()) return false;
  if (md == nullptr) {
    PkeyCtx ctx(EVP_PKEY_CTX_new(key.get(), nullptr));
    return ctx && EVP_PKEY_verify_init(ctx.get()) == 1 &&
           EVP_PKEY_verify(ctx.get(), der_sig.data(), der_sig.size(), data.data(), data.size()) ==
               1;
  }
  std::unique_ptr<EVP_MD_CTX, MdCtxDel> ctx(EVP_MD_CTX_new());
  return ctx && EVP_DigestVerifyInit(ctx.get(), nullptr, md, nullptr, key.get()) == 1 &&
         EVP_DigestVerify(ctx.get(), der_sig.data(), der_sig.size(), data.data(), data.size()) == 1;
}

// Verifies an r || s signature (the device's format). The halves must be
// exactly the curve's size.
inline bool verify_ecdsa_raw(const Bytes& spki, const EVP_MD* md, const Bytes& data,
                             const Bytes& raw_sig) {
  Pkey key = load_spki(spki);
  if (!key) return false;
  const int bits = EVP_PKEY_get_bits(key.get());
  if (raw_sig.size() != 2 * static_cast<size_t>((bits + 7) / 8)) return false;
  return verify_ecdsa_der(spki, md, data, raw_sig_to_der(raw_sig));
}

inline std::string spki_to_pem(const Bytes& spki) {
  Pkey key = load_spki(spki);
  if (!key) return {};
  std::unique_ptr<BIO, BioDel> bio(BIO_new(BIO_s_mem()));
  if (PEM_write_bio_PUBKEY(bio.get(), key.get()) != 1) return {};
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(len));
}

inline Bytes digest(const EVP_MD* md, const Bytes& data) {
  Bytes out(EVP_MAX_MD_SIZE);
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), out.data(), &len, md, nullptr);
  out.resize(len);
  return out;
}

inline Bytes hmac_sha384(const Bytes& key, const Bytes& data) {
  Bytes out(EVP_MAX_MD_SIZE);
  unsigned int len = 0;
  // An empty key still needs a valid pointer.
  static const uint8_t kEmpty = 0;
  HMAC(EVP_sha384(), key.empty() ? &kEmpty : key.data(), static_cast<int>(key.size()), data.data(),
       data.size(), out.data(), &len);
  out.resize(len);
  return out;
}

// RFC 5869 spelled out with HMAC, independent of EVP_KDF.
inline Bytes hkdf_sha384(const Bytes& ikm, const Bytes& salt, const Bytes& info, size_t length) {
  const Bytes prk = hmac_sha384(salt.empty() ? Bytes(48, 0) : salt, ikm);
  Bytes okm, t;
  for (uint8_t i = 1; okm.size() < length; ++i) {
    Bytes block = t;
    block.insert(block.end(), info.begin(), info.end());
    block.push_back(i);
    t = hmac_sha384(prk, block);
    okm.insert(okm.end(), t.begin(), t.end());
  }
  okm.resize(length);
  return okm;
}

inline const EVP_CIPHER* gcm_cipher(size_t key_len) {
  switch (key_len) {
    case 16:
      return EVP_aes_128_gcm();
    case 24:
      return EVP_aes_192_gcm();
    case 32:
      return EVP_aes_256_gcm();
  }
  return nullptr;
}

// AES-GCM encryption returning ciphertext || tag (16 bytes).
inline Bytes gcm_seal(const Bytes& key, const Bytes& iv, const Bytes& aad, const Bytes& plain) {
  std::unique_ptr<EVP_CIPHER_CTX, CipherCtxDel> ctx(EVP_CIPHER_CTX_new());
  Bytes out(plain.size() + 16);
  int len = 0, total = 0;
  if (EVP_EncryptInit_ex(ctx.get(), gcm_cipher(key.size()), nullptr, nullptr, nullptr) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, static_cast<int>(iv.size()),
                          nullptr) != 1 ||
      EVP_EncryptInit_ex(ctx.get(), nullptr, nullptr, key.data(), iv.data()) != 1) {
    throw std::runtime_error("gcm init");
  }
  if (!aad.empty() &&
      EVP_EncryptUpdate(ctx.get(), nullptr, &len, aad.data(), static_cast<int>(aad.size())) != 1) {
    throw std::runtime_error("gcm aad");
  }
  if (!plain.empty()) {
    if (EVP_EncryptUpdate(ctx.get(), out.data(), &len, plain.data(),
                          static_cast<int>(plain.size())) != 1) {
      throw std::runtime_error("gcm update");
    }
    total = len;
  }
  if (EVP_EncryptFinal_ex(ctx.get(), out.data() + total, &len) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, 16, out.data() + plain.size()) != 1) {
    throw std::runtime_error("gcm final");
  }
  return out;
}

inline Pkey generate_ec(const char* group) {
  return Pkey(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", group));
}

inline Bytes spki_of(EVP_PKEY* key) {
  const int len = i2d_PUBKEY(key, nullptr);
  Bytes out(static_cast<size_t>(len));
  unsigned char* p = out.data();
  i2d_PUBKEY(key, &p);
  return out;
}

// The uncompressed point of an EC key: the tail of its DER SPKI (the
// BIT STRING of a named-curve key holds 0x04 || X || Y).
inline Bytes uncompressed_point(const Bytes& spki) {
  Pkey key = load_spki(spki);
  if (!key) return {};
  const size_t n = static_cast<size_t>((EVP_PKEY_get_bits(key.get()) + 7) / 8);
  const size_t len = 1 + 2 * n;
  if (spki.size() < len || spki[spki.size() - len] != 0x04) return {};
  return Bytes(spki.end() - static_cast<ptrdiff_t>(len), spki.end());
}

inline Bytes ecdh(EVP_PKEY* own, EVP_PKEY* peer) {
  PkeyCtx ctx(EVP_PKEY_CTX_new(own, nullptr));
  size_t len = 0;
  if (!ctx || EVP_PKEY_derive_init(ctx.get()) != 1 ||
      EVP_PKEY_derive_set_peer(ctx.get(), peer) != 1 ||
      EVP_PKEY_derive(ctx.get(), nullptr, &len) != 1) {
    throw std::runtime_error("ecdh init");
  }
  Bytes z(len);
  if (EVP_PKEY_derive(ctx.get(), z.data(), &len) != 1) throw std::runtime_error("ecdh");
  z.resize(len);
  return z;
}

}  // namespace ihsm::test::ossl
