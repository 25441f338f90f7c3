// Test-side DICE chains and signed reports, built with plain OpenSSL as
// docs/attestation.md describes them (DeviceID -> Alias with TcbInfo ->
// partition identity), so the verifier is checked against certificates it
// did not make. Sig_structure and the signature are computed here too,
// independently of src/common/cose.cpp; only the COSE_Sign1 and payload
// encoders come from the code under test (their own tests are in
// unit/cose_test.cpp).
#pragma once

#include <openssl/bio.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/cose.h"
#include "support/ossl.h"
#include "support/util.h"

namespace ihsm::test::attest {

struct X509Del {
  void operator()(X509* p) const { X509_free(p); }
};
using X509Ptr = std::unique_ptr<X509, X509Del>;
using ossl::Pkey;

// ---------------------------------------------------------------- DER

inline Bytes der_len(size_t n) {
  if (n < 0x80) return {static_cast<uint8_t>(n)};
  Bytes out;
  for (size_t v = n; v != 0; v >>= 8) out.insert(out.begin(), static_cast<uint8_t>(v & 0xFF));
  out.insert(out.begin(), static_cast<uint8_t>(0x80 | out.size()));
  return out;
}

inline Bytes tlv(uint8_t tag, const Bytes& content) {
  Bytes out{tag};
  const Bytes len = der_len(content.size());
  out.insert(out.end(), len.begin(), len.end());
  out.insert(out.end(), content.begin(), content.end());
  return out;
}

inline Bytes cat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const Bytes& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

// The content octets of a non-negative INTEGER.
inline Bytes der_uint(uint64_t v) {
  Bytes out;
  for (; v != 0; v >>= 8) out.insert(out.begin(), static_cast<uint8_t>(v & 0xFF));
  if (out.empty() || (out.front() & 0x80) != 0) out.insert(out.begin(), 0);
  return out;
}

// DiceTcbInfo with implicit tags, as in docs/attestation.md.
inline Bytes tcb_info_der(const std::string& version, uint64_t svn, const Bytes& fwid,
                          const Bytes& hash_oid = from_hex("608648016503040202")) {
  const Bytes fwids = tlv(0xA6, tlv(0x30, cat({tlv(0x06, hash_oid), tlv(0x04, fwid)})));
  return tlv(0x30, cat({tlv(0x80, to_bytes("ihsm")), tlv(0x81, to_bytes("ihsm-firmware")),
                        tlv(0x82, to_bytes(version)), tlv(0x83, der_uint(svn)), fwids}));
}

// ---------------------------------------------------------------- certificates

inline Pkey p384() { return ossl::generate_ec("P-384"); }

inline void add_ext(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  if (ext == nullptr || X509_add_ext(cert, ext, -1) != 1) throw std::runtime_error("extension");
  X509_EXTENSION_free(ext);
}

inline void add_raw_ext(X509* cert, const char* oid, const Bytes& der) {
  ASN1_OBJECT* obj = OBJ_txt2obj(oid, 1);
  ASN1_OCTET_STRING* data = ASN1_OCTET_STRING_new();
  ASN1_OCTET_STRING_set(data, der.data(), static_cast<int>(der.size()));
  X509_EXTENSION* ext = X509_EXTENSION_create_by_OBJ(nullptr, obj, 0, data);
  if (ext == nullptr || X509_add_ext(cert, ext, -1) != 1) throw std::runtime_error("raw ext");
  X509_EXTENSION_free(ext);
  ASN1_OCTET_STRING_free(data);
  ASN1_OBJECT_free(obj);
}

struct CertSpec {
  std::string cn;
  std::string basic_constraints;  // e.g. "critical,CA:TRUE,pathlen:1"
  std::string key_usage;          // e.g. "critical,keyCertSign"
  std::optional<Bytes> tcb_info;  // DER of the TcbInfo extension value
};

// Issued by (issuer, issuer_key), or self-signed when issuer is nullptr.
inline X509Ptr make_cert(EVP_PKEY* key, const CertSpec& spec, X509* issuer, EVP_PKEY* issuer_key) {
  static long serial = 1;
  X509Ptr cert(X509_new());
  X509_set_version(cert.get(), X509_VERSION_3);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), serial++);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>(spec.cn.c_str()), -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>("ihsm"), -1, -1, 0);
  X509_set_issuer_name(cert.get(), issuer ? X509_get_subject_name(issuer) : name);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -86400);
  ASN1_TIME_set_string_X509(X509_getm_notAfter(cert.get()), "99991231235959Z");
  X509_set_pubkey(cert.get(), key);
  X509* ca = issuer ? issuer : cert.get();
  add_ext(cert.get(), ca, NID_basic_constraints, spec.basic_constraints);
  add_ext(cert.get(), ca, NID_key_usage, spec.key_usage);
  add_ext(cert.get(), ca, NID_subject_key_identifier, "hash");
  if (issuer) add_ext(cert.get(), ca, NID_authority_key_identifier, "keyid:always");
  if (spec.tcb_info) add_raw_ext(cert.get(), "2.23.133.5.4.1", *spec.tcb_info);
  if (X509_sign(cert.get(), issuer_key ? issuer_key : key, EVP_sha384()) <= 0) {
    throw std::runtime_error("X509_sign");
  }
  return cert;
}

inline Bytes der_of(X509* cert) {
  const int len = i2d_X509(cert, nullptr);
  Bytes out(static_cast<size_t>(len));
  unsigned char* p = out.data();
  i2d_X509(cert, &p);
  return out;
}

inline std::string pem_of(X509* cert) {
  std::unique_ptr<BIO, ossl::BioDel> bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509(bio.get(), cert);
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(len));
}

struct ChainSpec {
  uint32_t partition = 7;
  Bytes fwid = Bytes(48, 0xAB);  // what the Alias certificate certifies
  bool alias_is_ca = true;
  bool with_tcb_info = true;
  Bytes fwid_hash_oid = from_hex("608648016503040202");  // sha384
  std::string partition_curve = "P-384";
};

struct Chain {
  Pkey device_key, alias_key, partition_key;
  X509Ptr device, alias, partition;

  std::string root_pem() const { return pem_of(device.get()); }
  std::vector<Bytes> key_x5chain() const {
    return {der_of(partition.get()), der_of(alias.get()), der_of(device.get())};
  }
  std::vector<Bytes> device_x5chain() const { return {der_of(alias.get()), der_of(device.get())}; }
};

inline Chain make_chain(const ChainSpec& s = {}) {
  Chain c;
  c.device_key = p384();
  c.alias_key = p384();
  c.partition_key = ossl::generate_ec(s.partition_curve.c_str());
  c.device = make_cert(c.device_key.get(),
                       {"ihsm DeviceID 0011223344556677", "critical,CA:TRUE,pathlen:1",
                        "critical,keyCertSign", std::nullopt},
                       nullptr, nullptr);
  CertSpec alias{
      "ihsm Alias abababababababab",
      s.alias_is_ca ? "critical,CA:TRUE,pathlen:0" : "critical,CA:FALSE",
      s.alias_is_ca ? "critical,keyCertSign,digitalSignature" : "critical,digitalSignature",
      std::nullopt};
  if (s.with_tcb_info) alias.tcb_info = tcb_info_der("1.2.3", 4, s.fwid, s.fwid_hash_oid);
  c.alias = make_cert(c.alias_key.get(), alias, c.device.get(), c.device_key.get());
  c.partition = make_cert(c.partition_key.get(),
                          {"ihsm partition " + std::to_string(s.partition), "critical,CA:FALSE",
                           "critical,digitalSignature", std::nullopt},
                          c.alias.get(), c.alias_key.get());
  return c;
}

// ---------------------------------------------------------------- reports

// CBOR byte-string header, written out by hand.
inline Bytes bstr(const Bytes& b) {
  Bytes out;
  if (b.size() < 24) {
    out = {static_cast<uint8_t>(0x40 | b.size())};
  } else if (b.size() < 256) {
    out = {0x58, static_cast<uint8_t>(b.size())};
  } else {
    out = {0x59, static_cast<uint8_t>(b.size() >> 8), static_cast<uint8_t>(b.size() & 0xFF)};
  }
  out.insert(out.end(), b.begin(), b.end());
  return out;
}

// ["Signature1", h'A1013822', h'', payload]
inline Bytes sig_structure(const Bytes& payload) {
  return cat(
      {from_hex("846a5369676e617475726531"), bstr(from_hex("a1013822")), {0x40}, bstr(payload)});
}

// ECDSA with SHA-384 (whatever the key's curve), as r || s of 48 bytes
// each; a P-256 key gives 32-byte halves, padded so that the signature
// still has the size the decoder wants.
inline Bytes es384_raw(EVP_PKEY* key, const Bytes& tbs) {
  std::unique_ptr<EVP_MD_CTX, ossl::MdCtxDel> ctx(EVP_MD_CTX_new());
  size_t len = 0;
  EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha384(), nullptr, key);
  EVP_DigestSign(ctx.get(), nullptr, &len, tbs.data(), tbs.size());
  Bytes der(len);
  EVP_DigestSign(ctx.get(), der.data(), &len, tbs.data(), tbs.size());
  const unsigned char* p = der.data();
  std::unique_ptr<ECDSA_SIG, ossl::SigDel> sig(d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(len)));
  if (!sig) throw std::runtime_error("ECDSA signing");
  Bytes raw(96);
  BN_bn2binpad(ECDSA_SIG_get0_r(sig.get()), raw.data(), 48);
  BN_bn2binpad(ECDSA_SIG_get0_s(sig.get()), raw.data() + 48, 48);
  return raw;
}

inline Bytes sign_report(const Bytes& payload, std::vector<Bytes> x5chain, EVP_PKEY* key) {
  cose::Sign1 s;
  s.x5chain = std::move(x5chain);
  s.payload = payload;
  s.signature = es384_raw(key, sig_structure(payload));
  return cose::encode_sign1(s);
}

inline cose::KeyReport sample_key_report(EVP_PKEY* public_key) {
  cose::KeyReport r;
  r.nonce = from_hex("0102030405060708");
  r.measurement = Bytes(48, 0xAB);
  r.time = 1700000000;
  r.svn = 4;
  r.partition = 7;
  r.uid = from_hex("00112233445566778899aabbccddeeff");
  r.object_class = 3;  // CKO_PRIVATE_KEY
  r.key_type = 3;      // CKK_EC
  r.bits = 384;
  r.flags = cose::flag::kGenerated | cose::flag::kSensitive | cose::flag::kAlwaysSensitive |
            cose::flag::kNeverExtractable | cose::flag::kSign;
  cbor::Value key;
  if (!ok(cose::key_to_cose(public_key, key))) throw std::runtime_error("key_to_cose");
  r.public_key = key;
  return r;
}

inline cose::DeviceReport sample_device_report() {
  cose::DeviceReport r;
  r.nonce = from_hex("cafe");
  r.measurement = Bytes(48, 0xAB);
  r.time = 1700000001;
  r.svn = 4;
  r.firmware_version = "1.2.3";
  r.min_svn = 3;
  r.state = 0;
  return r;
}

}  // namespace ihsm::test::attest
