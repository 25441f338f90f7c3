// The wire protocol of a real ihsmd, spoken with hand-built frames
// (docs/protocol.md, "Frame" and "Body"): framing errors, body errors,
// sessions across connections, request ids and flags.
#include <grp.h>
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <random>
#include <set>
#include <thread>

#include "integration/daemon_fixture.h"
#include "support/raw_client.h"

namespace ihsm::test {
namespace {

using protocol::Opcode;

class RawProtocol : public DaemonTest {};

void expect_response_to(const WireFrame& f, const WireHeader& req) {
  EXPECT_TRUE(f.is_response());
  EXPECT_EQ(f.magic, kWireMagic);
  EXPECT_EQ(f.revision, 1);
  EXPECT_EQ(f.opcode, req.opcode);
  EXPECT_EQ(f.request_id, req.request_id);
  EXPECT_EQ(f.reserved1, 0u);
  EXPECT_EQ(f.reserved2, 0u);
  EXPECT_EQ(f.body_length, f.body.size());
  EXPECT_TRUE(status_is_known(f.status)) << f.status;
  EXPECT_EQ(f.flags & ~(kFlagResponse | kFlagApproved), 0);
}

TEST_F(RawProtocol, GetDeviceInfoAndTheSignedTransportKey) {
  RawConn c(socket_path());
  WireHeader h;
  h.opcode = op(Opcode::kGetDeviceInfo);
  h.request_id = 0x0123456789abcdefull;
  const WireFrame f = c.call_raw(h, Bytes{});  // an empty body is the empty map
  expect_response_to(f, h);
  ASSERT_EQ(f.st(), Status::kOk) << f.status_str();
  const cbor::Value v = f.value();
  ASSERT_TRUE(v.is(cbor::Value::Type::kMap));
  EXPECT_EQ(v.find(protocol::kProtocolRevision)->as_uint(), 1u);
  EXPECT_FALSE(v.find(protocol::kFirmwareVersion)->as_text().empty());
  EXPECT_EQ(v.find(protocol::kState)->as_text(), "operational");
  EXPECT_TRUE(v.find(protocol::kIsOwner)->as_bool());  // root, or the daemon's own uid
  EXPECT_EQ(v.find(protocol::kCount)->as_uint(), 0u);

  const Bytes identity = v.find(protocol::kIdentityKey)->as_bytes();
  const Bytes transport = v.find(protocol::kPinTransportKey)->as_bytes();
  const Bytes sig = v.find(protocol::kPinTransportSig)->as_bytes();
  auto id_key = ossl::load_spki(identity);
  auto tr_key = ossl::load_spki(transport);
  ASSERT_TRUE(id_key && tr_key);
  EXPECT_EQ(ossl::group_of(id_key.get()), "secp384r1");
  EXPECT_EQ(ossl::group_of(tr_key.get()), "secp384r1");
  EXPECT_NE(identity, transport);
  // ECDSA-SHA384 (DER) over the transport SPKI by the identity key.
  EXPECT_TRUE(ossl::verify_ecdsa_der(identity, EVP_sha384(), transport, sig));
  Bytes other = transport;
  other.back() ^= 1;
  EXPECT_FALSE(ossl::verify_ecdsa_der(identity, EVP_sha384(), other, sig));
}

TEST_F(RawProtocol, RequestIdIsEchoedAndResponseFlagSet) {
  RawConn c(socket_path());
  std::mt19937_64 rng(42);
  const uint64_t ids[] = {0, 1, 0x8000000000000000ull, UINT64_MAX, rng(), rng()};
  for (uint64_t id : ids) {
    for (Opcode o : {Opcode::kGetDeviceInfo, Opcode::kGetChallenge, Opcode::kPartitionList,
                     Opcode::kSessionInfo /* error: no session */}) {
      WireHeader h;
      h.opcode = op(o);
      h.request_id = id;
      const WireFrame f = c.call_raw(h, cbor::encode(cbor::Value::map()));
      expect_response_to(f, h);
    }
  }
  // An unknown opcode is answered with its own code and id too.
  WireHeader h;
  h.opcode = 0x7ABC;
  h.request_id = 0xfeedfacecafebeefull;
  expect_response_to(c.call_raw(h, {}), h);
}

TEST_F(RawProtocol, PipelinedRequestsAreAnsweredInOrder) {
  RawConn c(socket_path());
  Bytes burst;
  const uint16_t ops[] = {op(Opcode::kGetChallenge), 0x0999, op(Opcode::kGetDeviceInfo),
                          op(Opcode::kSessionClose), op(Opcode::kPartitionList)};
  for (size_t i = 0; i < std::size(ops); ++i) {
    WireHeader h;
    h.opcode = ops[i];
    h.request_id = 1000 + i;
    const Bytes frame = build_frame(h, cbor::encode(cbor::Value::map()));
    burst.insert(burst.end(), frame.begin(), frame.end());
  }
  ASSERT_TRUE(c.send_bytes(burst));
  for (size_t i = 0; i < std::size(ops); ++i) {
    auto f = c.read_frame();
    ASSERT_TRUE(f.has_value()) << i;
    EXPECT_EQ(f->request_id, 1000 + i);
    EXPECT_EQ(f->opcode, ops[i]);
  }
}

// ---------------------------------------------------------------- framing errors

// Sends `frame`, expects exactly one response with `status`, then the
// connection closed by the daemon.
void expect_error_then_close(const std::string& socket, const Bytes& frame, Status status) {
  RawConn c(socket, 5000);
  ASSERT_TRUE(c.send_bytes(frame));
  auto f = c.read_frame();
  ASSERT_TRUE(f.has_value()) << "no response to a bad header";
  EXPECT_EQ(f->st(), status) << f->status_str();
  EXPECT_TRUE(f->is_response());
  EXPECT_FALSE(f->approved());
  EXPECT_EQ(f->revision, 1);
  EXPECT_TRUE(c.wait_closed()) << "connection stayed open after " << status_name(status);
}

void expect_daemon_serves(const std::string& socket) {
  RawConn c(socket);
  EXPECT_EQ(c.call(Opcode::kGetDeviceInfo).st(), Status::kOk);
}

TEST_F(RawProtocol, OversizedBodyLengthIsFrameTooLargeThenClosed) {
  for (uint32_t len : {static_cast<uint32_t>(kWireMaxBody + 1), 0x7fffffffu, UINT32_MAX}) {
    WireHeader h;
    h.opcode = op(Opcode::kGetDeviceInfo);
    h.request_id = 5;
    h.body_length = len;
    // Only the header: the daemon must not wait for (or allocate) the body.
    Bytes frame = build_frame(h);
    expect_error_then_close(socket_path(), frame, Status::kFrameTooLarge);
  }
  expect_daemon_serves(socket_path());
}

TEST_F(RawProtocol, BodyOfExactlyOneMebibyteIsAccepted) {
  RawConn c(socket_path());
  WireHeader h;
  h.opcode = op(Opcode::kGetDeviceInfo);
  h.request_id = 77;
  // 1 MiB of CBOR zeros: a valid header, an invalid body (many top-level items).
  const WireFrame f = c.call_raw(h, Bytes(kWireMaxBody, 0));
  EXPECT_EQ(f.request_id, 77u);
  EXPECT_EQ(f.st(), Status::kMalformedBody) << f.status_str();
  // The stream is still in sync.
  EXPECT_EQ(c.call(Opcode::kGetDeviceInfo).st(), Status::kOk);
}

TEST_F(RawProtocol, BadMagicIsMalformedFrameThenClosed) {
  for (uint32_t magic : {0u, 0x4948534Eu, 0x4D534849u, 0x47455420u /* "GET " */}) {
    WireHeader h;
    h.magic = magic;
    h.opcode = op(Opcode::kGetDeviceInfo);
    expect_error_then_close(socket_path(), build_frame(h), Status::kMalformedFrame);
  }
  expect_daemon_serves(socket_path());
}

TEST_F(RawProtocol, ReservedBitsAndUnknownFlagsAreMalformedFrameThenClosed) {
  WireHeader a;
  a.opcode = op(Opcode::kGetDeviceInfo);
  a.reserved1 = 1;
  expect_error_then_close(socket_path(), build_frame(a), Status::kMalformedFrame);
  WireHeader b;
  b.opcode = op(Opcode::kGetDeviceInfo);
  b.reserved2 = 0x80000000u;
  expect_error_then_close(socket_path(), build_frame(b), Status::kMalformedFrame);
  for (uint16_t flag : {4, 8, 0x100, 0x8000}) {
    WireHeader c;
    c.opcode = op(Opcode::kGetDeviceInfo);
    c.flags = flag;
    expect_error_then_close(socket_path(), build_frame(c), Status::kMalformedFrame);
  }
  expect_daemon_serves(socket_path());
}

TEST_F(RawProtocol, WrongRevisionIsUnsupportedRevisionThenClosed) {
  for (uint16_t rev : {0, 2, 0xFFFF}) {
    RawConn c(socket_path(), 5000);
    WireHeader h;
    h.revision = rev;
    h.opcode = op(Opcode::kGetDeviceInfo);
    h.request_id = 4242;
    ASSERT_TRUE(c.send_bytes(build_frame(h, cbor::encode(cbor::Value::map()))));
    auto f = c.read_frame();
    ASSERT_TRUE(f.has_value());
    EXPECT_EQ(f->st(), Status::kUnsupportedRevision) << f->status_str();
    EXPECT_EQ(f->request_id, 4242u);  // the id can still be echoed
    EXPECT_EQ(f->revision, 1);        // answered in the revision the device speaks
    EXPECT_TRUE(f->is_response());
    EXPECT_TRUE(c.wait_closed());
  }
  expect_daemon_serves(socket_path());
}

TEST_F(RawProtocol, BadHeaderOnOneConnectionDoesNotDisturbAnother) {
  RawConn keep(socket_path());
  ASSERT_EQ(keep.call(Opcode::kGetChallenge).st(), Status::kOk);
  WireHeader bad;
  bad.magic = 0;
  expect_error_then_close(socket_path(), build_frame(bad), Status::kMalformedFrame);
  EXPECT_EQ(keep.call(Opcode::kGetDeviceInfo).st(), Status::kOk);
}

// ---------------------------------------------------------------- errors after a valid header

TEST_F(RawProtocol, UnknownOpcodeKeepsTheConnection) {
  RawConn c(socket_path());
  for (uint16_t code : {0x0000, 0x0005, 0x001F, 0x0028, 0x0051, 0x00FF, 0x8001, 0xFFFF}) {
    WireHeader h;
    h.opcode = code;
    h.request_id = code + 1u;
    const WireFrame f = c.call_raw(h, cbor::encode(cbor::Value::map()));
    expect_response_to(f, h);
    EXPECT_EQ(f.st(), Status::kUnknownOpcode) << code;
    EXPECT_FALSE(f.approved());
    // An error body is a CBOR map.
    EXPECT_TRUE(f.value().is(cbor::Value::Type::kMap));
    EXPECT_EQ(c.call(Opcode::kGetDeviceInfo).st(), Status::kOk) << "after opcode " << code;
  }
}

TEST_F(RawProtocol, MalformedBodiesKeepTheConnection) {
  RawConn c(socket_path());
  const char* bodies[] = {
      "ff",                        // a lone break
      "a000",                      // trailing bytes
      "a0a0",                      // two maps
      "bf0102ff",                  // indefinite map
      "a1015f4101ff",              // indefinite byte string inside
      "c1a0",                      // a tag
      "a101fb3ff199999999999a",    // a float
      "a10219",                    // truncated
      "a2016161",                  // map missing its last value
      "5b1000000000000000010203",  // 2^60-byte string on a short buffer
      "818181818181818181a0",      // depth 10
      "a1f501",                    // bool key
      "a1410101",                  // byte-string key
      "1c",                        // reserved additional information
  };
  for (const char* hex : bodies) {
    WireHeader h;
    h.opcode = op(Opcode::kGetDeviceInfo);
    h.request_id = 9;
    const WireFrame f = c.call_raw(h, from_hex(hex));
    expect_response_to(f, h);
    EXPECT_EQ(f.st(), Status::kMalformedBody) << hex << ": " << f.status_str();
    EXPECT_FALSE(f.approved());
  }
  // A well-formed body that is not a map.
  for (const char* hex : {"80", "01", "6161", "f6"}) {
    WireHeader h;
    h.opcode = op(Opcode::kPartitionList);
    const WireFrame f = c.call_raw(h, from_hex(hex));
    EXPECT_EQ(f.st(), Status::kMalformedBody) << hex << ": " << f.status_str();
  }
  EXPECT_EQ(c.call(Opcode::kGetDeviceInfo).st(), Status::kOk);
}

TEST_F(RawProtocol, FieldTypeAndPresenceErrors) {
  RawConn c(socket_path());
  using cbor::Value;
  auto open = [&](Value body) { return c.call(Opcode::kSessionOpen, 0, body).st(); };
  EXPECT_EQ(open(Value::map()), Status::kMissingField);
  EXPECT_EQ(open(Value::map().set(uint64_t{1}, Value::text("1"))), Status::kMalformedBody);
  EXPECT_EQ(open(Value::map().set(uint64_t{1}, Value::negint(-1))), Status::kMalformedBody);
  EXPECT_EQ(open(Value::map().set(uint64_t{1}, Value::uint(1ull << 40))), Status::kInvalidArgument);
  EXPECT_EQ(open(Value::map().set(uint64_t{1}, Value::uint(12345))), Status::kNoSuchPartition);
  // Owner commands check their fields after the owner check.
  EXPECT_EQ(c.call(Opcode::kPartitionDelete, 0, Value::map()).st(), Status::kMissingField);
  EXPECT_EQ(
      c.call(Opcode::kPartitionDelete, 0, Value::map().set(uint64_t{1}, Value::uint(99))).st(),
      Status::kNoSuchPartition);
  auto create = Value::map();
  create.set(uint64_t{protocol::kName}, Value::text(std::string(65, 'n')));
  EXPECT_EQ(c.call(Opcode::kPartitionCreate, 0, create).st(), Status::kFieldTooLarge);
  EXPECT_EQ(c.call(Opcode::kPartitionCreate, 0,
                   Value::map().set(uint64_t{protocol::kName}, Value::text("p")))
                .st(),
            Status::kMissingField);  // no officer PIN envelope
}

// ---------------------------------------------------------------- sessions

std::vector<Opcode> session_opcodes() {
  std::vector<Opcode> out;
#define IHSM_TEST_SESSION_OP(name, code, access, usage)        \
  if (protocol::Access::access != protocol::Access::kAnyone && \
      protocol::Access::access != protocol::Access::kOwner) {  \
    out.push_back(Opcode::k##name);                            \
  }
  IHSM_OPCODE_LIST(IHSM_TEST_SESSION_OP)
#undef IHSM_TEST_SESSION_OP
  return out;
}

TEST_F(RawProtocol, SessionOpcodesNeedAnOpenSession) {
  RawConn c(socket_path());
  std::mt19937_64 rng(7);
  const auto ops = session_opcodes();
  ASSERT_GE(ops.size(), 15u);
  for (Opcode o : ops) {
    for (uint64_t session : {uint64_t{0}, rng(), uint64_t{1}, UINT64_MAX}) {
      const WireFrame f = c.call(o, session);
      EXPECT_EQ(f.st(), Status::kInvalidSession)
          << protocol::opcode_name(o) << " session " << session << ": " << f.status_str();
      EXPECT_FALSE(f.approved());
    }
  }
}

TEST_F(RawProtocol, SessionOfAnotherConnectionIsInvalid) {
  RawConn a(socket_path()), b(socket_path());
  const uint32_t partition = raw_create_partition_ok(a, "shared", "officer-pin", "user-pin");
  const uint64_t session = raw_open_session_ok(a, partition);
  ASSERT_NE(session, 0u);
  EXPECT_EQ(a.call(Opcode::kSessionInfo, session).st(), Status::kOk);

  // B has the id but not the session.
  for (Opcode o : {Opcode::kSessionInfo, Opcode::kGenerateRandom, Opcode::kLogout,
                   Opcode::kSessionClose, Opcode::kGenerateKey}) {
    EXPECT_EQ(b.call(o, session,
                     cbor::Value::map().set(uint64_t{protocol::kLength}, cbor::Value::uint(4)))
                  .st(),
              Status::kInvalidSession)
        << protocol::opcode_name(o);
  }
  // Not even a login from B: the session, not the PIN, is refused.
  EXPECT_EQ(raw_login(b, session, partition, 1, "user-pin").st(), Status::kInvalidSession);
  // A logs in; B still cannot ride on it.
  ASSERT_EQ(raw_login(a, session, partition, 1, "user-pin").st(), Status::kOk);
  auto gen = cbor::Value::map();
  gen.set(uint64_t{protocol::kMechanism}, cbor::Value::uint(0x1080));
  gen.set(uint64_t{protocol::kKeyBits}, cbor::Value::uint(256));
  EXPECT_EQ(b.call(Opcode::kGenerateKey, session, gen).st(), Status::kInvalidSession);
  EXPECT_EQ(a.call(Opcode::kGenerateKey, session, gen).st(), Status::kOk);
  // B's failed SessionClose did not close A's session.
  const WireFrame info = a.call(Opcode::kSessionInfo, session);
  ASSERT_EQ(info.st(), Status::kOk);
  EXPECT_EQ(info.field(protocol::kSession).as_uint(), session);
  EXPECT_EQ(info.field(protocol::kPartition).as_uint(), partition);
  EXPECT_EQ(info.field(protocol::kRole).as_uint(), 1u);
  // A closes it; then it is gone for A too.
  EXPECT_EQ(a.call(Opcode::kSessionClose, session).st(), Status::kOk);
  EXPECT_EQ(a.call(Opcode::kSessionInfo, session).st(), Status::kInvalidSession);
}

TEST_F(RawProtocol, SessionIdsAreUnpredictable) {
  RawConn c(socket_path());
  const uint32_t partition = raw_create_partition_ok(c, "ids", "officer-pin");
  std::set<uint64_t> ids;
  for (int i = 0; i < 20; ++i) {
    const uint64_t id = raw_open_session_ok(c, partition);
    EXPECT_NE(id, 0u);
    ids.insert(id);
    EXPECT_EQ(c.call(Opcode::kSessionClose, id).st(), Status::kOk);
  }
  EXPECT_EQ(ids.size(), 20u);
  // Not a counter.
  std::vector<uint64_t> v(ids.begin(), ids.end());
  int sequential = 0;
  for (size_t i = 1; i < v.size(); ++i) sequential += (v[i] - v[i - 1] < 1000) ? 1 : 0;
  EXPECT_LT(sequential, 3);
}

TEST_F(RawProtocol, GenerateRandomLengths) {
  RawConn c(socket_path());
  const uint32_t partition = raw_create_partition_ok(c, "rng", "officer-pin");
  const uint64_t session = raw_open_session_ok(c, partition);  // public role suffices
  auto random = [&](uint64_t n) {
    return c.call(Opcode::kGenerateRandom, session,
                  cbor::Value::map().set(uint64_t{protocol::kLength}, cbor::Value::uint(n)));
  };
  for (uint64_t n : {0u, 1u, 32u, 65536u}) {
    const WireFrame f = random(n);
    ASSERT_EQ(f.st(), Status::kOk) << n << ": " << f.status_str();
    EXPECT_EQ(f.field(protocol::kData).as_bytes().size(), n);
  }
  EXPECT_NE(random(32).field(protocol::kData).as_bytes(),
            random(32).field(protocol::kData).as_bytes());
  for (uint64_t n : {uint64_t{65537}, uint64_t{1} << 20, uint64_t{1} << 40, UINT64_MAX}) {
    EXPECT_EQ(random(n).st(), Status::kDataLengthInvalid) << n;
  }
  EXPECT_EQ(c.call(Opcode::kGenerateRandom, session, cbor::Value::map()).st(),
            Status::kMissingField);
}

// ---------------------------------------------------------------- connection limit

class RawFrameDeadline : public DaemonTest {
 protected:
  std::vector<std::string> daemon_args() const override { return {"--frame-timeout-ms", "300"}; }
};

// A peer that sends half a frame and stalls is dropped once the frame
// deadline passes, so nobody can hold connections open with partial
// frames; an idle connection between frames is left alone.
TEST_F(RawFrameDeadline, HalfAFrameIsDroppedAnIdleConnectionIsNot) {
  RawConn idle(socket_path(), 5000);
  RawConn stalled(socket_path(), 5000);
  WireHeader h;
  h.opcode = op(Opcode::kGetDeviceInfo);
  h.request_id = 7;
  const Bytes frame = build_frame(h);
  ASSERT_TRUE(stalled.send_bytes(Bytes(frame.begin(), frame.begin() + 10)));
  const auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(stalled.wait_closed());
  const auto waited = std::chrono::steady_clock::now() - start;
  EXPECT_GE(waited, std::chrono::milliseconds(200));
  EXPECT_LT(waited, std::chrono::milliseconds(4000));
  // The idle connection waited longer than the deadline and still works.
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  EXPECT_EQ(idle.call(op(Opcode::kGetDeviceInfo)).st(), Status::kOk);
}

class RawConnectionLimit : public DaemonTest {
 protected:
  std::vector<std::string> daemon_args() const override { return {"--max-connections", "2"}; }
};

// A connection the daemon has admitted (the fixture's readiness probe may
// still hold a slot for a moment).
std::unique_ptr<RawConn> admitted_conn(const std::string& socket) {
  for (int i = 0; i < 200; ++i) {
    auto c = std::make_unique<RawConn>(socket, 2000);
    WireHeader h;
    h.opcode = op(Opcode::kGetDeviceInfo);
    h.request_id = 31337;
    if (c->send_bytes(build_frame(h))) {
      auto f = c->read_frame();
      if (f && f->st() == Status::kOk && f->request_id == 31337) return c;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return nullptr;
}

TEST_F(RawConnectionLimit, ExtraConnectionsAreTurnedAwayOthersKeepWorking) {
  auto a_ptr = admitted_conn(socket_path());
  auto b_ptr = admitted_conn(socket_path());
  ASSERT_TRUE(a_ptr && b_ptr);
  RawConn& a = *a_ptr;
  RawConn& b = *b_ptr;
  {
    // The third is told why (BUSY) and dropped. The device may answer
    // before the request arrives, so a failed send is no error here.
    RawConn c(socket_path(), 5000);
    WireHeader h;
    h.opcode = op(Opcode::kGetDeviceInfo);
    h.request_id = 99;
    (void)c.send_bytes(build_frame(h));
    auto f = c.read_frame();
    ASSERT_TRUE(f.has_value());
    EXPECT_EQ(f->st(), Status::kBusy) << f->status_str();
    EXPECT_TRUE(f->is_response());
    EXPECT_TRUE(c.wait_closed());
  }
  EXPECT_EQ(a.call(Opcode::kGetDeviceInfo).st(), Status::kOk);
  b.close();
  // The slot frees up once the daemon notices B is gone.
  EXPECT_TRUE(admitted_conn(socket_path()) != nullptr);
}

// ---------------------------------------------------------------- owner checks (root only)

// Runs `body` in a child that has dropped to uid/gid 65534 (nobody);
// returns the child's exit code (0 = every check passed).
template <typename F>
int as_nobody(F&& body) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    if (::setgroups(0, nullptr) != 0 || ::setgid(65534) != 0 || ::setuid(65534) != 0) _exit(90);
    int rc = 91;
    try {
      rc = body();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "child: %s\n", e.what());
      rc = 92;
    }
    std::fflush(stderr);
    _exit(rc);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 100 + WTERMSIG(status);
}

TEST_F(RawProtocol, NonOwnerIsRefusedOwnerCommands) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to drop to another uid";
  RawConn owner(socket_path());
  const uint32_t mine = raw_create_partition_ok(owner, "mine", "officer-pin");
  auto bound_other = cbor::Value::map().set(uint64_t{protocol::kBoundUid}, cbor::Value::uint(1234));
  const WireFrame other = raw_create_partition(owner, "bound-1234", "officer-pin", std::nullopt,
                                               std::move(bound_other));
  ASSERT_EQ(other.st(), Status::kOk);
  const auto other_id = static_cast<uint32_t>(other.field(protocol::kPartition).as_uint());
  auto bound_nobody =
      cbor::Value::map().set(uint64_t{protocol::kBoundUid}, cbor::Value::uint(65534));
  const WireFrame nobody = raw_create_partition(owner, "bound-nobody", "officer-pin", std::nullopt,
                                                std::move(bound_nobody));
  ASSERT_EQ(nobody.st(), Status::kOk);
  const auto nobody_id = static_cast<uint32_t>(nobody.field(protocol::kPartition).as_uint());

  const std::string sock = socket_path();
  const int rc = as_nobody([&]() -> int {
    RawConn c(sock);
    const RawDeviceInfo info = raw_device_info(c);
    if (info.is_owner) return 1;
    if (raw_create_partition(c, "evil", "officer-pin").st() != Status::kNotOwner) return 2;
    if (c.call(Opcode::kPartitionDelete, 0,
               cbor::Value::map().set(uint64_t{protocol::kPartition}, cbor::Value::uint(mine)))
            .st() != Status::kNotOwner) {
      return 3;
    }
    for (Opcode op : {Opcode::kPartitionUnlockOfficer, Opcode::kPartitionReset,
                      Opcode::kPartitionBackup, Opcode::kPartitionRestore}) {
      if (c.call(op, 0,
                 cbor::Value::map().set(uint64_t{protocol::kPartition}, cbor::Value::uint(mine)))
              .st() != Status::kNotOwner) {
        return 4;
      }
    }
    if (raw_open_session(c, other_id).st() != Status::kPartitionAccessDenied) return 5;
    if (raw_open_session(c, nobody_id).st() != Status::kOk) return 6;
    if (raw_open_session(c, mine).st() != Status::kOk) return 7;  // unbound: open to all
    // The list shows only what this uid may open.
    const WireFrame list = c.call(Opcode::kPartitionList);
    if (list.st() != Status::kOk) return 8;
    std::set<uint64_t> seen;
    for (const auto& p : list.field(protocol::kPartitions).items()) {
      seen.insert(p.find(protocol::kPartition)->as_uint());
    }
    if (seen != std::set<uint64_t>{mine, nobody_id}) return 9;
    return 0;
  });
  EXPECT_EQ(rc, 0) << "check " << rc << " failed in the unprivileged child";
  // Nothing was deleted.
  const WireFrame list = owner.call(Opcode::kPartitionList);
  EXPECT_EQ(list.field(protocol::kPartitions).items().size(), 3u);
}

}  // namespace
}  // namespace ihsm::test
