// C_WrapKey, C_UnwrapKey and C_DeriveKey: PKCS#11 parameters mapped to the
// device's wrap, unwrap and derive commands (docs/mechanisms.md has the
// wrap policy the device applies).
#include <cstring>

#include "pkcs11/module.h"

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
  MechanismParams params;
  if (const CK_RV r = wrap_params(*mech, params); r != CKR_OK) return r;
  // The device wraps afresh each call; a length query wraps too, and the
  // same key wrapped twice gives the same length.
  auto r = s.device->wrap_key(wrapping, key, static_cast<Mechanism>(mech->mechanism), params);
  if (!r) {
    if (r.status() == Status::kNoSuchKey) return CKR_KEY_HANDLE_INVALID;
    return rv(r);
  }
  return give(r.value(), out, out_len);
}

CK_RV unwrap_key(P11Session& s, CK_MECHANISM_PTR mech, CK_OBJECT_HANDLE unwrapping,
                 CK_BYTE_PTR wrapped, CK_ULONG wrapped_len, CK_ATTRIBUTE_PTR tmpl, CK_ULONG count,
                 CK_OBJECT_HANDLE_PTR out) {
  if (mech == nullptr || out == nullptr || (wrapped == nullptr && wrapped_len != 0)) {
    return CKR_ARGUMENTS_BAD;
  }
  if (const CK_RV r = require_logged_in(s); r != CKR_OK) return r;
  MechanismParams params;
  if (const CK_RV r = wrap_params(*mech, params); r != CKR_OK) return r;
  NewKeySpec spec;
  if (const CK_RV r = new_key_spec(tmpl, count, spec, false); r != CKR_OK) return r;
  if (const CK_RV r = check_writable(s, spec.tmpl.token); r != CKR_OK) return r;
  auto r = s.device->unwrap_key(unwrapping, static_cast<Mechanism>(mech->mechanism),
                                Bytes(wrapped, wrapped + wrapped_len), spec, params);
  if (!r) return r.status() == Status::kNoSuchKey ? CKR_UNWRAPPING_KEY_HANDLE_INVALID : rv(r);
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
  *out = r.value();
  return CKR_OK;
}

}  // namespace ihsm::pkcs11
