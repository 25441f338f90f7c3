// C_WrapKey, C_UnwrapKey and C_DeriveKey: PKCS#11 parameters mapped to the
// device's wrap, unwrap and derive commands (docs/mechanisms.md has the
// wrap policy the device applies).
#include <cstring>

#include "pkcs11/module.h"
#include "protocol/fields.h"

namespace ihsm::pkcs11 {
namespace {

// The wrap mechanisms' parameters.
CK_RV wrap_params(const CK_MECHANISM& m, MechanismParams& out) {
  switch (m.mechanism) {
    case CKM_AES_KEY_WRAP:
    case CKM_AES_KEY_WRAP_KWP:
      // The RFC 3394 / 5649 default IVs only.
      return m.ulParameterLen == 0 ? CKR_OK : CKR_MECHANISM_PARAM_INVALID;
    case CKM_RSA_PKCS_OAEP:
      return read_oaep(params_as<CK_RSA_PKCS_OAEP_PARAMS>(m), out);
    case CKM_RSA_AES_KEY_WRAP: {
      const auto* p = params_as<CK_RSA_AES_KEY_WRAP_PARAMS>(m);
      if (p == nullptr) return CKR_MECHANISM_PARAM_INVALID;
      out.aes_key_bits = static_cast<uint32_t>(p->ulAESKeyBits);
      return read_oaep(p->pOAEPParams, out);
    }
    default:
      return CKR_MECHANISM_INVALID;
  }
}

// Whether p[0..n) can be a public value the device takes: an X25519 key,
// or a P-256/384/521 point, uncompressed or compressed.
bool is_public_value(const uint8_t* p, size_t n) {
  if (n == 32) return true;
  if (n == 65 || n == 97 || n == 133) return p[0] == 0x04;
  if (n == 33 || n == 49 || n == 67) return p[0] == 0x02 || p[0] == 0x03;
  return false;
}

// An EC public value: the raw point (or X25519 key), or the same in a
// DER OCTET STRING (PKCS#11 allows both). The DER header is taken off only
// when what it holds is a public value: a raw uncompressed point also
// starts 0x04, and one whose X begins 3F 04 (P-256) would otherwise pass
// for a 63-byte OCTET STRING holding a point, and fail.
Bytes public_value(const uint8_t* p, CK_ULONG n) {
  Bytes v(p, p + n);
  if (n >= 2 && p[0] == 0x04) {
    size_t len = p[1], header = 2;
    if (p[1] == 0x81 && n >= 3) {
      len = p[2];
      header = 3;
    }
    if (header + len == n && is_public_value(p + header, len)) return Bytes(p + header, p + n);
  }
  return v;
}

std::optional<Mechanism> hmac_hash(CK_MECHANISM_TYPE prf) {
  switch (prf) {
    case CKM_SHA256_HMAC:
      return Mechanism::kSha256;
    case CKM_SHA384_HMAC:
      return Mechanism::kSha384;
    case CKM_SHA512_HMAC:
      return Mechanism::kSha512;
    default:
      return std::nullopt;
  }
}

// SP 800-108 counter mode as the device runs it: a 32-bit big-endian
// counter first, then the caller's byte arrays as one fixed input, then
// optionally [L]_32 big-endian as the sum of the key's bits. Any other
// layout (counter elsewhere or of another width, little-endian fields,
// additional keys) is refused rather than computed differently.
CK_RV read_kbkdf(const CK_SP800_108_KDF_PARAMS* p, MechanismParams& out) {
  if (p == nullptr || p->ulAdditionalDerivedKeys != 0 || p->ulNumberOfDataParams == 0 ||
      p->pDataParams == nullptr || p->ulNumberOfDataParams > 64) {
    return CKR_MECHANISM_PARAM_INVALID;
  }
  out.prf_hash = hmac_hash(p->prfType);
  if (!out.prf_hash) return CKR_MECHANISM_PARAM_INVALID;
  const CK_PRF_DATA_PARAM* data = p->pDataParams;
  const CK_ULONG n = p->ulNumberOfDataParams;
  const auto* counter = data[0].type == CK_SP800_108_ITERATION_VARIABLE &&
                                data[0].ulValueLen == sizeof(CK_SP800_108_COUNTER_FORMAT)
                            ? static_cast<const CK_SP800_108_COUNTER_FORMAT*>(data[0].pValue)
                            : nullptr;
  if (counter == nullptr || counter->bLittleEndian || counter->ulWidthInBits != 32) {
    return CKR_MECHANISM_PARAM_INVALID;
  }
  out.kdf_counter_bits = 32;
  out.kdf_separator = false;
  out.kdf_length = false;
  for (CK_ULONG i = 1; i < n; ++i) {
    const CK_PRF_DATA_PARAM& d = data[i];
    if (d.type == CK_SP800_108_BYTE_ARRAY) {
      if (d.pValue == nullptr && d.ulValueLen != 0) return CKR_MECHANISM_PARAM_INVALID;
      if (d.ulValueLen > protocol::kMaxKdfInput - out.kdf_label.size()) {
        return CKR_MECHANISM_PARAM_INVALID;
      }
      const auto* b = static_cast<const uint8_t*>(d.pValue);
      out.kdf_label.insert(out.kdf_label.end(), b, b + d.ulValueLen);
      continue;
    }
    const auto* length =
        d.type == CK_SP800_108_DKM_LENGTH && d.ulValueLen == sizeof(CK_SP800_108_DKM_LENGTH_FORMAT)
            ? static_cast<const CK_SP800_108_DKM_LENGTH_FORMAT*>(d.pValue)
            : nullptr;
    if (length == nullptr || i != n - 1 || length->bLittleEndian || length->ulWidthInBits != 32 ||
        length->dkmLengthMethod != CK_SP800_108_DKM_LENGTH_SUM_OF_KEYS) {
      return CKR_MECHANISM_PARAM_INVALID;
    }
    out.kdf_length = true;
  }
  return CKR_OK;
}

CK_RV derive_params(P11Session& s, const CK_MECHANISM& m, MechanismParams& out) {
  switch (m.mechanism) {
    case CKM_ECDH1_DERIVE: {
      const auto* p = params_as<CK_ECDH1_DERIVE_PARAMS>(m);
      // The shared secret becomes the key; no KDF on it here (use HKDF next).
      if (p == nullptr || p->kdf != CKD_NULL || p->ulSharedDataLen != 0 ||
          p->pPublicData == nullptr || p->ulPublicDataLen == 0) {
        return CKR_MECHANISM_PARAM_INVALID;
      }
      out.peer_public = public_value(p->pPublicData, p->ulPublicDataLen);
      return CKR_OK;
    }
    case CKM_HKDF_DERIVE: {
      const auto* p = params_as<CK_HKDF_PARAMS>(m);
      if (p == nullptr || (!p->bExtract && !p->bExpand)) return CKR_MECHANISM_PARAM_INVALID;
      out.hash = static_cast<Mechanism>(p->prfHashMechanism);
      out.hkdf_mode = p->bExtract && p->bExpand ? 1u : (p->bExtract ? 2u : 3u);
      if (p->ulSaltType == CKF_HKDF_SALT_DATA) {
        if (p->pSalt == nullptr && p->ulSaltLen != 0) return CKR_MECHANISM_PARAM_INVALID;
        if (p->ulSaltLen != 0) out.salt.assign(p->pSalt, p->pSalt + p->ulSaltLen);
      } else if (p->ulSaltType != CKF_HKDF_SALT_NULL && p->bExtract) {
        // A salt held as a key would have to leave the device to be used here.
        return CKR_MECHANISM_PARAM_INVALID;
      }
      if (p->pInfo == nullptr && p->ulInfoLen != 0) return CKR_MECHANISM_PARAM_INVALID;
      if (p->ulInfoLen != 0) out.info.assign(p->pInfo, p->pInfo + p->ulInfoLen);
      (void)s;
      return CKR_OK;
    }
    case CKM_SP800_108_COUNTER_KDF:
      return read_kbkdf(params_as<CK_SP800_108_KDF_PARAMS>(m), out);
    default:
      return CKR_MECHANISM_INVALID;
  }
}

CK_RV new_key_spec(CK_ATTRIBUTE_PTR tmpl, CK_ULONG count, NewKeySpec& spec, bool need_value_len) {
  KeyExtras x;
  if (const CK_RV r = read_key_template(tmpl, count, spec.tmpl, x); r != CKR_OK) return r;
  if (!x.object_class || !x.key_type) return CKR_TEMPLATE_INCOMPLETE;
  spec.object_class = static_cast<ObjectClass>(*x.object_class);
  spec.key_type = static_cast<KeyType>(*x.key_type);
  if (x.value_len) {
    spec.value_length = static_cast<uint32_t>(*x.value_len);
  } else if (need_value_len) {
    // AES keys may leave it out when their size is clear from the kind.
    if (spec.key_type != KeyType::kAes) return CKR_TEMPLATE_INCOMPLETE;
  }
  return CKR_OK;
}

}  // namespace

CK_RV wrap_key(P11Session& s, CK_MECHANISM_PTR mech, CK_OBJECT_HANDLE wrapping,
               CK_OBJECT_HANDLE key, CK_BYTE_PTR out, CK_ULONG_PTR out_len) {
  if (mech == nullptr || out_len == nullptr) return CKR_ARGUMENTS_BAD;
  if (const CK_RV r = require_logged_in(s); r != CKR_OK) return r;
  if (mech->mechanism == CKM_IHSM_MASKED_KEY) {
    if (mech->ulParameterLen != 0) return CKR_MECHANISM_PARAM_INVALID;
    if (wrapping != CK_INVALID_HANDLE) return CKR_WRAPPING_KEY_HANDLE_INVALID;
    auto blob = s.device->export_masked_key(key);
    if (!blob) return blob.status() == Status::kNoSuchKey ? CKR_KEY_HANDLE_INVALID : rv(blob);
    record_approval(s);
    return give(blob.value(), out, out_len);
  }
  MechanismParams params;
  if (const CK_RV r = wrap_params(*mech, params); r != CKR_OK) return r;
  // The device wraps afresh each call; a length query wraps too, and the
  // same key wrapped twice gives the same length.
  auto r = s.device->wrap_key(wrapping, key, static_cast<Mechanism>(mech->mechanism), params);
  if (!r) {
    if (r.status() == Status::kNoSuchKey) return CKR_KEY_HANDLE_INVALID;
    return rv(r);
  }
  record_approval(s);
  return give(r.value(), out, out_len);
}

CK_RV unwrap_key(P11Session& s, CK_MECHANISM_PTR mech, CK_OBJECT_HANDLE unwrapping,
                 CK_BYTE_PTR wrapped, CK_ULONG wrapped_len, CK_ATTRIBUTE_PTR tmpl, CK_ULONG count,
                 CK_OBJECT_HANDLE_PTR out) {
  if (mech == nullptr || out == nullptr || (wrapped == nullptr && wrapped_len != 0)) {
    return CKR_ARGUMENTS_BAD;
  }
  if (const CK_RV r = require_logged_in(s); r != CKR_OK) return r;
  if (mech->mechanism == CKM_IHSM_MASKED_KEY) {
    // The blob carries the object's attributes, bound in by its tag.
    if (mech->ulParameterLen != 0) return CKR_MECHANISM_PARAM_INVALID;
    if (unwrapping != CK_INVALID_HANDLE) return CKR_UNWRAPPING_KEY_HANDLE_INVALID;
    if (count != 0) return CKR_TEMPLATE_INCONSISTENT;
    auto r = s.device->load_masked_key(Bytes(wrapped, wrapped + wrapped_len));
    if (!r) return rv(r);
    record_approval(s);
    *out = r.value();
    return CKR_OK;
  }
  MechanismParams params;
  if (const CK_RV r = wrap_params(*mech, params); r != CKR_OK) return r;
  NewKeySpec spec;
  if (const CK_RV r = new_key_spec(tmpl, count, spec, false); r != CKR_OK) return r;
  if (const CK_RV r = check_writable(s, spec.tmpl.token); r != CKR_OK) return r;
  auto r = s.device->unwrap_key(unwrapping, static_cast<Mechanism>(mech->mechanism),
                                Bytes(wrapped, wrapped + wrapped_len), spec, params);
  if (!r) return r.status() == Status::kNoSuchKey ? CKR_UNWRAPPING_KEY_HANDLE_INVALID : rv(r);
  record_approval(s);
  *out = r.value();
  return CKR_OK;
}

CK_RV derive_key(P11Session& s, CK_MECHANISM_PTR mech, CK_OBJECT_HANDLE base, CK_ATTRIBUTE_PTR tmpl,
                 CK_ULONG count, CK_OBJECT_HANDLE_PTR out) {
  if (mech == nullptr || out == nullptr) return CKR_ARGUMENTS_BAD;
  if (const CK_RV r = require_logged_in(s); r != CKR_OK) return r;
  MechanismParams params;
  if (const CK_RV r = derive_params(s, *mech, params); r != CKR_OK) return r;
  NewKeySpec spec;
  if (const CK_RV r = new_key_spec(tmpl, count, spec, true); r != CKR_OK) return r;
  if (const CK_RV r = check_writable(s, spec.tmpl.token); r != CKR_OK) return r;
  auto r = s.device->derive_key(base, static_cast<Mechanism>(mech->mechanism), params, spec);
  if (!r) return r.status() == Status::kNoSuchKey ? CKR_KEY_HANDLE_INVALID : rv(r);
  record_approval(s);
  *out = r.value();
  return CKR_OK;
}

}  // namespace ihsm::pkcs11
