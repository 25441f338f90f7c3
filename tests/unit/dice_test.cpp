// The DICE identity (src/device/boot/dice.h) and TcbInfo (src/common/tcb_info.h):
// key derivation checked against an independent HKDF and scalar reduction,
// the certificate chain checked with OpenSSL's verifier and the `openssl
// verify` command, and the TcbInfo decoder against hostile input.
#include "device/boot/dice.h"

#include <gtest/gtest.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/obj_mac.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <limits>
#include <random>

#include "common/tcb_info.h"
#include "support/ossl.h"
#include "support/util.h"

namespace ihsm::device::boot {
namespace {

using dice::decode_tcb_info;
using dice::encode_tcb_info;
using test::Bytes;
using test::from_hex;
using test::to_hex;
namespace ossl = test::ossl;

struct X509Del {
  void operator()(X509* p) const { X509_free(p); }
};
struct StoreDel {
  void operator()(X509_STORE* p) const { X509_STORE_free(p); }
};
struct StoreCtxDel {
  void operator()(X509_STORE_CTX* p) const { X509_STORE_CTX_free(p); }
};
struct StackDel {
  void operator()(STACK_OF(X509) * p) const { sk_X509_pop_free(p, X509_free); }
};
struct BnDel {
  void operator()(BIGNUM* p) const { BN_free(p); }
};
struct GroupDel {
  void operator()(EC_GROUP* p) const { EC_GROUP_free(p); }
};
using X509Ptr = std::unique_ptr<X509, X509Del>;
using Bn = std::unique_ptr<BIGNUM, BnDel>;

const Bytes kDus = from_hex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
const Bytes kOtherDus(32, 0x5a);
const Bytes kFingerprint = from_hex("0123456789abcdef");

Bytes measurement(uint8_t fill) { return Bytes(48, fill); }

Bytes spki(EVP_PKEY* key) { return ossl::spki_of(key); }

X509Ptr parse(const Bytes& der) {
  const unsigned char* p = der.data();
  X509Ptr cert(d2i_X509(nullptr, &p, static_cast<long>(der.size())));
  if (p != der.data() + der.size()) return nullptr;
  return cert;
}

std::string pem(const Bytes& der) {
  X509Ptr cert = parse(der);
  std::unique_ptr<BIO, ossl::BioDel> bio(BIO_new(BIO_s_mem()));
  if (!cert || PEM_write_bio_X509(bio.get(), cert.get()) != 1) return {};
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(len));
}

// "CN=...,O=..." (RFC 2253 order: the last RDN of the DER first).
std::string subject_of(X509* cert) {
  std::unique_ptr<BIO, ossl::BioDel> bio(BIO_new(BIO_s_mem()));
  X509_NAME_print_ex(bio.get(), X509_get_subject_name(cert), 0, XN_FLAG_RFC2253);
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(len));
}

std::string time_text(const ASN1_TIME* t) {
  return std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(t)),
                     static_cast<size_t>(ASN1_STRING_length(t)));
}

// X509_V_OK when `leaf` verifies up to `root` through `untrusted`.
int verify_chain(const Bytes& root, const std::vector<Bytes>& untrusted, const Bytes& leaf,
                 unsigned long flags = 0) {
  std::unique_ptr<X509_STORE, StoreDel> store(X509_STORE_new());
  std::unique_ptr<STACK_OF(X509), StackDel> chain(sk_X509_new_null());
  X509Ptr anchor = parse(root), target = parse(leaf);
  if (!store || !chain || !anchor || !target ||
      X509_STORE_add_cert(store.get(), anchor.get()) != 1) {
    return -1;
  }
  for (const Bytes& der : untrusted) {
    X509Ptr cert = parse(der);
    if (!cert || sk_X509_push(chain.get(), cert.get()) == 0) return -1;
    cert.release();
  }
  std::unique_ptr<X509_STORE_CTX, StoreCtxDel> ctx(X509_STORE_CTX_new());
  if (!ctx || X509_STORE_CTX_init(ctx.get(), store.get(), target.get(), chain.get()) != 1) {
    return -1;
  }
  if (flags != 0) X509_STORE_CTX_set_flags(ctx.get(), flags);
  if (X509_verify_cert(ctx.get()) == 1) return X509_V_OK;
  const int err = X509_STORE_CTX_get_error(ctx.get());
  return err == X509_V_OK ? -1 : err;
}

TcbInfo sample_tcb(uint8_t fill = 0xab) {
  return {.vendor = "ihsm",
          .model = "ihsm-firmware",
          .version = "1.2.3",
          .svn = 5,
          .fwid_sha384 = measurement(fill)};
}

// ---------------------------------------------------------------- keys

TEST(Dice, DeriveP384IsDeterministic) {
  crypto::Pkey a, b, other_info, other_secret;
  ASSERT_EQ(derive_p384(kDus, "info one", a), Status::kOk);
  ASSERT_EQ(derive_p384(kDus, "info one", b), Status::kOk);
  ASSERT_EQ(derive_p384(kDus, "info two", other_info), Status::kOk);
  ASSERT_EQ(derive_p384(kOtherDus, "info one", other_secret), Status::kOk);
  EXPECT_EQ(spki(a.get()), spki(b.get()));
  EXPECT_EQ(EVP_PKEY_eq(a.get(), b.get()), 1);
  EXPECT_NE(spki(a.get()), spki(other_info.get()));
  EXPECT_NE(spki(a.get()), spki(other_secret.get()));
}

TEST(Dice, DeriveP384MatchesTheSpecIndependently) {
  const std::string_view info = "ihsm dice deviceid v1";
  crypto::Pkey key;
  ASSERT_EQ(derive_p384(kDus, info, key), Status::kOk);

  // d = (HKDF-SHA384(secret, "", info, 56) mod (n - 1)) + 1
  const Bytes c = ossl::hkdf_sha384(kDus, {}, Bytes(info.begin(), info.end()), 56);
  std::unique_ptr<EC_GROUP, GroupDel> group(EC_GROUP_new_by_curve_name(NID_secp384r1));
  Bn n_minus_1(BN_dup(EC_GROUP_get0_order(group.get())));
  Bn expected(BN_new()), c_bn(BN_bin2bn(c.data(), static_cast<int>(c.size()), nullptr));
  std::unique_ptr<BN_CTX, decltype(&BN_CTX_free)> ctx(BN_CTX_new(), BN_CTX_free);
  ASSERT_TRUE(BN_sub_word(n_minus_1.get(), 1));
  ASSERT_TRUE(BN_mod(expected.get(), c_bn.get(), n_minus_1.get(), ctx.get()));
  ASSERT_TRUE(BN_add_word(expected.get(), 1));

  BIGNUM* raw = nullptr;
  ASSERT_EQ(EVP_PKEY_get_bn_param(key.get(), OSSL_PKEY_PARAM_PRIV_KEY, &raw), 1);
  Bn d(raw);
  EXPECT_EQ(BN_cmp(d.get(), expected.get()), 0);
}

TEST(Dice, DerivedKeyIsAValidP384KeyPair) {
  crypto::Pkey key;
  ASSERT_EQ(derive_deviceid_key(kDus, key), Status::kOk);
  ossl::PkeyCtx ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, key.get(), nullptr));
  ASSERT_TRUE(ctx);
  EXPECT_EQ(EVP_PKEY_check(ctx.get()), 1);
  EXPECT_EQ(EVP_PKEY_pairwise_check(ctx.get()), 1);
  const Bytes public_der = spki(key.get());
  EXPECT_EQ(ossl::group_of(ossl::load_spki(public_der).get()), "secp384r1");

  const Bytes message = test::to_bytes("signed by a derived key");
  Bytes signature;
  ASSERT_EQ(crypto::ecdsa_sign_sha384_der(key.get(), message, signature), Status::kOk);
  EXPECT_TRUE(ossl::verify_ecdsa_der(public_der, EVP_sha384(), message, signature));
  Bytes tampered = message;
  tampered[0] ^= 1;
  EXPECT_FALSE(ossl::verify_ecdsa_der(public_der, EVP_sha384(), tampered, signature));
}

TEST(Dice, DeriveRejectsBadSizes) {
  crypto::Pkey key;
  SecretBytes cdi;
  EXPECT_EQ(derive_p384({}, "x", key), Status::kInvalidArgument);
  EXPECT_EQ(derive_deviceid_key(Bytes(31, 1), key), Status::kInvalidArgument);
  EXPECT_EQ(derive_alias_key(Bytes(32, 1), key), Status::kInvalidArgument);
  EXPECT_EQ(derive_cdi(Bytes(31, 1), measurement(1), cdi), Status::kInvalidArgument);
  EXPECT_EQ(derive_cdi(kDus, Bytes(32, 1), cdi), Status::kInvalidArgument);
  EXPECT_EQ(derive_cdi(kDus, {}, cdi), Status::kInvalidArgument);
  EXPECT_FALSE(key);
  EXPECT_TRUE(cdi.empty());
}

TEST(Dice, CdiIsHkdfOfDusAndMeasurement) {
  SecretBytes one, again, two, other_dus;
  ASSERT_EQ(derive_cdi(kDus, measurement(1), one), Status::kOk);
  ASSERT_EQ(derive_cdi(kDus, measurement(1), again), Status::kOk);
  ASSERT_EQ(derive_cdi(kDus, measurement(2), two), Status::kOk);
  ASSERT_EQ(derive_cdi(kOtherDus, measurement(1), other_dus), Status::kOk);
  const auto bytes = [](const SecretBytes& s) {
    return Bytes(s.reveal().begin(), s.reveal().end());
  };
  EXPECT_EQ(bytes(one),
            ossl::hkdf_sha384(kDus, measurement(1), test::to_bytes("ihsm dice cdi v1"), 48));
  EXPECT_EQ(bytes(one), bytes(again));
  EXPECT_NE(bytes(one), bytes(two));
  EXPECT_NE(bytes(one), bytes(other_dus));
}

TEST(Dice, AliasKeyFollowsTheMeasurement) {
  SecretBytes cdi1, cdi2;
  ASSERT_EQ(derive_cdi(kDus, measurement(1), cdi1), Status::kOk);
  ASSERT_EQ(derive_cdi(kDus, measurement(2), cdi2), Status::kOk);
  crypto::Pkey alias1, alias1_again, alias2, deviceid;
  ASSERT_EQ(derive_alias_key(cdi1.reveal(), alias1), Status::kOk);
  ASSERT_EQ(derive_alias_key(cdi1.reveal(), alias1_again), Status::kOk);
  ASSERT_EQ(derive_alias_key(cdi2.reveal(), alias2), Status::kOk);
  ASSERT_EQ(derive_deviceid_key(kDus, deviceid), Status::kOk);
  EXPECT_EQ(spki(alias1.get()), spki(alias1_again.get()));
  EXPECT_NE(spki(alias1.get()), spki(alias2.get()));
  EXPECT_NE(spki(alias1.get()), spki(deviceid.get()));
}

// ---------------------------------------------------------------- TcbInfo

Bytes tlv(uint8_t tag, const Bytes& value) {
  const size_t n = value.size();
  Bytes out;
  out.reserve(n + 4);
  out.push_back(tag);
  if (n >= 0x100) {
    out.push_back(0x82);
    out.push_back(static_cast<uint8_t>(n >> 8));
  } else if (n >= 0x80) {
    out.push_back(0x81);
  }
  out.push_back(static_cast<uint8_t>(n));
  out.insert(out.end(), value.begin(), value.end());
  return out;
}

Bytes cat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const Bytes& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

const Bytes kSha384Oid = from_hex("0609608648016503040202");
const Bytes kSha256Oid = from_hex("0609608648016503040201");

Bytes fwid(const Bytes& oid, const Bytes& digest) {
  return tlv(0x30, cat({oid, tlv(0x04, digest)}));
}

// vendor "ihsm", model "m", version "v", svn 5, then `before_fwids`, the
// fwids [6] holding `fwids`, and `after_fwids`.
Bytes tcb_der(const Bytes& before_fwids, const Bytes& fwids, const Bytes& after_fwids = {}) {
  return tlv(0x30, cat({tlv(0x80, test::to_bytes("ihsm")), tlv(0x81, test::to_bytes("m")),
                        tlv(0x82, test::to_bytes("v")), tlv(0x83, {0x05}), before_fwids,
                        tlv(0xA6, fwids), after_fwids}));
}

TEST(TcbInfo, EncodingIsTheSpecifiedDer) {
  // Written out by hand from docs/attestation.md (IMPLICIT tags).
  std::string want =
      "3060"                            // DiceTcbInfo SEQUENCE
      "80046968736d"                    // [0] vendor "ihsm"
      "810d6968736d2d6669726d77617265"  // [1] model "ihsm-firmware"
      "8205312e322e33"                  // [2] version "1.2.3"
      "830105"                          // [3] svn 5
      "a63f"                            // [6] fwids
      "303d"                            //   FWID SEQUENCE
      "0609608648016503040202"          //     hashAlg sha384
      "0430";                           //     digest OCTET STRING, 48 bytes:
  for (int i = 0; i < 48; ++i) want += "ab";
  EXPECT_EQ(to_hex(encode_tcb_info(sample_tcb())), want);
}

TEST(TcbInfo, RoundTrips) {
  const uint64_t svns[] = {
      0,   1,          127,        128,        255,
      256, 0x7fffffff, 0x80000000, 1ull << 63, std::numeric_limits<uint64_t>::max()};
  for (uint64_t svn : svns) {
    SCOPED_TRACE(svn);
    TcbInfo in = sample_tcb();
    in.svn = svn;
    in.version = "2.0.0-rc1+\xc3\xa9\xe2\x82\xac\xf0\x9f\x94\x92";  // é € and an emoji
    const Bytes der = encode_tcb_info(in);
    ASSERT_FALSE(der.empty());
    TcbInfo out;
    ASSERT_EQ(decode_tcb_info(der, out), Status::kOk);
    EXPECT_EQ(out.vendor, in.vendor);
    EXPECT_EQ(out.model, in.model);
    EXPECT_EQ(out.version, in.version);
    EXPECT_EQ(out.svn, in.svn);
    EXPECT_EQ(out.fwid_sha384, in.fwid_sha384);
    EXPECT_EQ(encode_tcb_info(out), der);
  }
  TcbInfo empty_strings = sample_tcb();
  empty_strings.vendor = empty_strings.model = empty_strings.version = "";
  TcbInfo out;
  EXPECT_EQ(decode_tcb_info(encode_tcb_info(empty_strings), out), Status::kOk);
  TcbInfo longest = sample_tcb();
  longest.version.assign(dice::kMaxTcbString, 'x');
  EXPECT_EQ(decode_tcb_info(encode_tcb_info(longest), out), Status::kOk);
  EXPECT_EQ(out.version, longest.version);
}

TEST(TcbInfo, EncodeRefusesWhatDecodeWouldReject) {
  TcbInfo t = sample_tcb();
  t.fwid_sha384.resize(32);
  EXPECT_TRUE(encode_tcb_info(t).empty());
  t = sample_tcb();
  t.version.assign(dice::kMaxTcbString + 1, 'x');
  EXPECT_TRUE(encode_tcb_info(t).empty());
  t = sample_tcb();
  t.vendor = "bad \xff utf-8";
  EXPECT_TRUE(encode_tcb_info(t).empty());
  t = sample_tcb();
  t.model = std::string("nul\0inside", 10);
  EXPECT_TRUE(encode_tcb_info(t).empty());
}

TEST(TcbInfo, SkipsOtherTcgFieldsAndOtherHashes) {
  const Bytes m = measurement(7);
  const Bytes fwids = cat({fwid(kSha256Oid, Bytes(32, 1)), fwid(kSha384Oid, m)});
  const Bytes der = tcb_der(cat({tlv(0x84, {0x01}), tlv(0x85, {0x00})}), fwids,
                            cat({tlv(0x87, {0x00, 0x80}), tlv(0x88, {0xde, 0xad}),
                                 tlv(0x89, {0x01}), tlv(0x8A, {0x00, 0x80})}));
  TcbInfo out;
  ASSERT_EQ(decode_tcb_info(der, out), Status::kOk);
  EXPECT_EQ(out.vendor, "ihsm");
  EXPECT_EQ(out.svn, 5u);
  EXPECT_EQ(out.fwid_sha384, m);
}

TEST(TcbInfo, RejectsMalformedDer) {
  const Bytes m = measurement(7);
  const Bytes good_fwids = fwid(kSha384Oid, m);
  const Bytes head = cat({tlv(0x80, test::to_bytes("ihsm")), tlv(0x81, test::to_bytes("m")),
                          tlv(0x82, test::to_bytes("v"))});
  const Bytes svn = tlv(0x83, {0x05});
  const struct {
    const char* what;
    Bytes der;
  } cases[] = {
      {"empty", {}},
      {"not a sequence", tlv(0x31, cat({head, svn, tlv(0xA6, good_fwids)}))},
      {"trailing byte", cat({tcb_der({}, good_fwids), {0x00}})},
      {"indefinite length", cat({{0x30, 0x80}, head, svn, tlv(0xA6, good_fwids), {0x00, 0x00}})},
      {"non-minimal length",
       cat({{0x30, 0x81, static_cast<uint8_t>(head.size() + svn.size() + 2 + good_fwids.size())},
            head,
            svn,
            tlv(0xA6, good_fwids)})},
      {"length past the end", {0x30, 0x82, 0xff, 0xff, 0x80, 0x00}},
      {"missing fwids", tlv(0x30, cat({head, svn}))},
      {"missing svn", tlv(0x30, cat({head, tlv(0xA6, good_fwids)}))},
      {"missing vendor",
       tlv(0x30, cat({tlv(0x81, {}), tlv(0x82, {}), svn, tlv(0xA6, good_fwids)}))},
      {"out of order",
       tlv(0x30, cat({tlv(0x81, {}), tlv(0x80, {}), tlv(0x82, {}), svn, tlv(0xA6, good_fwids)}))},
      {"repeated field", tlv(0x30, cat({head, tlv(0x82, {}), svn, tlv(0xA6, good_fwids)}))},
      {"unknown field [11]", tcb_der({}, good_fwids, tlv(0x8B, {}))},
      {"universal tag inside", tcb_der({}, good_fwids, tlv(0x04, {}))},
      {"constructed [0]",
       tlv(0x30, cat({tlv(0xA0, {}), tlv(0x81, {}), tlv(0x82, {}), svn, tlv(0xA6, good_fwids)}))},
      {"primitive [6]", tlv(0x30, cat({head, svn, tlv(0x86, good_fwids)}))},
      {"constructed [4]", tcb_der(tlv(0xA4, {}), good_fwids)},
      {"empty fwids", tcb_der({}, {})},
      {"no sha384 fwid", tcb_der({}, fwid(kSha256Oid, Bytes(32, 1)))},
      {"two sha384 fwids", tcb_der({}, cat({good_fwids, good_fwids}))},
      {"short sha384 digest", tcb_der({}, fwid(kSha384Oid, Bytes(32, 1)))},
      {"long sha384 digest", tcb_der({}, fwid(kSha384Oid, Bytes(49, 1)))},
      {"fwid without digest", tcb_der({}, tlv(0x30, kSha384Oid))},
      {"fwid with extra member",
       tcb_der({}, tlv(0x30, cat({kSha384Oid, tlv(0x04, m), {0x05, 0x00}})))},
      {"empty oid", tcb_der({}, tlv(0x30, cat({{0x06, 0x00}, tlv(0x04, m)})))},
      {"multi-byte tag", tcb_der({}, good_fwids, {0x9f, 0x20, 0x00})},
      {"empty svn", tlv(0x30, cat({head, tlv(0x83, {}), tlv(0xA6, good_fwids)}))},
      {"negative svn", tlv(0x30, cat({head, tlv(0x83, {0x80}), tlv(0xA6, good_fwids)}))},
      {"non-minimal svn", tlv(0x30, cat({head, tlv(0x83, {0x00, 0x05}), tlv(0xA6, good_fwids)}))},
      {"svn of 2^64",
       tlv(0x30, cat({head, tlv(0x83, {0x01, 0, 0, 0, 0, 0, 0, 0, 0}), tlv(0xA6, good_fwids)}))},
      {"svn of 10 bytes", tlv(0x30, cat({head, tlv(0x83, {0x00, 0x80, 0, 0, 0, 0, 0, 0, 0, 0}),
                                         tlv(0xA6, good_fwids)}))},
      {"overlong utf-8", tlv(0x30, cat({tlv(0x80, {0xc0, 0xaf}), tlv(0x81, {}), tlv(0x82, {}), svn,
                                        tlv(0xA6, good_fwids)}))},
      {"utf-8 surrogate", tlv(0x30, cat({tlv(0x80, {0xed, 0xa0, 0x80}), tlv(0x81, {}),
                                         tlv(0x82, {}), svn, tlv(0xA6, good_fwids)}))},
      {"truncated utf-8", tlv(0x30, cat({tlv(0x80, {'a', 0xe2, 0x82}), tlv(0x81, {}), tlv(0x82, {}),
                                         svn, tlv(0xA6, good_fwids)}))},
      {"string too long",
       tlv(0x30, cat({tlv(0x80, Bytes(dice::kMaxTcbString + 1, 'a')), tlv(0x81, {}), tlv(0x82, {}),
                      svn, tlv(0xA6, good_fwids)}))},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    TcbInfo out;
    out.vendor = "untouched";
    EXPECT_EQ(decode_tcb_info(c.der, out), Status::kMalformedBody) << to_hex(c.der);
    EXPECT_EQ(out.vendor, "untouched");
  }
  TcbInfo out;
  EXPECT_EQ(decode_tcb_info(Bytes(dice::kMaxTcbInfoSize + 1, 0x30), out), Status::kMalformedBody);
}

TEST(TcbInfo, SurvivesTruncationsFlipsAndGarbage) {
  const Bytes good = encode_tcb_info(sample_tcb());
  TcbInfo out;
  for (size_t n = 0; n < good.size(); ++n) {
    EXPECT_EQ(decode_tcb_info(std::span(good).first(n), out), Status::kMalformedBody) << n;
  }
  for (size_t i = 0; i < good.size(); ++i) {
    for (uint8_t mask : {0x01, 0x02, 0x20, 0x40, 0x80, 0xff}) {
      Bytes bad = good;
      bad[i] ^= mask;
      const Status s = decode_tcb_info(bad, out);
      EXPECT_TRUE(s == Status::kOk || s == Status::kMalformedBody);
      if (ok(s)) {
        EXPECT_EQ(encode_tcb_info(out), bad) << "accepted, so it must be canonical";
      }
    }
  }
  std::mt19937 rng(6);
  for (int round = 0; round < 20000; ++round) {
    Bytes bytes(rng() % 160);
    for (auto& b : bytes) b = static_cast<uint8_t>(rng());
    if (round % 2 == 0 && bytes.size() >= 2) {  // a plausible header, so the parser goes deeper
      bytes[0] = 0x30;
      bytes[1] = static_cast<uint8_t>(bytes.size() - 2 < 0x80 ? bytes.size() - 2 : 0x7f);
    }
    const Status s = decode_tcb_info(bytes, out);
    EXPECT_TRUE(s == Status::kOk || s == Status::kMalformedBody);
  }
}

// ---------------------------------------------------------------- certificates

struct Chain {
  crypto::Pkey deviceid, alias, partition;
  Bytes deviceid_cert, alias_cert, partition_cert;
};

void make_chain(const Bytes& dus, const TcbInfo& tcb, uint32_t partition_id, Chain& c) {
  SecretBytes cdi;
  ASSERT_EQ(derive_deviceid_key(dus, c.deviceid), Status::kOk);
  ASSERT_EQ(derive_cdi(dus, tcb.fwid_sha384, cdi), Status::kOk);
  ASSERT_EQ(derive_alias_key(cdi.reveal(), c.alias), Status::kOk);
  ASSERT_EQ(crypto::generate_ec_key(Curve::kP384, c.partition), Status::kOk);
  ASSERT_EQ(make_deviceid_cert(c.deviceid.get(), kFingerprint, c.deviceid_cert), Status::kOk);
  ASSERT_EQ(make_alias_cert(c.deviceid.get(), c.deviceid_cert, c.alias.get(), tcb, c.alias_cert),
            Status::kOk);
  ASSERT_EQ(make_partition_cert(c.alias.get(), c.alias_cert, c.partition.get(), partition_id,
                                c.partition_cert),
            Status::kOk);
}

TEST(DiceCertificates, ChainVerifiesWithOpenSsl) {
  Chain c;
  make_chain(kDus, sample_tcb(), 7, c);
  EXPECT_EQ(verify_chain(c.deviceid_cert, {c.alias_cert}, c.partition_cert), X509_V_OK);
  EXPECT_EQ(verify_chain(c.deviceid_cert, {}, c.alias_cert), X509_V_OK);
  EXPECT_EQ(
      verify_chain(c.deviceid_cert, {c.alias_cert}, c.partition_cert, X509_V_FLAG_X509_STRICT),
      X509_V_OK);
  // The partition certificate is no CA: nothing it signs verifies.
  crypto::Pkey extra;
  ASSERT_EQ(crypto::generate_ec_key(Curve::kP384, extra), Status::kOk);
  Bytes under_partition;
  ASSERT_EQ(
      make_partition_cert(c.partition.get(), c.partition_cert, extra.get(), 8, under_partition),
      Status::kOk);
  EXPECT_NE(verify_chain(c.deviceid_cert, {c.alias_cert, c.partition_cert}, under_partition),
            X509_V_OK);
}

TEST(DiceCertificates, ChainVerifiesWithTheOpensslCommand) {
  Chain c;
  make_chain(kDus, sample_tcb(), 7, c);
  test::TempDir dir;
  test::write_file(dir.file("deviceid.pem"), pem(c.deviceid_cert));
  test::write_file(dir.file("alias.pem"), pem(c.alias_cert));
  test::write_file(dir.file("partition-7.pem"), pem(c.partition_cert));
  for (const char* strict : {"", "-x509_strict"}) {
    SCOPED_TRACE(strict);
    std::vector<std::string> argv = {IHSM_OPENSSL_BIN,         "verify",     "-CAfile",
                                     dir.file("deviceid.pem"), "-untrusted", dir.file("alias.pem")};
    if (*strict != '\0') argv.emplace_back(strict);
    argv.push_back(dir.file("partition-7.pem"));
    const test::ProcessResult r = test::run_process(argv);
    EXPECT_EQ(r.exit_code, 0) << r.describe();
    EXPECT_NE(r.out.find("partition-7.pem: OK"), std::string::npos) << r.describe();
  }
}

TEST(DiceCertificates, FieldsAreAsSpecified) {
  Chain c;
  const TcbInfo tcb = sample_tcb(0x3c);
  make_chain(kDus, tcb, 4294967295u, c);
  X509Ptr root = parse(c.deviceid_cert), alias = parse(c.alias_cert),
          part = parse(c.partition_cert);
  ASSERT_TRUE(root && alias && part);

  EXPECT_EQ(subject_of(root.get()), "CN=ihsm DeviceID 0123456789abcdef,O=ihsm");
  EXPECT_EQ(subject_of(alias.get()), "CN=ihsm Alias 3c3c3c3c3c3c3c3c,O=ihsm");
  EXPECT_EQ(subject_of(part.get()), "CN=ihsm partition 4294967295,O=ihsm");
  EXPECT_EQ(X509_NAME_cmp(X509_get_issuer_name(root.get()), X509_get_subject_name(root.get())), 0);
  EXPECT_EQ(X509_NAME_cmp(X509_get_issuer_name(alias.get()), X509_get_subject_name(root.get())), 0);
  EXPECT_EQ(X509_NAME_cmp(X509_get_issuer_name(part.get()), X509_get_subject_name(alias.get())), 0);

  const struct {
    X509* cert;
    EVP_PKEY* key;
    bool ca;
    long pathlen;
    uint32_t usage;
  } certs[] = {{root.get(), c.deviceid.get(), true, 1, KU_KEY_CERT_SIGN},
               {alias.get(), c.alias.get(), true, 0, KU_KEY_CERT_SIGN | KU_DIGITAL_SIGNATURE},
               {part.get(), c.partition.get(), false, -1, KU_DIGITAL_SIGNATURE}};
  for (const auto& e : certs) {
    SCOPED_TRACE(subject_of(e.cert));
    EXPECT_EQ(X509_get_version(e.cert), X509_VERSION_3);
    EXPECT_EQ(X509_get_signature_nid(e.cert), NID_ecdsa_with_SHA384);
    EXPECT_EQ(EVP_PKEY_eq(X509_get0_pubkey(e.cert), e.key), 1);

    Bytes serial = ossl::digest(EVP_sha256(), spki(e.key));
    serial.resize(16);
    serial[0] &= 0x7f;
    Bn got(ASN1_INTEGER_to_BN(X509_get0_serialNumber(e.cert), nullptr));
    Bn want(BN_bin2bn(serial.data(), 16, nullptr));
    EXPECT_EQ(BN_cmp(got.get(), want.get()), 0);

    const ASN1_TIME* not_before = X509_get0_notBefore(e.cert);
    const ASN1_TIME* not_after = X509_get0_notAfter(e.cert);
    EXPECT_EQ(ASN1_STRING_type(not_before), V_ASN1_UTCTIME);  // RFC 5280: before 2050
    EXPECT_EQ(ASN1_STRING_type(not_after), V_ASN1_GENERALIZEDTIME);
    EXPECT_EQ(time_text(not_before), "240101000000Z");
    EXPECT_EQ(time_text(not_after), "99991231235959Z");

    const uint32_t flags = X509_get_extension_flags(e.cert);
    EXPECT_EQ((flags & EXFLAG_CA) != 0, e.ca);
    EXPECT_EQ(X509_get_pathlen(e.cert), e.pathlen);
    EXPECT_EQ(X509_get_key_usage(e.cert), e.usage);
    for (int nid : {NID_basic_constraints, NID_key_usage}) {
      const int at = X509_get_ext_by_NID(e.cert, nid, -1);
      ASSERT_GE(at, 0);
      EXPECT_EQ(X509_EXTENSION_get_critical(X509_get_ext(e.cert, at)), 1);
    }
    EXPECT_NE(X509_get0_subject_key_id(e.cert), nullptr);
  }
  EXPECT_EQ(X509_get0_authority_key_id(root.get()), nullptr);
  EXPECT_EQ(ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(alias.get()),
                                  X509_get0_subject_key_id(root.get())),
            0);
  EXPECT_EQ(ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(part.get()),
                                  X509_get0_subject_key_id(alias.get())),
            0);

  // Only the Alias carries TcbInfo, non-critical, and it reads back whole.
  TcbInfo read;
  ASSERT_EQ(dice::tcb_info_of(alias.get(), read), Status::kOk);
  EXPECT_EQ(read.fwid_sha384, tcb.fwid_sha384);
  EXPECT_EQ(read.vendor, "ihsm");
  EXPECT_EQ(read.model, "ihsm-firmware");
  EXPECT_EQ(read.version, "1.2.3");
  EXPECT_EQ(read.svn, 5u);
  std::unique_ptr<ASN1_OBJECT, decltype(&ASN1_OBJECT_free)> oid(OBJ_txt2obj(dice::kTcbInfoOid, 1),
                                                                ASN1_OBJECT_free);
  const int at = X509_get_ext_by_OBJ(alias.get(), oid.get(), -1);
  ASSERT_GE(at, 0);
  EXPECT_EQ(X509_EXTENSION_get_critical(X509_get_ext(alias.get(), at)), 0);
  EXPECT_EQ(dice::tcb_info_of(part.get(), read), Status::kMissingField);
  EXPECT_EQ(dice::tcb_info_of(root.get(), read), Status::kMissingField);
  EXPECT_EQ(dice::tcb_info_of(nullptr, read), Status::kInvalidArgument);
}

TEST(DiceCertificates, DeviceIdIsStableAndAliasFollowsTheMeasurement) {
  Chain a, b;
  make_chain(kDus, sample_tcb(1), 1, a);
  make_chain(kDus, sample_tcb(2), 1, b);
  X509Ptr root_a = parse(a.deviceid_cert), root_b = parse(b.deviceid_cert);
  X509Ptr alias_a = parse(a.alias_cert), alias_b = parse(b.alias_cert);
  EXPECT_NE(X509_cmp(root_a.get(), root_b.get()), 0);  // fresh ECDSA signatures
  EXPECT_EQ(EVP_PKEY_eq(X509_get0_pubkey(root_a.get()), X509_get0_pubkey(root_b.get())), 1);
  EXPECT_EQ(
      ASN1_INTEGER_cmp(X509_get0_serialNumber(root_a.get()), X509_get0_serialNumber(root_b.get())),
      0);
  EXPECT_NE(EVP_PKEY_eq(X509_get0_pubkey(alias_a.get()), X509_get0_pubkey(alias_b.get())), 1);
  // Either DeviceID certificate anchors either Alias: same key, same name.
  EXPECT_EQ(verify_chain(a.deviceid_cert, {}, b.alias_cert), X509_V_OK);
}

TEST(DiceCertificates, AliasFromAnotherDeviceDoesNotVerify) {
  Chain mine, theirs;
  make_chain(kDus, sample_tcb(), 7, mine);
  make_chain(kOtherDus, sample_tcb(), 7, theirs);
  EXPECT_NE(verify_chain(mine.deviceid_cert, {theirs.alias_cert}, theirs.partition_cert),
            X509_V_OK);
  EXPECT_NE(verify_chain(mine.deviceid_cert, {}, theirs.alias_cert), X509_V_OK);

  // The same fingerprint, so the same issuer name: only the signature tells them apart.
  test::TempDir dir;
  test::write_file(dir.file("deviceid.pem"), pem(mine.deviceid_cert));
  test::write_file(dir.file("alias.pem"), pem(theirs.alias_cert));
  test::write_file(dir.file("partition.pem"), pem(theirs.partition_cert));
  const test::ProcessResult r =
      test::run_process({IHSM_OPENSSL_BIN, "verify", "-CAfile", dir.file("deviceid.pem"),
                         "-untrusted", dir.file("alias.pem"), dir.file("partition.pem")});
  EXPECT_NE(r.exit_code, 0) << r.describe();
}

TEST(DiceCertificates, RefusesMismatchedKeysAndBadInputs) {
  Chain c;
  make_chain(kDus, sample_tcb(), 7, c);
  ERR_clear_error();
  crypto::Pkey p256, other;
  ASSERT_EQ(crypto::generate_ec_key(Curve::kP256, p256), Status::kOk);
  ASSERT_EQ(crypto::generate_ec_key(Curve::kP384, other), Status::kOk);
  Bytes der;
  EXPECT_EQ(make_deviceid_cert(c.deviceid.get(), Bytes(7, 1), der), Status::kInvalidArgument);
  EXPECT_EQ(make_deviceid_cert(p256.get(), kFingerprint, der), Status::kKeyTypeMismatch);
  EXPECT_EQ(make_deviceid_cert(nullptr, kFingerprint, der), Status::kKeyTypeMismatch);
  // Signing key not the issuer certificate's key.
  EXPECT_EQ(make_alias_cert(other.get(), c.deviceid_cert, c.alias.get(), sample_tcb(), der),
            Status::kInvalidArgument);
  EXPECT_EQ(make_partition_cert(other.get(), c.alias_cert, c.partition.get(), 1, der),
            Status::kInvalidArgument);
  // Issuer certificate not DER of one certificate.
  Bytes trailing = c.deviceid_cert;
  trailing.push_back(0);
  EXPECT_EQ(make_alias_cert(c.deviceid.get(), trailing, c.alias.get(), sample_tcb(), der),
            Status::kInvalidArgument);
  EXPECT_EQ(make_alias_cert(c.deviceid.get(), {}, c.alias.get(), sample_tcb(), der),
            Status::kInvalidArgument);
  TcbInfo bad = sample_tcb();
  bad.fwid_sha384.resize(8);
  EXPECT_EQ(make_alias_cert(c.deviceid.get(), c.deviceid_cert, c.alias.get(), bad, der),
            Status::kInvalidArgument);
  EXPECT_EQ(make_partition_cert(c.alias.get(), c.alias_cert, p256.get(), 1, der),
            Status::kKeyTypeMismatch);
  EXPECT_TRUE(der.empty());
  EXPECT_EQ(ERR_peek_error(), 0ul);
}

}  // namespace
}  // namespace ihsm::device::boot
