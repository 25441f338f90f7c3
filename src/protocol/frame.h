// The frame: a fixed 40-byte big-endian header followed by a CBOR body.
//
//   off size field
//    0   4   magic "IHSM"
//    4   2   protocol revision
//    6   2   opcode
//    8   2   flags (bit 0 response, bit 1 FIPS-approved service)
//   10   2   status (responses; 0 in requests)
//   12   4   reserved, 0
//   16   8   session id (0: none)
//   24   8   request id (echoed in the response)
//   32   4   body length (<= kMaxBody)
//   36   4   reserved, 0
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "ihsm/status.h"
#include "ihsm/types.h"

namespace ihsm::protocol {

constexpr uint32_t kMagic = 0x4948534D;  // "IHSM"
constexpr uint16_t kRevision = 1;
constexpr size_t kHeaderSize = 40;
constexpr size_t kMaxBody = 1024 * 1024;

namespace frame_flag {
constexpr uint16_t kResponse = 1u << 0;
constexpr uint16_t kApproved = 1u << 1;  // the service used is FIPS-approved
constexpr uint16_t kAll = kResponse | kApproved;
}  // namespace frame_flag

struct FrameHeader {
  uint16_t revision = kRevision;
  uint16_t opcode = 0;
  uint16_t flags = 0;
  uint16_t status = 0;
  uint64_t session = 0;
  uint64_t request_id = 0;
  uint32_t body_length = 0;
};

struct Frame {
  FrameHeader header;
  Bytes body;
};

void encode_header(const FrameHeader& h, std::span<uint8_t, kHeaderSize> out);
// Checks magic, reserved fields, flags, revision and the body limit.
// The header is decoded even when the revision is unsupported, so the
// reply can echo the request id.
Status decode_header(std::span<const uint8_t, kHeaderSize> in, FrameHeader& out);

}  // namespace ihsm::protocol
