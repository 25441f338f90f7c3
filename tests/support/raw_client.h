// A client that speaks the wire protocol with its own hands: headers are
// packed and parsed here byte by byte (not with protocol::encode_header),
// so the tests also check the daemon's framing against docs/protocol.md.
#pragma once

#include <errno.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <optional>
#include <stdexcept>
#include <string>

#include "common/cbor.h"
#include "ihsm/status.h"
#include "protocol/fields.h"
#include "protocol/opcodes.h"
#include "support/envelope.h"
#include "support/util.h"

namespace ihsm::test {

constexpr uint32_t kWireMagic = 0x4948534D;
constexpr size_t kWireHeader = 40;
constexpr uint32_t kWireMaxBody = 1024 * 1024;
constexpr uint16_t kFlagResponse = 1;
constexpr uint16_t kFlagApproved = 2;

inline uint16_t op(protocol::Opcode o) { return static_cast<uint16_t>(o); }

// Every header field, including the ones a well-behaved client keeps 0.
struct WireHeader {
  uint32_t magic = kWireMagic;
  uint16_t revision = 1;
  uint16_t opcode = 0;
  uint16_t flags = 0;
  uint16_t status = 0;
  uint32_t reserved1 = 0;
  uint64_t session = 0;
  uint64_t request_id = 0;
  std::optional<uint32_t> body_length;  // default: the body's size
  uint32_t reserved2 = 0;
};

inline void put_be(Bytes& out, uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

inline uint64_t get_be(const uint8_t* p, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v = (v << 8) | p[i];
  return v;
}

inline Bytes build_frame(const WireHeader& h, const Bytes& body = {}) {
  Bytes out;
  put_be(out, h.magic, 4);
  put_be(out, h.revision, 2);
  put_be(out, h.opcode, 2);
  put_be(out, h.flags, 2);
  put_be(out, h.status, 2);
  put_be(out, h.reserved1, 4);
  put_be(out, h.session, 8);
  put_be(out, h.request_id, 8);
  put_be(out, h.body_length.value_or(static_cast<uint32_t>(body.size())), 4);
  put_be(out, h.reserved2, 4);
  out.insert(out.end(), body.begin(), body.end());
  return out;
}

struct WireFrame {
  uint32_t magic = 0;
  uint16_t revision = 0, opcode = 0, flags = 0, status = 0;
  uint32_t reserved1 = 0, reserved2 = 0;
  uint64_t session = 0, request_id = 0;
  uint32_t body_length = 0;
  Bytes body;

  Status st() const { return static_cast<Status>(status); }
  std::string status_str() const {
    return std::string(status_name(st())) + " (0x" +
           to_hex(Bytes{uint8_t(status >> 8), uint8_t(status & 0xff)}) + ")";
  }
  bool is_response() const { return (flags & kFlagResponse) != 0; }
  bool approved() const { return (flags & kFlagApproved) != 0; }
  // The decoded body; throws when it is not CBOR.
  cbor::Value value() const {
    cbor::Value v;
    if (!ok(cbor::decode(body, v))) throw std::runtime_error("response body is not valid CBOR");
    return v;
  }
  // A field of the decoded body (decoded once; references stay valid for
  // the frame's lifetime).
  const cbor::Value& field(uint64_t key) const {
    if (!decoded_) decoded_ = value();
    const cbor::Value* f = decoded_->find(key);
    if (f == nullptr) throw std::runtime_error("response lacks field " + std::to_string(key));
    return *f;
  }
  bool has(uint64_t key) const { return value().find(key) != nullptr; }

 private:
  mutable std::optional<cbor::Value> decoded_;
};

class RawConn {
 public:
  explicit RawConn(const std::string& path, int timeout_ms = 15000) {
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) throw std::runtime_error("socket failed");
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.size() >= sizeof(addr.sun_path)) throw std::runtime_error("socket path too long");
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      const int e = errno;
      ::close(fd_);
      fd_ = -1;
      throw std::runtime_error("connect " + path + ": " + std::strerror(e));
    }
    timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  }
  ~RawConn() {
    if (fd_ >= 0) ::close(fd_);
  }
  RawConn(const RawConn&) = delete;
  RawConn& operator=(const RawConn&) = delete;

  int fd() const { return fd_; }
  // True once a read saw the end of the stream (or a reset).
  bool saw_eof() const { return eof_; }
  // True when the last read_frame() found the end of the stream exactly at
  // a frame boundary (not in the middle of a frame, not a timeout).
  bool clean_eof() const { return clean_eof_; }
  // No more requests from this side; the daemon sees end of stream.
  void shutdown_write() { ::shutdown(fd_, SHUT_WR); }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  // False when the peer is gone (EPIPE/ECONNRESET) or the write timed out.
  bool send_bytes(const Bytes& data) {
    size_t done = 0;
    while (done < data.size()) {
      const ssize_t w = ::send(fd_, data.data() + done, data.size() - done, MSG_NOSIGNAL);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) return false;
      done += static_cast<size_t>(w);
    }
    return true;
  }

  // One response frame; nullopt on end of stream, error or timeout.
  std::optional<WireFrame> read_frame() {
    uint8_t h[kWireHeader];
    clean_eof_ = false;
    size_t got = 0;
    if (!read_full(h, sizeof(h), &got)) {
      clean_eof_ = eof_ && got == 0;
      return std::nullopt;
    }
    WireFrame f;
    f.magic = static_cast<uint32_t>(get_be(h, 4));
    f.revision = static_cast<uint16_t>(get_be(h + 4, 2));
    f.opcode = static_cast<uint16_t>(get_be(h + 6, 2));
    f.flags = static_cast<uint16_t>(get_be(h + 8, 2));
    f.status = static_cast<uint16_t>(get_be(h + 10, 2));
    f.reserved1 = static_cast<uint32_t>(get_be(h + 12, 4));
    f.session = get_be(h + 16, 8);
    f.request_id = get_be(h + 24, 8);
    f.body_length = static_cast<uint32_t>(get_be(h + 32, 4));
    f.reserved2 = static_cast<uint32_t>(get_be(h + 36, 4));
    if (f.body_length > kWireMaxBody) throw std::runtime_error("response body over 1 MiB");
    f.body.resize(f.body_length);
    if (!read_full(f.body.data(), f.body.size())) return std::nullopt;
    return f;
  }

  // True when the peer closes the stream (EOF or reset) before sending
  // anything more, within the receive timeout.
  bool wait_closed() {
    uint8_t b;
    for (;;) {
      const ssize_t r = ::recv(fd_, &b, 1, 0);
      if (r == 0) return true;
      if (r < 0 && errno == EINTR) continue;
      if (r < 0 && errno == ECONNRESET) return true;
      return false;  // data, or a timeout
    }
  }

  // One request/response round trip with a well-formed header. Throws if
  // no response arrives.
  WireFrame call(uint16_t opcode, uint64_t session = 0,
                 const cbor::Value& body = cbor::Value::map()) {
    WireHeader h;
    h.opcode = opcode;
    h.session = session;
    h.request_id = next_request_id_++;
    return call_raw(h, cbor::encode(body));
  }
  WireFrame call(protocol::Opcode opcode, uint64_t session = 0,
                 const cbor::Value& body = cbor::Value::map()) {
    return call(op(opcode), session, body);
  }
  WireFrame call_raw(const WireHeader& h, const Bytes& body) {
    if (!send_bytes(build_frame(h, body))) throw std::runtime_error("send failed");
    auto f = read_frame();
    if (!f) throw std::runtime_error("no response (connection closed or timed out)");
    return *f;
  }

 private:
  bool read_full(uint8_t* p, size_t n, size_t* got = nullptr) {
    while (n > 0) {
      const ssize_t r = ::recv(fd_, p, n, 0);
      if (r == 0) {
        eof_ = true;
        return false;
      }
      if (r < 0) {
        if (errno == EINTR) continue;
        if (errno == ECONNRESET) eof_ = true;
        return false;
      }
      p += r;
      n -= static_cast<size_t>(r);
      if (got != nullptr) *got += static_cast<size_t>(r);
    }
    return true;
  }

  int fd_ = -1;
  bool eof_ = false;
  bool clean_eof_ = false;
  uint64_t next_request_id_ = 1;
};

// ---- protocol steps over a RawConn, for tests that need a partition or
// a logged-in session without libihsm.

struct RawDeviceInfo {
  Bytes identity_spki;
  Bytes transport_spki;
  Bytes transport_sig;
  bool is_owner = false;
  uint64_t count = 0;
};

inline RawDeviceInfo raw_device_info(RawConn& c) {
  const WireFrame f = c.call(protocol::Opcode::kGetDeviceInfo);
  if (f.st() != Status::kOk) throw std::runtime_error("GetDeviceInfo: " + f.status_str());
  const cbor::Value v = f.value();
  RawDeviceInfo info;
  info.identity_spki = v.find(protocol::kIdentityKey)->as_bytes();
  info.transport_spki = v.find(protocol::kPinTransportKey)->as_bytes();
  info.transport_sig = v.find(protocol::kPinTransportSig)->as_bytes();
  info.is_owner = v.find(protocol::kIsOwner)->as_bool();
  info.count = v.find(protocol::kCount)->as_uint();
  return info;
}

inline Bytes raw_challenge(RawConn& c) {
  const WireFrame f = c.call(protocol::Opcode::kGetChallenge);
  if (f.st() != Status::kOk) throw std::runtime_error("GetChallenge: " + f.status_str());
  return f.field(protocol::kChallenge).as_bytes();
}

// PartitionCreate with envelopes made by the test. Returns the response.
inline WireFrame raw_create_partition(RawConn& c, const std::string& name,
                                      std::string_view officer_pin,
                                      std::optional<std::string_view> user_pin = std::nullopt,
                                      cbor::Value extra = cbor::Value::map()) {
  const Bytes transport = raw_device_info(c).transport_spki;
  const Bytes challenge = raw_challenge(c);
  const uint16_t opc = op(protocol::Opcode::kPartitionCreate);
  cbor::Value body = std::move(extra);
  body.set(uint64_t{protocol::kName}, cbor::Value::text(name));
  body.set(uint64_t{protocol::kPinEnvelope},
           seal_pin(transport, challenge, opc, protocol::kPinEnvelope, 0, 2, officer_pin));
  if (user_pin) {
    body.set(uint64_t{protocol::kUserPinEnvelope},
             seal_pin(transport, challenge, opc, protocol::kUserPinEnvelope, 0, 1, *user_pin));
  }
  return c.call(opc, 0, body);
}

inline uint32_t raw_create_partition_ok(RawConn& c, const std::string& name,
                                        std::string_view officer_pin,
                                        std::optional<std::string_view> user_pin = std::nullopt) {
  const WireFrame f = raw_create_partition(c, name, officer_pin, user_pin);
  if (f.st() != Status::kOk) throw std::runtime_error("PartitionCreate: " + f.status_str());
  return static_cast<uint32_t>(f.field(protocol::kPartition).as_uint());
}

inline WireFrame raw_open_session(RawConn& c, uint32_t partition) {
  return c.call(
      protocol::Opcode::kSessionOpen, 0,
      cbor::Value::map().set(uint64_t{protocol::kPartition}, cbor::Value::uint(partition)));
}

inline uint64_t raw_open_session_ok(RawConn& c, uint32_t partition) {
  const WireFrame f = raw_open_session(c, partition);
  if (f.st() != Status::kOk) throw std::runtime_error("SessionOpen: " + f.status_str());
  return f.field(protocol::kSession).as_uint();
}

// The Login body for `pin` under `challenge` (no I/O).
inline cbor::Value raw_login_body(const Bytes& transport, const Bytes& challenge,
                                  uint32_t partition, uint32_t role, std::string_view pin) {
  auto body = cbor::Value::map();
  body.set(uint64_t{protocol::kRole}, cbor::Value::uint(role));
  body.set(uint64_t{protocol::kPinEnvelope},
           seal_pin(transport, challenge, op(protocol::Opcode::kLogin), protocol::kPinEnvelope,
                    partition, role, pin));
  return body;
}

inline WireFrame raw_login(RawConn& c, uint64_t session, uint32_t partition, uint32_t role,
                           std::string_view pin) {
  const Bytes transport = raw_device_info(c).transport_spki;
  const Bytes challenge = raw_challenge(c);
  return c.call(protocol::Opcode::kLogin, session,
                raw_login_body(transport, challenge, partition, role, pin));
}

}  // namespace ihsm::test
