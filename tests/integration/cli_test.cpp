// The `ihsm` command line against a real ihsmd: IHSM_SOCKET points at the
// fixture's daemon, PINs come from the environment or files (never argv),
// signatures are checked with the real `openssl` binary, and partition
// state is cross-checked over raw frames.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "integration/daemon_fixture.h"
#include "support/ossl.h"
#include "support/raw_client.h"

namespace ihsm::test {
namespace {

using json = nlohmann::json;

constexpr const char* kSo = "cli-officer-pin";
constexpr const char* kUser = "cli-user-pin";

// The caller-chosen usage flags out of a "sign,sensitive,..." list, in the
// device's order (flags the device sets itself are dropped).
std::string usage_flags(const std::string& csv) {
  static const std::vector<std::string> kUsage = {"sign",    "verify",    "encrypt",
                                                  "decrypt", "derive",    "wrap",
                                                  "unwrap",  "sensitive", "extractable"};
  std::set<std::string> have;
  std::stringstream ss(csv);
  for (std::string item; std::getline(ss, item, ',');) have.insert(item);
  std::string out;
  for (const auto& f : kUsage) {
    if (have.count(f) != 0) out += (out.empty() ? "" : ",") + f;
  }
  return out;
}

class Cli : public DaemonTest {
 protected:
  std::vector<std::string> daemon_args() const override {
    return {"--pin-max-failures", "4", "--pin-backoff-ms", "20", "--pin-backoff-max-ms", "40"};
  }

  // Runs `ihsm args...` against the fixture daemon. No PIN variable leaks
  // in from the caller's environment; `env` adds some.
  ProcessResult ihsm(const std::vector<std::string>& args, std::vector<std::string> env = {},
                     std::optional<uint32_t> as_uid = std::nullopt) {
    std::vector<std::string> argv = {IHSM_CLI_PATH};
    argv.insert(argv.end(), args.begin(), args.end());
    std::vector<std::string> full_env = {"IHSM_PIN",
                                         "IHSM_SO_PIN",
                                         "IHSM_USER_PIN",
                                         "IHSM_NEW_PIN",
                                         "IHSM_PARTITION",
                                         "IHSM_BACKUP_SECRET",
                                         "IHSM_SOCKET=" + socket_path()};
    full_env.insert(full_env.end(), env.begin(), env.end());
    return run_process(argv, full_env, "", std::chrono::seconds(60), as_uid);
  }

  json ihsm_json(const std::vector<std::string>& args, std::vector<std::string> env = {}) {
    std::vector<std::string> with = {"--json"};
    with.insert(with.end(), args.begin(), args.end());
    const ProcessResult r = ihsm(with, std::move(env));
    if (r.exit_code != 0) throw std::runtime_error("ihsm failed: " + r.describe());
    return json::parse(r.out);
  }

  void create_partition(const std::string& name) {
    const ProcessResult r =
        ihsm({"partition", "create", name},
             {std::string("IHSM_SO_PIN=") + kSo, std::string("IHSM_USER_PIN=") + kUser});
    ASSERT_EQ(r.exit_code, 0) << r.describe();
  }

  std::string file(const std::string& name, std::string_view content) {
    const std::string path = dir().file(name);
    write_file(path, content);
    return path;
  }

  // openssl dgst -<hash> -verify pub.pem -signature sig data
  ProcessResult openssl_verify(const std::string& hash, const std::string& pub,
                               const std::string& sig, const std::string& data) {
    return run_process(
        {IHSM_OPENSSL_BIN, "dgst", "-" + hash, "-verify", pub, "-signature", sig, data});
  }

  // Partition names as the device reports them over raw frames.
  std::set<std::string> device_partitions() {
    RawConn c(socket_path());
    std::set<std::string> names;
    const WireFrame list = c.call(protocol::Opcode::kPartitionList);
    for (const auto& p : list.field(protocol::kPartitions).items()) {
      names.insert(std::string(p.find(protocol::kName)->as_text()));
    }
    return names;
  }
};

TEST_F(Cli, StatusJson) {
  const json j = ihsm_json({"status"});
  EXPECT_EQ(j.at("protocol_revision"), 1);
  EXPECT_EQ(j.at("state"), "operational");
  EXPECT_EQ(j.at("caller_is_owner"), true);
  EXPECT_EQ(j.at("partition_count"), 0);
  EXPECT_FALSE(j.at("firmware_version").get<std::string>().empty());
  // The fingerprint is that of the identity key the device sends.
  RawConn c(socket_path());
  const Bytes identity = raw_device_info(c).identity_spki;
  EXPECT_EQ(j.at("identity_key_sha256"), to_hex(ossl::digest(EVP_sha256(), identity)));
  // The text form says the same.
  const ProcessResult text = ihsm({"status"});
  ASSERT_EQ(text.exit_code, 0) << text.describe();
  EXPECT_NE(text.out.find("operational"), std::string::npos) << text.out;
  // --socket overrides IHSM_SOCKET.
  const ProcessResult other =
      ihsm({"--socket", socket_path(), "status"}, {"IHSM_SOCKET=/nonexistent"});
  EXPECT_EQ(other.exit_code, 0) << other.describe();
}

TEST_F(Cli, SelfTestJsonTextAndExitCode) {
  const json j = ihsm_json({"self-test"});
  EXPECT_EQ(j.at("passed"), true);
  EXPECT_EQ(j.at("state"), "operational");
  EXPECT_TRUE(j.at("failed_test").is_null());
  ASSERT_EQ(j.at("tests").size(), 21u);
  EXPECT_EQ(j.at("tests")[0].at("name"), "aes-gcm");
  EXPECT_LT(j.at("elapsed_us").get<uint64_t>(), 1000000u);
  const ProcessResult text = ihsm({"self-test"});
  ASSERT_EQ(text.exit_code, 0) << text.describe();
  EXPECT_NE(text.out.find("all 21 self-tests passed"), std::string::npos) << text.out;

  // On the fault-injection image with a failing known-answer test: exit 1,
  // the failed test named, the device in its error state.
  ASSERT_TRUE(daemon().stop());
  ::setenv("IHSM_FAULT_INJECT", "hmac-sha-384", 1);
  daemon().args() = {"--firmware-dir", IHSM_FAULTY_FIRMWARE_DIR};
  const auto started = daemon().start();
  ::unsetenv("IHSM_FAULT_INJECT");
  ASSERT_TRUE(started);
  const ProcessResult failed = ihsm({"--json", "self-test"});
  EXPECT_EQ(failed.exit_code, 1) << failed.describe();
  const json f = json::parse(failed.out);
  EXPECT_EQ(f.at("passed"), false);
  EXPECT_EQ(f.at("failed_test"), "hmac-sha-384");
  EXPECT_EQ(f.at("state"), "error");
  const json status = ihsm_json({"status"});
  EXPECT_EQ(status.at("state"), "error");
  EXPECT_EQ(status.at("reason"), "hmac-sha-384");
  const ProcessResult refused = ihsm({"partition", "list"});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_NE(refused.err.find("DEVICE_ERROR"), std::string::npos) << refused.describe();
  EXPECT_NE(refused.err.find("hmac-sha-384"), std::string::npos) << refused.describe();
}

TEST_F(Cli, PartitionCreateListDelete) {
  create_partition("first");
  // A PIN file for the officer, no user PIN yet, a session limit.
  const std::string so_file = file("so.pin", std::string(kSo) + "\n");
  ::chmod(so_file.c_str(), 0600);
  ProcessResult r = ihsm({"partition", "create", "second", "--pin-file", so_file, "--no-user-pin",
                          "--max-sessions", "5"});
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_EQ(device_partitions(), (std::set<std::string>{"first", "second"}));

  json list = ihsm_json({"partition", "list"});
  ASSERT_EQ(list.at("partitions").size(), 2u);
  for (const auto& p : list.at("partitions")) {
    if (p.at("name") == "first") {
      EXPECT_EQ(p.at("user_pin_set"), true);
      EXPECT_EQ(p.at("max_sessions"), 64);
    } else {
      EXPECT_EQ(p.at("name"), "second");
      EXPECT_EQ(p.at("user_pin_set"), false);
      EXPECT_EQ(p.at("max_sessions"), 5);
    }
    EXPECT_EQ(p.at("open_sessions"), 0);
    EXPECT_EQ(p.at("user_pin_locked"), false);
  }
  const ProcessResult text = ihsm({"partition", "list"});
  ASSERT_EQ(text.exit_code, 0);
  EXPECT_NE(text.out.find("first"), std::string::npos);
  EXPECT_NE(text.out.find("second"), std::string::npos);

  // Duplicates are refused with the device's status.
  r = ihsm({"partition", "create", "first", "--no-user-pin"}, {std::string("IHSM_SO_PIN=") + kSo});
  EXPECT_EQ(r.exit_code, 1) << r.describe();
  EXPECT_NE(r.err.find("PARTITION_EXISTS"), std::string::npos) << r.err;

  r = ihsm({"partition", "delete", "first"});
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_EQ(device_partitions(), (std::set<std::string>{"second"}));
  r = ihsm({"partition", "delete", "first"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("NO_SUCH_PARTITION"), std::string::npos) << r.err;
  // By numeric id too.
  const auto id = list.at("partitions")[0].at("name") == "second"
                      ? list.at("partitions")[0].at("id").get<uint32_t>()
                      : list.at("partitions")[1].at("id").get<uint32_t>();
  r = ihsm({"--json", "partition", "delete", std::to_string(id)});
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_EQ(json::parse(r.out).at("deleted"), id);
  EXPECT_TRUE(device_partitions().empty());
}

TEST_F(Cli, PinsComeOnlyFromEnvironmentFilesOrATerminal) {
  // No source and stdin not a terminal: a usage error, nothing created.
  ProcessResult r = ihsm({"partition", "create", "nopin"});
  EXPECT_EQ(r.exit_code, 2) << r.describe();
  EXPECT_NE(r.err.find("IHSM_SO_PIN"), std::string::npos) << r.err;
  // There is no option that takes a PIN value on the command line.
  r = ihsm({"partition", "create", "argv", "--pin", kSo, "--no-user-pin"});
  EXPECT_EQ(r.exit_code, 2) << r.describe();
  // A named variable that is not set is an error, not an empty PIN.
  r = ihsm({"partition", "create", "named", "--pin-env", "NOT_SET_ANYWHERE", "--no-user-pin"});
  EXPECT_EQ(r.exit_code, 2) << r.describe();
  EXPECT_TRUE(device_partitions().empty());
  // --pin-env VAR works.
  r = ihsm({"partition", "create", "named", "--pin-env", "MY_SO", "--user-pin-env", "MY_USER"},
           {std::string("MY_SO=") + kSo, std::string("MY_USER=") + kUser});
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_EQ(device_partitions(), (std::set<std::string>{"named"}));
}

TEST_F(Cli, SignVerifiesWithTheOpensslBinary) {
  create_partition("signing");
  const std::string data = file("data.txt", "The device signs; openssl verifies.\n");
  const struct {
    const char* curve;
    const char* hash;
  } cases[] = {{"P-256", "sha256"}, {"P-384", "sha384"}, {"P-521", "sha512"}};
  for (const auto& c : cases) {
    SCOPED_TRACE(c.curve);
    const std::string sig = dir().file(std::string("sig-") + c.curve + ".der");
    const std::string pub = dir().file(std::string("pub-") + c.curve + ".pem");
    const ProcessResult r = ihsm({"sign", "-p", "signing", "--curve", c.curve, "--in", data,
                                  "--out", sig, "--pubkey-out", pub},
                                 {std::string("IHSM_PIN=") + kUser});
    ASSERT_EQ(r.exit_code, 0) << r.describe();
    const ProcessResult v = openssl_verify(c.hash, pub, sig, data);
    EXPECT_EQ(v.exit_code, 0) << v.describe();
    EXPECT_NE(v.out.find("Verified OK"), std::string::npos) << v.describe();
    // openssl is not rubber-stamping: a changed file fails.
    const std::string other = file("other.txt", "The device signs; openssl verifies!\n");
    const ProcessResult bad = openssl_verify(c.hash, pub, sig, other);
    EXPECT_NE(bad.exit_code, 0) << bad.describe();
    // The CLI's own local verification agrees.
    const ProcessResult local = ihsm({"verify", "--pubkey", pub, "--in", data, "--signature", sig});
    EXPECT_EQ(local.exit_code, 0) << local.describe();
    const ProcessResult local_bad =
        ihsm({"verify", "--pubkey", pub, "--in", other, "--signature", sig});
    EXPECT_NE(local_bad.exit_code, 0);
    EXPECT_NE(local_bad.err.find("SIGNATURE_INVALID"), std::string::npos) << local_bad.err;
  }
}

TEST_F(Cli, SignRawFormatAndJson) {
  create_partition("signing");
  const std::string content = "raw r||s signature";
  const std::string data = file("data.bin", content);
  const json j = ihsm_json(
      {"sign", "-p", "signing", "--format", "raw", "--mechanism", "ECDSA-SHA384", "--in", data},
      {std::string("IHSM_PIN=") + kUser});
  EXPECT_EQ(j.at("mechanism"), "ECDSA-SHA384");
  EXPECT_EQ(j.at("approved"), true);
  const Bytes raw = from_hex(j.at("signature_hex").get<std::string>());
  EXPECT_EQ(raw.size(), 64u);  // P-256 by default
  // Verify with independent code from the PEM it printed.
  const std::string pem = j.at("public_key_pem");
  const std::string pem_path = file("pub.pem", pem);
  const ProcessResult der = run_process({IHSM_OPENSSL_BIN, "pkey", "-pubin", "-in", pem_path,
                                         "-outform", "DER", "-out", dir().file("pub.der")});
  ASSERT_EQ(der.exit_code, 0) << der.describe();
  const std::string spki = read_file(dir().file("pub.der"));
  EXPECT_TRUE(ossl::verify_ecdsa_raw(Bytes(spki.begin(), spki.end()), EVP_sha384(),
                                     to_bytes(content), raw));
}

TEST_F(Cli, WrongPinFailsWithTheStatusName) {
  create_partition("p");
  const std::string data = file("data.txt", "x");
  ProcessResult r = ihsm({"sign", "-p", "p", "--in", data}, {"IHSM_PIN=not-the-pin"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("PIN_INCORRECT"), std::string::npos) << r.err;
  // JSON mode reports it on stdout as well, with the retries left.
  r = ihsm({"--json", "sign", "-p", "p", "--in", data}, {"IHSM_PIN=not-the-pin"});
  EXPECT_NE(r.exit_code, 0);
  const json j = json::parse(r.out);
  EXPECT_EQ(j.at("error").at("status"), "PIN_INCORRECT");
  EXPECT_EQ(j.at("error").at("retries_left"), 2);
  // An unknown partition and an unreachable device are reported too.
  r = ihsm({"sign", "-p", "nope", "--in", data}, {std::string("IHSM_PIN=") + kUser});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("NO_SUCH_PARTITION"), std::string::npos) << r.err;
  r = ihsm({"--socket", dir().file("absent.sock"), "status"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("DEVICE_UNAVAILABLE"), std::string::npos) << r.err;
}

TEST_F(Cli, LockoutAndPinCommands) {
  create_partition("p");
  const std::string data = file("data.txt", "x");
  const std::vector<std::string> sign = {"sign", "-p", "p", "--in", data};
  // Four wrong PINs lock the user (back-off waits are 20-40 ms here).
  std::string last;
  for (int i = 0; i < 20; ++i) {
    const ProcessResult r = ihsm(sign, {"IHSM_PIN=wrong-pin"});
    ASSERT_NE(r.exit_code, 0);
    if (r.err.find("PIN_LOCKED") != std::string::npos) {
      last = "PIN_LOCKED";
      break;
    }
    if (r.err.find("PIN_BACKOFF") != std::string::npos) {
      std::this_thread::sleep_for(std::chrono::milliseconds(45));
      continue;
    }
    ASSERT_NE(r.err.find("PIN_INCORRECT"), std::string::npos) << r.err;
  }
  ASSERT_EQ(last, "PIN_LOCKED");
  ProcessResult r = ihsm(sign, {std::string("IHSM_PIN=") + kUser});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("PIN_LOCKED"), std::string::npos) << r.err;
  EXPECT_EQ(ihsm_json({"partition", "list"}).at("partitions")[0].at("user_pin_locked"), true);

  r = ihsm({"pin", "unlock-user", "-p", "p"}, {std::string("IHSM_SO_PIN=") + kSo});
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  r = ihsm(sign, {std::string("IHSM_PIN=") + kUser});
  EXPECT_EQ(r.exit_code, 0) << r.describe();

  // pin change: the old PIN stops working, the new one works.
  r = ihsm({"pin", "change", "-p", "p"},
           {std::string("IHSM_PIN=") + kUser, "IHSM_NEW_PIN=changed-user-pin"});
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  r = ihsm(sign, {std::string("IHSM_PIN=") + kUser});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("PIN_INCORRECT"), std::string::npos) << r.err;
  r = ihsm(sign, {"IHSM_PIN=changed-user-pin"});
  EXPECT_EQ(r.exit_code, 0) << r.describe();

  // pin init-user: the officer resets the user PIN.
  r = ihsm({"pin", "init-user", "-p", "p"},
           {std::string("IHSM_SO_PIN=") + kSo, "IHSM_USER_PIN=reset-user-pin"});
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  r = ihsm(sign, {"IHSM_PIN=reset-user-pin"});
  EXPECT_EQ(r.exit_code, 0) << r.describe();
}

TEST_F(Cli, KeyGenerateUsesTheDeviceDefaults) {
  create_partition("p");
  const std::vector<std::string> pin = {std::string("IHSM_PIN=") + kUser};
  json ec = ihsm_json(
      {"key", "generate", "-p", "p", "--curve", "P-384", "--label", "k1", "--id", "c0ffee"}, pin);
  EXPECT_EQ(ec.at("private_key").at("curve"), "P-384");
  EXPECT_EQ(usage_flags(ec.at("private_key").at("flags")), "sign,sensitive");
  EXPECT_EQ(usage_flags(ec.at("public_key").at("flags")), "verify");
  EXPECT_EQ(ec.at("private_key").at("label"), "k1");
  EXPECT_EQ(ec.at("private_key").at("id"), "c0ffee");
  EXPECT_EQ(ec.at("private_key").at("class"), "private");
  EXPECT_EQ(ec.at("public_key").at("pair_handle"), ec.at("private_key").at("handle"));
  const std::string pem = ec.at("public_key_pem");
  EXPECT_NE(pem.find("BEGIN PUBLIC KEY"), std::string::npos);

  json aes = ihsm_json({"key", "generate", "-p", "p", "--type", "aes", "--bits", "192"}, pin);
  EXPECT_EQ(aes.at("key").at("bits"), 192);
  EXPECT_EQ(usage_flags(aes.at("key").at("flags")), "encrypt,decrypt,sensitive");
  EXPECT_EQ(aes.at("key").at("class"), "secret");

  ProcessResult r = ihsm({"key", "generate", "-p", "p", "--type", "aes", "--bits", "100"}, pin);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("KEY_SIZE_INVALID"), std::string::npos) << r.err;
  r = ihsm({"key", "generate", "-p", "p", "--flags", "sign,bogus"}, pin);
  EXPECT_EQ(r.exit_code, 2) << r.describe();
}

TEST_F(Cli, TokenKeysMaskedBlobsAndCertificates) {
  create_partition("tok");
  const std::vector<std::string> pin = {std::string("IHSM_PIN=") + kUser};
  json gen =
      ihsm_json({"key", "generate", "-p", "tok", "--label", "web", "--id", "0a0b", "--token"}, pin);
  EXPECT_EQ(gen.at("private_key").at("token"), true);
  const uint64_t priv = gen.at("private_key").at("handle");
  const std::string pub = file("web.pem", gen.at("public_key_pem").get<std::string>());

  // A later process finds it and signs with it; openssl verifies.
  json list = ihsm_json({"key", "list", "-p", "tok", "--label", "web"}, pin);
  ASSERT_EQ(list.at("keys").size(), 2u);
  const std::string data = file("data.txt", "token keys outlive the command\n");
  const std::string sig = dir().file("sig.der");
  ProcessResult r =
      ihsm({"sign", "-p", "tok", "--key", std::to_string(priv), "--in", data, "--out", sig}, pin);
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_EQ(openssl_verify("sha256", pub, sig, data).exit_code, 0);

  // Its masked blob loads back to the same key until the key is destroyed.
  const std::string blob = dir().file("web.masked");
  r = ihsm({"key", "export-masked", "-p", "tok", "--key", std::to_string(priv), "--out", blob},
           pin);
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  json loaded = ihsm_json({"key", "load-masked", "-p", "tok", "--in", blob}, pin);
  EXPECT_EQ(loaded.at("key").at("handle"), priv);
  r = ihsm({"key", "destroy", "-p", "tok", "--key", std::to_string(priv)}, pin);
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  r = ihsm({"key", "load-masked", "-p", "tok", "--in", blob}, pin);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("MASKED_KEY_REVOKED"), std::string::npos) << r.err;

  // A PEM certificate is stored as DER next to the key and read back.
  const std::string key_pem = dir().file("ca.key"), cert_pem = dir().file("ca.pem");
  ProcessResult ca = run_process({IHSM_OPENSSL_BIN, "req", "-x509", "-newkey", "ec", "-pkeyopt",
                                  "ec_paramgen_curve:P-256", "-nodes", "-keyout", key_pem, "-out",
                                  cert_pem, "-subj", "/CN=ihsm test", "-days", "1"});
  ASSERT_EQ(ca.exit_code, 0) << ca.describe();
  json cert = ihsm_json({"object", "create", "-p", "tok", "--in", cert_pem, "--label", "web",
                         "--id", "0a0b", "--token"},
                        pin);
  EXPECT_EQ(cert.at("object").at("class"), "certificate");
  const std::string der = dir().file("back.der");
  r = ihsm({"object", "get", "-p", "tok", "--key",
            std::to_string(cert.at("object").at("handle").get<uint64_t>()), "--out", der},
           pin);
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  ProcessResult x =
      run_process({IHSM_OPENSSL_BIN, "x509", "-inform", "DER", "-in", der, "-noout", "-subject"});
  EXPECT_EQ(x.exit_code, 0) << x.describe();
  EXPECT_NE(x.out.find("ihsm test"), std::string::npos) << x.out;
  list = ihsm_json({"key", "list", "-p", "tok", "--class", "certificate"}, pin);
  EXPECT_EQ(list.at("keys").size(), 1u);
}

TEST_F(Cli, BackupResetRestore) {
  create_partition("bk");
  const std::vector<std::string> pin = {std::string("IHSM_PIN=") + kUser};
  json gen = ihsm_json({"key", "generate", "-p", "bk", "--label", "keep", "--token"}, pin);
  const uint64_t priv = gen.at("private_key").at("handle");
  const std::string pub = file("keep.pem", gen.at("public_key_pem").get<std::string>());
  const std::string backup = dir().file("bk.backup");
  const std::vector<std::string> secret = {"IHSM_BACKUP_SECRET=correct horse battery"};
  json b = ihsm_json({"backup", "-p", "bk", "--out", backup}, secret);
  EXPECT_EQ(b.at("records"), 2);
  EXPECT_EQ(b.at("backup_secret"), true);

  ProcessResult r = ihsm({"partition", "reset", "bk"}, {std::string("IHSM_SO_PIN=") + kSo,
                                                        std::string("IHSM_USER_PIN=") + kUser});
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_TRUE(ihsm_json({"key", "list", "-p", "bk"}, pin).at("keys").empty());

  // Without the secret the reset partition cannot take the backup back.
  r = ihsm({"restore", "-p", "bk", "--in", backup});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("BACKUP_SECRET_REQUIRED"), std::string::npos) << r.err;
  // A truncated file is refused before anything is sent.
  const std::string whole = read_file(backup);
  const std::string cut = file("cut.backup", whole.substr(0, whole.size() - 20));
  r = ihsm({"restore", "-p", "bk", "--in", cut}, secret);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("truncated"), std::string::npos) << r.err;

  json restored = ihsm_json({"restore", "-p", "bk", "--in", backup}, secret);
  EXPECT_EQ(restored.at("restored"), 2);
  const std::string data = file("data.txt", "restored keys sign\n");
  const std::string sig = dir().file("sig.der");
  r = ihsm({"sign", "-p", "bk", "--key", std::to_string(priv), "--in", data, "--out", sig}, pin);
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_EQ(openssl_verify("sha256", pub, sig, data).exit_code, 0);
}

TEST_F(Cli, RandomAndCipherRoundTrip) {
  create_partition("p");
  json j = ihsm_json({"random", "-p", "p", "32"});
  EXPECT_EQ(j.at("length"), 32);
  EXPECT_EQ(j.at("hex").get<std::string>().size(), 64u);
  // More than one device call's worth.
  const std::string out = dir().file("random.bin");
  ProcessResult r = ihsm({"random", "-p", "p", "--out", out, "200000"});
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_EQ(read_file(out).size(), 200000u);

  const std::string data = file("plain.bin", std::string(600 * 1024, 'q'));
  const std::string aad = file("aad.bin", "associated");
  j = ihsm_json({"cipher-roundtrip", "-p", "p", "--in", data, "--aad-file", aad},
                {std::string("IHSM_PIN=") + kUser});
  EXPECT_EQ(j.at("roundtrip_ok"), true);
  EXPECT_EQ(j.at("tamper_detected"), true);
  EXPECT_EQ(j.at("encrypt_approved"), true);
  EXPECT_EQ(j.at("chunks"), 2);
  EXPECT_EQ(j.at("plaintext_bytes"), 600 * 1024);
  EXPECT_EQ(j.at("ciphertext_bytes"), 600 * 1024 + 2 * (12 + 16));
}

TEST_F(Cli, NonOwnerCannotAdminister) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to run the CLI as another uid";
  create_partition("p");
  const ProcessResult probe = ihsm({"--help"}, {}, 65534);
  if (probe.exit_code == 127 || probe.exit_code == 126) {
    GTEST_SKIP() << "the ihsm binary is not reachable for uid 65534";
  }
  ProcessResult r = ihsm({"--json", "status"}, {}, 65534);
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_EQ(json::parse(r.out).at("caller_is_owner"), false);
  r = ihsm({"partition", "create", "evil", "--no-user-pin"}, {std::string("IHSM_SO_PIN=") + kSo},
           65534);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("NOT_OWNER"), std::string::npos) << r.err;
  r = ihsm({"partition", "delete", "p"}, {}, 65534);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("NOT_OWNER"), std::string::npos) << r.err;
  EXPECT_EQ(device_partitions(), (std::set<std::string>{"p"}));
}

}  // namespace
}  // namespace ihsm::test
