// The chain of trust end to end (docs/attestation.md), against real
// ihsmd processes: key and device reports checked by the offline verifier
// (ihsm::verify_report) and by plain `openssl verify`, and secure boot of
// firmware images made here with the build's signing tool: a changed image
// changes the measurement and the Alias key, a badly signed or mismatched
// image does not boot, and an image below the recorded security version
// does not boot either.
#include <gtest/gtest.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <filesystem>

#include "common/cbor.h"
#include "ihsm/attestation.h"
#include "integration/lib_fixture.h"

namespace ihsm::test {
namespace {

namespace fs = std::filesystem;

Bytes cert_public_key(const Bytes& der) {
  const unsigned char* p = der.data();
  X509* cert = d2i_X509(nullptr, &p, static_cast<long>(der.size()));
  unsigned char* out = nullptr;
  const int n = i2d_PUBKEY(X509_get0_pubkey(cert), &out);
  Bytes spki(out, out + n);
  OPENSSL_free(out);
  X509_free(cert);
  return spki;
}

class Attestation : public LibSessionTest {
 protected:
  std::string partition_name() const override { return "attested"; }
  std::string root_pem(Client& c) {
    auto certs = c.certificates();
    EXPECT_TRUE(certs.ok());
    return certs.ok() ? pem_of_cert(certs.value().at(0)) : std::string();
  }
  Verdict verify(const Bytes& report, const Bytes& nonce, std::vector<std::string> require = {},
                 std::optional<std::string> root = std::nullopt) {
    VerifyOptions o;
    o.trusted_root_pem = root ? *root : root_pem(*client_);
    o.nonce = nonce;
    o.require = std::move(require);
    return verify_report(report, o);
  }
};

TEST_F(Attestation, AGeneratedKeyIsProvenFromKeyGenerationToAVerifiedReport) {
  auto pair = s().generate_ec_key_pair(Curve::kP384, verify_public(), sign_private("attested"));
  ASSERT_OK(pair);
  const Bytes nonce = to_bytes("fresh nonce 0123456789");
  auto report = s().attest_key(pair.value().private_handle, nonce);
  ASSERT_OK(report);
  const Verdict v = verify(
      report.value(), nonce,
      {"generated", "never-extractable", "sensitive", "sign", "not-extractable", "not-imported"});
  EXPECT_TRUE(v.valid) << v.reason << ": " << v.detail;
  EXPECT_EQ(v.kind, 1);
  EXPECT_EQ(v.partition, partition_);
  EXPECT_EQ(v.bits, 384u);
  EXPECT_EQ(v.measurement, client_->device_info().value().measurement);
  // The attested public key is the key's own.
  const Bytes spki = s().public_key(pair.value().public_handle).value();
  EXPECT_NE(v.public_key_pem.find("BEGIN PUBLIC KEY"), std::string::npos);
  BIO* bio = BIO_new_mem_buf(v.public_key_pem.data(), static_cast<int>(v.public_key_pem.size()));
  EVP_PKEY* attested = PEM_read_bio_PUBKEY(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  ASSERT_NE(attested, nullptr);
  unsigned char* der = nullptr;
  const int n = i2d_PUBKEY(attested, &der);
  EXPECT_EQ(Bytes(der, der + n), spki);
  OPENSSL_free(der);
  EVP_PKEY_free(attested);

  // A secret key is named by a digest, and the device report verifies too.
  auto aes = s().generate_aes_key(256, aes_flags("secret"));
  ASSERT_OK(aes);
  const Verdict sv = verify(s().attest_key(aes.value(), nonce).value(), nonce, {"session"});
  EXPECT_TRUE(sv.valid) << sv.reason << ": " << sv.detail;
  EXPECT_EQ(sv.value_digest.size(), 48u);
  auto device = client_->attest_device(nonce);
  ASSERT_OK(device);
  const Verdict dv = verify(device.value(), nonce);
  EXPECT_TRUE(dv.valid) << dv.reason << ": " << dv.detail;
  EXPECT_EQ(dv.kind, 2);
  EXPECT_EQ(dv.state, "operational");
}

TEST_F(Attestation, EachWrongReportFailsWithItsReason) {
  auto pair = s().generate_ec_key_pair(Curve::kP256, verify_public(), sign_private("k"));
  ASSERT_OK(pair);
  const Bytes nonce = to_bytes("nonce-1");
  const Bytes report = s().attest_key(pair.value().private_handle, nonce).value();

  // A byte changed anywhere fails (which step depends on where it lands);
  // in the payload's nonce it is the signature that breaks.
  for (size_t i = 0; i < report.size(); i += 97) {
    Bytes bad = report;
    bad[i] ^= 0x01;
    EXPECT_FALSE(verify(bad, nonce).valid) << "byte " << i;
  }
  Bytes changed = report;
  const auto at = std::search(changed.begin(), changed.end(), nonce.begin(), nonce.end());
  ASSERT_NE(at, changed.end());
  *at ^= 0x20;
  EXPECT_EQ(verify(changed, nonce).reason, "signature");

  EXPECT_EQ(verify(report, to_bytes("nonce-2")).reason, "nonce");

  // Another device: its root does not vouch for this report, nor this
  // root for its reports.
  Daemon second(dir().file("state2"), dir().file("sock2"), {}, dir().file("ihsmd2.log"));
  ASSERT_TRUE(second.start());
  Client c2 = Client::connect(second.socket()).value();
  const std::string other_root = root_pem(c2);
  EXPECT_EQ(verify(report, nonce, {}, other_root).reason, "chain");
  Session s2 = login(c2, make_partition(c2, "other").id);
  auto other = s2.generate_ec_key_pair(Curve::kP256, verify_public(), sign_private("o"));
  ASSERT_OK(other);
  const Bytes other_report = s2.attest_key(other.value().private_handle, nonce).value();
  EXPECT_TRUE(verify(other_report, nonce, {}, other_root).valid);
  EXPECT_EQ(verify(other_report, nonce).reason, "chain");
  EXPECT_TRUE(second.stop());

  // An imported key is not "generated".
  auto kek = s().generate_aes_key(256, tmpl(usage::kWrap | usage::kUnwrap));
  ASSERT_OK(kek);
  KeyTemplate extractable = tmpl(usage::kEncrypt | usage::kExtractable);
  auto target = s().generate_aes_key(256, extractable);
  ASSERT_OK(target);
  auto wrapped = s().wrap_key(kek.value(), target.value(), Mechanism::kAesKeyWrapKwp);
  ASSERT_OK(wrapped);
  NewKeySpec spec;
  spec.key_type = KeyType::kAes;
  spec.tmpl = aes_flags("imported");
  auto imported = s().unwrap_key(kek.value(), Mechanism::kAesKeyWrapKwp, wrapped.value(), spec);
  ASSERT_OK(imported);
  const Verdict iv = verify(s().attest_key(imported.value(), nonce).value(), nonce, {"generated"});
  EXPECT_EQ(iv.reason, "requirement") << iv.detail;
  EXPECT_TRUE(verify(s().attest_key(imported.value(), nonce).value(), nonce, {"imported"}).valid);

  // A destroyed key is not attested: destroyed by hand, or with the
  // session that held it.
  auto session_key = s().generate_aes_key(256, aes_flags());
  ASSERT_OK(session_key);
  ASSERT_OK(s().destroy_key(session_key.value()));
  EXPECT_STATUS(s().attest_key(session_key.value(), nonce), Status::kNoSuchKey);
  KeyHandle gone = 0;
  {
    Session brief = login(*client_, partition_);
    auto k = brief.generate_aes_key(256, aes_flags());
    ASSERT_OK(k);
    gone = k.value();
    EXPECT_OK(brief.attest_key(gone, nonce));
  }  // the session closes: its session keys are destroyed
  EXPECT_STATUS(s().attest_key(gone, nonce), Status::kNoSuchKey);
  EXPECT_STATUS(s().attest_key(pair.value().private_handle, Bytes(129, 0)), Status::kFieldTooLarge);
}

TEST_F(Attestation, TheChainVerifiesWithPlainOpenssl) {
  const std::string out = dir().file("chain");
  fs::create_directories(out);
  auto certs = client_->certificates(partition_);
  ASSERT_OK(certs);
  ASSERT_EQ(certs.value().size(), 3u);
  const char* names[] = {"deviceid.pem", "alias.pem", "partition.pem"};
  for (size_t i = 0; i < 3; ++i) write_file(out + "/" + names[i], pem_of_cert(certs.value()[i]));
  const auto r = run_process({"/usr/bin/openssl", "verify", "-CAfile", out + "/deviceid.pem",
                              "-untrusted", out + "/alias.pem", out + "/partition.pem"});
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_NE(r.out.find("OK"), std::string::npos) << r.describe();
  // The Alias certificate carries the TcbInfo with the measurement.
  const auto text =
      run_process({"/usr/bin/openssl", "x509", "-in", out + "/alias.pem", "-noout", "-text"});
  EXPECT_NE(text.out.find("2.23.133.5.4.1"), std::string::npos) << text.describe();
}

// ---- secure boot: images made here with the build's signing tool ----

class SecureBoot : public LibTest {
 protected:
  // A copy of the build's image with `extra` appended (a different
  // measurement, still a loadable library), signed with `key` at `svn`.
  std::string make_image(const std::string& name, const std::string& extra, uint32_t svn,
                         const std::string& key = IHSM_FIRMWARE_KEY) {
    const std::string out = dir().file(name);
    fs::create_directories(out);
    Bytes image = to_bytes(read_file(IHSM_FIRMWARE_IMAGE));
    image.insert(image.end(), extra.begin(), extra.end());
    write_file(out + "/ihsm-firmware.so", std::string(image.begin(), image.end()));
    const auto r =
        run_process({IHSM_SIGN_FIRMWARE, "--key", key, "--new-key-if-missing", "--image",
                     out + "/ihsm-firmware.so", "--firmware-version", "9.9." + std::to_string(svn),
                     "--svn", std::to_string(svn), "--manifest", out + "/ihsm-firmware.manifest"});
    EXPECT_EQ(r.exit_code, 0) << r.describe();
    return out;
  }
  // Restarts the daemon on the same state with `args`.
  ::testing::AssertionResult restart_with(std::vector<std::string> args) {
    daemon().kill_hard();
    daemon().args() = std::move(args);
    return daemon().start();
  }
  DeviceInfo info() {
    auto c = connect();
    auto i = c.device_info();
    if (!i) throw std::runtime_error("device_info");
    return i.value();
  }
  std::vector<Bytes> certificates() { return connect().certificates().value(); }
};

TEST_F(SecureBoot, ANewImageHasANewMeasurementAndAliasKeyButTheSameDeviceId) {
  const DeviceInfo before = info();
  const auto certs_before = certificates();
  EXPECT_EQ(before.state, "operational");
  EXPECT_EQ(before.measurement.size(), 48u);
  ASSERT_TRUE(restart_with({"--firmware-dir", make_image("variant", "variant build", 1)}));
  const DeviceInfo after = info();
  const auto certs_after = certificates();
  EXPECT_EQ(after.state, "operational");
  EXPECT_NE(after.measurement, before.measurement);
  EXPECT_EQ(certs_after[0], certs_before[0]);  // DeviceID: the same certificate
  EXPECT_NE(cert_public_key(certs_after[1]), cert_public_key(certs_before[1]));  // Alias
  // Back on the first image, the first Alias key again: it is derived, not stored.
  ASSERT_TRUE(restart_with({}));
  EXPECT_EQ(cert_public_key(certificates()[1]), cert_public_key(certs_before[1]));
}

TEST_F(SecureBoot, ABadlySignedOrMismatchedImageDoesNotBoot) {
  const std::string foreign = make_image("foreign", "x", 1, dir().file("other-key.pem"));
  ASSERT_TRUE(restart_with({"--firmware-dir", foreign}));
  DeviceInfo i = info();
  EXPECT_EQ(i.state, "boot-failed");
  EXPECT_NE(i.reason.find("FIRMWARE_SIGNATURE_INVALID"), std::string::npos) << i.reason;
  // Nothing else is served.
  Client c = connect();
  EXPECT_STATUS(c.list_partitions(), Status::kBootFailed);
  EXPECT_STATUS(c.open_session(1), Status::kBootFailed);

  // The manifest of one image with the bytes of another.
  const std::string mismatched = make_image("mismatched", "y", 1);
  write_file(mismatched + "/ihsm-firmware.so", read_file(IHSM_FIRMWARE_IMAGE) + "z");
  ASSERT_TRUE(restart_with({"--firmware-dir", mismatched}));
  i = info();
  EXPECT_EQ(i.state, "boot-failed");
  EXPECT_NE(i.reason.find("FIRMWARE_HASH_MISMATCH"), std::string::npos) << i.reason;

  // And the device is whole again with its own image.
  ASSERT_TRUE(restart_with({}));
  EXPECT_EQ(info().state, "operational");
  EXPECT_OK(connect().list_partitions());
}

TEST_F(SecureBoot, ARolledBackImageDoesNotBootAndUpdatesInstallForTheNextStart) {
  // An update signed by another key is refused before it is installed.
  EXPECT_STATUS(connect().update_firmware(make_image("v3", "z", 3, dir().file("k2.pem"))),
                Status::kFirmwareSignatureInvalid);
  // An update to security version 2, installed through the device.
  const std::string v2 = make_image("v2", "security version 2", 2);
  auto installed = connect().update_firmware(v2);
  ASSERT_OK(installed);
  EXPECT_EQ(installed.value().security_version, 2u);
  EXPECT_EQ(info().security_version, 1u);  // still the running image
  ASSERT_TRUE(restart_with({}));           // boots the installed update
  DeviceInfo i = info();
  EXPECT_EQ(i.security_version, 2u);
  EXPECT_EQ(i.min_security_version, 2u);
  EXPECT_EQ(i.measurement, installed.value().measurement);

  // Version 1 is now below the minimum: not installed, not booted.
  EXPECT_STATUS(connect().update_firmware(make_image("v1", "old", 1)), Status::kFirmwareRolledBack);
  ASSERT_TRUE(restart_with({"--firmware-dir", fs::path(IHSM_FIRMWARE_IMAGE).parent_path()}));
  i = info();
  EXPECT_EQ(i.state, "boot-failed");
  EXPECT_NE(i.reason.find("FIRMWARE_ROLLED_BACK"), std::string::npos) << i.reason;
  ASSERT_TRUE(restart_with({}));
  EXPECT_EQ(info().state, "operational");
}

// A state directory from before the boot stage kept the device unique
// secret in device.cbor. The boot stage takes it over (into boot.cbor), the
// firmware drops it from device.cbor, and every stored key still opens.
TEST_F(SecureBoot, AStateDirectoryFromBeforeTheBootStageKeepsItsKeys) {
  Client c = connect();
  const PartitionId p = make_partition(c, "old").id;
  Session s = login(c, p);
  KeyTemplate t = aes_flags("kept");
  t.token = true;
  auto key = s.generate_aes_key(256, t);
  ASSERT_OK(key);
  auto sealed = s.encrypt_gcm(key.value(), to_bytes("from the old days"), {});
  ASSERT_OK(sealed);
  ASSERT_TRUE(daemon().stop());

  // Rebuild the old layout: the secret back into device.cbor, no boot.cbor.
  const std::string boot_file = state_dir() + "/boot.cbor",
                    device_file = state_dir() + "/device.cbor";
  cbor::Value boot, device;
  ASSERT_EQ(cbor::decode(to_bytes(read_file(boot_file)), boot), Status::kOk);
  ASSERT_EQ(cbor::decode(to_bytes(read_file(device_file)), device), Status::kOk);
  ASSERT_EQ(device.find(2), nullptr);
  device.set(uint64_t{2}, *boot.find(2));
  const Bytes old_device = cbor::encode(device);
  write_file(device_file, std::string(old_device.begin(), old_device.end()));
  fs::remove(boot_file);

  ASSERT_TRUE(daemon().start());
  Client again = connect();
  Session s2 = login(again, p);
  auto opened = s2.decrypt_gcm(key.value(), sealed.value(), {});
  ASSERT_OK(opened);
  EXPECT_EQ(opened.value(), to_bytes("from the old days"));
  EXPECT_TRUE(fs::exists(boot_file));
  cbor::Value now;
  ASSERT_EQ(cbor::decode(to_bytes(read_file(device_file)), now), Status::kOk);
  EXPECT_EQ(now.find(2), nullptr) << "the device secret is still in device.cbor";
}

}  // namespace
}  // namespace ihsm::test
