// Objects through PKCS#11: attributes computed from what the device
// reports (key info, public key, certificate value), templates turned into
// device key templates, find, create, destroy, key generation.
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <cstring>
#include <memory>

#include "pkcs11/module.h"

namespace ihsm::pkcs11 {
namespace {

Bytes ulong_bytes(CK_ULONG v) {
  Bytes b(sizeof v);
  std::memcpy(b.data(), &v, sizeof v);
  return b;
}
Bytes bool_bytes(bool v) { return Bytes{static_cast<uint8_t>(v ? CK_TRUE : CK_FALSE)}; }

// DER OIDs of the named curves (CKA_EC_PARAMS).
const Bytes kOidP256 = {0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07};
const Bytes kOidP384 = {0x06, 0x05, 0x2B, 0x81, 0x04, 0x00, 0x22};
const Bytes kOidP521 = {0x06, 0x05, 0x2B, 0x81, 0x04, 0x00, 0x23};
const Bytes kOidEd25519 = {0x06, 0x03, 0x2B, 0x65, 0x70};
const Bytes kOidX25519 = {0x06, 0x03, 0x2B, 0x65, 0x6E};
// PKCS#11 3.0 also names Edwards and Montgomery curves by printable string.
const Bytes kNameEd25519 = {0x13, 0x0C, 'e', 'd', 'w', 'a', 'r', 'd', 's', '2', '5', '5', '1', '9'};
const Bytes kNameX25519 = {0x13, 0x0A, 'c', 'u', 'r', 'v', 'e', '2', '5', '5', '1', '9'};

std::optional<Bytes> curve_oid(Curve c) {
  switch (c) {
    case Curve::kP256:
      return kOidP256;
    case Curve::kP384:
      return kOidP384;
    case Curve::kP521:
      return kOidP521;
    case Curve::kEd25519:
      return kOidEd25519;
    case Curve::kX25519:
      return kOidX25519;
  }
  return std::nullopt;
}

std::optional<Curve> curve_from_params(const Bytes& der) {
  if (der == kOidP256) return Curve::kP256;
  if (der == kOidP384) return Curve::kP384;
  if (der == kOidP521) return Curve::kP521;
  if (der == kOidEd25519 || der == kNameEd25519) return Curve::kEd25519;
  if (der == kOidX25519 || der == kNameX25519) return Curve::kX25519;
  return std::nullopt;
}

// DER OCTET STRING around `content` (CKA_EC_POINT).
Bytes der_octet_string(const Bytes& content) {
  Bytes out{0x04};
  const size_t n = content.size();
  if (n < 0x80) {
    out.push_back(static_cast<uint8_t>(n));
  } else if (n < 0x100) {
    out.push_back(0x81);
    out.push_back(static_cast<uint8_t>(n));
  } else {
    out.push_back(0x82);
    out.push_back(static_cast<uint8_t>(n >> 8));
    out.push_back(static_cast<uint8_t>(n));
  }
  out.insert(out.end(), content.begin(), content.end());
  return out;
}

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;

Pkey parse_spki(const Bytes& spki) {
  const unsigned char* p = spki.data();
  return Pkey(d2i_PUBKEY(nullptr, &p, static_cast<long>(spki.size())));
}

std::optional<Bytes> bn_param(EVP_PKEY* key, const char* name) {
  BIGNUM* bn = nullptr;
  if (EVP_PKEY_get_bn_param(key, name, &bn) != 1) return std::nullopt;
  Bytes out(static_cast<size_t>(BN_num_bytes(bn)));
  BN_bn2bin(bn, out.data());
  BN_free(bn);
  return out;
}

// The public key bytes inside a SubjectPublicKeyInfo (an EC point, or an
// Ed25519/X25519 key), read from the structure: no key object is built,
// whose methods an application's ENGINE may have replaced.
std::optional<Bytes> spki_public_bytes(const Bytes& spki) {
  const unsigned char* p = spki.data();
  std::unique_ptr<X509_PUBKEY, decltype(&X509_PUBKEY_free)> pub(
      d2i_X509_PUBKEY(nullptr, &p, static_cast<long>(spki.size())), &X509_PUBKEY_free);
  const unsigned char* bytes = nullptr;
  int len = 0;
  if (!pub || X509_PUBKEY_get0_param(nullptr, &bytes, &len, nullptr, pub.get()) != 1 || len <= 0) {
    return std::nullopt;
  }
  return Bytes(bytes, bytes + len);
}

// The certificate fields PKCS#11 lists beside the value.
std::optional<Bytes> certificate_field(const Bytes& der, CK_ATTRIBUTE_TYPE type) {
  const unsigned char* p = der.data();
  X509* cert = d2i_X509(nullptr, &p, static_cast<long>(der.size()));
  if (cert == nullptr) return Bytes{};
  unsigned char* out = nullptr;
  int len = -1;
  if (type == CKA_SUBJECT) len = i2d_X509_NAME(X509_get_subject_name(cert), &out);
  if (type == CKA_ISSUER) len = i2d_X509_NAME(X509_get_issuer_name(cert), &out);
  if (type == CKA_SERIAL_NUMBER) len = i2d_ASN1_INTEGER(X509_get_serialNumber(cert), &out);
  X509_free(cert);
  if (len < 0) return Bytes{};
  Bytes b(out, out + len);
  OPENSSL_free(out);
  return b;
}

bool is_key(ObjectClass c) {
  return c == ObjectClass::kPublicKey || c == ObjectClass::kPrivateKey ||
         c == ObjectClass::kSecretKey;
}

CK_MECHANISM_TYPE keygen_mechanism(KeyType t) {
  switch (t) {
    case KeyType::kRsa:
      return CKM_RSA_PKCS_KEY_PAIR_GEN;
    case KeyType::kEc:
      return CKM_EC_KEY_PAIR_GEN;
    case KeyType::kAes:
      return CKM_AES_KEY_GEN;
    case KeyType::kGenericSecret:
      return CKM_GENERIC_SECRET_KEY_GEN;
    case KeyType::kEcEdwards:
      return CKM_EC_EDWARDS_KEY_PAIR_GEN;
    case KeyType::kEcMontgomery:
      return CKM_EC_MONTGOMERY_KEY_PAIR_GEN;
  }
  return CK_UNAVAILABLE_INFORMATION;
}

// One object while its attributes are read: what FindKeys reported, plus
// the public key or value, fetched once and only if asked for.
class ObjectView {
 public:
  ObjectView(Session& device, KeyInfo info) : device_(device), info_(std::move(info)) {}
  const KeyInfo& info() const { return info_; }

  // CKR_OK, CKR_ATTRIBUTE_SENSITIVE or CKR_ATTRIBUTE_TYPE_INVALID.
  CK_RV get(CK_ATTRIBUTE_TYPE type, Bytes& out) {
    const ObjectClass c = info_.object_class;
    const uint32_t f = info_.flags;
    auto flag = [&](uint32_t bit) {
      out = bool_bytes((f & bit) != 0);
      return CKR_OK;
    };
    switch (type) {
      case CKA_CLASS:
        out = ulong_bytes(static_cast<CK_ULONG>(c));
        return CKR_OK;
      case CKA_TOKEN:
        out = bool_bytes(info_.token);
        return CKR_OK;
      case CKA_PRIVATE:
        out = bool_bytes(c == ObjectClass::kPrivateKey || c == ObjectClass::kSecretKey);
        return CKR_OK;
      case CKA_MODIFIABLE:
        return flag(usage::kModifiable);
      case CKA_DESTROYABLE:
        return flag(usage::kDestroyable);
      case CKA_COPYABLE:
        out = bool_bytes(copyable(info_));
        return CKR_OK;
      case CKA_LABEL:
        out.assign(info_.label.begin(), info_.label.end());
        return CKR_OK;
      default:
        break;
    }
    if (c == ObjectClass::kData) return data_attribute(type, out);
    if (c == ObjectClass::kCertificate) return certificate_attribute(type, out);
    return key_attribute(type, out);
  }

 private:
  CK_RV data_attribute(CK_ATTRIBUTE_TYPE type, Bytes& out) {
    switch (type) {
      case CKA_APPLICATION:
        out.assign(info_.application.begin(), info_.application.end());
        return CKR_OK;
      case CKA_OBJECT_ID:
        out.clear();
        return CKR_OK;
      case CKA_ID:
        out = info_.id;
        return CKR_OK;
      case CKA_VALUE:
        return value(out);
      default:
        return CKR_ATTRIBUTE_TYPE_INVALID;
    }
  }

  CK_RV certificate_attribute(CK_ATTRIBUTE_TYPE type, Bytes& out) {
    switch (type) {
      case CKA_ID:
        out = info_.id;
        return CKR_OK;
      case CKA_CERTIFICATE_TYPE:
        out = ulong_bytes(info_.certificate_type);
        return CKR_OK;
      case CKA_CERTIFICATE_CATEGORY:
        out = ulong_bytes(0);
        return CKR_OK;
      case CKA_TRUSTED:
        out = bool_bytes(false);
        return CKR_OK;
      case CKA_VALUE:
        return value(out);
      case CKA_SUBJECT:
      case CKA_ISSUER:
      case CKA_SERIAL_NUMBER: {
        Bytes v;
        if (const CK_RV r = value(v); r != CKR_OK) return r;
        out = certificate_field(v, type).value_or(Bytes{});
        return CKR_OK;
      }
      case CKA_START_DATE:
      case CKA_END_DATE:
      case CKA_URL:
      case CKA_HASH_OF_SUBJECT_PUBLIC_KEY:
      case CKA_HASH_OF_ISSUER_PUBLIC_KEY:
        out.clear();
        return CKR_OK;
      default:
        return CKR_ATTRIBUTE_TYPE_INVALID;
    }
  }

  CK_RV key_attribute(CK_ATTRIBUTE_TYPE type, Bytes& out) {
    const ObjectClass c = info_.object_class;
    const bool pub = c == ObjectClass::kPublicKey;
    const bool secret = c == ObjectClass::kSecretKey;
    const uint32_t f = info_.flags;
    auto flag = [&](uint32_t bit) {
      out = bool_bytes((f & bit) != 0);
      return CKR_OK;
    };
    switch (type) {
      case CKA_ID:
        out = info_.id;
        return CKR_OK;
      case CKA_KEY_TYPE:
        out = ulong_bytes(static_cast<CK_ULONG>(info_.key_type));
        return CKR_OK;
      case CKA_LOCAL:
        out = bool_bytes(info_.local);
        return CKR_OK;
      case CKA_KEY_GEN_MECHANISM:
        out = ulong_bytes(info_.local ? keygen_mechanism(info_.key_type)
                                      : CK_UNAVAILABLE_INFORMATION);
        return CKR_OK;
      case CKA_START_DATE:
      case CKA_END_DATE:
      case CKA_SUBJECT:
        out.clear();
        return CKR_OK;
      case CKA_DERIVE:
        return flag(usage::kDerive);
      case CKA_ALLOWED_MECHANISMS: {
        out.clear();
        for (const Mechanism m : info_.allowed_mechanisms) {
          const Bytes b = ulong_bytes(static_cast<CK_ULONG>(m));
          out.insert(out.end(), b.begin(), b.end());
        }
        return CKR_OK;
      }
      case CKA_ENCRYPT:
        return pub || secret ? flag(usage::kEncrypt) : CKR_ATTRIBUTE_TYPE_INVALID;
      case CKA_VERIFY:
        return pub || secret ? flag(usage::kVerify) : CKR_ATTRIBUTE_TYPE_INVALID;
      case CKA_WRAP:
        return pub || secret ? flag(usage::kWrap) : CKR_ATTRIBUTE_TYPE_INVALID;
      case CKA_TRUSTED:
        return pub || secret ? flag(usage::kTrusted) : CKR_ATTRIBUTE_TYPE_INVALID;
      case CKA_VERIFY_RECOVER:
        return pub ? (out = bool_bytes(false), CKR_OK) : CKR_ATTRIBUTE_TYPE_INVALID;
      case CKA_DECRYPT:
        return !pub ? flag(usage::kDecrypt) : CKR_ATTRIBUTE_TYPE_INVALID;
      case CKA_SIGN:
        return !pub ? flag(usage::kSign) : CKR_ATTRIBUTE_TYPE_INVALID;
      case CKA_UNWRAP:
        return !pub ? flag(usage::kUnwrap) : CKR_ATTRIBUTE_TYPE_INVALID;
      case CKA_SENSITIVE:
        return !pub ? flag(usage::kSensitive) : CKR_ATTRIBUTE_TYPE_INVALID;
      case CKA_EXTRACTABLE:
        return !pub ? flag(usage::kExtractable) : CKR_ATTRIBUTE_TYPE_INVALID;
      case CKA_ALWAYS_SENSITIVE:
        return !pub ? flag(usage::kAlwaysSensitive) : CKR_ATTRIBUTE_TYPE_INVALID;
      case CKA_NEVER_EXTRACTABLE:
        return !pub ? flag(usage::kNeverExtractable) : CKR_ATTRIBUTE_TYPE_INVALID;
      case CKA_WRAP_WITH_TRUSTED:
        return !pub ? flag(usage::kWrapWithTrusted) : CKR_ATTRIBUTE_TYPE_INVALID;
      case CKA_SIGN_RECOVER:
      case CKA_ALWAYS_AUTHENTICATE:
        return !pub && !secret ? (out = bool_bytes(false), CKR_OK) : CKR_ATTRIBUTE_TYPE_INVALID;
      case CKA_VALUE_LEN:
        return secret ? (out = ulong_bytes(info_.key_bits / 8), CKR_OK)
                      : CKR_ATTRIBUTE_TYPE_INVALID;
      case CKA_VALUE:
        // A key's value never leaves the device in clear.
        if (secret || c == ObjectClass::kPrivateKey) return CKR_ATTRIBUTE_SENSITIVE;
        return CKR_ATTRIBUTE_TYPE_INVALID;
      case CKA_PRIVATE_EXPONENT:
      case CKA_PRIME_1:
      case CKA_PRIME_2:
      case CKA_EXPONENT_1:
      case CKA_EXPONENT_2:
      case CKA_COEFFICIENT:
        if (c == ObjectClass::kPrivateKey && info_.key_type == KeyType::kRsa) {
          return CKR_ATTRIBUTE_SENSITIVE;
        }
        return CKR_ATTRIBUTE_TYPE_INVALID;
      case CKA_PUBLIC_KEY_INFO:
        if (secret) return CKR_ATTRIBUTE_TYPE_INVALID;
        return spki(out);
      case CKA_EC_PARAMS:
        if (secret || !info_.curve) return CKR_ATTRIBUTE_TYPE_INVALID;
        out = curve_oid(*info_.curve).value_or(Bytes{});
        return CKR_OK;
      case CKA_EC_POINT: {
        // Also on private keys (as OpenSC's tokens do): libp11 and others
        // read the point there to build the key's public half.
        if (secret || !info_.curve) return CKR_ATTRIBUTE_TYPE_INVALID;
        Bytes s;
        if (const CK_RV r = spki(s); r != CKR_OK) return r;
        auto point = spki_public_bytes(s);
        if (!point) return CKR_DEVICE_ERROR;
        out = der_octet_string(*point);
        return CKR_OK;
      }
      case CKA_MODULUS:
      case CKA_PUBLIC_EXPONENT:
      case CKA_MODULUS_BITS: {
        if (secret || info_.key_type != KeyType::kRsa) return CKR_ATTRIBUTE_TYPE_INVALID;
        if (type == CKA_MODULUS_BITS) {
          if (!pub) return CKR_ATTRIBUTE_TYPE_INVALID;
          out = ulong_bytes(info_.key_bits);
          return CKR_OK;
        }
        Bytes s;
        if (const CK_RV r = spki(s); r != CKR_OK) return r;
        Pkey key = parse_spki(s);
        auto v = key ? bn_param(key.get(),
                                type == CKA_MODULUS ? OSSL_PKEY_PARAM_RSA_N : OSSL_PKEY_PARAM_RSA_E)
                     : std::nullopt;
        if (!v) return CKR_DEVICE_ERROR;
        out = *v;
        return CKR_OK;
      }
      default:
        return CKR_ATTRIBUTE_TYPE_INVALID;
    }
  }

  CK_RV spki(Bytes& out) {
    if (!spki_) {
      auto r = device_.public_key(info_.handle);
      if (!r) return rv(r);
      spki_ = std::move(r).value();
    }
    out = *spki_;
    return CKR_OK;
  }

  CK_RV value(Bytes& out) {
    if (!value_) {
      auto r = device_.object_value(info_.handle);
      if (!r) return rv(r);
      value_ = std::move(r).value();
    }
    out = *value_;
    return CKR_OK;
  }

  Session& device_;
  KeyInfo info_;
  std::optional<Bytes> spki_, value_;
};

}  // namespace

CK_RV require_logged_in(P11Session& s) {
  std::lock_guard lock(s.token->mutex);
  return s.token->role == Role::kPublic ? CKR_USER_NOT_LOGGED_IN : CKR_OK;
}

namespace {

bool attribute_bool(const CK_ATTRIBUTE& a, bool& out) {
  if (a.pValue == nullptr || a.ulValueLen != sizeof(CK_BBOOL)) return false;
  out = *static_cast<const CK_BBOOL*>(a.pValue) != CK_FALSE;
  return true;
}
bool attribute_ulong(const CK_ATTRIBUTE& a, CK_ULONG& out) {
  if (a.pValue == nullptr || a.ulValueLen != sizeof(CK_ULONG)) return false;
  std::memcpy(&out, a.pValue, sizeof out);
  return true;
}
Bytes attribute_bytes(const CK_ATTRIBUTE& a) {
  if (a.pValue == nullptr || a.ulValueLen == 0) return {};
  const auto* p = static_cast<const uint8_t*>(a.pValue);
  return Bytes(p, p + a.ulValueLen);
}

}  // namespace

// PKCS#11 template -> device key template. Unknown attributes are
// CKR_ATTRIBUTE_TYPE_INVALID; a few harmless ones are accepted and dropped.
CK_RV read_key_template(CK_ATTRIBUTE_PTR tmpl, CK_ULONG count, KeyTemplate& t, KeyExtras& x) {
  if (count > 0 && tmpl == nullptr) return CKR_ARGUMENTS_BAD;
  for (CK_ULONG i = 0; i < count; ++i) {
    const CK_ATTRIBUTE& a = tmpl[i];
    if (a.pValue == nullptr && a.ulValueLen != 0) return CKR_ATTRIBUTE_VALUE_INVALID;
    bool b = false;
    CK_ULONG u = 0;
    auto set_flag = [&](uint32_t bit) {
      if (!attribute_bool(a, b)) return CKR_ATTRIBUTE_VALUE_INVALID;
      t.set(bit, b);
      return CKR_OK;
    };
    CK_RV r = CKR_OK;
    switch (a.type) {
      case CKA_TOKEN:
        if (!attribute_bool(a, t.token)) return CKR_ATTRIBUTE_VALUE_INVALID;
        break;
      case CKA_LABEL:
        if (a.ulValueLen > 128) return CKR_ATTRIBUTE_VALUE_INVALID;
        t.label.assign(static_cast<const char*>(a.pValue), a.ulValueLen);
        break;
      case CKA_ID:
        if (a.ulValueLen > 64) return CKR_ATTRIBUTE_VALUE_INVALID;
        t.id = attribute_bytes(a);
        break;
      case CKA_SIGN:
        r = set_flag(usage::kSign);
        break;
      case CKA_VERIFY:
        r = set_flag(usage::kVerify);
        break;
      case CKA_ENCRYPT:
        r = set_flag(usage::kEncrypt);
        break;
      case CKA_DECRYPT:
        r = set_flag(usage::kDecrypt);
        break;
      case CKA_DERIVE:
        r = set_flag(usage::kDerive);
        break;
      case CKA_WRAP:
        r = set_flag(usage::kWrap);
        break;
      case CKA_UNWRAP:
        r = set_flag(usage::kUnwrap);
        break;
      case CKA_SENSITIVE:
        r = set_flag(usage::kSensitive);
        break;
      case CKA_EXTRACTABLE:
        r = set_flag(usage::kExtractable);
        break;
      case CKA_MODIFIABLE:
        r = set_flag(usage::kModifiable);
        break;
      case CKA_DESTROYABLE:
        r = set_flag(usage::kDestroyable);
        break;
      case CKA_WRAP_WITH_TRUSTED:
        r = set_flag(usage::kWrapWithTrusted);
        break;
      case CKA_ALLOWED_MECHANISMS: {
        if (a.ulValueLen % sizeof(CK_ULONG) != 0) return CKR_ATTRIBUTE_VALUE_INVALID;
        const size_t n = a.ulValueLen / sizeof(CK_ULONG);
        for (size_t k = 0; k < n; ++k) {
          CK_ULONG m = 0;
          std::memcpy(&m, static_cast<const uint8_t*>(a.pValue) + k * sizeof m, sizeof m);
          t.allowed_mechanisms.push_back(static_cast<Mechanism>(m));
        }
        break;
      }
      case CKA_VALUE_LEN:
        if (!attribute_ulong(a, u)) return CKR_ATTRIBUTE_VALUE_INVALID;
        x.value_len = u;
        break;
      case CKA_MODULUS_BITS:
        if (!attribute_ulong(a, u)) return CKR_ATTRIBUTE_VALUE_INVALID;
        x.modulus_bits = u;
        break;
      case CKA_PUBLIC_EXPONENT: {
        // The device uses F4; a template may only say so.
        Bytes e = attribute_bytes(a);
        while (!e.empty() && e.front() == 0) e.erase(e.begin());
        if (e != Bytes{0x01, 0x00, 0x01}) return CKR_ATTRIBUTE_VALUE_INVALID;
        break;
      }
      case CKA_EC_PARAMS:
        x.curve = curve_from_params(attribute_bytes(a));
        if (!x.curve) return CKR_CURVE_NOT_SUPPORTED;
        break;
      case CKA_CLASS:
        if (!attribute_ulong(a, u)) return CKR_ATTRIBUTE_VALUE_INVALID;
        x.object_class = u;
        break;
      case CKA_KEY_TYPE:
        if (!attribute_ulong(a, u)) return CKR_ATTRIBUTE_VALUE_INVALID;
        x.key_type = u;
        break;
      case CKA_PRIVATE:
      case CKA_SUBJECT:
      case CKA_START_DATE:
      case CKA_END_DATE:
      case CKA_SIGN_RECOVER:
      case CKA_VERIFY_RECOVER:
        // Accepted: PKCS#11 tools send them; the device keeps no such
        // attribute (every key object needs a login; no recovery mechanisms).
        if (a.type == CKA_SIGN_RECOVER || a.type == CKA_VERIFY_RECOVER) {
          if (attribute_bool(a, b) && b) return CKR_ATTRIBUTE_VALUE_INVALID;
        }
        break;
      default:
        return CKR_ATTRIBUTE_TYPE_INVALID;
    }
    if (r != CKR_OK) return r;
  }
  return CKR_OK;
}

CK_RV check_writable(P11Session& s, bool token_object) {
  if (token_object && (s.flags & CKF_RW_SESSION) == 0) return CKR_SESSION_READ_ONLY;
  return CKR_OK;
}

namespace {

bool matches(ObjectView& view, const CK_ATTRIBUTE& a) {
  Bytes have;
  if (view.get(a.type, have) != CKR_OK) return false;
  return have == attribute_bytes(a);
}

Result<KeyInfo> info_of(P11Session& s, CK_OBJECT_HANDLE h) { return s.device->key_info(h); }

}  // namespace

CK_RV give(const Bytes& value, CK_BYTE_PTR out, CK_ULONG_PTR out_len) {
  if (out_len == nullptr) return CKR_ARGUMENTS_BAD;
  if (out == nullptr) {
    *out_len = value.size();
    return CKR_OK;
  }
  if (*out_len < value.size()) {
    *out_len = value.size();
    return CKR_BUFFER_TOO_SMALL;
  }
  if (!value.empty()) std::memcpy(out, value.data(), value.size());
  *out_len = value.size();
  return CKR_OK;
}

CK_RV find_init(P11Session& s, CK_ATTRIBUTE_PTR tmpl, CK_ULONG count) {
  if (count > 0 && tmpl == nullptr) return CKR_ARGUMENTS_BAD;
  if (s.finding) return CKR_OPERATION_ACTIVE;
  s.found.clear();
  s.found_next = 0;
  s.finding = true;
  // Without a login the device shows no objects (each needs a logged-in
  // role); PKCS#11 callers then simply find nothing.
  if (require_logged_in(s) != CKR_OK) return CKR_OK;
  KeyQuery q;
  std::vector<const CK_ATTRIBUTE*> rest;
  for (CK_ULONG i = 0; i < count; ++i) {
    const CK_ATTRIBUTE& a = tmpl[i];
    if (a.pValue == nullptr && a.ulValueLen != 0) {
      s.finding = false;
      return CKR_ATTRIBUTE_VALUE_INVALID;
    }
    CK_ULONG u = 0;
    if (a.type == CKA_CLASS && attribute_ulong(a, u)) {
      q.object_class = static_cast<ObjectClass>(u);
    } else if (a.type == CKA_LABEL && a.ulValueLen <= 128) {
      q.label = std::string(static_cast<const char*>(a.pValue), a.ulValueLen);
    } else if (a.type == CKA_ID && a.ulValueLen <= 64) {
      q.id = attribute_bytes(a);
    } else {
      rest.push_back(&a);
    }
  }
  if (q.object_class && *q.object_class != ObjectClass::kData &&
      *q.object_class != ObjectClass::kCertificate && !is_key(*q.object_class)) {
    return CKR_OK;  // a class the device has none of
  }
  auto r = s.device->find_keys(q);
  if (!r) {
    s.finding = false;
    return rv(r);
  }
  for (auto& info : r.value()) {
    ObjectView view(*s.device, info);
    bool all = true;
    for (const CK_ATTRIBUTE* a : rest) {
      if (!matches(view, *a)) {
        all = false;
        break;
      }
    }
    if (all) s.found.push_back(info.handle);
  }
  return CKR_OK;
}

CK_RV find(P11Session& s, CK_OBJECT_HANDLE_PTR out, CK_ULONG max, CK_ULONG_PTR count) {
  if (out == nullptr || count == nullptr) return CKR_ARGUMENTS_BAD;
  if (!s.finding) return CKR_OPERATION_NOT_INITIALIZED;
  CK_ULONG n = 0;
  while (n < max && s.found_next < s.found.size()) out[n++] = s.found[s.found_next++];
  *count = n;
  return CKR_OK;
}

CK_RV find_final(P11Session& s) {
  if (!s.finding) return CKR_OPERATION_NOT_INITIALIZED;
  s.finding = false;
  s.found.clear();
  return CKR_OK;
}

CK_RV get_attributes(P11Session& s, CK_OBJECT_HANDLE h, CK_ATTRIBUTE_PTR tmpl, CK_ULONG count) {
  if (count > 0 && tmpl == nullptr) return CKR_ARGUMENTS_BAD;
  if (const CK_RV r = require_logged_in(s); r != CKR_OK) return CKR_OBJECT_HANDLE_INVALID;
  auto info = info_of(s, h);
  if (!info) return info.status() == Status::kNoSuchKey ? CKR_OBJECT_HANDLE_INVALID : rv(info);
  ObjectView view(*s.device, std::move(info).value());
  // Every attribute is answered; the result is the last problem seen, as
  // PKCS#11 lets the three errors stand for the whole call.
  CK_RV result = CKR_OK;
  for (CK_ULONG i = 0; i < count; ++i) {
    CK_ATTRIBUTE& a = tmpl[i];
    Bytes value;
    const CK_RV r = view.get(a.type, value);
    if (r == CKR_ATTRIBUTE_SENSITIVE || r == CKR_ATTRIBUTE_TYPE_INVALID) {
      a.ulValueLen = CK_UNAVAILABLE_INFORMATION;
      result = r;
      continue;
    }
    if (r != CKR_OK) return r;
    if (a.pValue == nullptr) {
      a.ulValueLen = value.size();
    } else if (a.ulValueLen < value.size()) {
      a.ulValueLen = CK_UNAVAILABLE_INFORMATION;
      result = CKR_BUFFER_TOO_SMALL;
    } else {
      if (!value.empty()) std::memcpy(a.pValue, value.data(), value.size());
      a.ulValueLen = value.size();
    }
  }
  return result;
}

CK_RV set_attributes(P11Session& s, CK_OBJECT_HANDLE h, CK_ATTRIBUTE_PTR tmpl, CK_ULONG count) {
  if (count > 0 && tmpl == nullptr) return CKR_ARGUMENTS_BAD;
  if (const CK_RV r = require_logged_in(s); r != CKR_OK) return r;
  auto info = info_of(s, h);
  if (!info) return info.status() == Status::kNoSuchKey ? CKR_OBJECT_HANDLE_INVALID : rv(info);
  if (const CK_RV r = check_writable(s, info.value().token); r != CKR_OK) return r;
  KeyTemplate t;
  KeyExtras x;
  std::optional<std::string> label;
  std::optional<Bytes> id;
  bool names_token = false;
  for (CK_ULONG i = 0; i < count; ++i) {
    if (tmpl[i].type == CKA_LABEL) label = std::string();
    if (tmpl[i].type == CKA_ID) id = Bytes();
    if (tmpl[i].type == CKA_TOKEN) names_token = true;
  }
  if (const CK_RV r = read_key_template(tmpl, count, t, x); r != CKR_OK) return r;
  // CKA_TOKEN may be named only with the value it has.
  if ((names_token && t.token != info.value().token) || x.value_len || x.curve || x.modulus_bits) {
    return CKR_ATTRIBUTE_READ_ONLY;
  }
  if (label) label = t.label;
  if (id) id = t.id;
  auto r = s.device->set_key_attributes(h, t.flags.value_or(0), t.flags_mask, label, id);
  s.token->key_flags.forget(h);
  return r ? CKR_OK : rv(r);
}

CK_RV copy_object(P11Session& s, CK_OBJECT_HANDLE h, CK_ATTRIBUTE_PTR tmpl, CK_ULONG count,
                  CK_OBJECT_HANDLE_PTR out) {
  if (out == nullptr || (count > 0 && tmpl == nullptr)) return CKR_ARGUMENTS_BAD;
  if (const CK_RV r = require_logged_in(s); r != CKR_OK) return r;
  auto info = info_of(s, h);
  if (!info) return info.status() == Status::kNoSuchKey ? CKR_OBJECT_HANDLE_INVALID : rv(info);
  ObjectCopy changes;
  for (CK_ULONG i = 0; i < count; ++i) {
    if (tmpl[i].type == CKA_LABEL) changes.label = std::string();
    if (tmpl[i].type == CKA_ID) changes.id = Bytes();
    if (tmpl[i].type == CKA_TOKEN) changes.token = false;
  }
  KeyTemplate t;
  KeyExtras x;
  if (const CK_RV r = read_key_template(tmpl, count, t, x); r != CKR_OK) return r;
  // What makes the object what it is stays; naming it again is harmless.
  if ((x.object_class && *x.object_class != static_cast<CK_ULONG>(info->object_class)) ||
      (x.key_type && *x.key_type != static_cast<CK_ULONG>(info->key_type)) || x.value_len ||
      x.curve || x.modulus_bits || !t.allowed_mechanisms.empty()) {
    return CKR_ATTRIBUTE_READ_ONLY;
  }
  if (changes.label) changes.label = t.label;
  if (changes.id) changes.id = t.id;
  if (changes.token) changes.token = t.token;
  if (const CK_RV r = check_writable(s, changes.token.value_or(info->token)); r != CKR_OK) {
    return r;
  }
  if (t.flags) {
    changes.flags = *t.flags;
    changes.mask = t.flags_mask;
  }
  auto r = s.device->copy_object(h, changes);
  if (!r) return rv(r);
  *out = r.value();
  return CKR_OK;
}

CK_RV create_object(P11Session& s, CK_ATTRIBUTE_PTR tmpl, CK_ULONG count,
                    CK_OBJECT_HANDLE_PTR out) {
  if (out == nullptr || (count > 0 && tmpl == nullptr)) return CKR_ARGUMENTS_BAD;
  if (const CK_RV r = require_logged_in(s); r != CKR_OK) return r;
  ObjectSpec spec;
  std::optional<CK_ULONG> object_class;
  for (CK_ULONG i = 0; i < count; ++i) {
    const CK_ATTRIBUTE& a = tmpl[i];
    if (a.pValue == nullptr && a.ulValueLen != 0) return CKR_ATTRIBUTE_VALUE_INVALID;
    CK_ULONG u = 0;
    switch (a.type) {
      case CKA_CLASS:
        if (!attribute_ulong(a, u)) return CKR_ATTRIBUTE_VALUE_INVALID;
        object_class = u;
        break;
      case CKA_TOKEN:
        if (!attribute_bool(a, spec.token)) return CKR_ATTRIBUTE_VALUE_INVALID;
        break;
      case CKA_LABEL:
        spec.label.assign(static_cast<const char*>(a.pValue), a.ulValueLen);
        break;
      case CKA_ID:
        spec.id = attribute_bytes(a);
        break;
      case CKA_VALUE:
        spec.value = attribute_bytes(a);
        break;
      case CKA_APPLICATION:
        spec.application.assign(static_cast<const char*>(a.pValue), a.ulValueLen);
        break;
      case CKA_CERTIFICATE_TYPE:
        if (!attribute_ulong(a, u)) return CKR_ATTRIBUTE_VALUE_INVALID;
        spec.certificate_type = static_cast<uint32_t>(u);
        break;
      // Derived from the value, or without a home in the device: accepted.
      case CKA_SUBJECT:
      case CKA_ISSUER:
      case CKA_SERIAL_NUMBER:
      case CKA_PRIVATE:
      case CKA_MODIFIABLE:
      case CKA_TRUSTED:
      case CKA_CERTIFICATE_CATEGORY:
      case CKA_OBJECT_ID:
      case CKA_START_DATE:
      case CKA_END_DATE:
        break;
      default:
        return CKR_ATTRIBUTE_TYPE_INVALID;
    }
  }
  if (!object_class) return CKR_TEMPLATE_INCOMPLETE;
  if (*object_class == CKO_CERTIFICATE) {
    spec.object_class = ObjectClass::kCertificate;
  } else if (*object_class == CKO_DATA) {
    spec.object_class = ObjectClass::kData;
  } else {
    // Raw key import is not offered: keys enter wrapped (C_UnwrapKey).
    return CKR_ATTRIBUTE_VALUE_INVALID;
  }
  if (const CK_RV r = check_writable(s, spec.token); r != CKR_OK) return r;
  auto r = s.device->create_object(spec);
  if (!r) return rv(r);
  *out = r.value();
  return CKR_OK;
}

CK_RV destroy_object(P11Session& s, CK_OBJECT_HANDLE h) {
  if (const CK_RV r = require_logged_in(s); r != CKR_OK) return CKR_OBJECT_HANDLE_INVALID;
  auto info = info_of(s, h);
  if (!info) return info.status() == Status::kNoSuchKey ? CKR_OBJECT_HANDLE_INVALID : rv(info);
  if (const CK_RV r = check_writable(s, info.value().token); r != CKR_OK) return r;
  auto r = s.device->destroy_key(h);
  s.token->key_flags.forget(h);
  return r ? CKR_OK : rv(r);
}

CK_RV generate_key(P11Session& s, CK_MECHANISM_PTR mech, CK_ATTRIBUTE_PTR tmpl, CK_ULONG count,
                   CK_OBJECT_HANDLE_PTR out) {
  if (mech == nullptr || out == nullptr) return CKR_ARGUMENTS_BAD;
  if (const CK_RV r = require_logged_in(s); r != CKR_OK) return r;
  KeyTemplate t;
  KeyExtras x;
  if (const CK_RV r = read_key_template(tmpl, count, t, x); r != CKR_OK) return r;
  if (const CK_RV r = check_writable(s, t.token); r != CKR_OK) return r;
  if (x.object_class && *x.object_class != CKO_SECRET_KEY) return CKR_TEMPLATE_INCONSISTENT;
  CK_ULONG bits = 0;
  if (mech->mechanism == CKM_AES_KEY_GEN) {
    if (x.key_type && *x.key_type != CKK_AES) return CKR_TEMPLATE_INCONSISTENT;
    if (!x.value_len) return CKR_TEMPLATE_INCOMPLETE;
    bits = *x.value_len * 8;
  } else if (mech->mechanism == CKM_GENERIC_SECRET_KEY_GEN) {
    if (x.key_type && *x.key_type != CKK_GENERIC_SECRET) return CKR_TEMPLATE_INCONSISTENT;
    if (!x.value_len) return CKR_TEMPLATE_INCOMPLETE;
    bits = *x.value_len * 8;
  } else {
    return CKR_MECHANISM_INVALID;
  }
  if (bits > 4096) return CKR_KEY_SIZE_RANGE;
  auto r = s.device->generate_secret_key(static_cast<Mechanism>(mech->mechanism),
                                         static_cast<uint32_t>(bits), t);
  if (!r) return rv(r);
  record_approval(s);
  *out = r.value();
  return CKR_OK;
}

CK_RV generate_key_pair(P11Session& s, CK_MECHANISM_PTR mech, CK_ATTRIBUTE_PTR pub,
                        CK_ULONG pub_count, CK_ATTRIBUTE_PTR priv, CK_ULONG priv_count,
                        CK_OBJECT_HANDLE_PTR pub_out, CK_OBJECT_HANDLE_PTR priv_out) {
  if (mech == nullptr || pub_out == nullptr || priv_out == nullptr) return CKR_ARGUMENTS_BAD;
  if (const CK_RV r = require_logged_in(s); r != CKR_OK) return r;
  KeyTemplate pt, kt;
  KeyExtras px, kx;
  if (const CK_RV r = read_key_template(pub, pub_count, pt, px); r != CKR_OK) return r;
  if (const CK_RV r = read_key_template(priv, priv_count, kt, kx); r != CKR_OK) return r;
  if (const CK_RV r = check_writable(s, pt.token || kt.token); r != CKR_OK) return r;
  // Tools ask for CKA_DERIVE on both halves; a public key derives nothing
  // (ECDH runs on the private half), so the device keeps it off.
  pt.flags_mask &= ~usage::kDerive;
  if (pt.flags) *pt.flags &= ~usage::kDerive;
  std::optional<Curve> curve = px.curve ? px.curve : kx.curve;
  uint32_t rsa_bits = 0;
  switch (mech->mechanism) {
    case CKM_EC_KEY_PAIR_GEN:
      if (!curve) return CKR_TEMPLATE_INCOMPLETE;
      if (*curve == Curve::kEd25519 || *curve == Curve::kX25519) return CKR_CURVE_NOT_SUPPORTED;
      break;
    case CKM_RSA_PKCS_KEY_PAIR_GEN:
      if (!px.modulus_bits) return CKR_TEMPLATE_INCOMPLETE;
      rsa_bits = static_cast<uint32_t>(*px.modulus_bits);
      curve.reset();
      break;
    case CKM_EC_EDWARDS_KEY_PAIR_GEN:
      if (curve && *curve != Curve::kEd25519) return CKR_CURVE_NOT_SUPPORTED;
      curve = Curve::kEd25519;
      break;
    case CKM_EC_MONTGOMERY_KEY_PAIR_GEN:
      if (curve && *curve != Curve::kX25519) return CKR_CURVE_NOT_SUPPORTED;
      curve = Curve::kX25519;
      break;
    default:
      return CKR_MECHANISM_INVALID;
  }
  auto r =
      s.device->generate_key_pair(static_cast<Mechanism>(mech->mechanism), curve, rsa_bits, pt, kt);
  if (!r) return rv(r);
  record_approval(s);
  *pub_out = r.value().public_handle;
  *priv_out = r.value().private_handle;
  return CKR_OK;
}

}  // namespace ihsm::pkcs11
