#include "protocol/frame.h"

namespace ihsm::protocol {
namespace {

template <typename T>
void put_be(uint8_t* p, T v) {
  for (size_t i = 0; i < sizeof(T); ++i) {
    p[i] = static_cast<uint8_t>(v >> (8 * (sizeof(T) - 1 - i)));
  }
}

template <typename T>
T get_be(const uint8_t* p) {
  T v = 0;
  for (size_t i = 0; i < sizeof(T); ++i) v = static_cast<T>((v << 8) | p[i]);
  return v;
}

}  // namespace

void encode_header(const FrameHeader& h, std::span<uint8_t, kHeaderSize> out) {
  uint8_t* p = out.data();
  put_be<uint32_t>(p + 0, kMagic);
  put_be<uint16_t>(p + 4, h.revision);
  put_be<uint16_t>(p + 6, h.opcode);
  put_be<uint16_t>(p + 8, h.flags);
  put_be<uint16_t>(p + 10, h.status);
  put_be<uint32_t>(p + 12, 0);
  put_be<uint64_t>(p + 16, h.session);
  put_be<uint64_t>(p + 24, h.request_id);
  put_be<uint32_t>(p + 32, h.body_length);
  put_be<uint32_t>(p + 36, 0);
}

Status decode_header(std::span<const uint8_t, kHeaderSize> in, FrameHeader& out) {
  const uint8_t* p = in.data();
  if (get_be<uint32_t>(p) != kMagic) return Status::kMalformedFrame;
  out.revision = get_be<uint16_t>(p + 4);
  out.opcode = get_be<uint16_t>(p + 6);
  out.flags = get_be<uint16_t>(p + 8);
  out.status = get_be<uint16_t>(p + 10);
  out.session = get_be<uint64_t>(p + 16);
  out.request_id = get_be<uint64_t>(p + 24);
  out.body_length = get_be<uint32_t>(p + 32);
  if (get_be<uint32_t>(p + 12) != 0 || get_be<uint32_t>(p + 36) != 0)
    return Status::kMalformedFrame;
  if ((out.flags & ~frame_flag::kAll) != 0) return Status::kMalformedFrame;
  if (out.body_length > kMaxBody) return Status::kFrameTooLarge;
  if (out.revision != kRevision) return Status::kUnsupportedRevision;
  return Status::kOk;
}

}  // namespace ihsm::protocol
