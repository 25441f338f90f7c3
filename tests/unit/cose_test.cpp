// src/common/cose.h: COSE_Sign1 bytes against hand-written encodings, the
// decoder against every truncation and byte flip of a valid message,
// ES384 and the r||s <-> DER conversions against independent OpenSSL code
// (support/ossl.h), COSE_Key round trips for each key type, and the three
// payloads with the integer keys docs/attestation.md gives.
#include "common/cose.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <tuple>

#include "support/ossl.h"
#include "support/util.h"

namespace ihsm {
namespace {

using cbor::Value;
using test::from_hex;
using test::to_hex;
using Type = Value::Type;

Bytes sample_signature() { return Bytes(96, 0x11); }

cose::Sign1 sample_sign1() {
  cose::Sign1 s;
  s.x5chain = {from_hex("3003020101"), Bytes(300, 0x30)};
  s.payload = from_hex("a20101020144");
  s.signature = sample_signature();
  return s;
}

bool same(const cose::Sign1& a, const cose::Sign1& b) {
  return a.x5chain == b.x5chain && a.payload == b.payload && a.signature == b.signature;
}

Status decode(const Bytes& in) {
  cose::Sign1 s;
  return cose::decode_sign1(in, s);
}

// ---------------------------------------------------------------- COSE_Sign1

TEST(CoseSign1, ProtectedHeaderAndSigStructureBytes) {
  EXPECT_EQ(to_hex(cose::protected_header()), "a1013822");  // {1: -35}
  // ["Signature1", h'a1013822', h'', h'a0']
  EXPECT_EQ(to_hex(cose::sig_structure(cose::protected_header(), from_hex("a0"))),
            "846a5369676e61747572653144a10138224041a0");
}

TEST(CoseSign1, EncodeKnownAnswer) {
  cose::Sign1 s;
  s.x5chain = {from_hex("01")};
  s.payload = from_hex("a0");
  s.signature = sample_signature();
  // 18([h'a1013822', {33: [h'01']}, h'a0', h'11...'])
  EXPECT_EQ(to_hex(cose::encode_sign1(s)),
            "d28444a1013822a1182181410141a05860" + std::string(192, '1'));
  // Without certificates the unprotected map is empty.
  s.x5chain.clear();
  EXPECT_EQ(to_hex(cose::encode_sign1(s)), "d28444a1013822a041a05860" + std::string(192, '1'));
}

TEST(CoseSign1, RoundTripTaggedAndUntagged) {
  const cose::Sign1 s = sample_sign1();
  const Bytes tagged = cose::encode_sign1(s);
  cose::Sign1 back;
  ASSERT_EQ(cose::decode_sign1(tagged, back), Status::kOk);
  EXPECT_TRUE(same(s, back));
  const Bytes untagged(tagged.begin() + 1, tagged.end());
  cose::Sign1 back2;
  ASSERT_EQ(cose::decode_sign1(untagged, back2), Status::kOk);
  EXPECT_TRUE(same(s, back2));
  // The empty chain survives as empty.
  cose::Sign1 bare = s;
  bare.x5chain.clear();
  ASSERT_EQ(cose::decode_sign1(cose::encode_sign1(bare), back), Status::kOk);
  EXPECT_TRUE(same(bare, back));
}

TEST(CoseSign1, RejectsWhatTheFormatDoesNotAllow) {
  const std::string sig = "5860" + std::string(192, '1');
  const std::string prot = "44a1013822";
  // The reference message, accepted, so each case below fails for its reason.
  ASSERT_EQ(decode(from_hex("d284" + prot + "a041a0" + sig)), Status::kOk);
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"other tag", "c084" + prot + "a041a0" + sig},
      {"tag 18 in two bytes", "d81284" + prot + "a041a0" + sig},
      {"tag twice", "d2d284" + prot + "a041a0" + sig},
      {"ES256", "d28443a10126a041a0" + sig},
      {"protected with a second member", "d28446a201382204f5a041a0" + sig},
      {"protected non-minimal",
       "d28445a1180138"
       "22a041a0" +
           sig},
      {"protected empty", "d28440a041a0" + sig},
      {"protected as a map",
       "d284a10138"
       "22a041a0" +
           sig},
      {"three items", "d283" + prot + "a041a0"},
      {"five items", "d285" + prot + "a041a0" + sig + "40"},
      {"signature 64 bytes", "d284" + prot + "a041a05840" + std::string(128, '1')},
      {"signature 97 bytes", "d284" + prot + "a041a05861" + std::string(194, '1')},
      {"payload nil", "d284" + prot + "a0f6" + sig},
      {"payload text", "d284" + prot + "a061a0" + sig},
      {"x5chain a bare bstr", "d284" + prot +
                                  "a118214101"
                                  "41a0" +
                                  sig},
      {"x5chain empty", "d284" + prot +
                            "a1182180"
                            "41a0" +
                            sig},
      {"x5chain of text", "d284" + prot +
                              "a118218161"
                              "41"
                              "41a0" +
                              sig},
      {"x5chain of an empty bstr", "d284" + prot +
                                       "a118218140"
                                       "41a0" +
                                       sig},
      {"other unprotected label", "d284" + prot +
                                      "a10401"
                                      "41a0" +
                                      sig},
      {"x5chain and another label", "d284" + prot +
                                        "a21821814101"
                                        "0401"
                                        "41a0" +
                                        sig},
      {"unprotected not a map", "d284" + prot +
                                    "80"
                                    "41a0" +
                                    sig},
      {"trailing byte", "d284" + prot + "a041a0" + sig + "00"},
      {"indefinite array", "d29f" + prot + "a041a0" + sig + "ff"},
      {"not an array", "d2a0"},
      {"tag alone", "d2"},
      {"empty", ""},
  };
  for (const auto& [name, hex] : cases) {
    EXPECT_NE(decode(from_hex(hex)), Status::kOk) << name;
  }
}

TEST(CoseSign1, Bounds) {
  cose::Sign1 s = sample_sign1();
  s.x5chain = std::vector<Bytes>(4, Bytes(cose::kMaxCertSize, 0x30));
  cose::Sign1 back;
  EXPECT_EQ(cose::decode_sign1(cose::encode_sign1(s), back), Status::kOk);
  s.x5chain.push_back(from_hex("30"));  // a fifth certificate
  EXPECT_NE(cose::decode_sign1(cose::encode_sign1(s), back), Status::kOk);
  s.x5chain = {Bytes(cose::kMaxCertSize + 1, 0x30)};
  EXPECT_NE(cose::decode_sign1(cose::encode_sign1(s), back), Status::kOk);
  s = sample_sign1();
  s.payload = Bytes(cose::kMaxPayloadSize, 0xA0);
  EXPECT_EQ(cose::decode_sign1(cose::encode_sign1(s), back), Status::kOk);
  s.payload.push_back(0);
  EXPECT_NE(cose::decode_sign1(cose::encode_sign1(s), back), Status::kOk);
  EXPECT_NE(cose::decode_sign1(Bytes(cose::kMaxSign1Size + 1, 0xD2), back), Status::kOk);
}

TEST(CoseSign1, EveryTruncationAndByteFlip) {
  const cose::Sign1 s = sample_sign1();
  const Bytes good = cose::encode_sign1(s);
  for (size_t n = 0; n < good.size(); ++n) {
    cose::Sign1 out;
    ASSERT_NE(cose::decode_sign1(std::span(good.data(), n), out), Status::kOk) << n;
  }
  // A flipped byte either fails to decode or decodes to something else
  // (the flip landed in a certificate, the payload or the signature).
  size_t accepted = 0;
  for (size_t i = 0; i < good.size(); ++i) {
    for (uint8_t mask : {0x01, 0x20, 0x80, 0xFF}) {
      Bytes bad = good;
      bad[i] ^= mask;
      cose::Sign1 out;
      if (cose::decode_sign1(bad, out) == Status::kOk) {
        ++accepted;
        ASSERT_FALSE(same(s, out)) << "position " << i << " mask " << int(mask);
      }
    }
  }
  EXPECT_GT(accepted, 0u);  // the flips inside the byte strings
}

// ---------------------------------------------------------------- ECDSA

TEST(CoseEcdsa, Es384AgainstIndependentOpenSsl) {
  test::ossl::Pkey key = test::ossl::generate_ec("P-384");
  const Bytes spki = test::ossl::spki_of(key.get());
  const Bytes tbs = cose::sig_structure(cose::protected_header(), from_hex("a0"));
  Bytes raw;
  ASSERT_EQ(cose::es384_sign(key.get(), tbs, raw), Status::kOk);
  ASSERT_EQ(raw.size(), 96u);
  EXPECT_TRUE(test::ossl::verify_ecdsa_raw(spki, EVP_sha384(), tbs, raw));
  EXPECT_EQ(cose::es384_verify(key.get(), tbs, raw), Status::kOk);
  Bytes other_tbs = tbs;
  other_tbs.back() ^= 1;
  EXPECT_EQ(cose::es384_verify(key.get(), other_tbs, raw), Status::kSignatureInvalid);
  raw[5] ^= 1;
  EXPECT_EQ(cose::es384_verify(key.get(), tbs, raw), Status::kSignatureInvalid);
  EXPECT_EQ(cose::es384_verify(key.get(), tbs, Bytes(95, 1)), Status::kSignatureInvalid);
  // ES384 means P-384: a P-256 key neither signs nor verifies.
  test::ossl::Pkey p256 = test::ossl::generate_ec("P-256");
  EXPECT_NE(cose::es384_sign(p256.get(), tbs, raw), Status::kOk);
  EXPECT_EQ(cose::es384_verify(p256.get(), tbs, Bytes(96, 1)), Status::kSignatureInvalid);
}

TEST(CoseEcdsa, RawDerConversions) {
  Bytes raw(96);
  for (size_t i = 0; i < raw.size(); ++i) raw[i] = static_cast<uint8_t>(i + 1);
  Bytes der;
  ASSERT_EQ(cose::ecdsa_raw_to_der(raw, der), Status::kOk);
  EXPECT_EQ(der, test::ossl::raw_sig_to_der(raw));
  Bytes back;
  ASSERT_EQ(cose::ecdsa_der_to_raw(der, back), Status::kOk);
  EXPECT_EQ(back, raw);
  // Small components are padded back to 48 bytes.
  Bytes small(96, 0);
  small[47] = 1;
  small[95] = 2;
  ASSERT_EQ(cose::ecdsa_raw_to_der(small, der), Status::kOk);
  EXPECT_EQ(to_hex(der), "3006020101020102");
  ASSERT_EQ(cose::ecdsa_der_to_raw(der, back), Status::kOk);
  EXPECT_EQ(back, small);
  // Refused: wrong raw sizes, trailing bytes, non-minimal integers, a
  // component longer than 48 bytes.
  EXPECT_NE(cose::ecdsa_raw_to_der(Bytes(64, 1), der), Status::kOk);
  EXPECT_NE(cose::ecdsa_raw_to_der(Bytes(97, 1), der), Status::kOk);
  EXPECT_NE(cose::ecdsa_der_to_raw(from_hex("300602010102010200"), back), Status::kOk);
  EXPECT_NE(cose::ecdsa_der_to_raw(from_hex("300702020001020102"), back), Status::kOk);
  EXPECT_NE(cose::ecdsa_der_to_raw(from_hex(""), back), Status::kOk);
  Bytes big = test::ossl::raw_sig_to_der(Bytes(132, 0x7F));  // P-521-sized halves
  EXPECT_NE(cose::ecdsa_der_to_raw(big, back), Status::kOk);
}

// ---------------------------------------------------------------- COSE_Key

const Value* member(const Value& m, int64_t label) {
  for (const auto& [k, v] : m.entries()) {
    if ((label >= 0 && k.is(Type::kUint) && k.as_uint() == static_cast<uint64_t>(label)) ||
        (label < 0 && k.is(Type::kNegint) && k.as_negint() == label)) {
      return &v;
    }
  }
  return nullptr;
}

// key -> COSE_Key -> CBOR bytes -> COSE_Key -> key, which must equal the first.
Value round_trip(EVP_PKEY* key) {
  Value cose_key;
  EXPECT_EQ(cose::key_to_cose(key, cose_key), Status::kOk);
  Value decoded;
  EXPECT_EQ(cbor::decode(cbor::encode(cose_key), decoded), Status::kOk);
  cose::Pkey back;
  EXPECT_EQ(cose::key_from_cose(decoded, back), Status::kOk);
  EXPECT_TRUE(back && EVP_PKEY_eq(key, back.get()) == 1);
  return decoded;
}

Status from_cose_hex(const std::string& hex) {
  Value v;
  if (cbor::decode(from_hex(hex), v) != Status::kOk) return Status::kInternalError;
  cose::Pkey key;
  return cose::key_from_cose(v, key);
}

TEST(CoseKey, Ec2RoundTrips) {
  const std::vector<std::tuple<const char*, uint64_t, size_t>> curves = {
      {"P-256", 1, 32}, {"P-384", 2, 48}, {"P-521", 3, 66}};
  for (const auto& [group, crv, size] : curves) {
    test::ossl::Pkey key = test::ossl::generate_ec(group);
    const Value m = round_trip(key.get());
    ASSERT_EQ(m.entries().size(), 4u) << group;
    EXPECT_EQ(member(m, 1)->as_uint(), 2u);
    EXPECT_EQ(member(m, -1)->as_uint(), crv);
    // x || y is the SPKI's uncompressed point without its 0x04.
    const Bytes point = test::ossl::uncompressed_point(test::ossl::spki_of(key.get()));
    Bytes xy = member(m, -2)->as_bytes();
    const Bytes& y = member(m, -3)->as_bytes();
    EXPECT_EQ(xy.size(), size);
    xy.insert(xy.end(), y.begin(), y.end());
    EXPECT_EQ(xy, Bytes(point.begin() + 1, point.end())) << group;
  }
}

TEST(CoseKey, OkpRoundTrips) {
  for (const auto& [type, crv] : {std::pair{"ED25519", 6u}, std::pair{"X25519", 4u}}) {
    test::ossl::Pkey key(EVP_PKEY_Q_keygen(nullptr, nullptr, type));
    const Value m = round_trip(key.get());
    ASSERT_EQ(m.entries().size(), 3u);
    EXPECT_EQ(member(m, 1)->as_uint(), 1u);
    EXPECT_EQ(member(m, -1)->as_uint(), crv);
    Bytes raw(32);
    size_t len = raw.size();
    EVP_PKEY_get_raw_public_key(key.get(), raw.data(), &len);
    EXPECT_EQ(member(m, -2)->as_bytes(), raw) << type;
  }
}

TEST(CoseKey, RsaRoundTrips) {
  test::ossl::Pkey key(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{2048}));
  const Value m = round_trip(key.get());
  ASSERT_EQ(m.entries().size(), 3u);
  EXPECT_EQ(member(m, 1)->as_uint(), 3u);
  EXPECT_EQ(member(m, -1)->as_bytes().size(), 256u);
  EXPECT_EQ(to_hex(member(m, -2)->as_bytes()), "010001");
}

TEST(CoseKey, RejectsMalformedKeys) {
  test::ossl::Pkey key = test::ossl::generate_ec("P-256");
  Value good;
  ASSERT_EQ(cose::key_to_cose(key.get(), good), Status::kOk);
  const std::string hex = to_hex(cbor::encode(good));
  ASSERT_EQ(from_cose_hex(hex), Status::kOk);
  // Not on the curve: the last byte of y changed.
  std::string off_curve = hex;
  off_curve.back() = off_curve.back() == '0' ? '1' : '0';
  EXPECT_EQ(from_cose_hex(off_curve), Status::kMalformedBody);
  const std::string x32 = "5820" + std::string(64, '1');
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"missing y",
       "a3010220012158"
       "20" +
           std::string(64, '1')},
      {"unknown curve",
       "a401022007"
       "21" +
           x32 + "22" + x32},
      {"short x",
       "a401022001"
       "21581f" +
           std::string(62, '1') + "22" + x32},
      {"y as a bool",
       "a401022001"
       "21" +
           x32 + "22f5"},
      {"extra member",
       "a501022001"
       "21" +
           x32 + "22" + x32 + "0401"},
      {"no kty",
       "a22001"
       "21" +
           x32},
      {"symmetric kty",
       "a20104"
       "2041"
       "00"},
      {"OKP unknown curve",
       "a301012007"
       "21" +
           x32},
      {"OKP short x",
       "a301012006"
       "21581f" +
           std::string(62, '1')},
      {"RSA leading zero n", "a3010320430001012143010001"},
      {"RSA leading zero e",
       "a30103"
       "2043c00001"
       "2143000101"},
      {"RSA empty e",
       "a301032043c0000121"
       "40"},
      {"not a map", "80"},
  };
  for (const auto& [name, c] : cases) EXPECT_EQ(from_cose_hex(c), Status::kMalformedBody) << name;
}

// ---------------------------------------------------------------- payloads

TEST(CosePayload, FlagTableIsTheDocs) {
  const std::vector<std::string> names = {"generated",   "imported",
                                          "derived",     "session",
                                          "sensitive",   "always-sensitive",
                                          "extractable", "never-extractable",
                                          "sign",        "verify",
                                          "encrypt",     "decrypt",
                                          "derive",      "wrap",
                                          "unwrap",      "modifiable"};
  for (size_t bit = 0; bit < names.size(); ++bit) {
    EXPECT_EQ(cose::flag_from_name(names[bit]), 1u << bit) << names[bit];
  }
  EXPECT_EQ(cose::flag_names(0xFFFF), names);
  EXPECT_EQ(cose::flag_names(cose::flag::kSign | cose::flag::kGenerated),
            (std::vector<std::string>{"generated", "sign"}));
  EXPECT_EQ(cose::flag::kModifiable, 1u << 15);
  EXPECT_EQ(cose::flag::kNeverExtractable, 1u << 7);
  EXPECT_FALSE(cose::flag_from_name("trusted"));
  EXPECT_FALSE(cose::flag_from_name(""));
  EXPECT_FALSE(cose::flag_from_name("Sign"));
}

cose::KeyReport key_report() {
  cose::KeyReport r;
  r.nonce = from_hex("0102");
  r.measurement = Bytes(48, 0xAB);
  r.time = 1700000000;
  r.svn = 4;
  r.partition = 7;
  r.uid = Bytes(16, 0x55);
  r.object_class = 3;
  r.key_type = 3;
  r.bits = 384;
  r.flags = cose::flag::kGenerated | cose::flag::kSign;
  test::ossl::Pkey key = test::ossl::generate_ec("P-384");
  Value k;
  EXPECT_EQ(cose::key_to_cose(key.get(), k), Status::kOk);
  r.public_key = k;
  return r;
}

TEST(CosePayload, KeyReportUsesTheDocsKeys) {
  const cose::KeyReport r = key_report();
  const Bytes payload = cose::encode_key_report(r);
  Value m;
  ASSERT_EQ(cbor::decode(payload, m), Status::kOk);
  EXPECT_EQ(m.entries().size(), 13u);
  EXPECT_EQ(m.find(1)->as_uint(), 1u);
  EXPECT_EQ(m.find(2)->as_uint(), 1u);
  EXPECT_EQ(m.find(3)->as_bytes(), r.nonce);
  EXPECT_EQ(m.find(4)->as_bytes(), r.measurement);
  EXPECT_EQ(m.find(5)->as_uint(), r.time);
  EXPECT_EQ(m.find(6)->as_uint(), r.svn);
  EXPECT_EQ(m.find(10)->as_uint(), 7u);
  EXPECT_EQ(m.find(11)->as_bytes(), r.uid);
  EXPECT_EQ(m.find(12)->as_uint(), 3u);
  EXPECT_EQ(m.find(13)->as_uint(), 3u);
  EXPECT_EQ(m.find(14)->as_uint(), 384u);
  EXPECT_EQ(m.find(15)->as_uint(), 0x101u);
  EXPECT_TRUE(m.find(16)->is(Type::kMap));
  EXPECT_EQ(m.find(17), nullptr);

  cose::KeyReport back;
  ASSERT_EQ(cose::decode_key_report(payload, back), Status::kOk);
  EXPECT_EQ(cose::encode_key_report(back), payload);
  EXPECT_EQ(back.partition, 7u);
  EXPECT_EQ(back.flags, r.flags);
  EXPECT_FALSE(back.value_digest);
  cose::Kind kind{};
  ASSERT_EQ(cose::payload_kind(payload, kind), Status::kOk);
  EXPECT_EQ(kind, cose::Kind::kKeyReport);

  cose::KeyReport secret = r;
  secret.public_key.reset();
  secret.value_digest = Bytes(48, 0x77);
  ASSERT_EQ(cose::decode_key_report(cose::encode_key_report(secret), back), Status::kOk);
  EXPECT_EQ(back.value_digest, Bytes(48, 0x77));
  EXPECT_FALSE(back.public_key);
}

TEST(CosePayload, DeviceReportAndManifestRoundTrip) {
  cose::DeviceReport d{from_hex(""), Bytes(48, 1), 5, 6, "0.1.0", 2, 1};
  const Bytes dp = cose::encode_device_report(d);
  Value m;
  ASSERT_EQ(cbor::decode(dp, m), Status::kOk);
  EXPECT_EQ(m.find(2)->as_uint(), 2u);
  EXPECT_EQ(m.find(20)->as_text(), "0.1.0");
  EXPECT_EQ(m.find(21)->as_uint(), 2u);
  EXPECT_EQ(m.find(22)->as_uint(), 1u);
  cose::DeviceReport db;
  ASSERT_EQ(cose::decode_device_report(dp, db), Status::kOk);
  EXPECT_EQ(cose::encode_device_report(db), dp);
  EXPECT_EQ(cose::device_state_name(db.state), "error");

  cose::Manifest mf{"0.1.0", 9, Bytes(48, 2), "ihsm-firmware.so"};
  const Bytes mp = cose::encode_manifest(mf);
  ASSERT_EQ(cbor::decode(mp, m), Status::kOk);
  EXPECT_EQ(m.find(2)->as_uint(), 3u);
  EXPECT_EQ(m.find(30)->as_text(), "0.1.0");
  EXPECT_EQ(m.find(31)->as_uint(), 9u);
  EXPECT_EQ(m.find(32)->as_bytes(), Bytes(48, 2));
  EXPECT_EQ(m.find(33)->as_text(), "ihsm-firmware.so");
  cose::Manifest mb;
  ASSERT_EQ(cose::decode_manifest(mp, mb), Status::kOk);
  EXPECT_EQ(cose::encode_manifest(mb), mp);
  // Each decoder takes only its own kind.
  cose::KeyReport kr;
  EXPECT_NE(cose::decode_key_report(dp, kr), Status::kOk);
  EXPECT_NE(cose::decode_device_report(mp, db), Status::kOk);
  EXPECT_NE(cose::decode_manifest(dp, mb), Status::kOk);
}

// The key report re-encoded after one change to its CBOR map.
template <typename F>
Status key_report_with(F change) {
  Value m;
  EXPECT_EQ(cbor::decode(cose::encode_key_report(key_report()), m), Status::kOk);
  change(m);
  cose::KeyReport out;
  return cose::decode_key_report(cbor::encode(m), out);
}

TEST(CosePayload, KeyReportRejects) {
  ASSERT_EQ(key_report_with([](Value&) {}), Status::kOk);
  const std::vector<std::pair<std::string, std::function<void(Value&)>>> cases = {
      {"unknown key", [](Value& m) { m.set(uint64_t{18}, Value::uint(0)); }},
      {"negative key", [](Value& m) { m.set(int64_t{-1}, Value::uint(0)); }},
      {"version 2", [](Value& m) { m.set(uint64_t{1}, Value::uint(2)); }},
      {"kind 2", [](Value& m) { m.set(uint64_t{2}, Value::uint(2)); }},
      {"nonce 129", [](Value& m) { m.set(uint64_t{3}, Value::bytes(Bytes(129, 0))); }},
      {"measurement 47", [](Value& m) { m.set(uint64_t{4}, Value::bytes(Bytes(47, 0))); }},
      {"measurement text", [](Value& m) { m.set(uint64_t{4}, Value::text("x")); }},
      {"time negative", [](Value& m) { m.set(uint64_t{5}, Value::negint(-1)); }},
      {"partition > 32 bits", [](Value& m) { m.set(uint64_t{10}, Value::uint(1ull << 32)); }},
      {"uid 15", [](Value& m) { m.set(uint64_t{11}, Value::bytes(Bytes(15, 0))); }},
      {"uid 17", [](Value& m) { m.set(uint64_t{11}, Value::bytes(Bytes(17, 0))); }},
      {"flag bit 16", [](Value& m) { m.set(uint64_t{15}, Value::uint(1u << 16)); }},
      {"digest and key", [](Value& m) { m.set(uint64_t{17}, Value::bytes(Bytes(48, 0))); }},
      {"bad COSE_Key", [](Value& m) { m.set(uint64_t{16}, Value::map()); }},
      {"key as bytes", [](Value& m) { m.set(uint64_t{16}, Value::bytes(Bytes(4, 0))); }},
      {"missing bits",
       [](Value& m) {
         auto& e = m.mutable_entries();
         e.erase(std::remove_if(e.begin(), e.end(),
                                [](const auto& kv) { return kv.first.as_uint() == 14; }),
                 e.end());
       }},
  };
  for (const auto& [name, change] : cases) {
    EXPECT_EQ(key_report_with(change), Status::kMalformedBody) << name;
  }
  cose::KeyReport r = key_report();
  r.public_key.reset();
  r.value_digest = Bytes(47, 0);
  cose::KeyReport out;
  EXPECT_NE(cose::decode_key_report(cose::encode_key_report(r), out), Status::kOk);
}

TEST(CosePayload, DeviceReportRejects) {
  cose::DeviceReport d{Bytes(128, 0), Bytes(48, 1), 5, 6, std::string(64, 'v'), 2, 2};
  cose::DeviceReport out;
  ASSERT_EQ(cose::decode_device_report(cose::encode_device_report(d), out), Status::kOk);
  d.state = 3;  // tamper-locked
  ASSERT_EQ(cose::decode_device_report(cose::encode_device_report(d), out), Status::kOk);
  EXPECT_EQ(cose::device_state_name(out.state), "tamper-locked");
  d.state = 4;
  EXPECT_NE(cose::decode_device_report(cose::encode_device_report(d), out), Status::kOk);
  d.state = 0;
  d.firmware_version += "v";
  EXPECT_NE(cose::decode_device_report(cose::encode_device_report(d), out), Status::kOk);
  d.firmware_version = "1";
  d.nonce.push_back(0);
  EXPECT_NE(cose::decode_device_report(cose::encode_device_report(d), out), Status::kOk);
  cose::Kind kind{};
  EXPECT_NE(cose::payload_kind(from_hex("a201010204"), kind), Status::kOk);
  EXPECT_NE(cose::payload_kind(from_hex("a201020202"), kind), Status::kOk);
  EXPECT_NE(cose::payload_kind(from_hex("a10101"), kind), Status::kOk);
  EXPECT_NE(cose::payload_kind(from_hex("80"), kind), Status::kOk);
}

TEST(CosePayload, EveryTruncationOfAKeyReport) {
  const Bytes payload = cose::encode_key_report(key_report());
  for (size_t n = 0; n < payload.size(); ++n) {
    cose::KeyReport out;
    ASSERT_NE(cose::decode_key_report(std::span(payload.data(), n), out), Status::kOk) << n;
  }
}

}  // namespace
}  // namespace ihsm
