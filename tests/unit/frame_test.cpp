// The frame header (src/protocol/frame.h) against the layout in
// docs/protocol.md, packed independently by support/raw_client.h.
#include "protocol/frame.h"

#include <gtest/gtest.h>

#include <array>

#include "support/raw_client.h"

namespace ihsm::protocol {
namespace {

using test::WireHeader;

std::array<uint8_t, kHeaderSize> header_bytes(const WireHeader& h) {
  const Bytes b = test::build_frame(h);
  std::array<uint8_t, kHeaderSize> out{};
  std::copy(b.begin(), b.begin() + kHeaderSize, out.begin());
  return out;
}

Status decode(const WireHeader& h, FrameHeader& out) {
  const auto bytes = header_bytes(h);
  return decode_header(bytes, out);
}

TEST(Frame, EncodeMatchesTheDocumentedLayout) {
  FrameHeader h;
  h.opcode = 0x0040;
  h.flags = frame_flag::kResponse | frame_flag::kApproved;
  h.status = 0x020A;
  h.session = 0x0102030405060708ull;
  h.request_id = 0x1112131415161718ull;
  h.body_length = 0x00010000;
  std::array<uint8_t, kHeaderSize> out{};
  encode_header(h, out);
  EXPECT_EQ(test::to_hex(out),
            "4948534d"          // magic
            "0001"              // revision
            "0040"              // opcode
            "0003"              // flags
            "020a"              // status
            "00000000"          // reserved
            "0102030405060708"  // session
            "1112131415161718"  // request id
            "00010000"          // body length
            "00000000");        // reserved
}

TEST(Frame, RoundTrip) {
  FrameHeader h;
  h.opcode = 0xBEEF;
  h.flags = frame_flag::kResponse;
  h.status = 0x0405;
  h.session = UINT64_MAX;
  h.request_id = 0x8000000000000001ull;
  h.body_length = static_cast<uint32_t>(kMaxBody);
  std::array<uint8_t, kHeaderSize> bytes{};
  encode_header(h, bytes);
  FrameHeader back;
  ASSERT_EQ(decode_header(bytes, back), Status::kOk);
  EXPECT_EQ(back.revision, kRevision);
  EXPECT_EQ(back.opcode, h.opcode);
  EXPECT_EQ(back.flags, h.flags);
  EXPECT_EQ(back.status, h.status);
  EXPECT_EQ(back.session, h.session);
  EXPECT_EQ(back.request_id, h.request_id);
  EXPECT_EQ(back.body_length, h.body_length);
}

TEST(Frame, DecodesAHandBuiltHeader) {
  WireHeader w;
  w.opcode = 0x0022;
  w.session = 77;
  w.request_id = 99;
  w.body_length = 5;
  FrameHeader h;
  ASSERT_EQ(decode(w, h), Status::kOk);
  EXPECT_EQ(h.opcode, 0x0022);
  EXPECT_EQ(h.session, 77u);
  EXPECT_EQ(h.request_id, 99u);
  EXPECT_EQ(h.body_length, 5u);
}

TEST(Frame, BadMagic) {
  for (uint32_t magic : {0u, 0x4948534Eu, 0x4D534849u, 0xFFFFFFFFu}) {
    WireHeader w;
    w.magic = magic;
    FrameHeader h;
    EXPECT_EQ(decode(w, h), Status::kMalformedFrame) << std::hex << magic;
  }
}

TEST(Frame, ReservedFieldsMustBeZero) {
  for (uint32_t bits : {1u, 0x80000000u, 0x00010000u}) {
    WireHeader a;
    a.reserved1 = bits;
    WireHeader b;
    b.reserved2 = bits;
    FrameHeader h;
    EXPECT_EQ(decode(a, h), Status::kMalformedFrame);
    EXPECT_EQ(decode(b, h), Status::kMalformedFrame);
  }
}

TEST(Frame, UnknownFlagsAreMalformed) {
  for (uint16_t flag = 4; flag != 0; flag = static_cast<uint16_t>(flag << 1)) {
    WireHeader w;
    w.flags = flag;
    FrameHeader h;
    EXPECT_EQ(decode(w, h), Status::kMalformedFrame) << "flag " << flag;
  }
  for (uint16_t flags : {0, 1, 2, 3}) {
    WireHeader w;
    w.flags = flags;
    FrameHeader h;
    EXPECT_EQ(decode(w, h), Status::kOk) << "flags " << flags;
  }
}

TEST(Frame, BodyLimit) {
  FrameHeader h;
  WireHeader w;
  w.body_length = static_cast<uint32_t>(kMaxBody);
  EXPECT_EQ(decode(w, h), Status::kOk);
  w.body_length = static_cast<uint32_t>(kMaxBody + 1);
  EXPECT_EQ(decode(w, h), Status::kFrameTooLarge);
  w.body_length = UINT32_MAX;
  EXPECT_EQ(decode(w, h), Status::kFrameTooLarge);
  EXPECT_EQ(kMaxBody, 1024u * 1024u);
}

TEST(Frame, WrongRevisionStillDecodesTheRequestId) {
  for (uint16_t rev : {0, 2, 0xFFFF}) {
    WireHeader w;
    w.revision = rev;
    w.request_id = 0xABCDEF;
    w.opcode = 1;
    FrameHeader h;
    EXPECT_EQ(decode(w, h), Status::kUnsupportedRevision) << rev;
    EXPECT_EQ(h.request_id, 0xABCDEFu);
    EXPECT_EQ(h.revision, rev);
    EXPECT_EQ(h.opcode, 1);
  }
}

}  // namespace
}  // namespace ihsm::protocol
