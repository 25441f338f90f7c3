// Sessions through libihsm: session objects die with their session and
// their connection, per-partition session limits, random numbers.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <array>
#include <chrono>
#include <cstdlib>
#include <optional>
#include <thread>

#include "integration/lib_fixture.h"

namespace ihsm::test {
namespace {

class LibSession : public LibTest {};

TEST_F(LibSession, ClosingASessionDestroysItsKeys) {
  Client c = connect();
  const PartitionId p = make_partition(c, "p").id;
  Session maker = login(c, p);
  Session watcher = login(c, p);
  auto aes = maker.generate_aes_key(128, aes_flags("doomed"));
  auto pair =
      maker.generate_ec_key_pair(Curve::kP256, verify_public("doomed"), sign_private("doomed"));
  auto keeper = watcher.generate_aes_key(128, aes_flags("kept"));
  ASSERT_OK(aes);
  ASSERT_OK(pair);
  ASSERT_OK(keeper);
  // Visible to every session of the connection while the maker lives.
  auto seen = watcher.find_keys(query("doomed"));
  ASSERT_OK(seen);
  EXPECT_EQ(seen->size(), 3u);
  EXPECT_OK(watcher.encrypt_gcm(*aes, Bytes(8, 1), {}));

  ASSERT_OK(maker.close());
  EXPECT_STATUS(maker.role(), Status::kInvalidSession);  // the closed object
  seen = watcher.find_keys(query("doomed"));
  ASSERT_OK(seen);
  EXPECT_TRUE(seen->empty());
  EXPECT_STATUS(watcher.key_info(*aes), Status::kNoSuchKey);
  EXPECT_STATUS(watcher.sign(pair->private_handle, Mechanism::kEcdsaSha256, Bytes(1, 1)),
                Status::kNoSuchKey);
  // A new session of the same connection finds nothing of it either.
  Session fresh = login(c, p);
  auto all = fresh.find_keys({});
  ASSERT_OK(all);
  ASSERT_EQ(all->size(), 1u);
  EXPECT_EQ(all->front().handle, *keeper);
  // Closing twice is an invalid session, not a crash.
  EXPECT_STATUS(maker.close(), Status::kInvalidSession);
}

TEST_F(LibSession, OpenSessionsAreCountedAndReleased) {
  Client c = connect();
  const PartitionId p = make_partition(c, "p").id;
  EXPECT_EQ(info_of(c, p).open_sessions, 0u);
  {
    Session a = open(c, p);
    Session b = open(c, p);
    EXPECT_EQ(info_of(c, p).open_sessions, 2u);
    ASSERT_OK(a.close());
    EXPECT_EQ(info_of(c, p).open_sessions, 1u);
  }
  EXPECT_EQ(info_of(c, p).open_sessions, 0u);  // the destructor closed b
}

TEST_F(LibSession, DisconnectClosesSessions) {
  Client c = connect();
  const PartitionId p = make_partition(c, "p").id;
  // A child process opens sessions (one logged in, with a key), then dies
  // without closing anything.
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  std::fflush(stdout);
  std::fflush(stderr);
  const std::string sock = socket_path();
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(ready[0]);
    auto cc = Client::connect(sock);
    if (!cc) _exit(1);
    auto s1 = cc->open_session(p);
    auto s2 = cc->open_session(p);
    auto s3 = cc->open_session(p);
    if (!s1 || !s2 || !s3) _exit(2);
    if (!s1->login(Role::kCryptoUser, SecretPin(kUserPin))) _exit(3);
    if (!s1->generate_aes_key(256, aes_flags())) _exit(4);
    const char ok = 'y';
    if (::write(ready[1], &ok, 1) != 1) _exit(5);
    ::pause();
    _exit(0);
  }
  ::close(ready[1]);
  char byte = 0;
  ASSERT_EQ(::read(ready[0], &byte, 1), 1) << "the child failed to set up";
  ::close(ready[0]);
  EXPECT_EQ(info_of(c, p).open_sessions, 3u);
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  // The daemon notices the dead connection and closes its sessions.
  uint32_t open_now = 99;
  for (int i = 0; i < 500 && open_now != 0; ++i) {
    open_now = info_of(c, p).open_sessions;
    if (open_now != 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(open_now, 0u);
}

class LibSessionLimit : public LibTest {
 protected:
  std::vector<std::string> daemon_args() const override { return {"--max-sessions", "3"}; }
};

TEST_F(LibSessionLimit, PerPartitionLimit) {
  Client c = connect();
  const PartitionInfo p = make_partition(c, "p");
  const PartitionInfo q = make_partition(c, "q");
  const PartitionInfo one = make_partition(c, "one", kUserPin, 1);
  EXPECT_EQ(p.max_sessions, 3u);  // --max-sessions is the default
  EXPECT_EQ(one.max_sessions, 1u);
  std::vector<Session> held;
  for (int i = 0; i < 3; ++i) held.push_back(open(c, p.id));
  EXPECT_STATUS(c.open_session(p.id), Status::kSessionLimit);
  // Other connections are held to the same partition limit.
  Client other = connect();
  EXPECT_STATUS(other.open_session(p.id), Status::kSessionLimit);
  // Other partitions are not affected.
  std::vector<Session> q_held;
  for (int i = 0; i < 3; ++i) q_held.push_back(open(other, q.id));
  EXPECT_STATUS(other.open_session(q.id), Status::kSessionLimit);
  // Closing one makes room for one.
  ASSERT_OK(held.back().close());
  held.pop_back();
  auto again = other.open_session(p.id);
  ASSERT_OK(again);
  EXPECT_STATUS(c.open_session(p.id), Status::kSessionLimit);
  // A partition's own max_sessions overrides the daemon default.
  Session only = open(c, one.id);
  EXPECT_STATUS(c.open_session(one.id), Status::kSessionLimit);
}

class LibConnectionLimit : public LibTest {
 protected:
  std::vector<std::string> daemon_args() const override { return {"--max-connections", "1"}; }
};

// docs/protocol.md: every request gets exactly one response with the same
// opcode and request id. A client turned away at the connection limit must
// learn that the device is BUSY, not see a garbled stream.
TEST_F(LibConnectionLimit, AClientOverTheLimitIsToldBusy) {
  // The fixture's readiness probe may hold the one slot for a moment.
  std::optional<Client> first;
  for (int i = 0; i < 200 && !first; ++i) {
    auto c = Client::connect(socket_path());
    if (c.ok() && c->device_info().ok()) {
      first.emplace(std::move(c).value());
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  ASSERT_TRUE(first.has_value());
  // The kernel accepts; the device answers the first request (OpenQueue,
  // made by connect) with BUSY and closes.
  EXPECT_STATUS(Client::connect(socket_path()), Status::kBusy);
  // Without the queue, the first request is the caller's own.
  ::setenv("IHSM_TRANSPORT", "socket", 1);
  auto second = Client::connect(socket_path());
  ::unsetenv("IHSM_TRANSPORT");
  ASSERT_OK(second);
  EXPECT_STATUS(second->device_info(), Status::kBusy);
  // The admitted client is unaffected.
  EXPECT_OK(first->device_info());
}

TEST_F(LibSession, RandomLengths) {
  Client c = connect();
  const PartitionId p = make_partition(c, "p").id;
  Session s = open(c, p);  // no login needed
  for (size_t n : {size_t{0}, size_t{1}, size_t{32}, size_t{65536}}) {
    auto r = s.random(n);
    ASSERT_OK(r) << n;
    EXPECT_EQ(r->size(), n);
  }
  auto a = s.random(32), b = s.random(32);
  ASSERT_OK(a);
  ASSERT_OK(b);
  EXPECT_NE(*a, *b);
  EXPECT_NE(*a, Bytes(32, 0));
  EXPECT_STATUS(s.random(65537), Status::kDataLengthInvalid);
  EXPECT_STATUS(s.random(size_t{1} << 30), Status::kDataLengthInvalid);
  // Roughly uniform bytes (a broken DRBG would be caught, a good one
  // passes this with overwhelming probability).
  auto big = s.random(65536);
  ASSERT_OK(big);
  std::array<int, 256> counts{};
  for (uint8_t byte : *big) ++counts[byte];
  for (int n : counts) {
    EXPECT_GT(n, 150);
    EXPECT_LT(n, 370);
  }
}

TEST_F(LibSession, ConnectToANonexistentSocket) {
  auto c = Client::connect(dir().file("no-such-socket"));
  EXPECT_STATUS(c, Status::kDeviceUnavailable);
}

}  // namespace
}  // namespace ihsm::test
