// Local ECDSA helpers: verification against a DER SPKI and the r||s <-> DER
// conversions. No device involved.
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>

#include "host/ossl.h"
#include "ihsm/client.h"

namespace ihsm {
namespace {

constexpr size_t kMaxComponent = 66;  // P-521
constexpr size_t kMinDigest = 20;
constexpr size_t kMaxDigest = 64;

ErrorDetail detail(std::string message) {
  ErrorDetail d;
  d.message = std::move(message);
  return d;
}

}  // namespace

Result<Bytes> ecdsa_raw_to_der(const Bytes& raw) {
  if (raw.empty() || raw.size() % 2 != 0 || raw.size() > 2 * kMaxComponent) {
    return {Status::kInvalidArgument,
            detail("an r||s signature has two equal halves of 1..66 bytes")};
  }
  const int half = static_cast<int>(raw.size() / 2);
  ossl::Bn r(BN_bin2bn(raw.data(), half, nullptr));
  ossl::Bn s(BN_bin2bn(raw.data() + half, half, nullptr));
  ossl::EcdsaSig sig(ECDSA_SIG_new());
  if (!r || !s || !sig || ECDSA_SIG_set0(sig.get(), r.get(), s.get()) != 1) {
    ossl::clear_errors();
    return {Status::kCryptoFailure, detail("cannot build the ECDSA signature")};
  }
  // ECDSA_SIG owns r and s now.
  (void)r.release();
  (void)s.release();
  const int len = i2d_ECDSA_SIG(sig.get(), nullptr);
  if (len <= 0) {
    ossl::clear_errors();
    return {Status::kCryptoFailure, detail("cannot encode the ECDSA signature")};
  }
  Bytes out(static_cast<size_t>(len));
  unsigned char* p = out.data();
  if (i2d_ECDSA_SIG(sig.get(), &p) != len) {
    ossl::clear_errors();
    return {Status::kCryptoFailure, detail("cannot encode the ECDSA signature")};
  }
  return out;
}

Result<Bytes> ecdsa_der_to_raw(const Bytes& der, size_t component_size) {
  if (component_size == 0 || component_size > kMaxComponent) {
    return {Status::kInvalidArgument, detail("component size must be 1..66 bytes")};
  }
  if (der.empty() || der.size() > 256) {
    return {Status::kSignatureInvalid, detail("not a DER ECDSA signature")};
  }
  const unsigned char* p = der.data();
  ossl::EcdsaSig sig(d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size())));
  if (!sig || p != der.data() + der.size()) {
    ossl::clear_errors();
    return {Status::kSignatureInvalid, detail("not a DER ECDSA signature")};
  }
  // Only the canonical encoding: re-encoding must give the same bytes.
  const int len = i2d_ECDSA_SIG(sig.get(), nullptr);
  if (len != static_cast<int>(der.size())) {
    ossl::clear_errors();
    return {Status::kSignatureInvalid, detail("non-canonical DER ECDSA signature")};
  }
  const BIGNUM* r = nullptr;
  const BIGNUM* s = nullptr;
  ECDSA_SIG_get0(sig.get(), &r, &s);
  const int n = static_cast<int>(component_size);
  Bytes out(2 * component_size);
  if (BN_bn2binpad(r, out.data(), n) != n || BN_bn2binpad(s, out.data() + n, n) != n) {
    ossl::clear_errors();
    return {Status::kSignatureInvalid, detail("signature component larger than the curve")};
  }
  return out;
}

Result<bool> verify_ecdsa(const Bytes& spki_der, Mechanism mechanism, const Bytes& data,
                          const Bytes& signature) {
  const EVP_MD* md = nullptr;
  switch (mechanism) {
    case Mechanism::kEcdsa:
      if (data.size() < kMinDigest || data.size() > kMaxDigest) {
        return {Status::kDataLengthInvalid, detail("ECDSA takes a digest of 20..64 bytes")};
      }
      break;
    case Mechanism::kEcdsaSha256:
      md = EVP_sha256();
      break;
    case Mechanism::kEcdsaSha384:
      md = EVP_sha384();
      break;
    case Mechanism::kEcdsaSha512:
      md = EVP_sha512();
      break;
    default:
      return {Status::kMechanismInvalid, detail("not an ECDSA signature mechanism")};
  }
  ossl::Pkey key = ossl::parse_spki(spki_der);
  if (!key || EVP_PKEY_is_a(key.get(), "EC") != 1) {
    return {Status::kInvalidArgument, detail("not a DER SubjectPublicKeyInfo of an EC key")};
  }
  const int bits = EVP_PKEY_get_bits(key.get());
  if (bits <= 0) return {Status::kInvalidArgument, detail("cannot read the key size")};
  const size_t n = (static_cast<size_t>(bits) + 7) / 8;
  if (signature.size() != 2 * n) return false;

  auto der = ecdsa_raw_to_der(signature);
  if (!der) return false;
  const Bytes& sig = der.value();

  int rc = 0;
  if (md != nullptr) {
    ossl::MdCtx ctx(EVP_MD_CTX_new());
    if (!ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, md, nullptr, key.get()) != 1) {
      ossl::clear_errors();
      return {Status::kCryptoFailure, detail("cannot set up signature verification")};
    }
    rc = EVP_DigestVerify(ctx.get(), sig.data(), sig.size(), data.data(), data.size());
  } else {
    ossl::PkeyCtx ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, key.get(), nullptr));
    if (!ctx || EVP_PKEY_verify_init(ctx.get()) != 1) {
      ossl::clear_errors();
      return {Status::kCryptoFailure, detail("cannot set up signature verification")};
    }
    rc = EVP_PKEY_verify(ctx.get(), sig.data(), sig.size(), data.data(), data.size());
  }
  ossl::clear_errors();
  return rc == 1;
}

}  // namespace ihsm
