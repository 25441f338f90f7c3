#include "host/connection.h"

#include <unistd.h>

#include <utility>

#include "protocol/fields.h"
#include "protocol/frame.h"

namespace ihsm {
namespace {

// Header statuses after which the device closes the connection.
bool closes_connection(Status s) {
  return s == Status::kMalformedFrame || s == Status::kFrameTooLarge ||
         s == Status::kUnsupportedRevision;
}

constexpr size_t kMaxMessage = 4096;

ErrorDetail parse_error_body(const Bytes& body) {
  ErrorDetail detail;
  if (body.empty()) return detail;
  cbor::Value v;
  if (!ok(cbor::decode(body, v)) || !v.is(cbor::Value::Type::kMap)) return detail;
  cbor::MapReader r(v);
  std::string message;
  if (ok(r.opt_text(protocol::kMessage, message, kMaxMessage))) detail.message = std::move(message);
  std::optional<uint64_t> n;
  if (ok(r.opt_uint(protocol::kRetryAfterMs, n))) detail.retry_after_ms = n;
  n.reset();
  if (ok(r.opt_uint(protocol::kRetriesLeft, n))) detail.retries_left = n;
  return detail;
}

}  // namespace

ErrorDetail bad_response(std::string what) {
  ErrorDetail d;
  d.message = "malformed response from the device: " + std::move(what);
  return d;
}

Status check_field(Status s, uint64_t field, ErrorDetail& detail) {
  if (ok(s)) return s;
  std::string why;
  switch (s) {
    case Status::kMissingField:
      why = "missing";
      break;
    case Status::kFieldTooLarge:
      why = "too large";
      break;
    case Status::kInvalidArgument:
      why = "out of range";
      break;
    default:
      why = "wrong type";
      break;
  }
  detail = bad_response("field " + std::to_string(field) + " " + why);
  return Status::kTransportError;
}

Connection::Connection(std::unique_ptr<transport::FrameChannel> channel)
    : channel_(std::move(channel)) {}

Connection::~Connection() = default;

Status Connection::open_queue() {
  if (queue_) return Status::kOk;
  auto r = call(protocol::Opcode::kOpenQueue, 0, cbor::Value::map());
  const int fd = channel_->take_received_fd();
  if (!r) {
    if (fd >= 0) ::close(fd);
    return r.status();
  }
  if (fd < 0) return Status::kTransportError;
  return transport::QueueClient::attach(fd, queue_);  // takes the fd either way
}

// Sends `request` and receives its response: on the queue, or on the
// socket when there is no queue or every slot is in flight.
Status Connection::exchange(const protocol::FrameHeader& request, const Bytes& body,
                            protocol::Frame& response) {
  if (queue_) {
    const Status s =
        queue_->call(request, body, response, [this] { return !channel_->peer_closed(); });
    if (s != Status::kBusy) return s;
  }
  std::lock_guard lock(mutex_);
  if (broken_) return Status::kTransportError;
  if (!ok(channel_->send(request, body))) return Status::kTransportError;
  return channel_->receive(response);
}

Result<cbor::Value> Connection::call(protocol::Opcode opcode, SessionId session,
                                     const cbor::Value& body) {
  const Bytes encoded = cbor::encode(body);
  if (encoded.size() > protocol::kMaxBody) return Status::kFrameTooLarge;

  if (broken_ || !channel_) {
    ErrorDetail d;
    d.message = "connection is closed";
    return {Status::kTransportError, std::move(d)};
  }
  protocol::FrameHeader request;
  request.opcode = static_cast<uint16_t>(opcode);
  request.session = session;
  request.request_id = next_request_id_++;
  request.body_length = static_cast<uint32_t>(encoded.size());

  protocol::Frame response;
  const Status s = exchange(request, encoded, response);
  if (!ok(s)) {
    broken_ = true;
    ErrorDetail d;
    d.message = s == Status::kTransportError
                    ? "connection to the device lost"
                    : "device sent an invalid frame header (" + std::string(status_name(s)) + ")";
    return {Status::kTransportError, std::move(d)};
  }
  const protocol::FrameHeader& h = response.header;
  if ((h.flags & protocol::frame_flag::kResponse) == 0 || h.opcode != request.opcode ||
      h.request_id != request.request_id) {
    broken_ = true;
    return {Status::kTransportError, bad_response("response does not match the request")};
  }
  const bool approved = (h.flags & protocol::frame_flag::kApproved) != 0;
  last_approved_.store(approved);
  if (session != 0) {
    std::lock_guard alock(approved_mutex_);
    session_approved_[session] = approved;
  }

  if (!status_is_known(h.status)) {
    return {Status::kTransportError,
            bad_response("unknown status code " + std::to_string(h.status))};
  }
  const auto status = static_cast<Status>(h.status);
  if (!ok(status)) {
    if (closes_connection(status)) broken_ = true;
    return {status, parse_error_body(response.body)};
  }

  // An empty body stands for the empty map.
  if (response.body.empty()) return cbor::Value::map();
  cbor::Value value;
  if (!ok(cbor::decode(response.body, value))) {
    return {Status::kTransportError, bad_response("body is not valid CBOR")};
  }
  if (!value.is(cbor::Value::Type::kMap)) {
    return {Status::kTransportError, bad_response("body is not a map")};
  }
  return value;
}

bool Connection::last_approved(SessionId session) const {
  std::lock_guard lock(approved_mutex_);
  const auto it = session_approved_.find(session);
  return it != session_approved_.end() && it->second;
}

void Connection::forget_session(SessionId session) {
  std::lock_guard lock(approved_mutex_);
  session_approved_.erase(session);
}

Result<std::shared_ptr<const PinTransportKey>> Connection::pin_transport_key() {
  std::lock_guard lock(key_mutex_);
  if (transport_key_) return transport_key_;

  auto r = call(protocol::Opcode::kGetDeviceInfo, 0, cbor::Value::map());
  if (!r) return {r.status(), r.detail()};
  cbor::MapReader m(r.value());
  constexpr size_t kMaxKey = 1024;
  Bytes identity, transport, signature;
  ErrorDetail d;
  if (!ok(check_field(m.get_bytes(protocol::kIdentityKey, identity, kMaxKey),
                      protocol::kIdentityKey, d)) ||
      !ok(check_field(m.get_bytes(protocol::kPinTransportKey, transport, kMaxKey),
                      protocol::kPinTransportKey, d)) ||
      !ok(check_field(m.get_bytes(protocol::kPinTransportSig, signature, kMaxKey),
                      protocol::kPinTransportSig, d))) {
    return {Status::kTransportError, std::move(d)};
  }
  auto key = verify_pin_transport_key(identity, transport, signature);
  if (!key) return {key.status(), key.detail()};
  transport_key_ = key.value();
  return transport_key_;
}

}  // namespace ihsm
