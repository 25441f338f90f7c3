// PIN envelopes over raw frames (docs/protocol.md, "PIN envelopes"): the
// test seals PINs itself, so these tests check the documented construction
// and the challenge rules - one challenge per connection, consumed by the
// next envelope-carrying command whatever its outcome.
#include <gtest/gtest.h>

#include "integration/daemon_fixture.h"
#include "support/raw_client.h"

namespace ihsm::test {
namespace {

using cbor::Value;
using protocol::Opcode;

constexpr uint32_t kUser = 1;
constexpr uint32_t kOfficer = 2;

class RawPin : public DaemonTest {
 protected:
  void SetUp() override {
    DaemonTest::SetUp();
    if (HasFatalFailure()) return;
    conn_ = std::make_unique<RawConn>(socket_path());
    transport_ = raw_device_info(*conn_).transport_spki;
    partition_ = raw_create_partition_ok(*conn_, "pins", "officer-pin", "user-pin");
    session_ = raw_open_session_ok(*conn_, partition_);
  }
  void TearDown() override {
    conn_.reset();
    DaemonTest::TearDown();
  }
  uint64_t role() {
    const WireFrame f = conn_->call(Opcode::kSessionInfo, session_);
    EXPECT_EQ(f.st(), Status::kOk);
    return f.field(protocol::kRole).as_uint();
  }

  std::unique_ptr<RawConn> conn_;
  Bytes transport_;
  uint32_t partition_ = 0;
  uint64_t session_ = 0;
};

TEST_F(RawPin, TestSealedEnvelopesWork) {
  // PartitionCreate in SetUp already used two test-sealed envelopes.
  const WireFrame list = conn_->call(Opcode::kPartitionList);
  ASSERT_EQ(list.st(), Status::kOk);
  const auto& parts = list.field(protocol::kPartitions).items();
  ASSERT_EQ(parts.size(), 1u);
  EXPECT_EQ(parts[0].find(protocol::kName)->as_text(), "pins");
  EXPECT_TRUE(parts[0].find(protocol::kUserPinSet)->as_bool());
  EXPECT_EQ(role(), 0u);
  ASSERT_EQ(raw_login(*conn_, session_, partition_, kUser, "user-pin").st(), Status::kOk);
  EXPECT_EQ(role(), kUser);
  EXPECT_EQ(conn_->call(Opcode::kLogout, session_).st(), Status::kOk);
  ASSERT_EQ(raw_login(*conn_, session_, partition_, kOfficer, "officer-pin").st(), Status::kOk);
  EXPECT_EQ(role(), kOfficer);
}

TEST_F(RawPin, LoginWithoutChallengeIsStale) {
  // An envelope sealed under a made-up challenge, with no GetChallenge.
  const Value body = raw_login_body(transport_, Bytes(32, 0x5a), partition_, kUser, "user-pin");
  EXPECT_EQ(conn_->call(Opcode::kLogin, session_, body).st(), Status::kStaleChallenge);
  EXPECT_EQ(role(), 0u);
}

TEST_F(RawPin, ReplayedLoginFails) {
  const Bytes challenge = raw_challenge(*conn_);
  const Value body = raw_login_body(transport_, challenge, partition_, kUser, "user-pin");
  ASSERT_EQ(conn_->call(Opcode::kLogin, session_, body).st(), Status::kOk);
  ASSERT_EQ(conn_->call(Opcode::kLogout, session_).st(), Status::kOk);
  // The very same request again: its challenge was consumed.
  EXPECT_EQ(conn_->call(Opcode::kLogin, session_, body).st(), Status::kStaleChallenge);
  // With a fresh challenge outstanding, the recorded envelope does not open.
  raw_challenge(*conn_);
  EXPECT_EQ(conn_->call(Opcode::kLogin, session_, body).st(), Status::kPinEnvelopeInvalid);
  EXPECT_EQ(role(), 0u);
  // Replayed on another connection, with that connection's own challenge.
  RawConn other(socket_path());
  const uint64_t other_session = raw_open_session_ok(other, partition_);
  EXPECT_EQ(other.call(Opcode::kLogin, other_session, body).st(), Status::kStaleChallenge);
  raw_challenge(other);
  EXPECT_EQ(other.call(Opcode::kLogin, other_session, body).st(), Status::kPinEnvelopeInvalid);
}

TEST_F(RawPin, ChallengeIsPerConnection) {
  RawConn other(socket_path());
  const Bytes foreign = raw_challenge(other);
  // conn_ has no challenge of its own: stale, not merely invalid.
  const Value body = raw_login_body(transport_, foreign, partition_, kUser, "user-pin");
  EXPECT_EQ(conn_->call(Opcode::kLogin, session_, body).st(), Status::kStaleChallenge);
  // A newer challenge replaces an older one on the same connection.
  const Bytes first = raw_challenge(*conn_);
  const Bytes second = raw_challenge(*conn_);
  EXPECT_NE(first, second);
  EXPECT_EQ(first.size(), 32u);
  EXPECT_EQ(conn_
                ->call(Opcode::kLogin, session_,
                       raw_login_body(transport_, first, partition_, kUser, "user-pin"))
                .st(),
            Status::kPinEnvelopeInvalid);
  raw_challenge(*conn_);
  EXPECT_EQ(raw_login(*conn_, session_, partition_, kUser, "user-pin").st(), Status::kOk);
}

TEST_F(RawPin, AFailedCommandStillConsumesTheChallenge) {
  const Bytes challenge = raw_challenge(*conn_);
  const WireFrame wrong = conn_->call(
      Opcode::kLogin, session_, raw_login_body(transport_, challenge, partition_, kUser, "nope"));
  ASSERT_EQ(wrong.st(), Status::kPinIncorrect);
  ASSERT_TRUE(wrong.has(protocol::kRetriesLeft));
  EXPECT_EQ(wrong.field(protocol::kRetriesLeft).as_uint(), 9u);
  // Same challenge, right PIN: the challenge is gone.
  EXPECT_EQ(conn_
                ->call(Opcode::kLogin, session_,
                       raw_login_body(transport_, challenge, partition_, kUser, "user-pin"))
                .st(),
            Status::kStaleChallenge);
  // Refused by the gate (no such session) - consumed as well.
  const Bytes c2 = raw_challenge(*conn_);
  EXPECT_EQ(conn_
                ->call(Opcode::kLogin, session_ ^ 1,
                       raw_login_body(transport_, c2, partition_, kUser, "user-pin"))
                .st(),
            Status::kInvalidSession);
  EXPECT_EQ(conn_
                ->call(Opcode::kLogin, session_,
                       raw_login_body(transport_, c2, partition_, kUser, "user-pin"))
                .st(),
            Status::kStaleChallenge);
}

TEST_F(RawPin, EnvelopeIsBoundToOpcodeFieldPartitionAndRole) {
  auto login_with = [&](uint16_t seal_opcode, uint64_t seal_field, uint32_t seal_partition,
                        uint32_t seal_role, uint32_t login_role) {
    const Bytes challenge = raw_challenge(*conn_);
    auto body = Value::map();
    body.set(uint64_t{protocol::kRole}, Value::uint(login_role));
    body.set(uint64_t{protocol::kPinEnvelope},
             seal_pin(transport_, challenge, seal_opcode, seal_field, seal_partition, seal_role,
                      login_role == kUser ? "user-pin" : "officer-pin"));
    return conn_->call(Opcode::kLogin, session_, body).st();
  };
  const uint16_t login = op(Opcode::kLogin);
  EXPECT_EQ(login_with(op(Opcode::kSetPin), protocol::kPinEnvelope, partition_, kUser, kUser),
            Status::kPinEnvelopeInvalid);
  EXPECT_EQ(login_with(login, protocol::kNewPinEnvelope, partition_, kUser, kUser),
            Status::kPinEnvelopeInvalid);
  EXPECT_EQ(login_with(login, protocol::kPinEnvelope, partition_ + 1, kUser, kUser),
            Status::kPinEnvelopeInvalid);
  EXPECT_EQ(login_with(login, protocol::kPinEnvelope, 0, kUser, kUser),
            Status::kPinEnvelopeInvalid);
  EXPECT_EQ(login_with(login, protocol::kPinEnvelope, partition_, kOfficer, kUser),
            Status::kPinEnvelopeInvalid);
  EXPECT_EQ(role(), 0u);
  // None of those counted as a wrong PIN.
  const WireFrame list = conn_->call(Opcode::kPartitionList);
  EXPECT_FALSE(list.field(protocol::kPartitions).items()[0].find(protocol::kUserLocked)->as_bool());
  EXPECT_EQ(login_with(login, protocol::kPinEnvelope, partition_, kUser, kUser), Status::kOk);
}

TEST_F(RawPin, MalformedEnvelopes) {
  // Sends a Login carrying `envelope` under whatever challenge is outstanding.
  auto send = [&](Value envelope) {
    auto body = Value::map();
    body.set(uint64_t{protocol::kRole}, Value::uint(kUser));
    body.set(uint64_t{protocol::kPinEnvelope}, std::move(envelope));
    return conn_->call(Opcode::kLogin, session_, body).st();
  };
  // Fetches a challenge and seals `pin` under it, correctly.
  auto parts = [&](std::string_view pin) {
    return seal_pin_parts(transport_, raw_challenge(*conn_), op(Opcode::kLogin),
                          protocol::kPinEnvelope, partition_, kUser, pin);
  };
  // Control: an untouched envelope opens.
  ASSERT_EQ(send(envelope_value(parts("user-pin"))), Status::kOk);
  ASSERT_EQ(conn_->call(Opcode::kLogout, session_).st(), Status::kOk);

  raw_challenge(*conn_);
  EXPECT_EQ(send(Value::bytes(Bytes(113, 1))), Status::kMalformedBody);  // not a map
  raw_challenge(*conn_);
  EXPECT_EQ(send(Value::map()), Status::kMissingField);
  {
    EnvelopeParts p = parts("user-pin");
    p.ephemeral_point.pop_back();  // 96 bytes
    EXPECT_EQ(send(envelope_value(p)), Status::kPinEnvelopeInvalid);
  }
  {
    EnvelopeParts p = parts("user-pin");
    p.ephemeral_point.back() ^= 1;  // off the curve
    EXPECT_EQ(send(envelope_value(p)), Status::kPinEnvelopeInvalid);
  }
  {
    EnvelopeParts p = parts("user-pin");
    p.ephemeral_point[0] = 0x02;  // not an uncompressed point
    EXPECT_EQ(send(envelope_value(p)), Status::kPinEnvelopeInvalid);
  }
  {
    EnvelopeParts p = parts("user-pin");
    p.sealed.resize(15);  // shorter than a tag
    EXPECT_EQ(send(envelope_value(p)), Status::kPinEnvelopeInvalid);
  }
  {
    EnvelopeParts p = parts("user-pin");
    p.sealed[0] ^= 0x80;  // tampered ciphertext
    EXPECT_EQ(send(envelope_value(p)), Status::kPinEnvelopeInvalid);
  }
  {
    EnvelopeParts p = parts("user-pin");
    p.sealed.back() ^= 0x01;  // tampered tag
    EXPECT_EQ(send(envelope_value(p)), Status::kPinEnvelopeInvalid);
  }
  // A PIN below 4 bytes is refused before any verification.
  EXPECT_EQ(send(envelope_value(parts("123"))), Status::kPinInvalid);
  EXPECT_EQ(send(envelope_value(parts(""))), Status::kPinInvalid);
  // So is one above 64 bytes (the envelope itself is then over its limit).
  {
    const Status s = send(envelope_value(parts(std::string(65, 'x'))));
    EXPECT_TRUE(s == Status::kPinInvalid || s == Status::kFieldTooLarge) << status_name(s);
  }
  // 4 and 64 bytes are valid lengths (and wrong PINs here).
  EXPECT_EQ(send(envelope_value(parts("1234"))), Status::kPinIncorrect);
  EXPECT_EQ(send(envelope_value(parts(std::string(64, 'x')))), Status::kPinIncorrect);
  // Only those two counted towards the lock.
  const WireFrame f = raw_login(*conn_, session_, partition_, kUser, "wrong-again");
  ASSERT_EQ(f.st(), Status::kPinIncorrect);
  EXPECT_EQ(f.field(protocol::kRetriesLeft).as_uint(), 7u);
}

TEST_F(RawPin, LoginRoleAndStateChecks) {
  for (uint64_t bad_role : {0u, 3u, 1000u}) {
    const Bytes ch = raw_challenge(*conn_);
    const Value body =
        raw_login_body(transport_, ch, partition_, static_cast<uint32_t>(bad_role), "user-pin");
    EXPECT_EQ(conn_->call(Opcode::kLogin, session_, body).st(), Status::kInvalidArgument)
        << bad_role;
  }
  ASSERT_EQ(raw_login(*conn_, session_, partition_, kUser, "user-pin").st(), Status::kOk);
  EXPECT_EQ(raw_login(*conn_, session_, partition_, kOfficer, "officer-pin").st(),
            Status::kAlreadyLoggedIn);
  EXPECT_EQ(conn_->call(Opcode::kLogout, session_).st(), Status::kOk);
  EXPECT_EQ(conn_->call(Opcode::kLogout, session_).st(), Status::kNotLoggedIn);
}

TEST_F(RawPin, UserPinNotInitialized) {
  const uint32_t bare = raw_create_partition_ok(*conn_, "bare", "officer-pin");
  const uint64_t s = raw_open_session_ok(*conn_, bare);
  EXPECT_EQ(raw_login(*conn_, s, bare, kUser, "whatever").st(), Status::kPinNotInitialized);
  const WireFrame list = conn_->call(Opcode::kPartitionList);
  for (const auto& p : list.field(protocol::kPartitions).items()) {
    if (p.find(protocol::kPartition)->as_uint() == bare) {
      EXPECT_FALSE(p.find(protocol::kUserPinSet)->as_bool());
    }
  }
}

TEST_F(RawPin, PartitionCreateChecks) {
  // Duplicate names are refused.
  EXPECT_EQ(raw_create_partition(*conn_, "pins", "officer-pin").st(), Status::kPartitionExists);
  // An empty name is refused.
  EXPECT_EQ(raw_create_partition(*conn_, "", "officer-pin").st(), Status::kInvalidArgument);
  // The officer envelope must be sealed for the officer role and partition 0.
  const Bytes ch = raw_challenge(*conn_);
  auto body = Value::map();
  body.set(uint64_t{protocol::kName}, Value::text("wrong-role"));
  body.set(uint64_t{protocol::kPinEnvelope},
           seal_pin(transport_, ch, op(Opcode::kPartitionCreate), protocol::kPinEnvelope, 0, kUser,
                    "officer-pin"));
  EXPECT_EQ(conn_->call(Opcode::kPartitionCreate, 0, body).st(), Status::kPinEnvelopeInvalid);
  // max_sessions is bounded.
  auto extra = Value::map().set(uint64_t{protocol::kMaxSessions}, Value::uint(1u << 20));
  EXPECT_EQ(
      raw_create_partition(*conn_, "many", "officer-pin", std::nullopt, std::move(extra)).st(),
      Status::kInvalidArgument);
}

}  // namespace
}  // namespace ihsm::test
