// The PKCS#11 module (libihsm-pkcs11.so) driven by OpenSC's `pkcs11-tool`,
// the way users drive it, against a real ihsmd: IHSM_SOCKET points the
// module at the fixture's daemon. A token is made through the free slot
// (C_InitToken creates a partition, C_InitPIN as SO sets the user PIN);
// signatures are checked with the `openssl` binary against the public key
// the module exports, and the partitions behind the slots are cross-checked
// over raw frames. GnuTLS's p11tool and the OpenSSL pkcs11 engine (libp11)
// sign with the same keys. Every failure prints the command and both its
// outputs.
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <set>
#include <sstream>

#include "integration/daemon_fixture.h"
#include "support/raw_client.h"

namespace ihsm::test {
namespace {

constexpr const char* kFreeSlot = "0x7fff0000";
constexpr const char* kToken = "mytoken";
constexpr const char* kSoPin = "12345678";
constexpr const char* kUserPin = "87654321";
constexpr const char* kIv = "000102030405060708090a0b0c0d0e0f";

// One run of a command: what was run and what came back.
struct CmdRun {
  std::string command;
  ProcessResult result;
  int exit_code() const { return result.exit_code; }
  const std::string& out() const { return result.out; }
  const std::string& err() const { return result.err; }
  std::string describe() const { return "$ " + command + "\n" + result.describe(); }
};

::testing::AssertionResult succeeded(const CmdRun& r) {
  if (r.exit_code() == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << r.describe();
}

// One object as `pkcs11-tool --list-objects` prints it: the heading line
// ("Private Key Object; EC") and its "name: value" lines.
struct ListedObject {
  std::string heading;
  std::map<std::string, std::string> attrs;
  std::string attr(const std::string& name) const {
    auto it = attrs.find(name);
    return it == attrs.end() ? std::string() : it->second;
  }
};

std::string trim(std::string s) {
  const size_t b = s.find_first_not_of(" \t");
  const size_t e = s.find_last_not_of(" \t\r");
  return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}

std::vector<ListedObject> parse_objects(const std::string& out) {
  std::vector<ListedObject> objects;
  std::stringstream ss(out);
  for (std::string line; std::getline(ss, line);) {
    if (line.empty()) continue;
    if (line[0] != ' ') {
      if (line.find("Object") != std::string::npos) objects.push_back({trim(line), {}});
      continue;
    }
    if (objects.empty()) continue;
    const size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    objects.back().attrs[trim(line.substr(0, colon))] = trim(line.substr(colon + 1));
  }
  return objects;
}

// How many listed objects have a heading starting with `kind` and the label / ID.
size_t count_objects(const std::vector<ListedObject>& objects, const std::string& kind,
                     const std::string& label, const std::string& id) {
  size_t n = 0;
  for (const auto& o : objects) {
    if (o.heading.rfind(kind, 0) != 0) continue;
    if (!label.empty() && o.attr("label") != label) continue;
    if (!id.empty() && o.attr("ID") != id) continue;
    ++n;
  }
  return n;
}

// Slots as `pkcs11-tool --list-slots` prints them: ID -> the indented lines.
std::map<unsigned long, std::vector<std::string>> parse_slots(const std::string& out) {
  std::map<unsigned long, std::vector<std::string>> slots;
  std::stringstream ss(out);
  std::vector<std::string>* current = nullptr;
  for (std::string line; std::getline(ss, line);) {
    if (line.rfind("Slot ", 0) == 0) {
      const size_t open = line.find("(0x");
      const size_t close = line.find(')', open);
      if (open == std::string::npos || close == std::string::npos) continue;
      const unsigned long id = std::stoul(line.substr(open + 1, close - open - 1), nullptr, 16);
      current = &slots[id];
    } else if (current != nullptr && !line.empty() && line[0] == ' ') {
      current->push_back(trim(line));
    }
  }
  return slots;
}

bool has_line(const std::vector<std::string>& lines, const std::string& prefix,
              const std::string& value) {
  for (const auto& l : lines) {
    if (l.rfind(prefix, 0) == 0) {
      const size_t colon = l.find(':');
      if (colon != std::string::npos && trim(l.substr(colon + 1)) == value) return true;
    }
  }
  return false;
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : " ") + x;
  return s;
}

class Pkcs11Tool : public DaemonTest {
 protected:
  std::vector<std::string> daemon_args() const override {
    // A wrong-PIN test must not leave seconds of back-off behind it.
    return {"--pin-backoff-ms", "20", "--pin-backoff-max-ms", "40"};
  }

  // pkcs11-tool --module M args..., against this test's daemon.
  CmdRun tool(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {IHSM_PKCS11_TOOL, "--module", IHSM_PKCS11_MODULE};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv);
  }

  // The same, logged in as the user of `mytoken`.
  CmdRun user(const std::vector<std::string>& args, const std::string& pin = kUserPin) {
    std::vector<std::string> with = {"--token-label", kToken, "--login", "--pin", pin};
    with.insert(with.end(), args.begin(), args.end());
    return tool(with);
  }

  CmdRun openssl(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {IHSM_OPENSSL_BIN};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv);
  }

  // argv with IHSM_SOCKET set to this test's daemon, plus `env`.
  CmdRun run(const std::vector<std::string>& argv, const std::vector<std::string>& env = {}) {
    CmdRun r;
    r.command = join(env) + (env.empty() ? "" : " ") + join(argv);
    std::vector<std::string> full_env = {"IHSM_SOCKET=" + socket_path()};
    full_env.insert(full_env.end(), env.begin(), env.end());
    r.result = run_process(argv, full_env, "", std::chrono::seconds(60));
    return r;
  }

  // C_InitToken through the free slot, then C_InitPIN as the SO.
  void init_token(const std::string& label = kToken) {
    ASSERT_TRUE(succeeded(
        tool({"--slot", kFreeSlot, "--init-token", "--label", label, "--so-pin", kSoPin})));
    ASSERT_TRUE(succeeded(tool({"--token-label", label, "--login", "--login-type", "so", "--so-pin",
                                kSoPin, "--init-pin", "--pin", kUserPin})));
  }

  std::string path(const std::string& name) const { return dir().file(name); }

  std::string data_file(const std::string& name, std::string_view content) {
    write_file(path(name), content);
    return path(name);
  }

  // The public key with this ID as PEM, read through the module as DER SPKI.
  void export_public_pem(const std::string& id, const std::string& pem) {
    const std::string der = pem + ".der";
    ASSERT_TRUE(
        succeeded(user({"--read-object", "--type", "pubkey", "--id", id, "--output-file", der})));
    ASSERT_TRUE(succeeded(openssl({"pkey", "-pubin", "-inform", "DER", "-in", der, "-out", pem})));
  }

  std::vector<ListedObject> objects() {
    const CmdRun r = user({"--list-objects"});
    EXPECT_TRUE(succeeded(r));
    return parse_objects(r.out());
  }

  // Partition name -> id, as the device reports them over raw frames.
  std::map<std::string, uint32_t> device_partitions() {
    RawConn c(socket_path());
    std::map<std::string, uint32_t> out;
    const WireFrame list = c.call(protocol::Opcode::kPartitionList);
    for (const auto& p : list.field(protocol::kPartitions).items()) {
      out[std::string(p.find(protocol::kName)->as_text())] =
          static_cast<uint32_t>(p.find(protocol::kPartition)->as_uint());
    }
    return out;
  }
};

TEST_F(Pkcs11Tool, FreshDeviceHasOnlyTheFreeSlot) {
  const CmdRun r = tool({"--list-slots"});
  ASSERT_TRUE(succeeded(r));
  const auto slots = parse_slots(r.out());
  ASSERT_EQ(slots.size(), 1u) << r.describe();
  ASSERT_EQ(slots.begin()->first, 0x7fff0000ul) << r.describe();
  // A token is present but not initialized.
  EXPECT_TRUE(has_line(slots.begin()->second, "token state", "uninitialized")) << r.describe();
  const CmdRun tokens = tool({"--list-token-slots"});
  ASSERT_TRUE(succeeded(tokens));
  EXPECT_EQ(parse_slots(tokens.out()).count(0x7fff0000ul), 1u) << tokens.describe();
}

TEST_F(Pkcs11Tool, InitTokenOnTheFreeSlotCreatesAPartition) {
  init_token();
  const auto parts = device_partitions();
  ASSERT_EQ(parts.count(kToken), 1u);
  const uint32_t id = parts.at(kToken);

  CmdRun r = tool({"--list-slots"});
  ASSERT_TRUE(succeeded(r));
  auto slots = parse_slots(r.out());
  ASSERT_EQ(slots.size(), 2u) << r.describe();
  // Slot ID = partition id; the token is initialized and labelled with the name.
  ASSERT_EQ(slots.count(id), 1u) << "partition id " << id << "\n" << r.describe();
  EXPECT_TRUE(has_line(slots.at(id), "token label", kToken)) << r.describe();
  EXPECT_FALSE(has_line(slots.at(id), "token state", "uninitialized")) << r.describe();
  // The free slot is still there, still uninitialized.
  ASSERT_EQ(slots.count(0x7fff0000ul), 1u) << r.describe();
  EXPECT_TRUE(has_line(slots.at(0x7fff0000ul), "token state", "uninitialized")) << r.describe();

  // The free slot makes another partition, and another slot.
  ASSERT_TRUE(succeeded(
      tool({"--slot", kFreeSlot, "--init-token", "--label", "second", "--so-pin", kSoPin})));
  const auto parts2 = device_partitions();
  ASSERT_EQ(parts2.size(), 2u);
  ASSERT_EQ(parts2.count("second"), 1u);
  r = tool({"--list-slots"});
  ASSERT_TRUE(succeeded(r));
  slots = parse_slots(r.out());
  EXPECT_EQ(slots.size(), 3u) << r.describe();
  ASSERT_EQ(slots.count(parts2.at("second")), 1u) << r.describe();
  EXPECT_TRUE(has_line(slots.at(parts2.at("second")), "token label", "second")) << r.describe();

  // The user PIN set with C_InitPIN logs in.
  EXPECT_TRUE(succeeded(user({"--list-objects"})));
}

TEST_F(Pkcs11Tool, EcKeyPairSignsVerifiableWithOpenssl) {
  init_token();
  ASSERT_TRUE(succeeded(
      user({"--keypairgen", "--key-type", "EC:prime256v1", "--label", "k1", "--id", "01"})));
  // Listed by a later process: token objects (CKA_TOKEN true), not session objects.
  const auto objs = objects();
  EXPECT_EQ(count_objects(objs, "Private Key Object; EC", "k1", "01"), 1u) << user({"-O"}).out();
  EXPECT_EQ(count_objects(objs, "Public Key Object; EC", "k1", "01"), 1u) << user({"-O"}).out();

  const std::string data = data_file("data.txt", "message signed through PKCS#11\n");
  const std::string sig = path("ec.sig");
  ASSERT_TRUE(succeeded(user({"--sign", "--mechanism", "ECDSA-SHA256", "--id", "01", "--input-file",
                              data, "--output-file", sig, "--signature-format", "openssl"})));
  const std::string pem = path("ec-pub.pem");
  ASSERT_NO_FATAL_FAILURE(export_public_pem("01", pem));
  const CmdRun text = openssl({"pkey", "-pubin", "-in", pem, "-text", "-noout"});
  ASSERT_TRUE(succeeded(text));
  EXPECT_NE(text.out().find("prime256v1"), std::string::npos) << text.describe();
  EXPECT_TRUE(succeeded(openssl({"dgst", "-sha256", "-verify", pem, "-signature", sig, data})));
  // A different message does not verify: the check means something.
  const std::string other = data_file("other.txt", "another message\n");
  EXPECT_FALSE(succeeded(openssl({"dgst", "-sha256", "-verify", pem, "-signature", sig, other})));

  // Raw ECDSA over a digest computed here.
  const std::string digest = path("data.sha256");
  ASSERT_TRUE(succeeded(openssl({"dgst", "-sha256", "-binary", "-out", digest, data})));
  const std::string raw_sig = path("ec-raw.sig");
  ASSERT_TRUE(succeeded(user({"--sign", "--mechanism", "ECDSA", "--id", "01", "--input-file",
                              digest, "--output-file", raw_sig, "--signature-format", "openssl"})));
  EXPECT_TRUE(succeeded(openssl({"dgst", "-sha256", "-verify", pem, "-signature", raw_sig, data})));
}

TEST_F(Pkcs11Tool, RsaKeyPairSignsVerifiableWithOpenssl) {
  init_token();
  ASSERT_TRUE(
      succeeded(user({"--keypairgen", "--key-type", "rsa:2048", "--label", "r1", "--id", "02"})));
  const auto objs = objects();
  EXPECT_EQ(count_objects(objs, "Private Key Object; RSA", "r1", "02"), 1u);
  EXPECT_EQ(count_objects(objs, "Public Key Object; RSA", "r1", "02"), 1u);

  const std::string data = data_file("data.txt", "RSA through PKCS#11\n");
  const std::string pem = path("rsa-pub.pem");
  ASSERT_NO_FATAL_FAILURE(export_public_pem("02", pem));
  const CmdRun text = openssl({"pkey", "-pubin", "-in", pem, "-text", "-noout"});
  ASSERT_TRUE(succeeded(text));
  EXPECT_NE(text.out().find("2048 bit"), std::string::npos) << text.describe();

  const std::string sig = path("rsa.sig");
  ASSERT_TRUE(succeeded(user({"--sign", "--mechanism", "SHA256-RSA-PKCS", "--id", "02",
                              "--input-file", data, "--output-file", sig})));
  EXPECT_TRUE(succeeded(openssl({"dgst", "-sha256", "-verify", pem, "-signature", sig, data})));

  // PSS, salt = digest length (pkcs11-tool's default).
  const std::string pss = path("rsa-pss.sig");
  ASSERT_TRUE(succeeded(user({"--sign", "--mechanism", "SHA256-RSA-PKCS-PSS", "--id", "02",
                              "--input-file", data, "--output-file", pss})));
  EXPECT_TRUE(
      succeeded(openssl({"dgst", "-sha256", "-verify", pem, "-sigopt", "rsa_padding_mode:pss",
                         "-sigopt", "rsa_pss_saltlen:32", "-signature", pss, data})));
}

TEST_F(Pkcs11Tool, AesKeyEncryptsAndDecryptsCbcPad) {
  init_token();
  ASSERT_TRUE(
      succeeded(user({"--keygen", "--key-type", "AES:32", "--label", "aes1", "--id", "03"})));
  EXPECT_EQ(count_objects(objects(), "Secret Key Object; AES", "aes1", "03"), 1u)
      << user({"-O"}).out();

  std::string plain;
  for (int i = 0; i < 100; ++i) plain.push_back(static_cast<char>(i * 7 + 3));
  const std::string in = data_file("plain.bin", plain);
  const std::string ct = path("ct.bin");
  const std::string back = path("back.bin");
  // pkcs11-tool looks a decryption key up by ID (a label alone finds private keys first).
  ASSERT_TRUE(succeeded(user({"--encrypt", "--mechanism", "AES-CBC-PAD", "--iv", kIv, "--id", "03",
                              "--input-file", in, "--output-file", ct})));
  const std::string cipher = read_file(ct);
  EXPECT_EQ(cipher.size(), 112u);  // 100 bytes + 12 bytes of PKCS#7 padding
  EXPECT_EQ(cipher.find(plain.substr(0, 16)), std::string::npos);
  ASSERT_TRUE(succeeded(user({"--decrypt", "--mechanism", "AES-CBC-PAD", "--iv", kIv, "--id", "03",
                              "--input-file", ct, "--output-file", back})));
  EXPECT_EQ(to_hex(to_bytes(read_file(back))), to_hex(to_bytes(plain)));

  // The same ciphertext under plain AES-CBC shows the padding itself.
  const std::string raw = path("raw.bin");
  ASSERT_TRUE(succeeded(user({"--decrypt", "--mechanism", "AES-CBC", "--iv", kIv, "--id", "03",
                              "--input-file", ct, "--output-file", raw})));
  EXPECT_EQ(to_hex(to_bytes(read_file(raw))), to_hex(to_bytes(plain + std::string(12, '\x0c'))));
}

TEST_F(Pkcs11Tool, DeletedPrivateKeyIsGone) {
  init_token();
  ASSERT_TRUE(succeeded(
      user({"--keypairgen", "--key-type", "EC:prime256v1", "--label", "k1", "--id", "01"})));
  ASSERT_EQ(count_objects(objects(), "Private Key Object", "", "01"), 1u);
  ASSERT_TRUE(succeeded(user({"--delete-object", "--type", "privkey", "--id", "01"})));
  const auto objs = objects();
  EXPECT_EQ(count_objects(objs, "Private Key Object", "", "01"), 0u) << user({"-O"}).out();
  // Only the private half went.
  EXPECT_EQ(count_objects(objs, "Public Key Object", "k1", "01"), 1u) << user({"-O"}).out();
  // And it cannot sign any more.
  const std::string data = data_file("data.txt", "x");
  const CmdRun sign = user({"--sign", "--mechanism", "ECDSA-SHA256", "--id", "01", "--input-file",
                            data, "--output-file", path("sig")});
  EXPECT_NE(sign.exit_code(), 0) << sign.describe();
}

TEST_F(Pkcs11Tool, TokenObjectsSurviveADaemonRestart) {
  init_token();
  ASSERT_TRUE(succeeded(
      user({"--keypairgen", "--key-type", "EC:prime256v1", "--label", "k1", "--id", "01"})));
  ASSERT_TRUE(
      succeeded(user({"--keygen", "--key-type", "AES:32", "--label", "aes1", "--id", "03"})));
  const std::string pem = path("pub.pem");
  ASSERT_NO_FATAL_FAILURE(export_public_pem("01", pem));
  const std::string plain = data_file("plain.bin", "kept across a restart");
  const std::string ct = path("ct.bin");
  ASSERT_TRUE(succeeded(user({"--encrypt", "--mechanism", "AES-CBC-PAD", "--iv", kIv, "--id", "03",
                              "--input-file", plain, "--output-file", ct})));

  ASSERT_TRUE(restart_daemon());

  const auto objs = objects();
  EXPECT_EQ(count_objects(objs, "Private Key Object; EC", "k1", "01"), 1u) << user({"-O"}).out();
  EXPECT_EQ(count_objects(objs, "Public Key Object; EC", "k1", "01"), 1u) << user({"-O"}).out();
  EXPECT_EQ(count_objects(objs, "Secret Key Object; AES", "aes1", "03"), 1u) << user({"-O"}).out();
  // The same keys, not look-alikes: the old public key verifies a new
  // signature, the old ciphertext decrypts.
  const std::string sig = path("sig");
  ASSERT_TRUE(succeeded(user({"--sign", "--mechanism", "ECDSA-SHA256", "--id", "01", "--input-file",
                              plain, "--output-file", sig, "--signature-format", "openssl"})));
  EXPECT_TRUE(succeeded(openssl({"dgst", "-sha256", "-verify", pem, "-signature", sig, plain})));
  const std::string back = path("back.bin");
  ASSERT_TRUE(succeeded(user({"--decrypt", "--mechanism", "AES-CBC-PAD", "--iv", kIv, "--id", "03",
                              "--input-file", ct, "--output-file", back})));
  EXPECT_EQ(read_file(back), "kept across a restart");
}

TEST_F(Pkcs11Tool, ListsTheDeviceMechanisms) {
  init_token();
  const CmdRun r = user({"--list-mechanisms"});
  ASSERT_TRUE(succeeded(r));
  // "  NAME, keySize={..}, flags" or "  NAME" per line.
  std::set<std::string> names;
  std::stringstream ss(r.out());
  for (std::string line; std::getline(ss, line);) {
    if (line.empty() || line[0] != ' ') continue;
    names.insert(trim(line.substr(0, line.find(','))));
  }
  for (const char* m : {"ECDSA", "ECDSA-SHA256", "RSA-PKCS-PSS", "AES-GCM", "SHA256-HMAC"}) {
    EXPECT_EQ(names.count(m), 1u) << m << " missing\n" << r.describe();
  }
}

TEST_F(Pkcs11Tool, WrongPinIsPinIncorrect) {
  init_token();
  const CmdRun r = user({"--list-objects"}, "00000000");
  EXPECT_NE(r.exit_code(), 0) << r.describe();
  EXPECT_NE(r.err().find("CKR_PIN_INCORRECT"), std::string::npos) << r.describe();
  // (An SO login needs a read-write session: PKCS#11 refuses it while a
  // read-only one exists.)
  const CmdRun so = tool({"--token-label", kToken, "--session-rw", "--login", "--login-type", "so",
                          "--so-pin", "00000000", "--list-objects"});
  EXPECT_NE(so.exit_code(), 0) << so.describe();
  EXPECT_NE(so.err().find("CKR_PIN_INCORRECT"), std::string::npos) << so.describe();
  // The right PIN still works afterwards.
  EXPECT_TRUE(succeeded(user({"--list-objects"})));
}

TEST_F(Pkcs11Tool, SelfTestPassesOnAnEmptyToken) {
  init_token();
  const CmdRun r = user({"--test"});
  EXPECT_TRUE(succeeded(r));
}

TEST_F(Pkcs11Tool, SelfTestPassesWithKeysOnTheToken) {
  init_token();
  ASSERT_TRUE(succeeded(
      user({"--keypairgen", "--key-type", "EC:prime256v1", "--label", "k1", "--id", "01"})));
  ASSERT_TRUE(
      succeeded(user({"--keypairgen", "--key-type", "rsa:2048", "--label", "r1", "--id", "02"})));
  ASSERT_TRUE(
      succeeded(user({"--keygen", "--key-type", "AES:32", "--label", "aes1", "--id", "03"})));
  EXPECT_TRUE(succeeded(user({"--test"})));
  // pkcs11-tool's signature tests use only mechanisms flagged CKF_HW
  // unless --allow-sw is given.
  EXPECT_TRUE(succeeded(user({"--test", "--allow-sw"})));
}

// p11-kit discovery: given only the module file the build installs
// (packaging/p11-kit/ihsm.module.in, its module path pointed at a copy of
// the library), p11-kit lists ihsm with its token, and p11tool finds the
// token among p11-kit's registered modules without being told a path.
// p11-kit reads per-user module files (~/.config/pkcs11/modules) except
// for root, so as root the tools run as nobody.
TEST_F(Pkcs11Tool, P11KitFindsTheModuleByItsModuleFile) {
  if (std::string(IHSM_P11KIT).empty()) GTEST_SKIP() << "p11-kit not installed";
  init_token();
  const bool root = ::geteuid() == 0;
  const uint32_t nobody = 65534;
  // A home the tools can read, with the libraries copied in (the build
  // tree may not be reachable for nobody).
  TempDir home;
  namespace fs = std::filesystem;
  const std::string lib_dir = home.file("lib"), module_dir = home.file(".config/pkcs11/modules");
  fs::create_directories(lib_dir);
  fs::create_directories(module_dir);
  fs::copy_file(IHSM_PKCS11_MODULE, lib_dir + "/libihsm-pkcs11.so");
  fs::copy_file(IHSM_LIBIHSM, lib_dir + "/libihsm.so.0");
  std::string module_file = read_file(IHSM_P11KIT_MODULE_FILE);
  const size_t line = module_file.find("\nmodule: ");
  ASSERT_NE(line, std::string::npos) << module_file;
  const size_t end = module_file.find('\n', line + 1);
  module_file.replace(line + 1, end - line - 1, "module: " + lib_dir + "/libihsm-pkcs11.so");
  write_file(module_dir + "/ihsm.module", module_file);
  if (root) {
    for (const auto& entry : fs::recursive_directory_iterator(home.path())) {
      ASSERT_EQ(::chown(entry.path().c_str(), nobody, nobody), 0);
    }
    ASSERT_EQ(::chown(home.path().c_str(), nobody, nobody), 0);
    // The daemon's socket sits in the test's private directory.
    ASSERT_EQ(::chmod(dir().path().c_str(), 0711), 0);
  }
  const std::vector<std::string> env = {"HOME=" + home.path(), "LD_LIBRARY_PATH=" + lib_dir,
                                        "IHSM_SOCKET=" + socket_path(), "XDG_CONFIG_HOME"};
  const auto as_user = [&](const std::vector<std::string>& argv) {
    CmdRun r;
    r.command = join(env) + " " + join(argv);
    r.result = run_process(argv, env, "", std::chrono::seconds(60),
                           root ? std::optional<uint32_t>(nobody) : std::nullopt);
    return r;
  };
  const CmdRun modules = as_user({IHSM_P11KIT, "list-modules"});
  ASSERT_TRUE(succeeded(modules));
  EXPECT_NE(modules.out().find("ihsm: " + lib_dir + "/libihsm-pkcs11.so"), std::string::npos)
      << modules.describe();
  EXPECT_NE(modules.out().find("token: mytoken"), std::string::npos) << modules.describe();
  if (!std::string(IHSM_P11TOOL).empty()) {
    const CmdRun tokens = as_user({IHSM_P11TOOL, "--list-tokens"});
    ASSERT_TRUE(succeeded(tokens));
    EXPECT_NE(tokens.out().find("token=mytoken"), std::string::npos) << tokens.describe();
  }
}

// GnuTLS's p11tool: the token by its PKCS#11 URI, and its own sign-and-verify
// check of each key (against the private key's parameters and the public key
// on the token).
TEST_F(Pkcs11Tool, P11toolSignsWithTheTokenKeys) {
  if (std::string(IHSM_P11TOOL).empty()) GTEST_SKIP() << "p11tool not installed";
  init_token();
  ASSERT_TRUE(succeeded(
      user({"--keypairgen", "--key-type", "EC:prime256v1", "--label", "k1", "--id", "01"})));
  ASSERT_TRUE(
      succeeded(user({"--keypairgen", "--key-type", "rsa:2048", "--label", "r1", "--id", "02"})));
  const CmdRun tokens = run({IHSM_P11TOOL, "--provider", IHSM_PKCS11_MODULE, "--list-tokens"});
  ASSERT_TRUE(succeeded(tokens));
  EXPECT_NE(tokens.out().find("token=mytoken"), std::string::npos) << tokens.describe();
  for (const char* key : {"k1", "r1"}) {
    const std::string uri = std::string("pkcs11:token=mytoken;object=") + key + ";type=private";
    const CmdRun r =
        run({IHSM_P11TOOL, "--provider", IHSM_PKCS11_MODULE, "--login", "--test-sign", uri},
            {std::string("GNUTLS_PIN=") + kUserPin});
    EXPECT_TRUE(succeeded(r));
    EXPECT_NE(r.err().find("Verifying against public key in the token... ok"), std::string::npos)
        << r.describe();
  }
}

// The OpenSSL pkcs11 engine (libp11), the way `openssl -engine pkcs11` uses
// it: the engine becomes the default for every method in the process the
// module runs in; signatures are checked with plain openssl.
TEST_F(Pkcs11Tool, OpensslEngineSignsWithTheTokenKeys) {
  if (std::string(IHSM_PKCS11_ENGINE).empty()) GTEST_SKIP() << "no pkcs11 engine for OpenSSL";
  init_token();
  ASSERT_TRUE(succeeded(
      user({"--keypairgen", "--key-type", "EC:prime256v1", "--label", "k1", "--id", "01"})));
  ASSERT_TRUE(
      succeeded(user({"--keypairgen", "--key-type", "rsa:2048", "--label", "r1", "--id", "02"})));
  const std::string conf =
      data_file("engine.cnf", std::string("openssl_conf = init\n"
                                          "[init]\n"
                                          "engines = engines\n"
                                          "[engines]\n"
                                          "pkcs11 = pkcs11\n"
                                          "[pkcs11]\n"
                                          "engine_id = pkcs11\n"
                                          "dynamic_path = ") +
                                  IHSM_PKCS11_ENGINE + "\nMODULE_PATH = " + IHSM_PKCS11_MODULE +
                                  "\ninit = 0\n");
  const std::string data = data_file("data.txt", "signed through the OpenSSL pkcs11 engine\n");
  const std::string digest = path("data.sha256");
  ASSERT_TRUE(succeeded(openssl({"dgst", "-sha256", "-binary", "-out", digest, data})));
  for (const auto& [label, id] : {std::pair{"k1", "01"}, std::pair{"r1", "02"}}) {
    const std::string pem = path(std::string(label) + ".pem");
    ASSERT_NO_FATAL_FAILURE(export_public_pem(id, pem));
    const std::string sig = path(std::string(label) + ".sig");
    const std::string uri =
        std::string("pkcs11:token=mytoken;object=") + label + ";type=private;pin-value=" + kUserPin;
    ASSERT_TRUE(succeeded(
        run({IHSM_OPENSSL_BIN, "pkeyutl", "-engine", "pkcs11", "-keyform", "engine", "-inkey", uri,
             "-sign", "-in", digest, "-out", sig, "-pkeyopt", "digest:sha256"},
            {"OPENSSL_CONF=" + conf})))
        << label;
    EXPECT_TRUE(succeeded(openssl({"pkeyutl", "-verify", "-pubin", "-inkey", pem, "-in", digest,
                                   "-sigfile", sig, "-pkeyopt", "digest:sha256"})))
        << label;
  }
}

// The issue's own words: a self-signed certificate and a CSR made by the
// OpenSSL CLI with keys held in ihsm, checked by `openssl verify` and
// `openssl req -verify`.
TEST_F(Pkcs11Tool, OpensslEngineMakesACertificateAndACsr) {
  if (std::string(IHSM_PKCS11_ENGINE).empty()) GTEST_SKIP() << "no pkcs11 engine for OpenSSL";
  init_token();
  ASSERT_TRUE(succeeded(
      user({"--keypairgen", "--key-type", "EC:prime256v1", "--label", "k1", "--id", "01"})));
  ASSERT_TRUE(
      succeeded(user({"--keypairgen", "--key-type", "rsa:2048", "--label", "r1", "--id", "02"})));
  const std::vector<std::string> env = {"PKCS11_MODULE_PATH=" + std::string(IHSM_PKCS11_MODULE)};
  auto uri = [](const char* label) {
    return std::string("pkcs11:token=mytoken;object=") + label +
           ";type=private;pin-value=" + kUserPin;
  };
  const std::string cert = path("self.pem");
  ASSERT_TRUE(succeeded(
      run({IHSM_OPENSSL_BIN, "req", "-new", "-x509", "-engine", "pkcs11", "-keyform", "engine",
           "-key", uri("k1"), "-subj", "/CN=ihsm self", "-days", "1", "-out", cert},
          env)));
  const CmdRun verified = openssl({"verify", "-CAfile", cert, cert});
  EXPECT_TRUE(succeeded(verified));
  EXPECT_NE(verified.out().find("OK"), std::string::npos) << verified.out();
  const std::string csr = path("req.pem");
  ASSERT_TRUE(succeeded(run({IHSM_OPENSSL_BIN, "req", "-new", "-engine", "pkcs11", "-keyform",
                             "engine", "-key", uri("r1"), "-subj", "/CN=ihsm csr", "-out", csr},
                            env)));
  EXPECT_TRUE(succeeded(openssl({"req", "-in", csr, "-verify", "-noout"})));
  // The certificate's key is the token's key.
  export_public_pem("01", path("k1.pem"));
  const CmdRun cert_key = openssl({"x509", "-in", cert, "-noout", "-pubkey"});
  ASSERT_TRUE(succeeded(cert_key));
  EXPECT_EQ(cert_key.out(), read_file(path("k1.pem")));
}

// Java's SunPKCS11 provider lists a key stored with its certificate.
TEST_F(Pkcs11Tool, JavaKeytoolListsAKeyWithItsCertificate) {
  if (std::string(IHSM_KEYTOOL).empty()) GTEST_SKIP() << "no keytool";
  init_token();
  ASSERT_TRUE(succeeded(
      user({"--keypairgen", "--key-type", "EC:prime256v1", "--label", "web", "--id", "0a"})));
  // A certificate for that key, from a throwaway key: keytool pairs by id.
  const std::string ca_key = path("ca.key"), cert = path("web.pem"), der = path("web.der");
  ASSERT_TRUE(succeeded(
      openssl({"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
               "-keyout", ca_key, "-out", cert, "-subj", "/CN=web", "-days", "1"})));
  ASSERT_TRUE(succeeded(openssl({"x509", "-in", cert, "-outform", "DER", "-out", der})));
  ASSERT_TRUE(
      succeeded(user({"--write-object", der, "--type", "cert", "--id", "0a", "--label", "web"})));
  const std::string slot = std::to_string(device_partitions().at(kToken));
  const std::string cfg = data_file("java.cfg", std::string("name = ihsm\nlibrary = ") +
                                                    IHSM_PKCS11_MODULE + "\nslot = " + slot + "\n");
  const CmdRun listed =
      run({IHSM_KEYTOOL, "-list", "-keystore", "NONE", "-storetype", "PKCS11", "-providerClass",
           "sun.security.pkcs11.SunPKCS11", "-providerArg", cfg, "-storepass", kUserPin});
  ASSERT_TRUE(succeeded(listed));
  EXPECT_NE(listed.out().find("web, PrivateKeyEntry"), std::string::npos) << listed.out();
  EXPECT_NE(listed.out().find("Certificate fingerprint"), std::string::npos) << listed.out();
}

}  // namespace
}  // namespace ihsm::test
