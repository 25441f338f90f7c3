// HKDF (RFC 5869) and SP 800-108 counter-mode KBKDF with HMAC, through
// EVP_KDF.
#include <openssl/err.h>

#include "device/crypto/algorithms.h"
#include "device/crypto/ossl_util.h"

namespace ihsm::device::crypto {
Status hkdf(Hash h, HkdfMode mode, std::span<const uint8_t> ikm, std::span<const uint8_t> salt,
            std::span<const uint8_t> info, SecretBytes& out) {
  const char* md = detail::hash_name(h);
  if (md == nullptr) return Status::kMechanismParamInvalid;
  int openssl_mode = 0;
  switch (mode) {
    case HkdfMode::kExtractAndExpand:
      openssl_mode = EVP_KDF_HKDF_MODE_EXTRACT_AND_EXPAND;
      break;
    case HkdfMode::kExtractOnly:
      openssl_mode = EVP_KDF_HKDF_MODE_EXTRACT_ONLY;
      break;
    case HkdfMode::kExpandOnly:
      openssl_mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY;
      break;
    default:
      return Status::kMechanismParamInvalid;
  }
  // RFC 5869: PRK is HashLen bytes; OKM at most 255 * HashLen.
  if (mode == HkdfMode::kExtractOnly ? out.size() != hash_size(h)
                                     : (out.empty() || out.size() > 255 * hash_size(h))) {
    return Status::kInvalidArgument;
  }
  // OpenSSL's HKDF keeps at most 32 KiB of info (HKDF_MAXINFO).
  if (info.size() > 32 * 1024) return Status::kMechanismParamInvalid;

  OSSL_PARAM params[6];
  size_t n = 0;
  params[n++] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, const_cast<char*>(md), 0);
  params[n++] = OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &openssl_mode);
  // kExpandOnly: `ikm` is the PRK.
  params[n++] = detail::octet_param(OSSL_KDF_PARAM_KEY, ikm);
  // An empty salt is the RFC 5869 default (HashLen zero bytes): leave it out.
  if (!salt.empty() && mode != HkdfMode::kExpandOnly) {
    params[n++] = detail::octet_param(OSSL_KDF_PARAM_SALT, salt);
  }
  if (!info.empty() && mode != HkdfMode::kExtractOnly) {
    params[n++] = detail::octet_param(OSSL_KDF_PARAM_INFO, info);
  }
  params[n] = OSSL_PARAM_construct_end();
  SecretBytes result(out.size());
  const Status s = detail::kdf_derive("HKDF", params, result.reveal_mutable());
  if (!ok(s)) return s;
  out = std::move(result);
  return Status::kOk;
}

Status kbkdf_counter_hmac(Hash prf, std::span<const uint8_t> key, std::span<const uint8_t> label,
                          std::span<const uint8_t> context, uint32_t counter_bits, SecretBytes& out,
                          KbkdfLayout layout) {
  if (prf != Hash::kSha256 && prf != Hash::kSha384 && prf != Hash::kSha512) {
    return Status::kMechanismParamInvalid;
  }
  // OpenSSL 3.0's KBKDF always uses a 32-bit counter (the "r" parameter
  // came in 3.1, and 3.0 silently ignores parameters it does not know).
  if (counter_bits != 32) return Status::kMechanismParamInvalid;
  if (key.empty()) return Status::kKeySizeInvalid;
  // [L]_32 is the output length in bits.
  if (out.empty() || out.size() > 0xFFFFFFFFu / 8) return Status::kInvalidArgument;

  char mode[] = "COUNTER";
  char mac[] = "HMAC";
  const char* md = detail::hash_name(prf);
  int use_l = layout.length ? 1 : 0;
  int use_separator = layout.separator ? 1 : 0;
  OSSL_PARAM params[9];
  size_t n = 0;
  params[n++] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_MODE, mode, 0);
  params[n++] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_MAC, mac, 0);
  params[n++] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, const_cast<char*>(md), 0);
  params[n++] = detail::octet_param(OSSL_KDF_PARAM_KEY, key);
  // OpenSSL's names: salt = Label, info = Context. The fixed input data is
  // Label || 0x00 || Context || [L]_32, separator and L as the layout says.
  if (!label.empty()) params[n++] = detail::octet_param(OSSL_KDF_PARAM_SALT, label);
  if (!context.empty()) params[n++] = detail::octet_param(OSSL_KDF_PARAM_INFO, context);
  params[n++] = OSSL_PARAM_construct_int(OSSL_KDF_PARAM_KBKDF_USE_L, &use_l);
  params[n++] = OSSL_PARAM_construct_int(OSSL_KDF_PARAM_KBKDF_USE_SEPARATOR, &use_separator);
  params[n] = OSSL_PARAM_construct_end();
  SecretBytes result(out.size());
  const Status s = detail::kdf_derive("KBKDF", params, result.reveal_mutable());
  if (!ok(s)) return s;
  out = std::move(result);
  return Status::kOk;
}

}  // namespace ihsm::device::crypto
