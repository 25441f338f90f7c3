// The shared-memory queue (docs/protocol.md, "Shared-memory queue"): the
// library's fast path against a real ihsmd, several requests in flight on
// one connection, the socket as the fallback; and a hostile client writing
// into the mapping, which may cost it its own connection and nobody else
// anything.
#include <linux/futex.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include <atomic>
#include <cstdlib>
#include <thread>

#include "integration/lib_fixture.h"
#include "support/raw_client.h"

namespace ihsm::test {
namespace {

using protocol::Opcode;

// ------------------------------------------------------------ libihsm

class QueueLib : public LibSessionTest {};

// IHSM_TRANSPORT=socket for one connect.
Client connect_socket_only(const std::string& socket) {
  ::setenv("IHSM_TRANSPORT", "socket", 1);
  auto c = Client::connect(socket);
  ::unsetenv("IHSM_TRANSPORT");
  if (!c) throw std::runtime_error("connect failed");
  return std::move(c).value();
}

bool signs_and_verifies(Session& s, KeyHandle priv, const Bytes& spki, const Bytes& msg) {
  auto sig = s.sign(priv, Mechanism::kEcdsaSha256, msg);
  if (!sig) return false;
  auto v = verify_ecdsa(spki, Mechanism::kEcdsaSha256, msg, sig.value());
  return v.ok() && v.value();
}

TEST_F(QueueLib, ClientsUseTheQueueUnlessToldToUseTheSocket) {
  EXPECT_TRUE(client_->uses_queue());
  auto pair = s().generate_ec_key_pair(Curve::kP256, verify_public(), sign_private());
  ASSERT_OK(pair);
  auto spki = s().public_key(pair->public_handle);
  ASSERT_OK(spki);
  EXPECT_TRUE(signs_and_verifies(s(), pair->private_handle, spki.value(), Bytes{1, 2, 3}));
  EXPECT_TRUE(client_->last_approved());  // the FIPS indicator travels in the slot's header

  Client plain = connect_socket_only(socket_path());
  EXPECT_FALSE(plain.uses_queue());
  Session other = login(plain, partition_);
  auto pair2 = other.generate_ec_key_pair(Curve::kP256, verify_public(), sign_private());
  ASSERT_OK(pair2);
  auto spki2 = other.public_key(pair2->public_handle);
  ASSERT_OK(spki2);
  EXPECT_TRUE(signs_and_verifies(other, pair2->private_handle, spki2.value(), Bytes{4, 5}));
}

// More threads than slots (8 by default) on one connection and one
// session: most requests travel in slots, several at once, the rest on the
// socket; every answer is right and belongs to its own request.
TEST_F(QueueLib, ManyThreadsShareOneConnection) {
  ASSERT_TRUE(client_->uses_queue());
  auto pair = s().generate_ec_key_pair(Curve::kP256, verify_public(), sign_private());
  ASSERT_OK(pair);
  auto spki = s().public_key(pair->public_handle);
  ASSERT_OK(spki);
  auto aes = s().generate_aes_key(256, aes_flags());
  ASSERT_OK(aes);

  constexpr int kThreads = 12;
  constexpr int kOps = 150;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kOps; ++i) {
        // Each input is unique to its thread and operation, and of a size
        // of its own, so a response given to the wrong waiter fails.
        Bytes msg(static_cast<size_t>(1 + (t * 37 + i) % 700), static_cast<uint8_t>(t));
        msg[0] = static_cast<uint8_t>(i);
        if (i % 2 == 0) {
          if (!signs_and_verifies(s(), pair->private_handle, spki.value(), msg)) ++failures;
        } else {
          auto ct = s().encrypt_gcm(aes.value(), msg, Bytes{static_cast<uint8_t>(t)});
          if (!ct) {
            ++failures;
            continue;
          }
          auto back = s().decrypt_gcm(aes.value(), ct.value(), Bytes{static_cast<uint8_t>(t)});
          if (!back || back.value() != msg) ++failures;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  // The connection is still sound after all that.
  EXPECT_TRUE(signs_and_verifies(s(), pair->private_handle, spki.value(), Bytes{9}));
}

class QueueDisabled : public LibTest {
 protected:
  std::vector<std::string> daemon_args() const override { return {"--queue-depth", "0"}; }
};

TEST_F(QueueDisabled, ADeviceWithoutQueuesIsServedOnTheSocket) {
  Client c = connect();
  EXPECT_FALSE(c.uses_queue());
  const PartitionId p = make_partition(c, "plain").id;
  Session s = login(c, p);
  auto r = s.random(32);
  ASSERT_OK(r);
  EXPECT_EQ(r->size(), 32u);
  RawConn raw(socket_path());
  const WireFrame f = raw.call(Opcode::kOpenQueue);
  EXPECT_EQ(f.st(), Status::kResourceExhausted) << f.status_str();
}

// A device that goes away while a client waits in its slot: the client
// learns it (within the futex slice) instead of waiting forever.
TEST_F(QueueLib, AWaitingClientLearnsThatTheDeviceWentAway) {
  ASSERT_TRUE(client_->uses_queue());
  std::atomic<bool> done{false};
  Status status = Status::kOk;
  std::thread waiter([&] {
    // RSA-4096 key generation: long enough to be killed in the middle.
    auto r = s().generate_key_pair(Mechanism::kRsaKeyPairGen, std::nullopt, 4096,
                                   tmpl(usage::kVerify), tmpl(usage::kSign | usage::kSensitive));
    status = r.status();
    done = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  daemon().kill_hard();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!done && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(done.load()) << "the client still waits for a dead device";
  if (!done) ::_exit(1);  // the thread cannot be joined
  waiter.join();
  // Killed before it finished: the connection is lost. (A fast machine may
  // finish the key first; then the next call must see the loss.)
  if (status == Status::kOk) status = s().random(16).status();
  EXPECT_EQ(status, Status::kTransportError) << status_name(status);
}

// ------------------------------------------------------------ raw queue

// The mapping as docs/protocol.md lays it out, written by hand.
constexpr size_t kControl = 4096;
constexpr size_t kTailOffset = 64;
constexpr size_t kSleepersOffset = 128;
constexpr size_t kRingOffset = 256;
constexpr size_t kSlotFrame = 64;
enum : uint32_t { kFree = 0, kSubmitted = 1, kTaken = 2, kDone = 3 };

class RawQueue {
 public:
  // Sends OpenQueue on `conn` and maps the memfd of the answer.
  explicit RawQueue(RawConn& conn) : conn_(conn) {
    WireHeader h;
    h.opcode = op(Opcode::kOpenQueue);
    h.request_id = 1;
    if (!conn.send_bytes(build_frame(h, cbor::encode(cbor::Value::map())))) {
      throw std::runtime_error("send");
    }
    // Peek at the first byte with room for the descriptor, which the
    // kernel installs for the peek; the frame is then read as usual.
    uint8_t b = 0;
    iovec iov{&b, 1};
    alignas(cmsghdr) uint8_t control[CMSG_SPACE(sizeof(int))] = {};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    if (::recvmsg(conn.fd(), &msg, MSG_PEEK | MSG_CMSG_CLOEXEC) != 1) {
      throw std::runtime_error("recvmsg");
    }
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
        std::memcpy(&fd_, CMSG_DATA(c), sizeof(int));
      }
    }
    auto f = conn.read_frame();
    if (!f || f->st() != Status::kOk || fd_ < 0) throw std::runtime_error("OpenQueue failed");
    depth_ = static_cast<uint32_t>(f->value().find(protocol::kQueueDepth)->as_uint());
    struct stat st {};
    ::fstat(fd_, &st);
    size_ = static_cast<size_t>(st.st_size);
    void* p = ::mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, 0);
    if (p == MAP_FAILED) throw std::runtime_error("mmap");
    base_ = static_cast<uint8_t*>(p);
    stride_ = word(12);
  }
  ~RawQueue() {
    if (base_ != nullptr) ::munmap(base_, size_);
    if (fd_ >= 0) ::close(fd_);
  }

  int fd() const { return fd_; }
  uint32_t depth() const { return depth_; }
  uint32_t& word(size_t offset) { return *reinterpret_cast<uint32_t*>(base_ + offset); }
  uint8_t* slot(uint32_t i) { return base_ + kControl + size_t{i} * stride_; }
  std::atomic_ref<uint32_t> state(uint32_t i) {
    return std::atomic_ref<uint32_t>(*reinterpret_cast<uint32_t*>(slot(i)));
  }

  // Writes `frame` into slot `i` and publishes `ring_entry` (normally i).
  void submit(uint32_t i, const Bytes& frame, uint32_t ring_entry) {
    std::memcpy(slot(i) + kSlotFrame, frame.data(), frame.size());
    *reinterpret_cast<uint32_t*>(slot(i) + 8) = static_cast<uint32_t>(frame.size());
    state(i).store(kSubmitted);
    std::atomic_ref<uint32_t> tail(word(kTailOffset));
    const uint32_t t = tail.load();
    std::atomic_ref<uint32_t>(word(kRingOffset + 4 * (t % depth_))).store(ring_entry);
    tail.store(t + 1);
    wake();
  }
  void wake() {
    ::syscall(SYS_futex, &word(kTailOffset), FUTEX_WAKE, INT32_MAX, nullptr, nullptr, 0);
  }

  // The response in slot `i`, polled for up to 5 s.
  std::optional<WireFrame> response(uint32_t i) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (state(i).load() != kDone) {
      if (std::chrono::steady_clock::now() > deadline) return std::nullopt;
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
    const uint8_t* h = slot(i) + kSlotFrame;
    WireFrame f;
    f.magic = static_cast<uint32_t>(get_be(h, 4));
    f.opcode = static_cast<uint16_t>(get_be(h + 6, 2));
    f.flags = static_cast<uint16_t>(get_be(h + 8, 2));
    f.status = static_cast<uint16_t>(get_be(h + 10, 2));
    f.request_id = get_be(h + 24, 8);
    f.body_length = static_cast<uint32_t>(get_be(h + 32, 4));
    f.body.assign(h + kWireHeader, h + kWireHeader + f.body_length);
    state(i).store(kFree);
    return f;
  }

 private:
  RawConn& conn_;
  int fd_ = -1;
  uint8_t* base_ = nullptr;
  size_t size_ = 0;
  uint32_t depth_ = 0;
  uint32_t stride_ = 0;
};

Bytes request(Opcode o, uint64_t id, const cbor::Value& body = cbor::Value::map()) {
  WireHeader h;
  h.opcode = op(o);
  h.request_id = id;
  return build_frame(h, cbor::encode(body));
}

class QueueRaw : public DaemonTest {};

TEST_F(QueueRaw, TheMappingHasTheDocumentedLayoutAndIsSealed) {
  RawConn conn(socket_path());
  RawQueue q(conn);
  EXPECT_EQ(q.word(0), 0x49485351u);  // "IHSQ"
  EXPECT_EQ(q.word(4), 1u);
  EXPECT_EQ(q.word(8), q.depth());
  EXPECT_EQ(q.depth(), 8u);
  // Sealed: a client cannot shrink the file under the device (SIGBUS).
  EXPECT_NE(::ftruncate(q.fd(), 4096), 0);
  EXPECT_EQ(errno, EPERM);
  EXPECT_NE(::fcntl(q.fd(), F_GET_SEALS) & F_SEAL_SHRINK, 0);

  // A request in a slot is answered in it, with its own request id.
  q.submit(3, request(Opcode::kGetDeviceInfo, 77), 3);
  auto f = q.response(3);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->st(), Status::kOk) << f->status_str();
  EXPECT_EQ(f->request_id, 77u);
  EXPECT_EQ(f->flags & kFlagResponse, kFlagResponse);
  EXPECT_EQ(f->value().find(protocol::kState)->as_text(), "operational");

  // Two at once, answered both.
  q.submit(0, request(Opcode::kPartitionList, 1), 0);
  q.submit(1, request(Opcode::kSelfTest, 2), 1);
  auto a = q.response(0), b = q.response(1);
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->request_id, 1u);
  EXPECT_EQ(b->request_id, 2u);
  EXPECT_EQ(b->st(), Status::kOk) << b->status_str();

  // A second OpenQueue on the same connection, and OpenQueue in a slot.
  EXPECT_EQ(conn.call(Opcode::kOpenQueue).st(), Status::kInvalidArgument);
  q.submit(2, request(Opcode::kOpenQueue, 5), 2);
  auto c = q.response(2);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->st(), Status::kInvalidArgument);
}

TEST_F(QueueRaw, ABadFrameInASlotIsAnsweredAndTheQueueGoesOn) {
  RawConn conn(socket_path());
  RawQueue q(conn);
  Bytes bad = request(Opcode::kGetDeviceInfo, 9);
  bad[0] ^= 0xFF;  // magic
  q.submit(0, bad, 0);
  auto f = q.response(0);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->st(), Status::kMalformedFrame);

  // A length word that disagrees with the header's body length.
  Bytes frame = request(Opcode::kGetDeviceInfo, 10);
  q.submit(1, frame, 1);
  *reinterpret_cast<uint32_t*>(q.slot(1) + 8) = 5000;  // (racing the device is allowed too)
  auto g = q.response(1);
  ASSERT_TRUE(g);  // either answered before the change, or refused after it
  EXPECT_TRUE(g->st() == Status::kOk || g->st() == Status::kMalformedFrame) << g->status_str();

  // Body garbage: a CBOR error, and still serving.
  WireHeader h;
  h.opcode = op(Opcode::kGetDeviceInfo);
  h.request_id = 11;
  q.submit(2, build_frame(h, Bytes{0xFF, 0x00, 0x13}), 2);
  auto k = q.response(2);
  ASSERT_TRUE(k);
  EXPECT_NE(k->st(), Status::kOk);
  q.submit(2, request(Opcode::kGetDeviceInfo, 12), 2);
  auto m = q.response(2);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->st(), Status::kOk);
}

// Impossible ring positions end the offender's connection; the daemon
// and other clients are untouched.
TEST_F(QueueRaw, ABrokenRingCostsOnlyItsOwnConnection) {
  struct Case {
    const char* what;
    std::function<void(RawQueue&)> breaks;
  } cases[] = {
      {"tail far ahead of the slots",
       [](RawQueue& q) {
         std::atomic_ref<uint32_t>(q.word(kTailOffset)).fetch_add(1000);
         q.wake();
       }},
      {"a ring entry past the last slot",
       [](RawQueue& q) { q.submit(0, request(Opcode::kGetDeviceInfo, 1), 1000); }},
      {"a ring entry naming a slot that was not submitted",
       [](RawQueue& q) {
         std::atomic_ref<uint32_t> tail(q.word(kTailOffset));
         std::atomic_ref<uint32_t>(q.word(kRingOffset)).store(5);  // slot 5 is free
         tail.fetch_add(1);
         q.wake();
       }},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    RawConn conn(socket_path(), 5000);
    RawQueue q(conn);
    c.breaks(q);
    EXPECT_TRUE(conn.wait_closed());
    // Scribbling on the sleepers count only hurts the scribbler, too.
    q.word(kSleepersOffset) = 0xFFFFFFFF;

    RawConn other(socket_path());
    EXPECT_EQ(other.call(Opcode::kGetDeviceInfo).st(), Status::kOk);
    Client lib = Client::connect(socket_path()).value();
    EXPECT_TRUE(lib.uses_queue());
    EXPECT_OK(lib.device_info());
  }
}

// A client that leaves with requests in its slots, and one that leaves
// while the device is asleep on its queue: the device ends their workers
// and goes on.
TEST_F(QueueRaw, ClientsThatLeaveMidRequestCostNothing) {
  for (int i = 0; i < 20; ++i) {
    RawConn conn(socket_path());
    RawQueue q(conn);
    for (uint32_t s = 0; s < q.depth(); ++s) {
      q.submit(s, request(Opcode::kSelfTest, s), s);
    }
    // Closed without reading a single response.
  }
  {
    RawConn conn(socket_path());
    RawQueue q(conn);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));  // workers asleep
  }
  RawConn other(socket_path());
  EXPECT_EQ(other.call(Opcode::kGetDeviceInfo).st(), Status::kOk);
}

}  // namespace
}  // namespace ihsm::test
