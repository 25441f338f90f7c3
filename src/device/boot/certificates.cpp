// The X.509 side of dice.h: the certificate table of docs/attestation.md.
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/obj_mac.h>
#include <openssl/objects.h>

#include <algorithm>
#include <string>

#include "device/boot/dice.h"
#include "device/boot/ossl_ptr.h"
#include "device/crypto/algorithms.h"

namespace ihsm::device::boot {
namespace {

using namespace detail;

// Written as GeneralizedTime; ASN1_TIME_set_string_X509 stores the 2024 one
// as UTCTime, as RFC 5280 4.1.2.5 requires for years before 2050.
constexpr const char* kNotBefore = "20240101000000Z";
constexpr const char* kNotAfter = "99991231235959Z";  // RFC 5280: no well-defined expiry

struct CertSpec {
  std::string common_name;
  EVP_PKEY* subject_key;  // the key certified (its public half)
  EVP_PKEY* signer;       // the issuer's private key
  X509* issuer;           // nullptr: self-signed by subject_key
  const char* basic_constraints;
  const char* key_usage;
  Bytes tcb_info;  // DER of the TcbInfo extension; empty: none
};

bool is_p384(EVP_PKEY* key) {
  char name[64] = {};
  size_t len = 0;
  return key != nullptr && EVP_PKEY_is_a(key, "EC") == 1 &&
         EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, name, sizeof(name),
                                        &len) == 1 &&
         OBJ_txt2nid(name) == NID_secp384r1;
}

std::string hex(std::span<const uint8_t> bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (uint8_t b : bytes) {
    out.push_back(kDigits[b >> 4]);
    out.push_back(kDigits[b & 15]);
  }
  return out;
}

// The issuer certificate, and that `signer` holds its key: a certificate
// signed by any other key would not verify.
Status parse_issuer(const Bytes& der, EVP_PKEY* signer, X509Ptr& out) {
  const unsigned char* p = der.data();
  X509Ptr cert(d2i_X509(nullptr, &p, static_cast<long>(der.size())));
  const EVP_PKEY* issuer_key = cert ? X509_get0_pubkey(cert.get()) : nullptr;
  if (!cert || p != der.data() + der.size() || issuer_key == nullptr ||
      EVP_PKEY_eq(issuer_key, signer) != 1) {
    ERR_clear_error();
    return Status::kInvalidArgument;
  }
  out = std::move(cert);
  return Status::kOk;
}

// First 16 bytes of SHA-256(SubjectPublicKeyInfo), top bit cleared so the
// INTEGER is positive; never zero (RFC 5280 4.1.2.2), which would take a
// 2^-127 chance.
bool set_serial(X509* cert, EVP_PKEY* subject) {
  Bytes spki, digest;
  if (!ok(crypto::public_key_der(subject, spki)) ||
      !ok(crypto::digest(crypto::Hash::kSha256, spki, digest))) {
    return false;
  }
  digest.resize(16);
  digest[0] &= 0x7F;
  if (std::ranges::all_of(digest, [](uint8_t b) { return b == 0; })) digest[15] = 1;
  SecretBn serial(BN_bin2bn(digest.data(), static_cast<int>(digest.size()), nullptr));
  return serial && BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert)) != nullptr;
}

// O first in the DER, so the RFC 4514 string reads "CN=..., O=ihsm".
bool set_name(X509_NAME* name, const std::string& common_name) {
  const auto* org = reinterpret_cast<const unsigned char*>("ihsm");
  const auto* cn = reinterpret_cast<const unsigned char*>(common_name.c_str());
  return X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, org, -1, -1, 0) == 1 &&
         X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, cn, -1, -1, 0) == 1;
}

bool add_extension(X509* cert, X509V3_CTX* ctx, int nid, const char* value) {
  Extension ext(X509V3_EXT_nconf_nid(nullptr, ctx, nid, value));
  return ext && X509_add_ext(cert, ext.get(), -1) == 1;
}

bool add_tcb_info(X509* cert, const Bytes& der) {
  Object oid(OBJ_txt2obj(dice::kTcbInfoOid, 1));
  OctetString value(ASN1_OCTET_STRING_new());
  if (!oid || !value ||
      ASN1_OCTET_STRING_set(value.get(), der.data(), static_cast<int>(der.size())) != 1) {
    return false;
  }
  Extension ext(X509_EXTENSION_create_by_OBJ(nullptr, oid.get(), 0, value.get()));
  return ext && X509_add_ext(cert, ext.get(), -1) == 1;
}

bool build(const CertSpec& spec, X509* cert) {
  X509_NAME* subject = X509_get_subject_name(cert);
  X509* issuer = spec.issuer != nullptr ? spec.issuer : cert;
  if (X509_set_version(cert, X509_VERSION_3) != 1 || !set_serial(cert, spec.subject_key) ||
      X509_set_pubkey(cert, spec.subject_key) != 1 || !set_name(subject, spec.common_name) ||
      X509_set_issuer_name(cert, X509_get_subject_name(issuer)) != 1 ||
      ASN1_TIME_set_string_X509(X509_getm_notBefore(cert), kNotBefore) != 1 ||
      ASN1_TIME_set_string_X509(X509_getm_notAfter(cert), kNotAfter) != 1) {
    return false;
  }
  X509V3_CTX ctx{};
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  if (!add_extension(cert, &ctx, NID_basic_constraints, spec.basic_constraints) ||
      !add_extension(cert, &ctx, NID_key_usage, spec.key_usage) ||
      !add_extension(cert, &ctx, NID_subject_key_identifier, "hash")) {
    return false;
  }
  // A self-signed root needs no AKI (RFC 5280 4.2.1.1).
  if (spec.issuer != nullptr &&
      !add_extension(cert, &ctx, NID_authority_key_identifier, "keyid:always")) {
    return false;
  }
  if (!spec.tcb_info.empty() && !add_tcb_info(cert, spec.tcb_info)) return false;
  return X509_sign(cert, spec.signer, EVP_sha384()) > 0;
}

Status issue(const CertSpec& spec, Bytes& der) {
  X509Ptr cert(X509_new());
  if (!cert || !build(spec, cert.get())) {
    ERR_clear_error();
    return Status::kCryptoFailure;
  }
  const int len = i2d_X509(cert.get(), nullptr);
  if (len <= 0) return Status::kCryptoFailure;
  Bytes out(static_cast<size_t>(len));
  unsigned char* p = out.data();
  if (i2d_X509(cert.get(), &p) != len) return Status::kCryptoFailure;
  der = std::move(out);
  return Status::kOk;
}

}  // namespace

Status make_deviceid_cert(EVP_PKEY* deviceid, const Bytes& fingerprint, Bytes& der) {
  if (!is_p384(deviceid)) return Status::kKeyTypeMismatch;
  if (fingerprint.size() != kFingerprintSize) return Status::kInvalidArgument;
  return issue({.common_name = "ihsm DeviceID " + hex(fingerprint),
                .subject_key = deviceid,
                .signer = deviceid,
                .issuer = nullptr,
                .basic_constraints = "critical,CA:TRUE,pathlen:1",
                .key_usage = "critical,keyCertSign",
                .tcb_info = {}},
               der);
}

Status make_alias_cert(EVP_PKEY* deviceid, const Bytes& deviceid_cert_der, EVP_PKEY* alias_public,
                       const TcbInfo& tcb, Bytes& der) {
  if (!is_p384(deviceid) || !is_p384(alias_public)) return Status::kKeyTypeMismatch;
  Bytes tcb_der = dice::encode_tcb_info(tcb);
  if (tcb_der.empty()) return Status::kInvalidArgument;
  X509Ptr issuer;
  const Status s = parse_issuer(deviceid_cert_der, deviceid, issuer);
  if (!ok(s)) return s;
  const std::span<const uint8_t> measurement_prefix(tcb.fwid_sha384.data(), 8);
  return issue({.common_name = "ihsm Alias " + hex(measurement_prefix),
                .subject_key = alias_public,
                .signer = deviceid,
                .issuer = issuer.get(),
                .basic_constraints = "critical,CA:TRUE,pathlen:0",
                .key_usage = "critical,keyCertSign,digitalSignature",
                .tcb_info = std::move(tcb_der)},
               der);
}

Status make_partition_cert(EVP_PKEY* alias, const Bytes& alias_cert_der, EVP_PKEY* partition_public,
                           uint32_t partition_id, Bytes& der) {
  if (!is_p384(alias) || !is_p384(partition_public)) return Status::kKeyTypeMismatch;
  X509Ptr issuer;
  const Status s = parse_issuer(alias_cert_der, alias, issuer);
  if (!ok(s)) return s;
  return issue({.common_name = "ihsm partition " + std::to_string(partition_id),
                .subject_key = partition_public,
                .signer = alias,
                .issuer = issuer.get(),
                .basic_constraints = "critical,CA:FALSE",
                .key_usage = "critical,digitalSignature",
                .tcb_info = {}},
               der);
}

}  // namespace ihsm::device::boot
