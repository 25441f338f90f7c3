// ECDSA verification and ECDH (P-256/384/521 and X25519).
#include <openssl/crypto.h>
#include <openssl/err.h>

#include <string>

#include "device/crypto/algorithms.h"
#include "device/crypto/ossl_util.h"

namespace ihsm::device::crypto {
namespace {

using detail::PkeyCtx;

// Derive with a ready peer key into a fresh SecretBytes; `failure` is the
// status when OpenSSL refuses.
Status derive(EVP_PKEY* own, EVP_PKEY* peer, Status failure, SecretBytes& z) {
  PkeyCtx ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, own, nullptr));
  size_t len = 0;
  if (!ctx || EVP_PKEY_derive_init(ctx.get()) != 1 ||
      EVP_PKEY_derive_set_peer(ctx.get(), peer) != 1 ||
      EVP_PKEY_derive(ctx.get(), nullptr, &len) != 1 || len == 0) {
    ERR_clear_error();
    return failure;
  }
  SecretBytes result(len);
  if (EVP_PKEY_derive(ctx.get(), result.reveal_mutable().data(), &len) != 1) {
    // X25519: OpenSSL itself refuses an all-zero shared secret here.
    ERR_clear_error();
    return failure;
  }
  result.resize(len);
  z = std::move(result);
  return Status::kOk;
}

Status ecdh_weierstrass(EVP_PKEY* own, Curve curve, std::span<const uint8_t> peer_public,
                        SecretBytes& z) {
  // X9.62 encodings: 04 || X || Y, or 02/03 || X. (OpenSSL would also take
  // the hybrid 06/07 form and the single-byte point at infinity: refuse them.)
  const size_t n = curve_scalar_size(curve);
  const bool uncompressed = peer_public.size() == 1 + 2 * n && peer_public[0] == 0x04;
  const bool compressed =
      peer_public.size() == 1 + n && (peer_public[0] == 0x02 || peer_public[0] == 0x03);
  if (!uncompressed && !compressed) return Status::kInvalidArgument;

  PkeyCtx pctx(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
  if (!pctx || EVP_PKEY_fromdata_init(pctx.get()) != 1) return Status::kCryptoFailure;
  std::string group = detail::ec_group_name(curve);
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group.data(), 0),
      detail::octet_param(OSSL_PKEY_PARAM_PUB_KEY, peer_public), OSSL_PARAM_construct_end()};
  EVP_PKEY* raw_peer = nullptr;
  // Decoding fails for a point that is not on the curve.
  if (EVP_PKEY_fromdata(pctx.get(), &raw_peer, EVP_PKEY_PUBLIC_KEY, params) != 1) {
    ERR_clear_error();
    return Status::kInvalidArgument;
  }
  Pkey peer(raw_peer);
  // SP 800-56A 5.6.2.3.3 partial public-key validation.
  PkeyCtx check(EVP_PKEY_CTX_new_from_pkey(nullptr, peer.get(), nullptr));
  if (!check || EVP_PKEY_public_check(check.get()) != 1) {
    ERR_clear_error();
    return Status::kInvalidArgument;
  }
  return derive(own, peer.get(), Status::kCryptoFailure, z);
}

Status ecdh_x25519(EVP_PKEY* own, std::span<const uint8_t> peer_public, SecretBytes& z) {
  if (peer_public.size() != 32) return Status::kInvalidArgument;
  Pkey peer(EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, nullptr, peer_public.data(),
                                        peer_public.size()));
  if (!peer) {
    ERR_clear_error();
    return Status::kInvalidArgument;
  }
  SecretBytes result;
  const Status s = derive(own, peer.get(), Status::kInvalidArgument, result);
  if (!ok(s)) return s;
  // RFC 7748 section 6.1: a low-order peer point gives all zeros; refuse it
  // (OpenSSL already does, this keeps the guarantee local).
  static const uint8_t kZero[32] = {};
  if (result.size() != 32 || CRYPTO_memcmp(result.reveal().data(), kZero, 32) == 0) {
    return Status::kInvalidArgument;
  }
  z = std::move(result);
  return Status::kOk;
}

}  // namespace

Status ecdsa_verify(EVP_PKEY* key, Curve curve, Mechanism mechanism, std::span<const uint8_t> data,
                    std::span<const uint8_t> raw_signature) {
  Curve key_curve{};
  if (!detail::ec_curve_of(key, key_curve) || key_curve != curve) return Status::kKeyTypeMismatch;
  uint8_t digest_buf[EVP_MAX_MD_SIZE];
  std::span<const uint8_t> digest;
  if (mechanism == Mechanism::kEcdsa) {
    if (data.size() < 20 || data.size() > 64) return Status::kDataLengthInvalid;
    digest = data;
  } else {
    const EVP_MD* md = detail::ecdsa_md(mechanism);
    if (md == nullptr) return Status::kMechanismInvalid;
    unsigned int len = 0;
    if (EVP_Digest(data.data(), data.size(), digest_buf, &len, md, nullptr) != 1) {
      ERR_clear_error();
      return Status::kCryptoFailure;
    }
    digest = std::span<const uint8_t>(digest_buf, len);
  }
  if (raw_signature.size() != 2 * curve_scalar_size(curve)) return Status::kSignatureInvalid;
  Bytes der;
  if (!ok(detail::ecdsa_raw_to_der(raw_signature, der))) return Status::kSignatureInvalid;
  return detail::ecdsa_verify_digest_der(key, digest, der) ? Status::kOk
                                                           : Status::kSignatureInvalid;
}

Status ecdh_derive(EVP_PKEY* own, std::span<const uint8_t> peer_public, SecretBytes& z) {
  if (own == nullptr) return Status::kInvalidArgument;
  if (EVP_PKEY_is_a(own, "X25519") == 1) return ecdh_x25519(own, peer_public, z);
  Curve curve{};
  if (!detail::ec_curve_of(own, curve)) return Status::kKeyTypeMismatch;
  return ecdh_weierstrass(own, curve, peer_public, z);
}

}  // namespace ihsm::device::crypto
