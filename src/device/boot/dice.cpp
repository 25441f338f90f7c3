#include "device/boot/dice.h"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/obj_mac.h>

#include "device/boot/ossl_ptr.h"

namespace ihsm::device::boot {
namespace {

using namespace detail;

constexpr size_t kSeedSize = 56;   // 384 + 64 bits: the bias of the reduction is 2^-64
constexpr size_t kPointSize = 97;  // 0x04 || X || Y

std::span<const uint8_t> as_bytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

// d = (c mod (n - 1)) + 1, in [1, n - 1] whatever c is, and d*G uncompressed.
Status scalar_and_point(std::span<const uint8_t> c, SecretBn& d, std::span<uint8_t> point) {
  Group group(EC_GROUP_new_by_curve_name(NID_secp384r1));
  BnCtx ctx(BN_CTX_secure_new());
  // c and d are secret: secure heap (when there is one) and cleared on free.
  SecretBn c_bn(BN_secure_new()), n_minus_1(BN_new());
  d.reset(BN_secure_new());
  if (!group || !ctx || !c_bn || !n_minus_1 || !d ||
      !BN_bin2bn(c.data(), static_cast<int>(c.size()), c_bn.get()) ||
      !BN_copy(n_minus_1.get(), EC_GROUP_get0_order(group.get())) ||
      !BN_sub_word(n_minus_1.get(), 1) ||
      !BN_mod(d.get(), c_bn.get(), n_minus_1.get(), ctx.get()) || !BN_add_word(d.get(), 1)) {
    return Status::kCryptoFailure;
  }
  Point pub(EC_POINT_new(group.get()));
  if (!pub || !EC_POINT_mul(group.get(), pub.get(), d.get(), nullptr, nullptr, ctx.get()) ||
      EC_POINT_point2oct(group.get(), pub.get(), POINT_CONVERSION_UNCOMPRESSED, point.data(),
                         point.size(), ctx.get()) != point.size()) {
    return Status::kCryptoFailure;
  }
  return Status::kOk;
}

Status key_from(const BIGNUM* d, std::span<const uint8_t> point, crypto::Pkey& out) {
  ParamBld bld(OSSL_PARAM_BLD_new());
  if (!bld || !OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, "P-384", 0) ||
      !OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_PRIV_KEY, d) ||
      !OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(),
                                        point.size())) {
    return Status::kCryptoFailure;
  }
  // d has BN_FLG_SECURE, so the builder copies it into the secure block,
  // which OSSL_PARAM_free clears.
  Params params(OSSL_PARAM_BLD_to_param(bld.get()));
  PkeyCtx ctx(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
  EVP_PKEY* key = nullptr;
  if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &key, EVP_PKEY_KEYPAIR, params.get()) != 1) {
    return Status::kCryptoFailure;
  }
  out.reset(key);
  return Status::kOk;
}

// The pairwise-consistency test FIPS 140-3 asks of every generated key pair,
// derived ones included.
bool pairwise_consistent(EVP_PKEY* key) {
  static constexpr uint8_t kMessage[] = {'i', 'h', 's', 'm', ' ', 'p', 'c', 't'};
  Bytes signature;
  return ok(crypto::ecdsa_sign_sha384_der(key, kMessage, signature)) &&
         crypto::ecdsa_verify_sha384_der(key, kMessage, signature);
}

}  // namespace

Status derive_p384(std::span<const uint8_t> secret, std::string_view info, crypto::Pkey& out) {
  if (secret.empty()) return Status::kInvalidArgument;
  SecretBytes c(kSeedSize);
  Status s = crypto::hkdf_sha384(secret, {}, as_bytes(info), c);
  if (!ok(s)) return s;
  SecretBn d;
  uint8_t point[kPointSize];
  crypto::Pkey key;
  s = scalar_and_point(c.reveal(), d, point);
  if (ok(s)) s = key_from(d.get(), point, key);
  if (ok(s) && !pairwise_consistent(key.get())) s = Status::kCryptoFailure;
  if (!ok(s)) {
    ERR_clear_error();
    return s;
  }
  out = std::move(key);
  return Status::kOk;
}

Status derive_cdi(std::span<const uint8_t> dus, std::span<const uint8_t> measurement,
                  SecretBytes& cdi) {
  if (dus.size() < kDusMinSize || measurement.size() != kMeasurementSize) {
    return Status::kInvalidArgument;
  }
  SecretBytes out(kCdiSize);
  const Status s = crypto::hkdf_sha384(dus, measurement, as_bytes(kCdiInfo), out);
  if (ok(s)) cdi = std::move(out);
  return s;
}

Status derive_deviceid_key(std::span<const uint8_t> dus, crypto::Pkey& out) {
  if (dus.size() < kDusMinSize) return Status::kInvalidArgument;
  return derive_p384(dus, kDeviceIdInfo, out);
}

Status derive_alias_key(std::span<const uint8_t> cdi, crypto::Pkey& out) {
  if (cdi.size() != kCdiSize) return Status::kInvalidArgument;
  return derive_p384(cdi, kAliasInfo, out);
}

}  // namespace ihsm::device::boot
