// 10,000 hostile frames against a real ihsmd: random bytes, valid headers
// with random bodies (raw bytes and random CBOR maps aimed at the
// handlers), broken headers, truncated frames. Afterwards the daemon is
// alive, a connection opened before the storm still works, and a new
// client gets its device info.
#include <gtest/gtest.h>

#include <random>

#include "integration/daemon_fixture.h"
#include "support/raw_client.h"

namespace ihsm::test {
namespace {

using protocol::Opcode;

constexpr int kFrames = 10000;
constexpr uint64_t kSeed = 0x1457c0de;

class Garbage : public DaemonTest {
 protected:
  std::mt19937_64 rng_{kSeed};

  uint64_t pick(uint64_t n) { return std::uniform_int_distribution<uint64_t>(0, n - 1)(rng_); }
  Bytes random_bytes(size_t n) {
    Bytes out(n);
    for (auto& b : out) b = static_cast<uint8_t>(rng_());
    return out;
  }
  uint16_t random_opcode() {
    static const std::vector<uint16_t> known = [] {
      std::vector<uint16_t> v;
#define IHSM_TEST_ALL_OPS(name, code, access, usage) v.push_back(code);
      IHSM_OPCODE_LIST(IHSM_TEST_ALL_OPS)
#undef IHSM_TEST_ALL_OPS
      return v;
    }();
    return pick(4) == 0 ? static_cast<uint16_t>(rng_()) : known[pick(known.size())];
  }

  cbor::Value random_value(int depth) {
    switch (pick(depth >= 3 ? 7 : 9)) {
      case 0:
        return cbor::Value::uint(pick(2) ? pick(300) : rng_());
      case 1:
        return cbor::Value::negint(-1 - static_cast<int64_t>(pick(1000)));
      case 2:
        return cbor::Value::bytes(random_bytes(pick(4) == 0 ? pick(2000) : pick(100)));
      case 3: {
        const Bytes b = random_bytes(pick(70));
        return cbor::Value::text(std::string(b.begin(), b.end()));
      }
      case 4:
        return cbor::Value::boolean(pick(2) == 1);
      case 5:
        return cbor::Value();
      case 6:
        return cbor::Value::uint(pick(2) ? 0x1040 + pick(0x50) : pick(4) * 128);  // near-valid
      case 7: {
        auto a = cbor::Value::array();
        for (uint64_t i = pick(5); i > 0; --i) a.push(random_value(depth + 1));
        return a;
      }
      default:
        return random_map(depth + 1);
    }
  }

  // Mostly protocol field numbers, so handlers see plausible requests.
  cbor::Value random_map(int depth) {
    auto m = cbor::Value::map();
    for (uint64_t i = pick(8); i > 0; --i) {
      const uint64_t key = pick(10) == 0 ? rng_() : 1 + pick(56);
      m.set(key, random_value(depth));
    }
    return m;
  }

  // A valid-looking request from a random opcode, session and body.
  WireHeader random_header(uint64_t live_session) {
    WireHeader h;
    h.opcode = random_opcode();
    h.flags = static_cast<uint16_t>(pick(4));
    h.status = pick(8) == 0 ? static_cast<uint16_t>(rng_()) : 0;
    switch (pick(4)) {
      case 0:
        h.session = 0;
        break;
      case 1:
        h.session = rng_();
        break;
      default:
        h.session = live_session;
    }
    h.request_id = rng_();
    return h;
  }
};

// Reads whatever comes back until the daemon closes the stream: every
// frame must be a well-formed response. False on a timeout or a broken
// frame.
::testing::AssertionResult drain_until_closed(RawConn& c, size_t max_frames) {
  for (size_t n = 0; n <= max_frames; ++n) {
    std::optional<WireFrame> f;
    try {
      f = c.read_frame();
    } catch (const std::exception& e) {
      return ::testing::AssertionFailure() << e.what();
    }
    if (!f) {
      if (c.clean_eof()) return ::testing::AssertionSuccess();
      return ::testing::AssertionFailure() << "timeout or a truncated response frame";
    }
    if (f->magic != kWireMagic || !f->is_response() || !status_is_known(f->status)) {
      return ::testing::AssertionFailure() << "ill-formed response frame";
    }
  }
  return ::testing::AssertionFailure() << "more responses than requests";
}

TEST_F(Garbage, TenThousandHostileFramesLeaveTheDaemonServing) {
  // A bystander with a logged-in session, opened before the storm.
  RawConn witness(socket_path());
  const uint32_t partition = raw_create_partition_ok(witness, "witness", "officer-pin", "user-pin");
  const uint64_t witness_session = raw_open_session_ok(witness, partition);
  ASSERT_EQ(raw_login(witness, witness_session, partition, 1, "user-pin").st(), Status::kOk);

  // The reused connection, with its own logged-in session so that random
  // bodies reach the handlers rather than stopping at the gate.
  auto reused = std::make_unique<RawConn>(socket_path(), 5000);
  uint64_t session = raw_open_session_ok(*reused, partition);
  ASSERT_EQ(raw_login(*reused, session, partition, 1, "user-pin").st(), Status::kOk);

  int counts[6] = {};
  int failures = 0;
  for (int i = 0; i < kFrames && failures < 5; ++i) {
    const uint64_t kind = pick(100);
    if (kind < 45) {
      // A valid header and a random body on the long-lived connection:
      // exactly one response, same id and opcode, connection stays open.
      ++counts[0];
      WireHeader h = random_header(session);
      Bytes body;
      if (pick(2) == 0) {
        body = cbor::encode(random_map(1));
      } else {
        body = random_bytes(pick(6) == 0 ? pick(4096) : pick(64));
      }
      // SessionClose, Logout, PartitionDelete and Zeroize would only end
      // the experiment early; they are covered elsewhere.
      if (h.opcode == op(Opcode::kSessionClose) || h.opcode == op(Opcode::kLogout) ||
          h.opcode == op(Opcode::kPartitionDelete) || h.opcode == op(Opcode::kZeroize)) {
        h.opcode = op(Opcode::kSessionInfo);
      }
      WireFrame f;
      try {
        f = reused->call_raw(h, body);
      } catch (const std::exception& e) {
        ADD_FAILURE() << "frame " << i << " (opcode 0x" << std::hex << h.opcode << std::dec
                      << ", body " << to_hex(body).substr(0, 200) << "): " << e.what();
        ++failures;
        reused = std::make_unique<RawConn>(socket_path(), 5000);
        session = raw_open_session_ok(*reused, partition);
        continue;
      }
      if (f.request_id != h.request_id || f.opcode != h.opcode || !f.is_response() ||
          !status_is_known(f.status)) {
        ADD_FAILURE() << "frame " << i << ": bad response to opcode 0x" << std::hex << h.opcode;
        ++failures;
      }
    } else if (kind < 60) {
      // Random bytes on a fresh connection.
      ++counts[1];
      RawConn c(socket_path(), 5000);
      Bytes junk = random_bytes(1 + pick(200));
      if (!c.send_bytes(junk)) continue;  // closed on us already: fine
      c.shutdown_write();
      if (!drain_until_closed(c, 1)) {
        ADD_FAILURE() << "frame " << i << ": random bytes " << to_hex(junk);
        ++failures;
      }
    } else if (kind < 75) {
      // A header broken in one field: one error response, then closed.
      ++counts[2];
      WireHeader h = random_header(0);
      switch (pick(5)) {
        case 0:
          h.magic = static_cast<uint32_t>(rng_()) | 1u;
          if (h.magic == kWireMagic) h.magic ^= 2;
          break;
        case 1:
          h.reserved1 = static_cast<uint32_t>(rng_()) | 0x100u;
          break;
        case 2:
          h.reserved2 = static_cast<uint32_t>(rng_()) | 0x10000u;
          break;
        case 3:
          h.flags = static_cast<uint16_t>(h.flags | (4u << pick(14)));
          break;
        default:
          h.revision = static_cast<uint16_t>(2 + pick(0xfff0));
      }
      if (pick(3) == 0) h.body_length = kWireMaxBody + 1 + static_cast<uint32_t>(pick(1u << 30));
      RawConn c(socket_path(), 5000);
      if (!c.send_bytes(build_frame(h))) continue;
      auto f = c.read_frame();
      const bool good = f && f->is_response() &&
                        (f->st() == Status::kMalformedFrame || f->st() == Status::kFrameTooLarge ||
                         f->st() == Status::kUnsupportedRevision) &&
                        c.wait_closed();
      if (!good) {
        ADD_FAILURE() << "frame " << i
                      << ": broken header not answered and closed: " << to_hex(build_frame(h));
        ++failures;
      }
    } else if (kind < 88) {
      // Truncated: a header promising more body than is sent, or half a
      // header; then the client goes away. No response is due.
      ++counts[3];
      RawConn c(socket_path(), 5000);
      WireHeader h = random_header(0);
      const uint32_t promised = 1 + static_cast<uint32_t>(pick(5000));
      h.body_length = promised;
      Bytes frame = build_frame(h, random_bytes(promised));
      frame.resize(pick(2) == 0 ? 1 + pick(39) : 40 + pick(promised));
      if (!c.send_bytes(frame)) continue;
      c.shutdown_write();
      if (!drain_until_closed(c, 0)) {
        ADD_FAILURE() << "frame " << i << ": truncated frame of " << frame.size() << " bytes";
        ++failures;
      }
    } else {
      // Bit flips in a valid request, on a fresh connection.
      ++counts[4];
      WireHeader h;
      h.opcode = op(Opcode::kSessionOpen);
      h.request_id = rng_();
      Bytes frame = build_frame(
          h, cbor::encode(cbor::Value::map().set(uint64_t{1}, cbor::Value::uint(partition))));
      for (uint64_t flips = 1 + pick(4); flips > 0; --flips) {
        frame[pick(frame.size())] ^= static_cast<uint8_t>(1u << pick(8));
      }
      RawConn c(socket_path(), 5000);
      if (!c.send_bytes(frame)) continue;
      c.shutdown_write();
      if (!drain_until_closed(c, 2)) {
        ADD_FAILURE() << "frame " << i << ": bit-flipped frame " << to_hex(frame);
        ++failures;
      }
    }
    if (i % 1000 == 999) {
      ASSERT_TRUE(daemon().running()) << "ihsmd died after frame " << i;
      ASSERT_EQ(witness.call(Opcode::kSessionInfo, witness_session).st(), Status::kOk)
          << "after frame " << i;
    }
  }
  std::printf("kinds: %d reused, %d random, %d bad header, %d truncated, %d bit flips\n", counts[0],
              counts[1], counts[2], counts[3], counts[4]);
  ASSERT_EQ(failures, 0);

  ASSERT_TRUE(daemon().running());
  RawConn fresh(socket_path());
  const WireFrame info = fresh.call(Opcode::kGetDeviceInfo);
  EXPECT_EQ(info.st(), Status::kOk);
  EXPECT_TRUE(info.is_response());
  // The bystander's session and login survived.
  const WireFrame si = witness.call(Opcode::kSessionInfo, witness_session);
  ASSERT_EQ(si.st(), Status::kOk);
  EXPECT_EQ(si.field(protocol::kRole).as_uint(), 1u);
  EXPECT_EQ(witness
                .call(Opcode::kGenerateRandom, witness_session,
                      cbor::Value::map().set(uint64_t{protocol::kLength}, cbor::Value::uint(16)))
                .st(),
            Status::kOk);
  // And the long-lived connection is still in sync.
  EXPECT_EQ(reused->call(Opcode::kGetDeviceInfo).st(), Status::kOk);
}

}  // namespace
}  // namespace ihsm::test
