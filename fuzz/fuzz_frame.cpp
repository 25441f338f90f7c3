// fuzz_frame: the two parsers that see untrusted bytes first.
//
// The first 40 bytes go to protocol::decode_header, the rest to
// cbor::decode (an input shorter than a header is all CBOR). Properties
// checked beyond "no crash, no sanitizer report":
//   - decode_header returns only kOk or one of the three header statuses,
//     and a header it accepts re-encodes to exactly the input bytes;
//   - whatever cbor::decode accepts re-encodes to bytes that decode again
//     and re-encode to the same bytes (encode is a fixed point after one
//     round), and typed MapReader reads of it never misbehave.
#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>
#include <string>

#include "common/cbor.h"
#include "protocol/fields.h"
#include "protocol/frame.h"

using namespace ihsm;

namespace {

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "fuzz_frame: property violated: %s\n", what);
  std::abort();
}

void check_header(std::span<const uint8_t, protocol::kHeaderSize> in) {
  protocol::FrameHeader h;
  const Status s = protocol::decode_header(in, h);
  switch (s) {
    case Status::kOk: {
      if (h.revision != protocol::kRevision) fail("accepted an unknown revision");
      if (h.body_length > protocol::kMaxBody) fail("accepted an oversized body length");
      if ((h.flags & ~protocol::frame_flag::kAll) != 0) fail("accepted unknown flag bits");
      std::array<uint8_t, protocol::kHeaderSize> out{};
      protocol::encode_header(h, out);
      if (std::memcmp(out.data(), in.data(), out.size()) != 0) {
        fail("an accepted header does not re-encode to its input");
      }
      break;
    }
    case Status::kMalformedFrame:
    case Status::kFrameTooLarge:
    case Status::kUnsupportedRevision:
      break;
    default:
      fail("decode_header returned a status outside its contract");
  }
}

// Typed reads of every field number the protocol defines (and some spare
// ones): each must return a status, never touch a value of the wrong type.
void read_fields(const cbor::Value& v) {
  const cbor::MapReader r(v);
  for (uint64_t key = 0; key < 128; ++key) {
    uint64_t u = 0;
    bool b = false;
    Bytes bytes;
    std::string text;
    (void)r.get_uint(key, u, UINT32_MAX);
    (void)r.get_bool(key, b);
    (void)r.get_bytes(key, bytes, 64);
    (void)r.get_text(key, text, 64);
  }
}

void check_cbor(std::span<const uint8_t> in) {
  cbor::Value v;
  if (!ok(cbor::decode(in, v))) return;
  read_fields(v);
  const Bytes once = cbor::encode(v);
  cbor::Value again;
  if (!ok(cbor::decode(once, again))) fail("encode(decode(x)) does not decode");
  const Bytes twice = cbor::encode(again);
  if (once != twice) fail("encode(decode(encode(decode(x)))) != encode(decode(x))");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::span<const uint8_t> in(data, size);
  if (in.size() >= protocol::kHeaderSize) {
    check_header(in.first<protocol::kHeaderSize>());
    in = in.subspan(protocol::kHeaderSize);
  }
  check_cbor(in);
  return 0;
}
