// ihsm::verify_report (include/ihsm/attestation.h) against chains and
// reports built here with OpenSSL (support/attest_chain.h): one test per
// step of docs/attestation.md, each checking the step that must fail.
#include "ihsm/attestation.h"

#include <gtest/gtest.h>

#include "support/attest_chain.h"

namespace ihsm {
namespace {

using namespace test::attest;
using test::from_hex;

class VerifyReport : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    chain_ = new Chain(make_chain());
    other_ = new Chain(make_chain());
  }
  static void TearDownTestSuite() {
    delete chain_;
    delete other_;
  }

  static const Chain& chain() { return *chain_; }
  static const Chain& other() { return *other_; }

  cose::KeyReport key_report() const { return sample_key_report(chain().partition_key.get()); }

  Bytes signed_key_report(const cose::KeyReport& r) const {
    return sign_report(cose::encode_key_report(r), chain().key_x5chain(),
                       chain().partition_key.get());
  }
  Bytes signed_device_report(const cose::DeviceReport& r) const {
    return sign_report(cose::encode_device_report(r), chain().device_x5chain(),
                       chain().alias_key.get());
  }

  static Verdict verify(const Bytes& report, VerifyOptions o = {}) {
    if (o.trusted_root_pem.empty()) o.trusted_root_pem = chain().root_pem();
    return verify_report(report, o);
  }

  static void expect_invalid(const Verdict& v, const std::string& reason) {
    EXPECT_FALSE(v.valid) << v.detail;
    EXPECT_EQ(v.reason, reason) << v.detail;
    EXPECT_FALSE(v.detail.empty());
  }

 private:
  static inline Chain* chain_ = nullptr;
  static inline Chain* other_ = nullptr;
};

TEST_F(VerifyReport, ValidKeyReportWithDecodedFields) {
  const cose::KeyReport r = key_report();
  VerifyOptions o;
  o.nonce = r.nonce;
  o.require = {"generated", "never-extractable", "not-extractable", "sign", "not-imported"};
  const Verdict v = verify(signed_key_report(r), o);
  ASSERT_TRUE(v.valid) << v.reason << ": " << v.detail;
  EXPECT_TRUE(v.reason.empty());
  EXPECT_EQ(v.kind, 1);
  EXPECT_EQ(v.partition, 7u);
  EXPECT_EQ(v.uid, r.uid);
  EXPECT_EQ(v.object_class, 3u);
  EXPECT_EQ(v.key_type, 3u);
  EXPECT_EQ(v.bits, 384u);
  EXPECT_EQ(v.flags, r.flags);
  EXPECT_EQ(v.flag_names, (std::vector<std::string>{"generated", "sensitive", "always-sensitive",
                                                    "never-extractable", "sign"}));
  EXPECT_EQ(v.measurement, Bytes(48, 0xAB));
  EXPECT_EQ(v.svn, 4u);
  EXPECT_EQ(v.time, 1700000000u);
  EXPECT_EQ(v.nonce, r.nonce);
  EXPECT_TRUE(v.value_digest.empty());
  // The PEM is the partition key's public key.
  std::unique_ptr<BIO, test::ossl::BioDel> bio(
      BIO_new_mem_buf(v.public_key_pem.data(), static_cast<int>(v.public_key_pem.size())));
  Pkey pem_key(PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr));
  ASSERT_TRUE(pem_key) << v.public_key_pem;
  EXPECT_EQ(EVP_PKEY_eq(pem_key.get(), chain().partition_key.get()), 1);
}

TEST_F(VerifyReport, SecretKeyReportCarriesItsDigest) {
  cose::KeyReport r = key_report();
  r.public_key.reset();
  r.object_class = 4;  // CKO_SECRET_KEY
  r.key_type = 0x1F;   // CKK_AES
  r.bits = 256;
  r.value_digest = Bytes(48, 0x5A);
  const Verdict v = verify(signed_key_report(r));
  ASSERT_TRUE(v.valid) << v.detail;
  EXPECT_EQ(v.value_digest, Bytes(48, 0x5A));
  EXPECT_TRUE(v.public_key_pem.empty());
}

TEST_F(VerifyReport, ValidDeviceReport) {
  const Verdict v = verify(signed_device_report(sample_device_report()));
  ASSERT_TRUE(v.valid) << v.reason << ": " << v.detail;
  EXPECT_EQ(v.kind, 2);
  EXPECT_EQ(v.firmware_version, "1.2.3");
  EXPECT_EQ(v.min_svn, 3u);
  EXPECT_EQ(v.state, "operational");
  EXPECT_EQ(v.nonce, from_hex("cafe"));
  EXPECT_EQ(v.time, 1700000001u);
}

TEST_F(VerifyReport, UntaggedReportIsAccepted) {
  Bytes report = signed_key_report(key_report());
  ASSERT_EQ(report.front(), 0xD2);
  report.erase(report.begin());
  EXPECT_TRUE(verify(report).valid);
}

TEST_F(VerifyReport, ChangedPayloadByteFailsTheSignature) {
  const cose::KeyReport r = key_report();
  Bytes report = signed_key_report(r);
  // Flip a bit of the uid inside the encoded report: the payload still
  // decodes, only the signature can notice.
  const auto at = std::search(report.begin(), report.end(), r.uid.begin(), r.uid.end());
  ASSERT_NE(at, report.end());
  *at ^= 0x01;
  const Verdict v = verify(report);
  expect_invalid(v, "signature");
  EXPECT_NE(v.uid, r.uid);  // decoded before the signature step
}

TEST_F(VerifyReport, ChangedSignatureByteFails) {
  Bytes report = signed_key_report(key_report());
  report[report.size() - 10] ^= 0x40;
  expect_invalid(verify(report), "signature");
}

TEST_F(VerifyReport, SignerKeyNotP384FailsTheSignature) {
  ChainSpec spec;
  spec.partition_curve = "P-256";
  const Chain c = make_chain(spec);
  const Bytes report =
      sign_report(cose::encode_key_report(key_report()), c.key_x5chain(), c.partition_key.get());
  VerifyOptions o;
  o.trusted_root_pem = c.root_pem();
  expect_invalid(verify_report(report, o), "signature");
}

TEST_F(VerifyReport, Nonce) {
  const Bytes report = signed_key_report(key_report());
  VerifyOptions o;
  o.nonce = from_hex("0102030405060709");
  expect_invalid(verify(report, o), "nonce");
  o.nonce = Bytes{};
  expect_invalid(verify(report, o), "nonce");
  o.nonce = from_hex("0102030405060708");
  EXPECT_TRUE(verify(report, o).valid);
}

TEST_F(VerifyReport, DifferentTrustedRootFailsTheChain) {
  VerifyOptions o;
  o.trusted_root_pem = other().root_pem();
  expect_invalid(verify(signed_key_report(key_report()), o), "chain");
}

TEST_F(VerifyReport, ChainFromAnotherDeviceIdFails) {
  // Entirely another device's chain and key.
  const Bytes foreign = sign_report(cose::encode_key_report(key_report()), other().key_x5chain(),
                                    other().partition_key.get());
  expect_invalid(verify(foreign), "chain");
  // Another device's Alias and partition certificates under our DeviceID:
  // same names, but the Alias is not signed by our DeviceID key.
  std::vector<Bytes> spliced = other().key_x5chain();
  spliced.back() = test::attest::der_of(chain().device.get());
  const Bytes report =
      sign_report(cose::encode_key_report(key_report()), spliced, other().partition_key.get());
  expect_invalid(verify(report), "chain");
}

TEST_F(VerifyReport, ChainOfTheWrongLengthFails) {
  std::vector<Bytes> short_chain = chain().key_x5chain();
  short_chain.erase(short_chain.begin() + 1);  // partition -> DeviceID
  Bytes report =
      sign_report(cose::encode_key_report(key_report()), short_chain, chain().partition_key.get());
  expect_invalid(verify(report), "chain");
  // A device report with the key report's three certificates.
  report = sign_report(cose::encode_device_report(sample_device_report()), chain().key_x5chain(),
                       chain().alias_key.get());
  expect_invalid(verify(report), "chain");
  // The right count, but the DeviceID twice: OpenSSL's path is one
  // certificate long, not the report's chain.
  const std::vector<Bytes> twice = {der_of(chain().device.get()), der_of(chain().device.get())};
  report = sign_report(cose::encode_device_report(sample_device_report()), twice,
                       chain().device_key.get());
  expect_invalid(verify(report), "chain");
  // No x5chain at all.
  report = sign_report(cose::encode_key_report(key_report()), {}, chain().partition_key.get());
  expect_invalid(verify(report), "chain");
}

TEST_F(VerifyReport, AliasThatIsNotACaFailsTheChain) {
  ChainSpec spec;
  spec.alias_is_ca = false;
  const Chain c = make_chain(spec);
  const Bytes report =
      sign_report(cose::encode_key_report(key_report()), c.key_x5chain(), c.partition_key.get());
  VerifyOptions o;
  o.trusted_root_pem = c.root_pem();
  expect_invalid(verify_report(report, o), "chain");
}

TEST_F(VerifyReport, RootPemMustBeOneCertificate) {
  const Bytes report = signed_key_report(key_report());
  VerifyOptions o;
  o.trusted_root_pem = "not a certificate";
  expect_invalid(verify(report, o), "chain");
  o.trusted_root_pem = chain().root_pem() + other().root_pem();
  expect_invalid(verify(report, o), "chain");
}

TEST_F(VerifyReport, MeasurementMustMatchTheAliasFwid) {
  cose::KeyReport r = key_report();
  r.measurement = Bytes(48, 0xAC);
  expect_invalid(verify(signed_key_report(r)), "measurement");
  cose::DeviceReport d = sample_device_report();
  d.measurement[47] ^= 1;
  expect_invalid(verify(signed_device_report(d)), "measurement");
  // The security version is the Alias certificate's too.
  cose::KeyReport other_svn = key_report();
  other_svn.svn = 5;
  expect_invalid(verify(signed_key_report(other_svn)), "measurement");
}

TEST_F(VerifyReport, AliasWithoutASha384FwidFailsTheMeasurement) {
  ChainSpec no_tcb;
  no_tcb.with_tcb_info = false;
  ChainSpec sha256;  // the right digest bytes, labelled as another hash
  sha256.fwid_hash_oid = from_hex("608648016503040201");
  for (const ChainSpec& spec : {no_tcb, sha256}) {
    const Chain c = make_chain(spec);
    const Bytes report =
        sign_report(cose::encode_key_report(key_report()), c.key_x5chain(), c.partition_key.get());
    VerifyOptions o;
    o.trusted_root_pem = c.root_pem();
    expect_invalid(verify_report(report, o), "measurement");
  }
}

TEST_F(VerifyReport, PartitionMustMatchTheSignersSubject) {
  cose::KeyReport r = key_report();
  r.partition = 8;
  const Verdict v = verify(signed_key_report(r));
  expect_invalid(v, "partition");
  EXPECT_EQ(v.partition, 8u);
  // "ihsm partition 70" is not partition 7.
  ChainSpec spec;
  spec.partition = 70;
  const Chain c = make_chain(spec);
  VerifyOptions o;
  o.trusted_root_pem = c.root_pem();
  const Bytes report =
      sign_report(cose::encode_key_report(key_report()), c.key_x5chain(), c.partition_key.get());
  expect_invalid(verify_report(report, o), "partition");
}

TEST_F(VerifyReport, Requirements) {
  cose::KeyReport r = key_report();
  r.flags = cose::flag::kImported | cose::flag::kExtractable | cose::flag::kDecrypt;
  const Bytes report = signed_key_report(r);
  VerifyOptions o;
  o.require = {"generated"};
  Verdict v = verify(report, o);
  expect_invalid(v, "requirement");
  EXPECT_NE(v.detail.find("generated"), std::string::npos) << v.detail;
  o.require = {"imported", "decrypt", "not-sign"};
  EXPECT_TRUE(verify(report, o).valid);
  o.require = {"not-extractable"};
  expect_invalid(verify(report, o), "requirement");
  // not-extractable holds for the generated, never-extractable report.
  EXPECT_TRUE(verify(signed_key_report(key_report()), o).valid);
  o.require = {"imported", "exportable"};
  v = verify(report, o);
  expect_invalid(v, "requirement");
  EXPECT_NE(v.detail.find("exportable"), std::string::npos) << v.detail;
  o.require = {"not-"};
  expect_invalid(verify(report, o), "requirement");
  // A device report has no key flags to require.
  o.require = {"generated"};
  expect_invalid(verify(signed_device_report(sample_device_report()), o), "requirement");
}

TEST_F(VerifyReport, FirstFailingStepIsReported) {
  // Wrong root (step 2) and wrong nonce (step 5): the chain is named.
  VerifyOptions o;
  o.trusted_root_pem = other().root_pem();
  o.nonce = from_hex("ff");
  o.require = {"imported"};
  expect_invalid(verify(signed_key_report(key_report()), o), "chain");
  // Bad signature (3) and unmet requirement (6).
  Bytes report = signed_key_report(key_report());
  report.back() ^= 1;
  o = {};
  o.require = {"imported"};
  expect_invalid(verify(report, o), "signature");
}

TEST_F(VerifyReport, GarbageAndTruncationsAreMalformed) {
  expect_invalid(verify({}), "malformed");
  expect_invalid(verify(from_hex("00")), "malformed");
  expect_invalid(verify(test::to_bytes("-----BEGIN CERTIFICATE-----")), "malformed");
  const Bytes report = signed_key_report(key_report());
  for (size_t n = 0; n < report.size(); ++n) {
    const Verdict v = verify(Bytes(report.begin(), report.begin() + static_cast<ptrdiff_t>(n)));
    ASSERT_FALSE(v.valid) << n;
    ASSERT_EQ(v.reason, "malformed") << n;
    ASSERT_EQ(v.kind, 0) << n;
  }
  Bytes trailing = report;
  trailing.push_back(0);
  expect_invalid(verify(trailing), "malformed");
}

TEST_F(VerifyReport, ManifestsAndOtherPayloadsAreNotReports) {
  cose::Manifest m{"1.2.3", 4, Bytes(48, 0xAB), "ihsm-firmware.so"};
  expect_invalid(verify(sign_report(cose::encode_manifest(m), chain().device_x5chain(),
                                    chain().alias_key.get())),
                 "malformed");
  // A payload map of format version 2.
  expect_invalid(verify(sign_report(from_hex("a201020201"), chain().key_x5chain(),
                                    chain().partition_key.get())),
                 "malformed");
}

}  // namespace
}  // namespace ihsm
