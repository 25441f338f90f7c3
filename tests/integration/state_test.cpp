// The daemon's state directory: one daemon per state, private files, and
// what survives a restart (and a crash).
#include <gtest/gtest.h>
#include <pwd.h>
#include <sys/stat.h>

#include <filesystem>
#include <thread>

#include "integration/daemon_fixture.h"
#include "support/raw_client.h"

namespace ihsm::test {
namespace {

using protocol::Opcode;

class State : public DaemonTest {};

TEST_F(State, SecondDaemonOnTheSameStateExitsNonZero) {
  // Same state, another socket.
  const ProcessResult other =
      run_process({ihsmd_path(), "--state-dir", state_dir(), "--socket", dir().file("sock2")}, {},
                  "", std::chrono::seconds(20));
  EXPECT_NE(other.exit_code, 0) << other.describe();
  EXPECT_GT(other.exit_code, 0) << "should exit, not crash or hang: " << other.describe();
  EXPECT_FALSE(socket_accepts(dir().file("sock2")));
  // Same state and the same socket: the running daemon's socket survives.
  const ProcessResult same =
      run_process({ihsmd_path(), "--state-dir", state_dir(), "--socket", socket_path()}, {}, "",
                  std::chrono::seconds(20));
  EXPECT_GT(same.exit_code, 0) << same.describe();
  ASSERT_TRUE(daemon().running());
  RawConn c(socket_path());
  EXPECT_EQ(c.call(Opcode::kGetDeviceInfo).st(), Status::kOk);
}

// Another daemon (another state directory) pointed at the same socket path
// must not take the socket away from the running one: clients would reach
// a different device without noticing.
TEST_F(State, SecondDaemonDoesNotStealALiveSocket) {
  Bytes identity;
  {
    RawConn c(socket_path());
    identity = raw_device_info(c).identity_spki;
  }
  Daemon intruder(dir().file("state2"), socket_path(), {}, dir().file("intruder.log"));
  (void)intruder.start();  // "accepts" either way: the original is listening
  // It should give up (socket in use); allow it time to start and exit.
  bool intruder_running = true;
  for (int i = 0; i < 250 && intruder_running; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    intruder_running = intruder.running();
  }
  if (intruder_running) intruder.kill_hard();
  EXPECT_FALSE(intruder_running) << "a second ihsmd serves on a socket that is in use";
  // The original daemon is still the one clients reach.
  ASSERT_TRUE(socket_accepts(socket_path())) << "the live socket was unlinked";
  RawConn c(socket_path());
  EXPECT_EQ(raw_device_info(c).identity_spki, identity);
}

TEST_F(State, FilesArePrivate) {
  RawConn c(socket_path());
  raw_create_partition_ok(c, "private", "officer-pin-1234", "user-pin-5678");
  struct stat st {};
  ASSERT_EQ(::stat(state_dir().c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0700u) << std::oct << (st.st_mode & 07777);
  // Started as root, ihsmd runs as (and gives its state to) the user ihsm.
  const uid_t owner = ::geteuid() == 0 ? ::getpwnam("ihsm")->pw_uid : ::geteuid();
  EXPECT_EQ(st.st_uid, owner);
  int files = 0;
  bool saw_device = false, saw_partitions = false;
  for (const auto& entry : std::filesystem::directory_iterator(state_dir())) {
    struct stat fst {};
    ASSERT_EQ(::lstat(entry.path().c_str(), &fst), 0);
    if (entry.path().filename() == "intrusion") {
      // The tamper sensor's intrusion input (docs/security-policy.md): a
      // FIFO, private like the files; it holds no data (and a read would block).
      EXPECT_TRUE(S_ISFIFO(fst.st_mode));
      EXPECT_EQ(fst.st_mode & 07777, 0600u) << std::oct << (fst.st_mode & 07777);
      EXPECT_EQ(fst.st_uid, owner);
      continue;
    }
    EXPECT_TRUE(S_ISREG(fst.st_mode)) << entry.path();
    EXPECT_EQ(fst.st_mode & 07777, 0600u)
        << entry.path() << " mode " << std::oct << (fst.st_mode & 07777);
    EXPECT_EQ(fst.st_uid, owner);
    const std::string name = entry.path().filename();
    saw_device |= name == "device.cbor";
    saw_partitions |= name == "partitions.cbor";
    ++files;
    // No PIN is stored in the clear.
    const std::string content = read_file(entry.path());
    EXPECT_EQ(content.find("officer-pin-1234"), std::string::npos) << entry.path();
    EXPECT_EQ(content.find("user-pin-5678"), std::string::npos) << entry.path();
  }
  EXPECT_TRUE(saw_device);
  EXPECT_TRUE(saw_partitions);
  EXPECT_GE(files, 2);
}

TEST_F(State, PreExistingLooseStateDirIsTightened) {
  // A state directory created with a loose mode before the first start.
  ASSERT_TRUE(daemon().stop());
  const std::string loose = dir().file("loose");
  ASSERT_EQ(::mkdir(loose.c_str(), 0777), 0);
  ASSERT_EQ(::chmod(loose.c_str(), 0777), 0);
  Daemon d(loose, dir().file("sock3"), {}, dir().file("loose.log"));
  ASSERT_TRUE(d.start());
  struct stat st {};
  ASSERT_EQ(::stat(loose.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  EXPECT_TRUE(d.stop());
}

struct Snapshot {
  Bytes identity, transport;
  std::map<uint64_t, std::pair<std::string, Bytes>> partitions;  // id -> name, identity key
};

Snapshot snapshot(RawConn& c) {
  Snapshot s;
  const RawDeviceInfo info = raw_device_info(c);
  s.identity = info.identity_spki;
  s.transport = info.transport_spki;
  const WireFrame list = c.call(Opcode::kPartitionList);
  for (const auto& p : list.field(protocol::kPartitions).items()) {
    s.partitions[p.find(protocol::kPartition)->as_uint()] = {
        std::string(p.find(protocol::kName)->as_text()),
        p.find(protocol::kIdentityKey)->as_bytes()};
  }
  return s;
}

TEST_F(State, RestartKeepsIdentityAndPartitions) {
  uint32_t alpha = 0, beta = 0;
  uint64_t old_session = 0;
  Snapshot before;
  {
    RawConn c(socket_path());
    alpha = raw_create_partition_ok(c, "alpha", "officer-alpha", "user-alpha");
    beta = raw_create_partition_ok(c, "beta", "officer-beta");
    old_session = raw_open_session_ok(c, alpha);
    before = snapshot(c);
  }
  ASSERT_EQ(before.partitions.size(), 2u);
  ASSERT_TRUE(restart_daemon());

  RawConn c(socket_path());
  const Snapshot after = snapshot(c);
  EXPECT_EQ(after.identity, before.identity);
  EXPECT_EQ(after.transport, before.transport);
  EXPECT_EQ(after.partitions, before.partitions);
  EXPECT_EQ(raw_device_info(c).count, 2u);
  // The PINs still verify, and sessions did not survive.
  EXPECT_EQ(c.call(Opcode::kSessionInfo, old_session).st(), Status::kInvalidSession);
  const uint64_t s = raw_open_session_ok(c, alpha);
  EXPECT_EQ(raw_login(c, s, alpha, 1, "user-alpha").st(), Status::kOk);
  const uint64_t t = raw_open_session_ok(c, beta);
  EXPECT_EQ(raw_login(c, t, beta, 2, "officer-beta").st(), Status::kOk);
  // New partitions continue the numbering rather than reuse ids.
  const uint32_t gamma = raw_create_partition_ok(c, "gamma", "officer-gamma");
  EXPECT_NE(gamma, alpha);
  EXPECT_NE(gamma, beta);
}

TEST_F(State, DeletedPartitionStaysDeletedAndIdsAreNotReused) {
  RawConn c(socket_path());
  const uint32_t a = raw_create_partition_ok(c, "a", "officer-pin");
  const uint32_t b = raw_create_partition_ok(c, "b", "officer-pin");
  ASSERT_EQ(c.call(Opcode::kPartitionDelete, 0,
                   cbor::Value::map().set(uint64_t{protocol::kPartition}, cbor::Value::uint(b)))
                .st(),
            Status::kOk);
  c.close();
  ASSERT_TRUE(restart_daemon());
  RawConn d(socket_path());
  const Snapshot s = snapshot(d);
  ASSERT_EQ(s.partitions.size(), 1u);
  EXPECT_EQ(s.partitions.begin()->first, a);
  const uint32_t again = raw_create_partition_ok(d, "b", "officer-pin");
  EXPECT_NE(again, b);
}

TEST_F(State, StateSurvivesACrash) {
  Snapshot before;
  uint32_t p = 0;
  {
    RawConn c(socket_path());
    p = raw_create_partition_ok(c, "crash", "officer-pin", "user-pin");
    before = snapshot(c);
  }
  daemon().kill_hard();
  ASSERT_TRUE(daemon().start());  // the stale socket and lock are no obstacle
  RawConn c(socket_path());
  const Snapshot after = snapshot(c);
  EXPECT_EQ(after.identity, before.identity);
  EXPECT_EQ(after.partitions, before.partitions);
  const uint64_t s = raw_open_session_ok(c, p);
  EXPECT_EQ(raw_login(c, s, p, 1, "user-pin").st(), Status::kOk);
}

TEST_F(State, SigtermWithClientsConnectedExitsCleanly) {
  RawConn idle(socket_path());
  ASSERT_EQ(idle.call(Opcode::kGetDeviceInfo).st(), Status::kOk);
  const uint32_t p = raw_create_partition_ok(idle, "busy", "officer-pin", "user-pin");
  const uint64_t s = raw_open_session_ok(idle, p);
  ASSERT_EQ(raw_login(idle, s, p, 1, "user-pin").st(), Status::kOk);
  // One client stopped half-way through a header, one half-way through a body.
  RawConn half_header(socket_path()), half_body(socket_path());
  WireHeader h;
  h.opcode = op(Opcode::kGetDeviceInfo);
  h.body_length = 100;
  Bytes frame = build_frame(h, Bytes(100, 0));
  ASSERT_TRUE(half_body.send_bytes(Bytes(frame.begin(), frame.begin() + 60)));
  ASSERT_TRUE(half_header.send_bytes(Bytes(frame.begin(), frame.begin() + 20)));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(daemon().stop());  // exit status 0
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
  EXPECT_TRUE(idle.wait_closed());
  EXPECT_TRUE(half_body.wait_closed());
  // The socket is closed on the way out: nobody answers on it. Its file is
  // removed when the daemon may: started as root, ihsmd runs as its own
  // user and the socket's folder here is root's, so the file stays and the
  // next start replaces it (docs/security-policy.md, 12.1).
  EXPECT_FALSE(socket_accepts(socket_path()));
  if (::geteuid() != 0) {
    struct stat st {};
    EXPECT_NE(::stat(socket_path().c_str(), &st), 0);
  }
  ASSERT_TRUE(daemon().start());
}

TEST_F(State, UnusableSocketPathExitsNonZero) {
  const std::string too_long = dir().path() + "/" + std::string(120, 's');
  const ProcessResult r =
      run_process({ihsmd_path(), "--state-dir", dir().file("other-state"), "--socket", too_long},
                  {}, "", std::chrono::seconds(20));
  EXPECT_GT(r.exit_code, 0) << r.describe();
}

TEST_F(State, SocketFileIsWorldConnectableByDefault) {
  // Access is decided per peer uid inside the device, so the socket is 0666.
  struct stat st {};
  ASSERT_EQ(::stat(socket_path().c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0666u) << std::oct << (st.st_mode & 0777);
}

// "0999" must not be read as mode 0 (stoul stops at the first bad digit).
TEST_F(State, BadSocketModeIsAnErrorNotACrash) {
  for (const char* mode : {"xyz", "0999", ""}) {
    const ProcessResult r =
        run_process({ihsmd_path(), "--state-dir", dir().file("mode-state"), "--socket",
                     dir().file("mode.sock"), "--socket-mode", mode},
                    {}, "", std::chrono::seconds(5));
    EXPECT_GT(r.exit_code, 0) << "--socket-mode '" << mode << "': " << r.describe();
  }
}

TEST_F(State, CorruptStateRefusesToStart) {
  ASSERT_TRUE(daemon().stop());
  write_file(state_dir() + "/device.cbor", "not cbor at all");
  const ProcessResult r =
      run_process({ihsmd_path(), "--state-dir", state_dir(), "--socket", socket_path()}, {}, "",
                  std::chrono::seconds(20));
  EXPECT_GT(r.exit_code, 0) << r.describe();
  EXPECT_FALSE(socket_accepts(socket_path()));
}

}  // namespace
}  // namespace ihsm::test
