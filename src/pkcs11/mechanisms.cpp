// The mechanisms the module offers: exactly what the device does
// (docs/mechanisms.md), with PKCS#11's key-size units (bits for RSA, EC
// and generic secrets, bytes for AES). Every one runs in the device
// (CKF_HW).
#include "pkcs11/module.h"

namespace ihsm::pkcs11 {

namespace {

std::vector<MechanismEntry> with_hw(std::vector<MechanismEntry> table) {
  for (auto& e : table) e.flags |= CKF_HW;
  return table;
}

}  // namespace

std::optional<Mechanism> mgf1_hash(CK_RSA_PKCS_MGF_TYPE mgf) {
  switch (mgf) {
    case CKG_MGF1_SHA256:
      return Mechanism::kSha256;
    case CKG_MGF1_SHA384:
      return Mechanism::kSha384;
    case CKG_MGF1_SHA512:
      return Mechanism::kSha512;
    default:
      return std::nullopt;
  }
}

CK_RV read_oaep(const CK_RSA_PKCS_OAEP_PARAMS* p, MechanismParams& out) {
  if (p == nullptr) return CKR_MECHANISM_PARAM_INVALID;
  out.hash = static_cast<Mechanism>(p->hashAlg);
  out.mgf_hash = mgf1_hash(p->mgf);
  if (!out.mgf_hash) return CKR_MECHANISM_PARAM_INVALID;
  if (p->source != 0 && p->source != CKZ_DATA_SPECIFIED) return CKR_MECHANISM_PARAM_INVALID;
  if (p->source == CKZ_DATA_SPECIFIED && p->ulSourceDataLen != 0) {
    if (p->pSourceData == nullptr) return CKR_MECHANISM_PARAM_INVALID;
    const auto* d = static_cast<const uint8_t*>(p->pSourceData);
    out.source_data.assign(d, d + p->ulSourceDataLen);
  }
  return CKR_OK;
}

const std::vector<MechanismEntry>& mechanism_table() {
  constexpr CK_FLAGS kEc = CKF_EC_F_P | CKF_EC_NAMEDCURVE | CKF_EC_UNCOMPRESS;
  constexpr CK_FLAGS kSignVerify = CKF_SIGN | CKF_VERIFY;
  constexpr CK_FLAGS kCipher = CKF_ENCRYPT | CKF_DECRYPT;
  static const std::vector<MechanismEntry> table = with_hw({
      {CKM_RSA_PKCS_KEY_PAIR_GEN, 2048, 4096, CKF_GENERATE_KEY_PAIR},
      // PKCS#1 v1.5 signatures only: its decryption is refused (Bleichenbacher).
      {CKM_RSA_PKCS, 2048, 4096, kSignVerify},
      {CKM_RSA_PKCS_PSS, 2048, 4096, kSignVerify},
      {CKM_SHA256_RSA_PKCS, 2048, 4096, kSignVerify},
      {CKM_SHA384_RSA_PKCS, 2048, 4096, kSignVerify},
      {CKM_SHA512_RSA_PKCS, 2048, 4096, kSignVerify},
      {CKM_SHA256_RSA_PKCS_PSS, 2048, 4096, kSignVerify},
      {CKM_SHA384_RSA_PKCS_PSS, 2048, 4096, kSignVerify},
      {CKM_SHA512_RSA_PKCS_PSS, 2048, 4096, kSignVerify},
      {CKM_RSA_PKCS_OAEP, 2048, 4096, kCipher | CKF_WRAP | CKF_UNWRAP},
      {CKM_RSA_AES_KEY_WRAP, 2048, 4096, CKF_WRAP | CKF_UNWRAP},
      {CKM_SHA256, 0, 0, CKF_DIGEST},
      {CKM_SHA384, 0, 0, CKF_DIGEST},
      {CKM_SHA512, 0, 0, CKF_DIGEST},
      {CKM_SHA256_HMAC, 112, 4096, kSignVerify},
      {CKM_SHA384_HMAC, 112, 4096, kSignVerify},
      {CKM_SHA512_HMAC, 112, 4096, kSignVerify},
      {CKM_GENERIC_SECRET_KEY_GEN, 112, 4096, CKF_GENERATE},
      {CKM_EC_KEY_PAIR_GEN, 256, 521, CKF_GENERATE_KEY_PAIR | kEc},
      {CKM_ECDSA, 256, 521, kSignVerify | kEc},
      {CKM_ECDSA_SHA256, 256, 521, kSignVerify | kEc},
      {CKM_ECDSA_SHA384, 256, 521, kSignVerify | kEc},
      {CKM_ECDSA_SHA512, 256, 521, kSignVerify | kEc},
      {CKM_ECDH1_DERIVE, 255, 521, CKF_DERIVE | kEc},
      {CKM_EC_EDWARDS_KEY_PAIR_GEN, 255, 255, CKF_GENERATE_KEY_PAIR},
      {CKM_EC_MONTGOMERY_KEY_PAIR_GEN, 255, 255, CKF_GENERATE_KEY_PAIR},
      {CKM_EDDSA, 255, 255, kSignVerify},
      {CKM_AES_KEY_GEN, 16, 32, CKF_GENERATE},
      {CKM_AES_CBC, 16, 32, kCipher},
      {CKM_AES_CBC_PAD, 16, 32, kCipher},
      {CKM_AES_CTR, 16, 32, kCipher},
      {CKM_AES_GCM, 16, 32, kCipher},
      {CKM_AES_KEY_WRAP, 16, 32, CKF_WRAP | CKF_UNWRAP},
      {CKM_AES_KEY_WRAP_KWP, 16, 32, CKF_WRAP | CKF_UNWRAP},
      {CKM_HKDF_DERIVE, 112, 4096, CKF_DERIVE},
      {CKM_SP800_108_COUNTER_KDF, 112, 4096, CKF_DERIVE},
      // Vendor: masked blobs out and back in (include/ihsm/pkcs11_ihsm.h).
      {CKM_IHSM_MASKED_KEY, 0, 0, CKF_WRAP | CKF_UNWRAP},
      {CKM_IHSM_KEY_ATTESTATION, 0, 0, CKF_SIGN},
  });
  return table;
}

}  // namespace ihsm::pkcs11
