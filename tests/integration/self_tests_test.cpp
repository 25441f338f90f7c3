// FIPS 140-3 self-tests and the error state (docs/security-policy.md),
// against real ihsmd processes: the production image and the test-only
// fault-injection image (ihsm_firmware_faulty, build/faulty/), where
// IHSM_FAULT_INJECT=<test> makes that one self-test or conditional test
// fail. A failed test latches the error state: GetDeviceInfo says "error"
// and names the test, every cryptographic and key service is refused with
// DEVICE_ERROR, the device report says state 1, and the image does not
// raise the device's minimum security version.
#include <gtest/gtest.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cstdlib>
#include <filesystem>
#include <set>

#include "ihsm/attestation.h"
#include "integration/lib_fixture.h"
#include "support/raw_client.h"

namespace ihsm::test {
namespace {

namespace fs = std::filesystem;
using protocol::Opcode;

// The power-on self-tests, in the order they run: the table of
// docs/security-policy.md.
const std::vector<std::string> kSelfTestNames = {"aes-gcm",
                                                 "aes-cbc",
                                                 "aes-ctr",
                                                 "aes-kw",
                                                 "aes-kwp",
                                                 "sha-256",
                                                 "sha-384",
                                                 "sha-512",
                                                 "hmac-sha-256",
                                                 "hmac-sha-384",
                                                 "hmac-sha-512",
                                                 "hkdf-sha-256",
                                                 "kbkdf-hmac-sha-256",
                                                 "ecdsa-p256-sha-256",
                                                 "ecdsa-p384-sha-384",
                                                 "ecdh-p256",
                                                 "rsa-pkcs1-sha-256",
                                                 "rsa-oaep-sha-256",
                                                 "ed25519",
                                                 "ctr-drbg",
                                                 "drbg-health"};

// The failed tests a device does not sign its report after (the report's
// ECDSA P-384 / SHA-384 signature and its nonce rely on them).
const std::set<std::string> kReportRelies = {"ecdsa-p384-sha-384", "sha-384",    "ctr-drbg",
                                             "drbg-health",        "rng-health", "pct-ec"};

// What a device in its error state still answers; everything else is
// DEVICE_ERROR. (Zeroize answers too, but the sweep does not send it: it
// would zeroize the device; ZeroizeAnswersInTheErrorState checks it.)
const std::set<Opcode> kAnswerInError = {
    Opcode::kGetDeviceInfo, Opcode::kSelfTest,     Opcode::kAttestDevice, Opcode::kGetCertificates,
    Opcode::kSessionClose,  Opcode::kTamperStatus, Opcode::kZeroize,      Opcode::kAuditRead};

// IHSM_FAULT_INJECT for the daemons started while it lives (they inherit
// this process's environment).
class FaultEnv {
 public:
  explicit FaultEnv(const std::string& fault) {
    if (!fault.empty()) ::setenv("IHSM_FAULT_INJECT", fault.c_str(), 1);
  }
  ~FaultEnv() { ::unsetenv("IHSM_FAULT_INJECT"); }
  FaultEnv(const FaultEnv&) = delete;
  FaultEnv& operator=(const FaultEnv&) = delete;
};

class SelfTests : public LibTest {
 protected:
  void TearDown() override {
    ::unsetenv("IHSM_FAULT_INJECT");
    LibTest::TearDown();
  }

  // The fault-injection image as the build signed it (security version 1,
  // like the production image).
  static std::string faulty_dir() { return IHSM_FAULTY_FIRMWARE_DIR; }

  // A copy of the fault-injection image signed at security version `svn`.
  std::string faulty_image_at(uint32_t svn) {
    const std::string out = dir().file("faulty-svn" + std::to_string(svn));
    fs::create_directories(out);
    fs::copy_file(faulty_dir() + "/ihsm-firmware.so", out + "/ihsm-firmware.so",
                  fs::copy_options::overwrite_existing);
    const auto r =
        run_process({IHSM_SIGN_FIRMWARE, "--key", IHSM_FIRMWARE_KEY, "--image",
                     out + "/ihsm-firmware.so", "--firmware-version", "9.9.9", "--svn",
                     std::to_string(svn), "--manifest", out + "/ihsm-firmware.manifest"});
    EXPECT_EQ(r.exit_code, 0) << r.describe();
    return out;
  }

  // Stops the daemon (SIGTERM, checked) and starts it again on the same
  // state with `args`, IHSM_FAULT_INJECT=`fault` when not empty.
  ::testing::AssertionResult reboot(std::vector<std::string> args, const std::string& fault = "") {
    if (daemon().pid() > 0) {
      auto stopped = daemon().stop();
      if (!stopped) return stopped;
    }
    const FaultEnv env(fault);
    daemon().args() = std::move(args);
    return daemon().start();
  }

  DeviceInfo info() {
    auto i = connect().device_info();
    if (!i) throw std::runtime_error("device_info: " + std::string(status_name(i.status())));
    return i.value();
  }

  // Every opcode of the one list, sent raw with an empty body and no
  // session: what the error state answers gets past the gate, everything
  // else is DEVICE_ERROR naming the failed test.
  void expect_only_status_served(const std::string& failed) {
    RawConn c(socket_path());
#define IHSM_TEST_SWEEP(name, code, access, usage)                                        \
  if (Opcode::k##name != Opcode::kZeroize) {                                              \
    const WireFrame f = c.call(Opcode::k##name);                                          \
    if (kAnswerInError.count(Opcode::k##name) == 0) {                                     \
      EXPECT_EQ(f.st(), Status::kDeviceError) << #name << ": " << f.status_str();         \
      if (f.st() == Status::kDeviceError) {                                               \
        EXPECT_NE(f.field(protocol::kMessage).as_text().find(failed), std::string::npos); \
      }                                                                                   \
    } else if (Opcode::k##name != Opcode::kAttestDevice) {                                \
      EXPECT_NE(f.st(), Status::kDeviceError) << #name;                                   \
    }                                                                                     \
  }
    IHSM_OPCODE_LIST(IHSM_TEST_SWEEP)
#undef IHSM_TEST_SWEEP
  }

  // The device report of a device in its error state: signed, state 1
  // ("error"), unless the failed test is one its signature relies on.
  void expect_device_report_says_error(const std::string& failed) {
    Client c = connect();
    const Bytes nonce = to_bytes("error-state nonce");
    auto report = c.attest_device(nonce);
    if (kReportRelies.count(failed) != 0) {
      EXPECT_STATUS(report, Status::kDeviceError);
      return;
    }
    ASSERT_OK(report);
    VerifyOptions o;
    o.trusted_root_pem = pem_of_cert(c.certificates().value().at(0));
    o.nonce = nonce;
    const Verdict v = verify_report(report.value(), o);
    EXPECT_TRUE(v.valid) << v.reason << ": " << v.detail;
    EXPECT_EQ(v.state, "error");
  }
};

TEST_F(SelfTests, AHealthyDeviceRunsEverySelfTestOnDemand) {
  Client c = connect();
  auto r = c.self_test();
  ASSERT_OK(r);
  EXPECT_TRUE(r.value().passed);
  EXPECT_TRUE(r.value().failed_test.empty());
  EXPECT_EQ(r.value().state, "operational");
  std::vector<std::string> names;
  for (const auto& t : r.value().tests) {
    EXPECT_TRUE(t.passed) << t.name;
    names.push_back(t.name);
  }
  EXPECT_EQ(names, kSelfTestNames);
  EXPECT_LT(r.value().elapsed_us, 1000000u);
  EXPECT_EQ(info().state, "operational");
  // The power-on run is logged with its time.
  EXPECT_NE(daemon().log().find("self-tests: 21 passed in"), std::string::npos) << daemon().log();
  // Any caller may run it, on any connection, without a session.
  EXPECT_OK(connect().self_test());
}

TEST_F(SelfTests, EachFailedSelfTestLatchesTheErrorStateAndKeepsTheMinimumSecurityVersion) {
  const DeviceInfo before = info();
  ASSERT_EQ(before.min_security_version, 1u);
  const std::string svn2 = faulty_image_at(2);
  std::vector<std::string> faults = kSelfTestNames;
  faults.push_back("rng-health");  // the continuous test fires inside drbg-health
  for (const std::string& fault : faults) {
    SCOPED_TRACE(fault);
    ASSERT_TRUE(reboot({"--firmware-dir", svn2}, fault));
    const DeviceInfo i = info();
    EXPECT_EQ(i.state, "error");
    EXPECT_EQ(i.reason, fault);
    EXPECT_EQ(i.security_version, 2u);
    EXPECT_EQ(i.min_security_version, 1u) << "an image in its error state raised the minimum";
    EXPECT_NE(daemon().log().find("self-test " + fault + " failed"), std::string::npos);

    expect_only_status_served(fault);
    Client c = connect();
    EXPECT_STATUS(c.open_session(1), Status::kDeviceError);
    EXPECT_STATUS(c.list_partitions(), Status::kDeviceError);

    // The on-demand self-test answers, fails the same way, and the state
    // stays latched.
    auto st = c.self_test();
    ASSERT_OK(st);
    EXPECT_FALSE(st.value().passed);
    EXPECT_EQ(st.value().failed_test, fault == "rng-health" ? "drbg-health" : fault);
    EXPECT_EQ(st.value().tests.size(), kSelfTestNames.size());
    EXPECT_EQ(st.value().state, "error");
    expect_device_report_says_error(fault);
  }
  // The same image without a fault is operational and raises the minimum.
  ASSERT_TRUE(reboot({"--firmware-dir", svn2}));
  EXPECT_EQ(info().state, "operational");
  EXPECT_EQ(info().min_security_version, 2u);
}

// FIPS 140-3: zeroization is still available in the error state.
TEST_F(SelfTests, ZeroizeAnswersInTheErrorState) {
  Client setup = connect();
  make_partition(setup, "p");
  ASSERT_TRUE(reboot({"--firmware-dir", faulty_dir()}, "aes-gcm"));
  EXPECT_EQ(info().state, "error");
  Client c = connect();
  EXPECT_OK(c.tamper_status());
  ASSERT_OK(c.zeroize("from the error state"));
  EXPECT_EQ(info().state, "zeroized");
  EXPECT_FALSE(fs::exists(state_dir() + "/boot.cbor"));
  EXPECT_FALSE(fs::exists(state_dir() + "/partitions.cbor"));
}

TEST_F(SelfTests, TheProductionImageHasNoFaultHook) {
  // The variable is not even in the production image; it is in the test image.
  const std::string production = read_file(IHSM_FIRMWARE_IMAGE);
  const std::string faulty = read_file(faulty_dir() + "/ihsm-firmware.so");
  ASSERT_FALSE(production.empty());
  EXPECT_EQ(production.find("IHSM_FAULT_INJECT"), std::string::npos);
  EXPECT_NE(faulty.find("IHSM_FAULT_INJECT"), std::string::npos);

  Client setup = connect();
  const PartitionId p = make_partition(setup, "p").id;
  for (const std::string fault : {"aes-gcm", "ecdsa-p384-sha-384", "rng-health", "pct-ec"}) {
    SCOPED_TRACE(fault);
    ASSERT_TRUE(reboot({}, fault));
    EXPECT_EQ(info().state, "operational");
    Client c = connect();
    auto st = c.self_test();
    ASSERT_OK(st);
    EXPECT_TRUE(st.value().passed);
    Session s = login(c, p);
    EXPECT_OK(s.random(64));
    EXPECT_OK(s.generate_ec_key_pair(Curve::kP256, verify_public(), sign_private()));
    EXPECT_EQ(info().state, "operational");
  }
}

// The pairwise-consistency tests of key-pair generation run at run time;
// a failure latches the error state like a failed power-on test.
TEST_F(SelfTests, AFailedPairwiseConsistencyTestLatchesTheErrorStateAtRunTime) {
  // Keys and partitions made with the production image (the faulty one
  // cannot generate an EC key: partition identity keys are EC).
  Client setup = connect();
  const PartitionId p = make_partition(setup, "pct").id;
  auto token = [](uint32_t flags) {
    KeyTemplate t = tmpl(flags);
    t.token = true;
    return t;
  };
  KeyHandle aes = 0, kek = 0, target = 0, base = 0, mac = 0, ec_private = 0;
  Bytes wrapped;
  {
    Session s = login(setup, p);
    aes = s.generate_aes_key(256, token(usage::kEncrypt | usage::kDecrypt)).value();
    kek = s.generate_aes_key(256, token(usage::kWrap | usage::kUnwrap)).value();
    target = s.generate_aes_key(256, token(usage::kEncrypt | usage::kExtractable)).value();
    base =
        s.generate_secret_key(Mechanism::kGenericSecretKeyGen, 256, token(usage::kDerive)).value();
    mac = s.generate_secret_key(Mechanism::kGenericSecretKeyGen, 256, token(usage::kSign)).value();
    KeyTemplate priv = sign_private();
    priv.token = true;
    KeyTemplate pub = verify_public();
    pub.token = true;
    ec_private = s.generate_ec_key_pair(Curve::kP256, pub, priv).value().private_handle;
    wrapped = s.wrap_key(kek, target, Mechanism::kAesKeyWrapKwp).value();
  }

  ASSERT_TRUE(reboot({"--firmware-dir", faulty_dir()}, "pct-ec"));
  EXPECT_EQ(info().state, "operational");  // the power-on tests pass
  Client c = connect();
  Session s = login(c, p);
  Session public_session = open(c, p);  // open, not logged in
  ASSERT_OK(s.sign(ec_private, Mechanism::kEcdsaSha256, to_bytes("before")));

  EXPECT_STATUS(s.generate_ec_key_pair(Curve::kP256, verify_public(), sign_private()),
                Status::kSelfTestFailed);
  DeviceInfo i = info();
  EXPECT_EQ(i.state, "error");
  EXPECT_EQ(i.reason, "pct-ec");

  // Every cryptographic and key service is refused, with the test named.
  auto refused = [](const auto& r, const char* what) {
    EXPECT_TRUE(has_status(r, Status::kDeviceError)) << what;
    if (r.status() == Status::kDeviceError) {
      EXPECT_NE(r.detail().message.find("pct-ec"), std::string::npos) << r.detail().message;
    }
  };
  refused(s.generate_aes_key(256, aes_flags()), "generate key");
  refused(s.generate_key_pair(Mechanism::kEcEdwardsKeyPairGen, std::nullopt, 0, verify_public(),
                              sign_private()),
          "generate key pair");
  refused(s.sign(ec_private, Mechanism::kEcdsaSha256, to_bytes("after")), "sign");
  refused(s.sign(mac, Mechanism::kSha256Hmac, to_bytes("after"), {}), "HMAC");
  refused(s.encrypt_gcm(aes, to_bytes("after"), {}), "encrypt");
  refused(s.decrypt_gcm(aes, GcmCiphertext{Bytes(12, 1), Bytes(16, 2), Bytes(16, 3)}, {}),
          "decrypt");
  refused(s.random(32), "random");
  refused(s.digest(Mechanism::kSha256, to_bytes("after")), "digest");
  MechanismParams hkdf;
  hkdf.hash = Mechanism::kSha256;
  NewKeySpec spec;
  spec.tmpl = aes_flags();
  refused(s.derive_key(base, Mechanism::kHkdfDerive, hkdf, spec), "derive");
  refused(s.wrap_key(kek, target, Mechanism::kAesKeyWrapKwp), "wrap");
  refused(s.unwrap_key(kek, Mechanism::kAesKeyWrapKwp, wrapped, spec), "unwrap");
  refused(s.attest_key(ec_private, {}), "attest key");
  refused(s.key_info(aes), "key info");
  refused(public_session.login(Role::kCryptoUser, SecretPin(kUserPin)), "login");
  refused(c.open_session(p), "open session");
  // What still answers: the state, the report, the self-test (which passes
  // now, but the state stays latched until a restart), closing sessions.
  auto st = c.self_test();
  ASSERT_OK(st);
  EXPECT_TRUE(st.value().passed);
  EXPECT_EQ(st.value().state, "error");
  expect_device_report_says_error("pct-ec");
  EXPECT_OK(public_session.close());
  EXPECT_OK(s.close());
  EXPECT_EQ(info().state, "error");

  // A restart on the production image: operational, the token keys intact.
  ASSERT_TRUE(reboot({}));
  EXPECT_EQ(info().state, "operational");
  Client again = connect();
  Session s2 = login(again, p);
  EXPECT_OK(s2.sign(ec_private, Mechanism::kEcdsaSha256, to_bytes("after restart")));
}

TEST_F(SelfTests, EveryKeyPairTypeHasAPairwiseConsistencyTestThatLatches) {
  Client setup = connect();
  const PartitionId p = make_partition(setup, "pct2").id;
  const struct {
    const char* fault;
    Mechanism mechanism;
    std::optional<Curve> curve;
    uint32_t bits;
    KeyTemplate public_tmpl, private_tmpl;
  } cases[] = {
      {"pct-rsa", Mechanism::kRsaKeyPairGen, std::nullopt, 2048, verify_public(), sign_private()},
      {"pct-ed25519", Mechanism::kEcEdwardsKeyPairGen, std::nullopt, 0, verify_public(),
       sign_private()},
      {"pct-x25519", Mechanism::kEcMontgomeryKeyPairGen, std::nullopt, 0, tmpl(0),
       tmpl(usage::kDerive)},
  };
  for (const auto& k : cases) {
    SCOPED_TRACE(k.fault);
    ASSERT_TRUE(reboot({"--firmware-dir", faulty_dir()}, k.fault));
    EXPECT_EQ(info().state, "operational");
    Client c = connect();
    Session s = login(c, p);
    // The other key types still generate.
    EXPECT_OK(s.generate_aes_key(128, aes_flags()));
    EXPECT_STATUS(s.generate_key_pair(k.mechanism, k.curve, k.bits, k.public_tmpl, k.private_tmpl),
                  Status::kSelfTestFailed);
    const DeviceInfo i = info();
    EXPECT_EQ(i.state, "error");
    EXPECT_EQ(i.reason, k.fault);
    EXPECT_STATUS(s.random(16), Status::kDeviceError);
    EXPECT_STATUS(s.generate_aes_key(128, aes_flags()), Status::kDeviceError);
  }
}

}  // namespace
}  // namespace ihsm::test
