// The hardening of ihsmd (docs/security-policy.md, section 12), checked from
// the outside: what the kernel says about the running daemon in /proc, the
// owner and modes of its files, what GetDeviceInfo reports, and that the
// device still does a full job under its system-call filter.
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <sstream>

#include "integration/lib_fixture.h"

namespace ihsm::test {
namespace {

namespace fs = std::filesystem;

constexpr bool kSanitizerBuild =
#if defined(__SANITIZE_ADDRESS__)
    true;
#else
    false;
#endif

// "Name:\tvalue" lines of /proc/<pid>/status.
std::map<std::string, std::string> proc_status(pid_t pid) {
  std::map<std::string, std::string> out;
  std::istringstream in(read_file("/proc/" + std::to_string(pid) + "/status"));
  for (std::string line; std::getline(in, line);) {
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    const auto value = line.find_first_not_of(" \t", colon + 1);
    out[line.substr(0, colon)] = value == std::string::npos ? "" : line.substr(value);
  }
  return out;
}

// "Uid:\t999\t999\t999\t999" -> the four ids (real, effective, saved, fs).
std::vector<uint32_t> ids(const std::string& value) {
  std::vector<uint32_t> out;
  std::istringstream in(value);
  for (uint32_t id = 0; in >> id;) out.push_back(id);
  return out;
}

uint64_t kilobytes(const std::string& value) { return std::stoull(value); }  // "1234 kB"

class Hardening : public LibTest {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "ihsmd drops privileges only when started as root";
    const passwd* pw = ::getpwnam("ihsm");
    ASSERT_NE(pw, nullptr) << "the ihsm user is missing: run scripts/install-deps.sh as root";
    uid_ = pw->pw_uid;
    gid_ = pw->pw_gid;
    LibTest::SetUp();
  }

  // The keys of every file, folder and link under the state directory.
  void expect_state_dir_is_the_users() {
    struct stat st {};
    ASSERT_EQ(::stat(state_dir().c_str(), &st), 0);
    EXPECT_EQ(st.st_uid, uid_);
    EXPECT_EQ(st.st_gid, gid_);
    EXPECT_EQ(st.st_mode & 07777, 0700u);
    size_t files = 0;
    for (const auto& entry : fs::recursive_directory_iterator(state_dir())) {
      ASSERT_EQ(::lstat(entry.path().c_str(), &st), 0);
      EXPECT_EQ(st.st_uid, uid_) << entry.path();
      EXPECT_EQ(st.st_gid, gid_) << entry.path();
      if (S_ISREG(st.st_mode)) {
        EXPECT_EQ(st.st_mode & 07777, 0600u) << entry.path();
        ++files;
      } else if (S_ISDIR(st.st_mode)) {
        EXPECT_EQ(st.st_mode & 07777, 0700u) << entry.path();
      }
    }
    EXPECT_GE(files, 4u);  // ihsmd.lock, boot.cbor, device.cbor, objects.db at least
  }

  uid_t uid_ = 0;
  gid_t gid_ = 0;
};

TEST_F(Hardening, StartedAsRootItRunsAsItsUserWithoutDumpsUnderSeccomp) {
  const pid_t pid = daemon().pid();
  auto st = proc_status(pid);
  EXPECT_EQ(ids(st["Uid"]), std::vector<uint32_t>(4, uid_)) << st["Uid"];
  EXPECT_EQ(ids(st["Gid"]), std::vector<uint32_t>(4, gid_)) << st["Gid"];
  EXPECT_EQ(st["Groups"], "");
  EXPECT_EQ(st["CapAmb"], "0000000000000000");
  const std::string limits = read_file("/proc/" + std::to_string(pid) + "/limits");
  const bool memlock_unlimited =
      limits.find("Max locked memory         unlimited") != std::string::npos;
  if (memlock_unlimited || kSanitizerBuild) {
    // The uid change cleared every capability (sanitizer builds lock no
    // memory, so they keep nothing).
    EXPECT_EQ(st["CapEff"], "0000000000000000");
    EXPECT_EQ(st["CapPrm"], "0000000000000000");
  } else {
    // Where root may not raise RLIMIT_MEMLOCK (no CAP_SYS_RESOURCE, as in
    // some containers), CAP_IPC_LOCK alone is kept so memory stays locked.
    EXPECT_EQ(st["CapEff"], "0000000000004000");
    EXPECT_EQ(st["CapPrm"], "0000000000004000");
    EXPECT_EQ(st["CapBnd"], "0000000000004000");
  }
  EXPECT_EQ(st["NoNewPrivs"], "1");
  EXPECT_EQ(st["Seccomp"], "2");  // filter mode
  EXPECT_GE(std::stoi(st["Seccomp_filters"]), 1);
  // mlockall with MCL_ONFAULT: what has been touched is locked.
  if (!kSanitizerBuild) {
    EXPECT_GT(kilobytes(st["VmLck"]), 0u) << st["VmLck"];
  }

  // Not dumpable: the kernel then gives the files in /proc/<pid> to root,
  // not to the process's own (now unprivileged) uid, and no same-uid
  // process may ptrace it or read its memory.
  for (const char* entry : {"status", "mem", "maps", "environ"}) {
    struct stat proc_file {};
    const std::string path = "/proc/" + std::to_string(pid) + "/" + entry;
    ASSERT_EQ(::stat(path.c_str(), &proc_file), 0) << path;
    EXPECT_EQ(proc_file.st_uid, 0u) << path;
  }
  EXPECT_NE(uid_, 0u);

  EXPECT_NE(limits.find("Max core file size        0                    0"), std::string::npos)
      << limits;

  // The socket: bound by root before the drop, mode 0666 (access is decided
  // per peer uid by the device, never by the file).
  struct stat sock {};
  ASSERT_EQ(::stat(socket_path().c_str(), &sock), 0);
  EXPECT_TRUE(S_ISSOCK(sock.st_mode));
  EXPECT_EQ(sock.st_mode & 07777, 0666u);

  expect_state_dir_is_the_users();

  // The device says the same, and root is still the owner.
  Client c = connect();
  auto info = c.device_info();
  ASSERT_OK(info);
  EXPECT_TRUE(info.value().caller_is_owner);
  ASSERT_TRUE(info.value().hardening.has_value());
  const auto& h = *info.value().hardening;
  EXPECT_EQ(h.uid, uid_);
  EXPECT_EQ(h.memory_locked, !kSanitizerBuild);
  EXPECT_TRUE(h.core_dumps_off);
  EXPECT_TRUE(h.no_new_privs);
  EXPECT_EQ(h.syscall_filter, !kSanitizerBuild);
  EXPECT_TRUE(daemon().running());
}

TEST_F(Hardening, UnderTheFilterItServesAFullUseAndAFirmwareUpdate) {
  Client c = connect();
  const PartitionInfo part = make_partition(c, "hardened");
  Bytes spki;
  KeyHandle priv = 0;
  {
    Session s = login(c, part.id);
    KeyTemplate pub = verify_public("survivor"), pri = sign_private("survivor");
    pub.token = pri.token = true;
    auto pair = s.generate_ec_key_pair(Curve::kP384, pub, pri);
    ASSERT_OK(pair);
    priv = pair.value().private_handle;
    spki = s.public_key(pair.value().public_handle).value();
    const Bytes msg = to_bytes("signed by a hardened device");
    auto sig = s.sign(priv, Mechanism::kEcdsaSha384, msg);
    ASSERT_OK(sig);
    EXPECT_TRUE(verify_ecdsa(spki, Mechanism::kEcdsaSha384, msg, sig.value()).value());
    ASSERT_OK(s.random(64));
  }

  // FirmwareUpdate reads the folder it is given as the daemon's user: a
  // folder the test makes under its searchable temp folder (0755 / 0644).
  const std::string update = dir().file("update");
  fs::create_directories(update);
  ::chmod(update.c_str(), 0755);
  Bytes image = to_bytes(read_file(IHSM_FIRMWARE_IMAGE));
  const std::string marker = "hardening test build";
  image.insert(image.end(), marker.begin(), marker.end());
  write_file(update + "/ihsm-firmware.so", std::string(image.begin(), image.end()));
  const auto signed_ok =
      run_process({IHSM_SIGN_FIRMWARE, "--key", IHSM_FIRMWARE_KEY, "--image",
                   update + "/ihsm-firmware.so", "--firmware-version", "9.9.1", "--svn", "1",
                   "--manifest", update + "/ihsm-firmware.manifest"});
  ASSERT_EQ(signed_ok.exit_code, 0) << signed_ok.describe();
  ::chmod((update + "/ihsm-firmware.so").c_str(), 0644);
  ::chmod((update + "/ihsm-firmware.manifest").c_str(), 0644);
  auto installed = c.update_firmware(update);
  ASSERT_OK(installed);
  EXPECT_EQ(proc_status(daemon().pid())["Seccomp"], "2");
  ASSERT_TRUE(daemon().running()) << daemon().log();

  // Restarted (as root again, dropping again): the new image runs and the
  // token key is still there and signs.
  ASSERT_TRUE(restart_daemon());
  Client again = connect();
  auto info = again.device_info();
  ASSERT_OK(info);
  EXPECT_EQ(info.value().measurement, installed.value().measurement);
  Session s = login(again, part.id);
  auto found = s.find_keys(query("survivor", std::nullopt, ObjectClass::kPrivateKey));
  ASSERT_OK(found);
  ASSERT_EQ(found.value().size(), 1u);
  const Bytes msg = to_bytes("after the restart");
  auto sig = s.sign(found.value()[0].handle, Mechanism::kEcdsaSha384, msg);
  ASSERT_OK(sig);
  EXPECT_TRUE(verify_ecdsa(spki, Mechanism::kEcdsaSha384, msg, sig.value()).value());
  expect_state_dir_is_the_users();  // the installed image's folder too
  EXPECT_EQ(proc_status(daemon().pid())["Seccomp"], "2");
}

TEST_F(Hardening, ALeftoverRootOwnedStateFileIsHandedToTheUserAtStart) {
  ASSERT_TRUE(daemon().stop());
  // What a restore by hand or an older ihsmd (running as root) leaves.
  const std::string stray = state_dir() + "/device.cbor";
  ASSERT_EQ(::chown(stray.c_str(), 0, 0), 0);
  ASSERT_EQ(::chown(state_dir().c_str(), 0, 0), 0);
  ASSERT_TRUE(daemon().start());
  expect_state_dir_is_the_users();
  Client c = connect();
  ASSERT_OK(c.device_info());
}

// Without the user, a root start refuses to run (as root) and says how to
// create it.
TEST(HardeningUser, AMissingUserStopsTheStartWithTheFix) {
  if (::geteuid() != 0) GTEST_SKIP() << "only a root start drops privileges";
  TempDir dir;
  const auto r = run_process({ihsmd_path(), "--state-dir", dir.file("state"), "--socket",
                              dir.file("sock"), "--user", "ihsm-no-such-user"},
                             {}, "", std::chrono::seconds(20));
  EXPECT_EQ(r.exit_code, 1) << r.describe();
  EXPECT_NE(r.err.find("useradd --system"), std::string::npos) << r.describe();
  EXPECT_FALSE(fs::exists(dir.file("sock")));
}

// The state directory must be reachable by the user: a folder above it that
// the user cannot search stops the start with a clear message, instead of
// failing later on a path.
TEST(HardeningUser, AStateDirectoryTheUserCannotReachStopsTheStart) {
  if (::geteuid() != 0) GTEST_SKIP() << "only a root start drops privileges";
  TempDir dir;
  const std::string closed = dir.file("closed");
  ASSERT_EQ(::mkdir(closed.c_str(), 0700), 0);
  const auto r =
      run_process({ihsmd_path(), "--state-dir", closed + "/state", "--socket", dir.file("sock")},
                  {}, "", std::chrono::seconds(20));
  EXPECT_EQ(r.exit_code, 1) << r.describe();
  EXPECT_NE(r.err.find("cannot reach the state directory"), std::string::npos) << r.describe();
}

}  // namespace
}  // namespace ihsm::test
