// `ihsm attest verify` as a user runs it: report and root in files, the
// JSON verdict on stdout, exit 0 valid / 1 invalid / 2 usage error. No
// daemon: verification is offline.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "support/attest_chain.h"
#include "support/util.h"

namespace ihsm::test {
namespace {

using json = nlohmann::json;
using namespace attest;

class CliAttestVerify : public ::testing::Test {
 protected:
  void SetUp() override {
    chain_ = make_chain();
    root_ = dir_.file("root.pem");
    write_file(root_, chain_.root_pem());
  }

  std::string write(const std::string& name, const Bytes& data) {
    const std::string path = dir_.file(name);
    write_file(path, std::string(data.begin(), data.end()));
    return path;
  }

  std::string key_report_file(const cose::KeyReport& r) {
    return write("key.cbor", sign_report(cose::encode_key_report(r), chain_.key_x5chain(),
                                         chain_.partition_key.get()));
  }

  ProcessResult ihsm(std::vector<std::string> args) {
    args.insert(args.begin(), IHSM_CLI_PATH);
    // No socket is needed; a bogus one proves it.
    return run_process(args, {"IHSM_SOCKET=/nonexistent/ihsm.sock"});
  }

  TempDir dir_;
  Chain chain_;
  std::string root_;
};

TEST_F(CliAttestVerify, ValidKeyReport) {
  const cose::KeyReport r = sample_key_report(chain_.partition_key.get());
  const ProcessResult p =
      ihsm({"attest", "verify", "--report", key_report_file(r), "--root", root_, "--nonce",
            "0102030405060708", "--require", "generated,never-extractable,not-extractable"});
  ASSERT_EQ(p.exit_code, 0) << p.describe();
  const json j = json::parse(p.out);
  EXPECT_EQ(j.at("valid"), true);
  EXPECT_FALSE(j.contains("reason"));
  EXPECT_EQ(j.at("kind"), "key");
  EXPECT_EQ(j.at("partition"), 7);
  EXPECT_EQ(j.at("uid"), to_hex(r.uid));
  EXPECT_EQ(j.at("class"), 3);
  EXPECT_EQ(j.at("class_name"), "private");
  EXPECT_EQ(j.at("type_name"), "EC");
  EXPECT_EQ(j.at("bits"), 384);
  EXPECT_EQ(j.at("flags"),
            json({"generated", "sensitive", "always-sensitive", "never-extractable", "sign"}));
  EXPECT_EQ(j.at("measurement"), to_hex(Bytes(48, 0xAB)));
  EXPECT_EQ(j.at("svn"), 4);
  EXPECT_EQ(j.at("time"), 1700000000);
  EXPECT_EQ(j.at("nonce"), "0102030405060708");
  EXPECT_EQ(j.at("public_key"), ossl::spki_to_pem(ossl::spki_of(chain_.partition_key.get())));
}

TEST_F(CliAttestVerify, ValidDeviceReport) {
  const std::string file =
      write("device.cbor", sign_report(cose::encode_device_report(sample_device_report()),
                                       chain_.device_x5chain(), chain_.alias_key.get()));
  const ProcessResult p = ihsm({"attest", "verify", "--report", file, "--root", root_});
  ASSERT_EQ(p.exit_code, 0) << p.describe();
  const json j = json::parse(p.out);
  EXPECT_EQ(j.at("kind"), "device");
  EXPECT_EQ(j.at("firmware_version"), "1.2.3");
  EXPECT_EQ(j.at("min_svn"), 3);
  EXPECT_EQ(j.at("state"), "operational");
}

TEST_F(CliAttestVerify, InvalidReportsExitOne) {
  cose::KeyReport r = sample_key_report(chain_.partition_key.get());
  r.flags = cose::flag::kImported;
  const std::string file = key_report_file(r);
  ProcessResult p =
      ihsm({"attest", "verify", "--report", file, "--root", root_, "--require", "generated"});
  ASSERT_EQ(p.exit_code, 1) << p.describe();
  json j = json::parse(p.out);
  EXPECT_EQ(j.at("valid"), false);
  EXPECT_EQ(j.at("reason"), "requirement");
  EXPECT_EQ(j.at("flags"), json({"imported"}));

  p = ihsm({"attest", "verify", "--report", file, "--root", root_, "--nonce", "00"});
  ASSERT_EQ(p.exit_code, 1) << p.describe();
  EXPECT_EQ(json::parse(p.out).at("reason"), "nonce");

  const std::string other_root = dir_.file("other.pem");
  write_file(other_root, make_chain().root_pem());
  p = ihsm({"attest", "verify", "--report", file, "--root", other_root});
  ASSERT_EQ(p.exit_code, 1) << p.describe();
  EXPECT_EQ(json::parse(p.out).at("reason"), "chain");

  p = ihsm({"attest", "verify", "--report", write("junk.cbor", from_hex("d2a0")), "--root", root_});
  ASSERT_EQ(p.exit_code, 1) << p.describe();
  j = json::parse(p.out);
  EXPECT_EQ(j.at("reason"), "malformed");
  EXPECT_FALSE(j.contains("kind"));
}

TEST_F(CliAttestVerify, UsageErrorsExitTwo) {
  const std::string file = key_report_file(sample_key_report(chain_.partition_key.get()));
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"attest", "verify", "--report", file},
           {"attest", "verify", "--root", root_},
           {"attest", "verify", "--report", dir_.file("missing"), "--root", root_},
           {"attest", "verify", "--report", file, "--root", dir_.file("missing")},
           {"attest", "verify", "--report", file, "--root", root_, "--nonce", "abc"},
           {"attest", "verify", "--report", file, "--root", root_, "--nonce", "zz"},
           {"attest"},
       }) {
    const ProcessResult p = ihsm(args);
    EXPECT_EQ(p.exit_code, 2) << p.describe();
  }
}

}  // namespace
}  // namespace ihsm::test
