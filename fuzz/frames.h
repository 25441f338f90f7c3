// Shared by the fuzz harnesses and the seed-corpus generator: how a request
// frame is laid out on the wire, and the input format of fuzz_dispatch.
//
// fuzz_dispatch input: one byte of connection flags, then frames as a client
// would write them to the socket (40-byte header, then `body length` bytes).
//   flags bit 0: the peer is the device owner (uid 0); else uid/gid 4242.
// The harness maps small numbers to the unguessable values of this run:
//   header session 1..3    -> the harness's user / officer / public session,
//   header session 4..     -> sessions opened by SessionOpen in this input;
//   body fields `key` and `target` 1..
//                          -> handles made in this input: 1 public EC P-256,
//                             2 private EC P-256, 3 AES-256 (made by the
//                             harness), then every handle a response returned.
#pragma once

#include <array>
#include <cstdint>

#include "common/cbor.h"
#include "protocol/frame.h"
#include "protocol/opcodes.h"

namespace ihsm::fuzz {

constexpr uint8_t kFlagOwner = 1u << 0;

constexpr uint64_t kSlotUser = 1;
constexpr uint64_t kSlotOfficer = 2;
constexpr uint64_t kSlotPublic = 3;

constexpr uint64_t kKeyPublic = 1;
constexpr uint64_t kKeyPrivate = 2;
constexpr uint64_t kKeyAes = 3;

inline void append_frame(Bytes& out, protocol::Opcode op, uint64_t session, const cbor::Value& body,
                         uint64_t request_id = 1) {
  const Bytes encoded = cbor::encode(body);
  protocol::FrameHeader h;
  h.opcode = static_cast<uint16_t>(op);
  h.session = session;
  h.request_id = request_id;
  h.body_length = static_cast<uint32_t>(encoded.size());
  std::array<uint8_t, protocol::kHeaderSize> head{};
  protocol::encode_header(h, head);
  out.insert(out.end(), head.begin(), head.end());
  out.insert(out.end(), encoded.begin(), encoded.end());
}

}  // namespace ihsm::fuzz
