// Offline verification of attestation reports: the steps of
// docs/attestation.md ("Verifying a report"), in that order, each a
// function that fills the verdict's reason and detail when it fails.
#include "ihsm/attestation.h"

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include <algorithm>
#include <array>

#include "common/cose.h"
#include "common/tcb_info.h"
#include "host/chain.h"
#include "host/ossl.h"

namespace ihsm {
namespace {

using X509Ptr = std::unique_ptr<X509, ossl::Deleter<X509, X509_free>>;
using Store = std::unique_ptr<X509_STORE, ossl::Deleter<X509_STORE, X509_STORE_free>>;
using StoreCtx =
    std::unique_ptr<X509_STORE_CTX, ossl::Deleter<X509_STORE_CTX, X509_STORE_CTX_free>>;
using Bio = std::unique_ptr<BIO, ossl::Deleter<BIO, BIO_free_all>>;

void free_x509_stack(STACK_OF(X509) * s) { sk_X509_free(s); }  // the certs stay owned by us
void free_info_stack(STACK_OF(X509_INFO) * s) { sk_X509_INFO_pop_free(s, X509_INFO_free); }
using CertStack = std::unique_ptr<STACK_OF(X509), ossl::Deleter<STACK_OF(X509), free_x509_stack>>;
using InfoStack =
    std::unique_ptr<STACK_OF(X509_INFO), ossl::Deleter<STACK_OF(X509_INFO), free_info_stack>>;

constexpr int kKey = static_cast<int>(cose::Kind::kKeyReport);
constexpr size_t kMaxPem = 1 << 20;  // a certificate is a few KiB

// Everything the steps share.
struct Report {
  cose::Sign1 sign1;
  std::vector<X509Ptr> certs;  // x5chain, signer first
};

bool fail(Verdict& v, std::string reason, std::string detail) {
  ossl::clear_errors();
  v.valid = false;
  v.reason = std::move(reason);
  v.detail = std::move(detail);
  return false;
}

// ---------------------------------------------------------------- step 1: decode

std::string public_key_pem(const cbor::Value& cose_key) {
  cose::Pkey key;
  Bio bio(BIO_new(BIO_s_mem()));
  if (!ok(cose::key_from_cose(cose_key, key, ossl::libctx())) || !bio ||
      PEM_write_bio_PUBKEY(bio.get(), key.get()) != 1) {
    return {};
  }
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio.get(), &data);
  return len > 0 ? std::string(data, static_cast<size_t>(len)) : std::string();
}

void take_key_report(cose::KeyReport&& r, Verdict& v) {
  v.nonce = std::move(r.nonce);
  v.measurement = std::move(r.measurement);
  v.time = r.time;
  v.svn = r.svn;
  v.partition = r.partition;
  v.uid = std::move(r.uid);
  v.object_class = r.object_class;
  v.key_type = r.key_type;
  v.bits = r.bits;
  v.flags = r.flags;
  v.flag_names = cose::flag_names(r.flags);
  if (r.public_key) v.public_key_pem = public_key_pem(*r.public_key);
  if (r.value_digest) v.value_digest = std::move(*r.value_digest);
}

void take_device_report(cose::DeviceReport&& r, Verdict& v) {
  v.nonce = std::move(r.nonce);
  v.measurement = std::move(r.measurement);
  v.time = r.time;
  v.svn = r.svn;
  v.firmware_version = std::move(r.firmware_version);
  v.min_svn = r.min_svn;
  v.state = std::string(cose::device_state_name(r.state));
}

bool decode_step(std::span<const uint8_t> in, Report& report, Verdict& v) {
  if (!ok(cose::decode_sign1(in, report.sign1))) {
    return fail(v, "malformed", "not a COSE_Sign1 with an ES384 protected header");
  }
  const Bytes& payload = report.sign1.payload;
  cose::Kind kind{};
  if (!ok(cose::payload_kind(payload, kind))) {
    return fail(v, "malformed", "the payload is not a format-1 ihsm payload");
  }
  if (kind == cose::Kind::kKeyReport) {
    cose::KeyReport r;
    if (!ok(cose::decode_key_report(payload, r)))
      return fail(v, "malformed", "a key report member is missing, unknown or ill-formed");
    take_key_report(std::move(r), v);
  } else if (kind == cose::Kind::kDeviceReport) {
    cose::DeviceReport r;
    if (!ok(cose::decode_device_report(payload, r))) {
      return fail(v, "malformed", "a device report member is missing, unknown or ill-formed");
    }
    take_device_report(std::move(r), v);
  } else {
    return fail(v, "malformed", "a firmware manifest, not a report");
  }
  v.kind = static_cast<int>(kind);
  return true;
}

// ---------------------------------------------------------------- step 2: chain

X509Ptr parse_der(const Bytes& der) {
  // On failure d2i frees the object and sets `raw` to nullptr.
  X509* raw = X509_new_ex(ossl::libctx(), nullptr);
  const unsigned char* p = der.data();
  if (raw == nullptr || d2i_X509(&raw, &p, static_cast<long>(der.size())) == nullptr ||
      p != der.data() + der.size()) {
    X509_free(raw);
    return nullptr;
  }
  return X509Ptr(raw);
}

// The one certificate of a PEM text; nullptr when it holds none or several,
// since a bundle would make "the root" ambiguous.
X509Ptr parse_root(const std::string& pem) {
  if (pem.size() > kMaxPem) return nullptr;
  Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio || pem.empty()) return nullptr;
  InfoStack infos(
      PEM_X509_INFO_read_bio_ex(bio.get(), nullptr, nullptr, nullptr, ossl::libctx(), nullptr));
  if (!infos || sk_X509_INFO_num(infos.get()) != 1) return nullptr;
  X509* cert = sk_X509_INFO_value(infos.get(), 0)->x509;
  if (cert == nullptr || X509_up_ref(cert) != 1) return nullptr;
  return X509Ptr(cert);
}

// X509_verify_cert with the root as the only trust anchor and the rest of
// the x5chain as untrusted intermediates. Returns an error text, empty on
// success.
std::string verify_path(X509* root, const std::vector<X509Ptr>& certs) {
  Store store(X509_STORE_new());
  StoreCtx ctx(X509_STORE_CTX_new_ex(ossl::libctx(), nullptr));
  CertStack untrusted(sk_X509_new_null());
  if (!store || !ctx || !untrusted || X509_STORE_add_cert(store.get(), root) != 1) {
    return "cannot set up certificate verification";
  }
  for (size_t i = 1; i + 1 < certs.size(); ++i) {
    if (sk_X509_push(untrusted.get(), certs[i].get()) <= 0) return "out of memory";
  }
  if (X509_STORE_CTX_init(ctx.get(), store.get(), certs.front().get(), untrusted.get()) != 1) {
    return "cannot set up certificate verification";
  }
  // Strict RFC 5280 checks: the device's certificates meet them, so a
  // certificate that does not is not the device's.
  X509_VERIFY_PARAM_set_flags(X509_STORE_CTX_get0_param(ctx.get()), X509_V_FLAG_X509_STRICT);
  if (X509_verify_cert(ctx.get()) != 1) {
    return X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx.get()));
  }
  // OpenSSL may build a different path than the one given (say, skipping
  // a certificate); the report's chain is what the steps below rely on.
  STACK_OF(X509)* path = X509_STORE_CTX_get0_chain(ctx.get());
  if (path == nullptr || static_cast<size_t>(sk_X509_num(path)) != certs.size()) {
    return "the verified path is not the report's x5chain";
  }
  for (size_t i = 0; i < certs.size(); ++i) {
    if (X509_cmp(sk_X509_value(path, static_cast<int>(i)), certs[i].get()) != 0) {
      return "the verified path is not the report's x5chain";
    }
  }
  return {};
}

bool chain_step(const VerifyOptions& options, Report& report, Verdict& v) {
  const size_t want = v.kind == kKey ? 3 : 2;
  const std::vector<Bytes>& x5chain = report.sign1.x5chain;
  if (x5chain.size() != want) {
    return fail(v, "chain",
                std::string(v.kind == kKey ? "a key report carries partition, Alias and DeviceID"
                                           : "a device report carries Alias and DeviceID") +
                    " certificates; this one carries " + std::to_string(x5chain.size()));
  }
  X509Ptr root = parse_root(options.trusted_root_pem);
  if (!root) return fail(v, "chain", "the trusted root is not one PEM certificate");
  for (const Bytes& der : x5chain) {
    report.certs.push_back(parse_der(der));
    if (!report.certs.back()) return fail(v, "chain", "an x5chain entry is not a certificate");
  }
  if (X509_cmp(report.certs.back().get(), root.get()) != 0) {
    return fail(v, "chain", "the x5chain does not end at the trusted root");
  }
  const std::string error = verify_path(root.get(), report.certs);
  if (!error.empty()) return fail(v, "chain", error);
  return true;
}

// ---------------------------------------------------------------- step 3: signature

bool signature_step(const Report& report, Verdict& v) {
  const cose::Sign1& s = report.sign1;
  const Bytes tbs = cose::sig_structure(cose::protected_header(), s.payload);
  EVP_PKEY* key = X509_get0_pubkey(report.certs.front().get());
  if (key == nullptr || !ok(cose::es384_verify(key, tbs, s.signature, ossl::libctx()))) {
    return fail(v, "signature", "the ES384 signature does not verify with the signer's key");
  }
  return true;
}

// ---------------------------------------------------------------- step 4: firmware

// The signer's subject CN must read exactly "ihsm partition <id>".
bool subject_partition_is(X509* cert, uint32_t id) {
  const X509_NAME* name = X509_get_subject_name(cert);
  const int at = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
  if (at < 0 || X509_NAME_get_index_by_NID(name, NID_commonName, at) >= 0) return false;
  const ASN1_STRING* cn = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, at));
  const std::string want = "ihsm partition " + std::to_string(id);
  return static_cast<size_t>(ASN1_STRING_length(cn)) == want.size() &&
         std::equal(want.begin(), want.end(), ASN1_STRING_get0_data(cn));
}

bool firmware_step(const Report& report, Verdict& v) {
  X509* alias = report.certs[report.certs.size() - 2].get();
  dice::TcbInfo tcb;
  if (!ok(dice::tcb_info_of(alias, tcb))) {
    return fail(v, "measurement", "the Alias certificate has no valid TcbInfo");
  }
  if (tcb.fwid_sha384 != v.measurement) {
    return fail(v, "measurement", "the measurement is not the Alias certificate's FWID");
  }
  if (tcb.svn != v.svn) {
    return fail(v, "measurement", "the security version is not the Alias certificate's");
  }
  if (v.kind == kKey && !subject_partition_is(report.certs.front().get(), v.partition)) {
    return fail(
        v, "partition",
        "the signer's subject is not \"ihsm partition " + std::to_string(v.partition) + "\"");
  }
  return true;
}

// ---------------------------------------------------------------- steps 5, 6

bool nonce_step(const VerifyOptions& options, Verdict& v) {
  if (!options.nonce) return true;
  const Bytes& want = *options.nonce;
  if (want.size() != v.nonce.size() ||
      CRYPTO_memcmp(want.data(), v.nonce.data(), want.size()) != 0) {
    return fail(v, "nonce", "the report's nonce is not the expected one");
  }
  return true;
}

bool requirement_step(const VerifyOptions& options, Verdict& v) {
  for (const std::string& r : options.require) {
    const bool negated = r.starts_with("not-");
    const std::string name = negated ? r.substr(4) : r;
    const std::optional<uint32_t> bit = cose::flag_from_name(name);
    if (!bit) return fail(v, "requirement", "unknown property '" + r + "'");
    if (v.kind != kKey) return fail(v, "requirement", "a device report has no key properties");
    if (((v.flags & *bit) != 0) == negated) {
      return fail(v, "requirement", "'" + name + (negated ? "' is set" : "' is not set"));
    }
  }
  return true;
}

}  // namespace

Verdict verify_report(std::span<const uint8_t> report, const VerifyOptions& options) {
  Verdict v;
  Report r;
  if (!decode_step(report, r, v) || !chain_step(options, r, v) || !signature_step(r, v) ||
      !firmware_step(r, v) || !nonce_step(options, v) || !requirement_step(options, v)) {
    return v;
  }
  ossl::clear_errors();  // reading the PEM to its end may leave some queued
  v.valid = true;
  v.detail = v.kind == kKey ? "key report of partition " + std::to_string(v.partition) +
                                  " verified up to the trusted root"
                            : "device report verified up to the trusted root";
  return v;
}

namespace detail {

std::string verify_alias_signed(std::span<const uint8_t> sign1, const std::string& root_pem,
                                Bytes& payload) {
  cose::Sign1 s;
  if (!ok(cose::decode_sign1(sign1, s))) return "not a COSE_Sign1 with an ES384 header";
  payload = s.payload;
  if (s.x5chain.size() != 2) return "the x5chain is not [Alias, DeviceID]";
  X509Ptr root = parse_root(root_pem);
  if (!root) return "the trusted root is not one PEM certificate";
  std::vector<X509Ptr> certs;
  for (const Bytes& der : s.x5chain) {
    certs.push_back(parse_der(der));
    if (!certs.back()) return "an x5chain entry is not a certificate";
  }
  if (X509_cmp(certs.back().get(), root.get()) != 0) {
    ossl::clear_errors();
    return "the x5chain does not end at the trusted DeviceID certificate";
  }
  std::string error = verify_path(root.get(), certs);
  if (error.empty()) {
    const Bytes tbs = cose::sig_structure(cose::protected_header(), s.payload);
    EVP_PKEY* key = X509_get0_pubkey(certs.front().get());
    if (key == nullptr || !ok(cose::es384_verify(key, tbs, s.signature, ossl::libctx()))) {
      error = "the ES384 signature does not verify with the Alias key";
    }
  }
  ossl::clear_errors();
  return error;
}

}  // namespace detail
}  // namespace ihsm
