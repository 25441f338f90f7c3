#include "common/cose.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/obj_mac.h>
#include <openssl/objects.h>
#include <openssl/param_build.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <utility>

namespace ihsm::cose {
namespace {

using cbor::Value;
using Type = cbor::Value::Type;

constexpr Status kBad = Status::kMalformedBody;
constexpr size_t kP384Size = 48;

template <typename T, void (*Free)(T*)>
struct Deleter {
  void operator()(T* p) const { Free(p); }
};
using MdCtx = std::unique_ptr<EVP_MD_CTX, Deleter<EVP_MD_CTX, EVP_MD_CTX_free>>;
using PkeyCtx = std::unique_ptr<EVP_PKEY_CTX, Deleter<EVP_PKEY_CTX, EVP_PKEY_CTX_free>>;
using Bn = std::unique_ptr<BIGNUM, Deleter<BIGNUM, BN_free>>;
using EcdsaSig = std::unique_ptr<ECDSA_SIG, Deleter<ECDSA_SIG, ECDSA_SIG_free>>;
using ParamBld = std::unique_ptr<OSSL_PARAM_BLD, Deleter<OSSL_PARAM_BLD, OSSL_PARAM_BLD_free>>;
using Params = std::unique_ptr<OSSL_PARAM, Deleter<OSSL_PARAM, OSSL_PARAM_free>>;

// OpenSSL failures leave queued errors; none may leak to an unrelated caller.
Status fail(Status s) {
  ERR_clear_error();
  return s;
}

bool is_p384(EVP_PKEY* key) {
  char group[32] = {};
  return key != nullptr && EVP_PKEY_is_a(key, "EC") == 1 &&
         EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                        nullptr) == 1 &&
         OBJ_txt2nid(group) == NID_secp384r1;
}

}  // namespace

// ---------------------------------------------------------------- COSE_Sign1

const Bytes& protected_header() {
  static const Bytes kHeader = cbor::encode(Value::map().set(kLabelAlg, Value::negint(kAlgEs384)));
  return kHeader;
}

Bytes sig_structure(const Bytes& protected_bstr_contents, const Bytes& payload) {
  Value v = Value::array();
  v.push(Value::text("Signature1"));
  v.push(Value::bytes(protected_bstr_contents));
  v.push(Value::bytes(Bytes{}));  // external_aad: none
  v.push(Value::bytes(payload));
  return cbor::encode(v);
}

Bytes encode_sign1(const Sign1& s) {
  Value unprotected = Value::map();
  if (!s.x5chain.empty()) {
    Value chain = Value::array();
    for (const Bytes& cert : s.x5chain) chain.push(Value::bytes(cert));
    unprotected.set(kLabelX5Chain, std::move(chain));
  }
  Value v = Value::array();
  v.push(Value::bytes(protected_header()));
  v.push(std::move(unprotected));
  v.push(Value::bytes(s.payload));
  v.push(Value::bytes(s.signature));
  Bytes out{kSign1Tag};
  cbor::encode_append(v, out);
  return out;
}

namespace {

// { } or { 33: [+ bstr] }: x5chain is the only header we define, and it
// stays an array even for one certificate (RFC 9360 would allow a bare
// bstr) so that a reader has one form to handle.
Status decode_unprotected(const Value& m, std::vector<Bytes>& chain) {
  if (!m.is(Type::kMap)) return kBad;
  if (m.entries().empty()) return Status::kOk;
  const Value* x5 = m.find(kLabelX5Chain);
  if (m.entries().size() != 1 || x5 == nullptr || !x5->is(Type::kArray)) return kBad;
  if (x5->items().empty() || x5->items().size() > kMaxChainCerts) return kBad;
  for (const Value& cert : x5->items()) {
    if (!cert.is(Type::kBytes) || cert.as_bytes().empty() ||
        cert.as_bytes().size() > kMaxCertSize) {
      return kBad;
    }
    chain.push_back(cert.as_bytes());
  }
  return Status::kOk;
}

}  // namespace

Status decode_sign1(std::span<const uint8_t> in, Sign1& out) {
  if (in.size() > kMaxSign1Size) return kBad;
  // cbor::decode refuses every tag, so the one tag we allow is taken off
  // here; a second tag, or tag 18 in a longer form, still fails below.
  if (!in.empty() && in[0] == kSign1Tag) in = in.subspan(1);
  Value v;
  if (!ok(cbor::decode(in, v, cbor::DecodeLimits{4, 64}))) return kBad;
  if (!v.is(Type::kArray) || v.items().size() != 4) return kBad;
  const auto& items = v.items();
  // The exact bytes, not just an equal map: the device writes one encoding
  // and a verifier then needs no canonical-form rules.
  if (!items[0].is(Type::kBytes) || items[0].as_bytes() != protected_header()) return kBad;
  Sign1 s;
  if (!ok(decode_unprotected(items[1], s.x5chain))) return kBad;
  if (!items[2].is(Type::kBytes) || items[2].as_bytes().size() > kMaxPayloadSize) return kBad;
  if (!items[3].is(Type::kBytes) || items[3].as_bytes().size() != kEs384SignatureSize) return kBad;
  s.payload = items[2].as_bytes();
  s.signature = items[3].as_bytes();
  out = std::move(s);
  return Status::kOk;
}

Status sign(Sign1& s, const Signer& signer) {
  Bytes raw;
  const Status st = signer(sig_structure(protected_header(), s.payload), raw);
  if (!ok(st)) return st;
  if (raw.size() != kEs384SignatureSize) return Status::kCryptoFailure;
  s.signature = std::move(raw);
  return Status::kOk;
}

// ---------------------------------------------------------------- ECDSA

Status ecdsa_raw_to_der(std::span<const uint8_t> raw, Bytes& der) {
  if (raw.size() != kEs384SignatureSize) return Status::kInvalidArgument;
  constexpr int kHalf = static_cast<int>(kP384Size);
  Bn r(BN_bin2bn(raw.data(), kHalf, nullptr));
  Bn s(BN_bin2bn(raw.data() + kHalf, kHalf, nullptr));
  EcdsaSig sig(ECDSA_SIG_new());
  if (!r || !s || !sig || ECDSA_SIG_set0(sig.get(), r.get(), s.get()) != 1) {
    return fail(Status::kCryptoFailure);
  }
  (void)r.release();  // owned by sig now
  (void)s.release();
  const int len = i2d_ECDSA_SIG(sig.get(), nullptr);
  if (len <= 0) return fail(Status::kCryptoFailure);
  Bytes out(static_cast<size_t>(len));
  unsigned char* p = out.data();
  if (i2d_ECDSA_SIG(sig.get(), &p) != len) return fail(Status::kCryptoFailure);
  der = std::move(out);
  return Status::kOk;
}

Status ecdsa_der_to_raw(std::span<const uint8_t> der, Bytes& raw) {
  if (der.empty() || der.size() > 2 * kP384Size + 16) return Status::kInvalidArgument;
  const unsigned char* p = der.data();
  EcdsaSig sig(d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size())));
  // Nothing after the signature, and only the canonical encoding.
  if (!sig || p != der.data() + der.size() ||
      i2d_ECDSA_SIG(sig.get(), nullptr) != static_cast<int>(der.size())) {
    return fail(Status::kInvalidArgument);
  }
  const BIGNUM* r = nullptr;
  const BIGNUM* s = nullptr;
  ECDSA_SIG_get0(sig.get(), &r, &s);
  constexpr int kHalf = static_cast<int>(kP384Size);
  Bytes out(kEs384SignatureSize);
  if (BN_bn2binpad(r, out.data(), kHalf) != kHalf ||
      BN_bn2binpad(s, out.data() + kHalf, kHalf) != kHalf) {
    return fail(Status::kInvalidArgument);  // a component larger than the curve
  }
  raw = std::move(out);
  return Status::kOk;
}

Status es384_sign(EVP_PKEY* key, std::span<const uint8_t> tbs, Bytes& raw_signature) {
  if (!is_p384(key)) return fail(Status::kKeyTypeMismatch);
  MdCtx ctx(EVP_MD_CTX_new());
  size_t len = 0;
  if (!ctx ||
      EVP_DigestSignInit_ex(ctx.get(), nullptr, "SHA384", nullptr, nullptr, key, nullptr) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &len, tbs.data(), tbs.size()) != 1) {
    return fail(Status::kCryptoFailure);
  }
  Bytes der(len);
  if (EVP_DigestSign(ctx.get(), der.data(), &len, tbs.data(), tbs.size()) != 1) {
    return fail(Status::kCryptoFailure);
  }
  der.resize(len);
  return ok(ecdsa_der_to_raw(der, raw_signature)) ? Status::kOk : Status::kCryptoFailure;
}

Status es384_verify(EVP_PKEY* key, std::span<const uint8_t> tbs,
                    std::span<const uint8_t> raw_signature, OSSL_LIB_CTX* libctx) {
  Bytes der;
  if (!is_p384(key) || !ok(ecdsa_raw_to_der(raw_signature, der))) {
    return fail(Status::kSignatureInvalid);
  }
  MdCtx ctx(EVP_MD_CTX_new());
  if (!ctx ||
      EVP_DigestVerifyInit_ex(ctx.get(), nullptr, "SHA384", libctx, nullptr, key, nullptr) != 1) {
    return fail(Status::kCryptoFailure);
  }
  const int rc = EVP_DigestVerify(ctx.get(), der.data(), der.size(), tbs.data(), tbs.size());
  return fail(rc == 1 ? Status::kOk : Status::kSignatureInvalid);
}

// ---------------------------------------------------------------- COSE_Key

namespace {

// RFC 9052/9053 labels.
constexpr uint64_t kKty = 1;
constexpr int64_t kCrv = -1, kX = -2, kY = -3;  // EC2 and OKP
constexpr int64_t kRsaN = -1, kRsaE = -2;       // RSA (RFC 8230)
constexpr uint64_t kKtyOkp = 1, kKtyEc2 = 2, kKtyRsa = 3;
constexpr size_t kMaxRsaModulus = 1024;  // 8192 bits
constexpr size_t kMaxRsaExponent = 8;

struct CurveEntry {
  uint64_t crv;
  int nid;
  const char* group;
  size_t size;
};
constexpr std::array<CurveEntry, 3> kEc2Curves = {{
    {1, NID_X9_62_prime256v1, "P-256", 32},
    {2, NID_secp384r1, "P-384", 48},
    {3, NID_secp521r1, "P-521", 66},
}};
constexpr uint64_t kCrvX25519 = 4, kCrvEd25519 = 6;
constexpr size_t kOkpSize = 32;

const Value* label(const Value& m, int64_t l) {
  for (const auto& [k, v] : m.entries()) {
    if (l >= 0 && k.is(Type::kUint) && k.as_uint() == static_cast<uint64_t>(l)) return &v;
    if (l < 0 && k.is(Type::kNegint) && k.as_negint() == l) return &v;
  }
  return nullptr;
}

// A byte-string member of exactly `size` bytes (any size up to `max` when
// size is 0), else nullptr.
const Bytes* bytes_member(const Value& m, int64_t l, size_t size, size_t max = 0) {
  const Value* v = label(m, l);
  if (v == nullptr || !v->is(Type::kBytes)) return nullptr;
  const size_t n = v->as_bytes().size();
  if (size != 0 ? n != size : (n == 0 || n > max)) return nullptr;
  return &v->as_bytes();
}

Bytes bn_bytes(EVP_PKEY* key, const char* name, size_t pad) {
  BIGNUM* raw = nullptr;
  if (EVP_PKEY_get_bn_param(key, name, &raw) != 1) return {};
  Bn bn(raw);
  const size_t n = pad != 0 ? pad : static_cast<size_t>(BN_num_bytes(bn.get()));
  Bytes out(n);
  if (BN_bn2binpad(bn.get(), out.data(), static_cast<int>(n)) != static_cast<int>(n)) return {};
  return out;
}

Status ec2_to_cose(EVP_PKEY* key, Value& out) {
  char group[32] = {};
  if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                     nullptr) != 1) {
    return fail(Status::kKeyTypeMismatch);
  }
  const int nid = OBJ_txt2nid(group);
  for (const auto& c : kEc2Curves) {
    if (c.nid != nid) continue;
    const Bytes x = bn_bytes(key, OSSL_PKEY_PARAM_EC_PUB_X, c.size);
    const Bytes y = bn_bytes(key, OSSL_PKEY_PARAM_EC_PUB_Y, c.size);
    if (x.empty() || y.empty()) return fail(Status::kCryptoFailure);
    out = Value::map();
    out.set(kKty, Value::uint(kKtyEc2));
    out.set(kCrv, Value::uint(c.crv));
    out.set(kX, Value::bytes(x));
    out.set(kY, Value::bytes(y));
    return Status::kOk;
  }
  return fail(Status::kKeyTypeMismatch);
}

Status okp_to_cose(EVP_PKEY* key, uint64_t crv, Value& out) {
  Bytes x(kOkpSize);
  size_t len = 0;
  if (EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_PUB_KEY, x.data(), x.size(), &len) !=
          1 ||
      len != kOkpSize) {
    return fail(Status::kCryptoFailure);
  }
  out = Value::map();
  out.set(kKty, Value::uint(kKtyOkp));
  out.set(kCrv, Value::uint(crv));
  out.set(kX, Value::bytes(x));
  return Status::kOk;
}

Status rsa_to_cose(EVP_PKEY* key, Value& out) {
  const Bytes n = bn_bytes(key, OSSL_PKEY_PARAM_RSA_N, 0);
  const Bytes e = bn_bytes(key, OSSL_PKEY_PARAM_RSA_E, 0);
  if (n.empty() || e.empty()) return fail(Status::kCryptoFailure);
  out = Value::map();
  out.set(kKty, Value::uint(kKtyRsa));
  out.set(kRsaN, Value::bytes(n));
  out.set(kRsaE, Value::bytes(e));
  return Status::kOk;
}

// Builds a public key from parameters, then lets OpenSSL check it (a point
// on the curve, a plausible modulus), since it came from outside.
Status from_params(const char* type, const OSSL_PARAM* params, OSSL_LIB_CTX* libctx, Pkey& out) {
  PkeyCtx ctx(EVP_PKEY_CTX_new_from_name(libctx, type, nullptr));
  EVP_PKEY* raw = nullptr;
  if (!ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, const_cast<OSSL_PARAM*>(params)) !=
          1) {
    return fail(kBad);
  }
  Pkey key(raw);
  PkeyCtx check(EVP_PKEY_CTX_new_from_pkey(libctx, key.get(), nullptr));
  if (!check || EVP_PKEY_public_check(check.get()) != 1) return fail(kBad);
  out = std::move(key);
  return Status::kOk;
}

Status ec2_from_cose(const Value& m, OSSL_LIB_CTX* libctx, Pkey& out) {
  const Value* crv = label(m, kCrv);
  if (m.entries().size() != 4 || crv == nullptr || !crv->is(Type::kUint)) return kBad;
  for (const auto& c : kEc2Curves) {
    if (c.crv != crv->as_uint()) continue;
    const Bytes* x = bytes_member(m, kX, c.size);
    const Bytes* y = bytes_member(m, kY, c.size);
    if (x == nullptr || y == nullptr) return kBad;
    Bytes point{0x04};  // uncompressed
    point.insert(point.end(), x->begin(), x->end());
    point.insert(point.end(), y->begin(), y->end());
    const OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, const_cast<char*>(c.group), 0),
        OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size()),
        OSSL_PARAM_construct_end()};
    return from_params("EC", params, libctx, out);
  }
  return kBad;
}

Status okp_from_cose(const Value& m, OSSL_LIB_CTX* libctx, Pkey& out) {
  const Value* crv = label(m, kCrv);
  const Bytes* x = bytes_member(m, kX, kOkpSize);
  if (m.entries().size() != 3 || crv == nullptr || !crv->is(Type::kUint) || x == nullptr) {
    return kBad;
  }
  const char* type = crv->as_uint() == kCrvEd25519  ? "ED25519"
                     : crv->as_uint() == kCrvX25519 ? "X25519"
                                                    : nullptr;
  if (type == nullptr) return kBad;
  Bytes copy = *x;  // OSSL_PARAM takes a non-const pointer
  const OSSL_PARAM params[] = {
      OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, copy.data(), copy.size()),
      OSSL_PARAM_construct_end()};
  return from_params(type, params, libctx, out);
}

Status rsa_from_cose(const Value& m, OSSL_LIB_CTX* libctx, Pkey& out) {
  const Bytes* n = bytes_member(m, kRsaN, 0, kMaxRsaModulus);
  const Bytes* e = bytes_member(m, kRsaE, 0, kMaxRsaExponent);
  // RFC 8230: unsigned big-endian without leading zeros.
  if (m.entries().size() != 3 || n == nullptr || e == nullptr || n->front() == 0 ||
      e->front() == 0) {
    return kBad;
  }
  Bn bn_n(BN_bin2bn(n->data(), static_cast<int>(n->size()), nullptr));
  Bn bn_e(BN_bin2bn(e->data(), static_cast<int>(e->size()), nullptr));
  ParamBld bld(OSSL_PARAM_BLD_new());
  if (!bn_n || !bn_e || !bld ||
      OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, bn_n.get()) != 1 ||
      OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, bn_e.get()) != 1) {
    return fail(Status::kCryptoFailure);
  }
  Params params(OSSL_PARAM_BLD_to_param(bld.get()));
  if (!params) return fail(Status::kCryptoFailure);
  return from_params("RSA", params.get(), libctx, out);
}

}  // namespace

Status key_to_cose(EVP_PKEY* key, Value& out) {
  if (key == nullptr) return Status::kInvalidArgument;
  if (EVP_PKEY_is_a(key, "EC") == 1) return ec2_to_cose(key, out);
  if (EVP_PKEY_is_a(key, "ED25519") == 1) return okp_to_cose(key, kCrvEd25519, out);
  if (EVP_PKEY_is_a(key, "X25519") == 1) return okp_to_cose(key, kCrvX25519, out);
  if (EVP_PKEY_is_a(key, "RSA") == 1) return rsa_to_cose(key, out);
  return Status::kKeyTypeMismatch;
}

Status key_from_cose(const Value& in, Pkey& out, OSSL_LIB_CTX* libctx) {
  const Value* kty = label(in, static_cast<int64_t>(kKty));
  if (!in.is(Type::kMap) || kty == nullptr || !kty->is(Type::kUint)) return kBad;
  // Each form checks its member count, so with its required members present
  // (and no duplicates, which the decoder refuses) nothing else can be there.
  switch (kty->as_uint()) {
    case kKtyEc2:
      return ec2_from_cose(in, libctx, out);
    case kKtyOkp:
      return okp_from_cose(in, libctx, out);
    case kKtyRsa:
      return rsa_from_cose(in, libctx, out);
  }
  return kBad;
}

// ---------------------------------------------------------------- payloads

namespace {

constexpr std::array<std::string_view, 16> kFlagNames = {"generated",   "imported",
                                                         "derived",     "session",
                                                         "sensitive",   "always-sensitive",
                                                         "extractable", "never-extractable",
                                                         "sign",        "verify",
                                                         "encrypt",     "decrypt",
                                                         "derive",      "wrap",
                                                         "unwrap",      "modifiable"};

// Payload map keys (docs/attestation.md).
constexpr uint64_t kVersion = 1, kKind = 2, kNonce = 3, kMeasurement = 4, kTime = 5, kSvn = 6;
constexpr uint64_t kPartition = 10, kUid = 11, kClass = 12, kType = 13, kBits = 14, kFlags = 15,
                   kPublicKey = 16, kValueDigest = 17;
constexpr uint64_t kFwVersion = 20, kMinSvn = 21, kState = 22;
constexpr uint64_t kMfVersion = 30, kMfSvn = 31, kMfDigest = 32, kMfName = 33;
constexpr uint64_t kMaxState = 3;  // docs/attestation.md: 0..3

Value common(Kind kind) {
  Value m = Value::map();
  m.set(kVersion, Value::uint(kFormatVersion));
  m.set(kKind, Value::uint(static_cast<uint64_t>(kind)));
  return m;
}

// Decodes a payload map and reads its common members (format version 1).
Status open_common(std::span<const uint8_t> in, Value& out, Kind& kind) {
  if (in.size() > kMaxPayloadSize) return kBad;
  Value v;
  if (!ok(cbor::decode(in, v, cbor::DecodeLimits{3, 64})) || !v.is(Type::kMap)) return kBad;
  const cbor::MapReader m(v);
  uint64_t version = 0, k = 0;
  if (!ok(m.get_uint(kVersion, version)) || version != kFormatVersion ||
      !ok(m.get_uint(kKind, k)) || k < 1 || k > 3) {
    return kBad;
  }
  kind = static_cast<Kind>(k);
  out = std::move(v);
  return Status::kOk;
}

// A payload of the given kind whose other keys are all in `allowed`.
Status open_payload(std::span<const uint8_t> in, Kind want, std::initializer_list<uint64_t> allowed,
                    Value& out) {
  Value v;
  Kind kind{};
  if (!ok(open_common(in, v, kind)) || kind != want) return kBad;
  for (const auto& [key, unused] : v.entries()) {
    if (!key.is(Type::kUint)) return kBad;
    const uint64_t n = key.as_uint();
    if (n != kVersion && n != kKind &&
        std::find(allowed.begin(), allowed.end(), n) == allowed.end()) {
      return kBad;
    }
  }
  out = std::move(v);
  return Status::kOk;
}

bool get_fixed(const cbor::MapReader& m, uint64_t key, Bytes& out, size_t size) {
  return ok(m.get_bytes(key, out, size)) && out.size() == size;
}

bool get_u32(const cbor::MapReader& m, uint64_t key, uint32_t& out) {
  uint64_t v = 0;
  if (!ok(m.get_uint(key, v, UINT32_MAX))) return false;
  out = static_cast<uint32_t>(v);
  return true;
}

// Members 3..6, common to both reports.
bool get_report_common(const cbor::MapReader& m, Bytes& nonce, Bytes& measurement, uint64_t& time,
                       uint64_t& svn) {
  return ok(m.get_bytes(kNonce, nonce, kMaxNonce)) &&
         get_fixed(m, kMeasurement, measurement, kMeasurementSize) && ok(m.get_uint(kTime, time)) &&
         ok(m.get_uint(kSvn, svn));
}

void set_report_common(Value& m, const Bytes& nonce, const Bytes& measurement, uint64_t time,
                       uint64_t svn) {
  m.set(kNonce, Value::bytes(nonce));
  m.set(kMeasurement, Value::bytes(measurement));
  m.set(kTime, Value::uint(time));
  m.set(kSvn, Value::uint(svn));
}

// Members 16 and 17: at most one, each well formed.
bool get_key_material(const Value& v, KeyReport& r) {
  const Value* pub = v.find(kPublicKey);
  const Value* digest = v.find(kValueDigest);
  if (pub != nullptr && digest != nullptr) return false;
  if (pub != nullptr) {
    Pkey key;
    if (!ok(key_from_cose(*pub, key))) return false;
    r.public_key = *pub;
  }
  if (digest != nullptr) {
    if (!digest->is(Type::kBytes) || digest->as_bytes().size() != kMeasurementSize) return false;
    r.value_digest = digest->as_bytes();
  }
  return true;
}

}  // namespace

std::optional<uint32_t> flag_from_name(std::string_view name) {
  for (size_t bit = 0; bit < kFlagNames.size(); ++bit) {
    if (kFlagNames[bit] == name) return 1u << bit;
  }
  return std::nullopt;
}

std::vector<std::string> flag_names(uint32_t flags) {
  std::vector<std::string> out;
  for (size_t bit = 0; bit < kFlagNames.size(); ++bit) {
    if ((flags & (1u << bit)) != 0) out.emplace_back(kFlagNames[bit]);
  }
  return out;
}

std::string_view device_state_name(uint64_t state) {
  switch (state) {
    case 0:
      return "operational";
    case 1:
      return "error";
    case 2:
      return "zeroized";
    case 3:
      return "tamper-locked";
  }
  return "unknown";
}

Bytes encode_key_report(const KeyReport& r) {
  Value m = common(Kind::kKeyReport);
  set_report_common(m, r.nonce, r.measurement, r.time, r.svn);
  m.set(kPartition, Value::uint(r.partition));
  m.set(kUid, Value::bytes(r.uid));
  m.set(kClass, Value::uint(r.object_class));
  m.set(kType, Value::uint(r.key_type));
  m.set(kBits, Value::uint(r.bits));
  m.set(kFlags, Value::uint(r.flags));
  if (r.public_key) m.set(kPublicKey, *r.public_key);
  if (r.value_digest) m.set(kValueDigest, Value::bytes(*r.value_digest));
  return cbor::encode(m);
}

Status decode_key_report(std::span<const uint8_t> payload, KeyReport& out) {
  Value v;
  if (!ok(open_payload(payload, Kind::kKeyReport,
                       {kNonce, kMeasurement, kTime, kSvn, kPartition, kUid, kClass, kType, kBits,
                        kFlags, kPublicKey, kValueDigest},
                       v))) {
    return kBad;
  }
  const cbor::MapReader m(v);
  KeyReport r;
  uint64_t flags = 0;
  if (!get_report_common(m, r.nonce, r.measurement, r.time, r.svn) ||
      !get_u32(m, kPartition, r.partition) || !get_fixed(m, kUid, r.uid, kUidSize) ||
      !get_u32(m, kClass, r.object_class) || !get_u32(m, kType, r.key_type) ||
      !get_u32(m, kBits, r.bits) || !ok(m.get_uint(kFlags, flags, flag::kAll)) ||
      !get_key_material(v, r)) {
    return kBad;
  }
  r.flags = static_cast<uint32_t>(flags);
  out = std::move(r);
  return Status::kOk;
}

Bytes encode_device_report(const DeviceReport& r) {
  Value m = common(Kind::kDeviceReport);
  set_report_common(m, r.nonce, r.measurement, r.time, r.svn);
  m.set(kFwVersion, Value::text(r.firmware_version));
  m.set(kMinSvn, Value::uint(r.min_svn));
  m.set(kState, Value::uint(r.state));
  return cbor::encode(m);
}

Status decode_device_report(std::span<const uint8_t> payload, DeviceReport& out) {
  Value v;
  if (!ok(open_payload(payload, Kind::kDeviceReport,
                       {kNonce, kMeasurement, kTime, kSvn, kFwVersion, kMinSvn, kState}, v))) {
    return kBad;
  }
  const cbor::MapReader m(v);
  DeviceReport r;
  if (!get_report_common(m, r.nonce, r.measurement, r.time, r.svn) ||
      !ok(m.get_text(kFwVersion, r.firmware_version, kMaxVersionText)) ||
      !ok(m.get_uint(kMinSvn, r.min_svn)) || !ok(m.get_uint(kState, r.state, kMaxState))) {
    return kBad;
  }
  out = std::move(r);
  return Status::kOk;
}

Bytes encode_manifest(const Manifest& mf) {
  Value m = common(Kind::kManifest);
  m.set(kMfVersion, Value::text(mf.firmware_version));
  m.set(kMfSvn, Value::uint(mf.svn));
  m.set(kMfDigest, Value::bytes(mf.image_digest));
  m.set(kMfName, Value::text(mf.image_name));
  return cbor::encode(m);
}

Status decode_manifest(std::span<const uint8_t> payload, Manifest& out) {
  Value v;
  if (!ok(open_payload(payload, Kind::kManifest, {kMfVersion, kMfSvn, kMfDigest, kMfName}, v))) {
    return kBad;
  }
  const cbor::MapReader m(v);
  Manifest mf;
  if (!ok(m.get_text(kMfVersion, mf.firmware_version, kMaxVersionText)) ||
      !ok(m.get_uint(kMfSvn, mf.svn)) ||
      !get_fixed(m, kMfDigest, mf.image_digest, kMeasurementSize) ||
      !ok(m.get_text(kMfName, mf.image_name, kMaxImageName))) {
    return kBad;
  }
  out = std::move(mf);
  return Status::kOk;
}

Status payload_kind(std::span<const uint8_t> payload, Kind& out) {
  Value unused;
  return open_common(payload, unused, out);
}

}  // namespace ihsm::cose
