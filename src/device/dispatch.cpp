#include "device/dispatch.h"

#include <array>
#include <shared_mutex>

#include "device/commands/commands.h"
#include "device/fips/state.h"
#include "device/gate.h"

namespace ihsm::device {
namespace {

struct HandlerEntry {
  protocol::Opcode opcode;
  Handler handler;
};

// The one opcode -> handler table, generated from the opcode list.
constexpr std::array kHandlers = {
#define IHSM_HANDLER_ROW(name, code, access, usage) \
  HandlerEntry{protocol::Opcode::k##name, &commands::name},
    IHSM_OPCODE_LIST(IHSM_HANDLER_ROW)
#undef IHSM_HANDLER_ROW
};

Handler find_handler(protocol::Opcode op) {
  for (const auto& e : kHandlers) {
    if (e.opcode == op) return e.handler;
  }
  return nullptr;
}

bool carries_envelope(const cbor::MapReader& in) {
  return in.has(protocol::kPinEnvelope) || in.has(protocol::kUserPinEnvelope) ||
         in.has(protocol::kNewPinEnvelope);
}

// Only these fields may leave the device with an error status, so a
// handler that failed half-way cannot leak partial results.
cbor::Value error_body(const cbor::Value& body) {
  auto out = cbor::Value::map();
  for (const uint64_t field :
       {protocol::kMessage, protocol::kRetryAfterMs, protocol::kRetriesLeft}) {
    if (const cbor::Value* v = body.find(field)) out.set(field, *v);
  }
  return out;
}

}  // namespace

DispatchResult error_response(const protocol::FrameHeader& request, Status status,
                              std::string_view message) {
  DispatchResult r;
  r.header = request;
  r.header.revision = protocol::kRevision;
  r.header.flags = protocol::frame_flag::kResponse;
  r.header.status = static_cast<uint16_t>(status);
  auto body = cbor::Value::map();
  if (!message.empty()) body.set(protocol::kMessage, cbor::Value::text(message));
  r.body = cbor::encode(body);
  return r;
}

DispatchResult dispatch(Device& device, ConnectionState& connection,
                        const protocol::FrameHeader& header, std::span<const uint8_t> body) {
  const protocol::OpcodeInfo* op = protocol::find_opcode(header.opcode);
  if (op == nullptr) return error_response(header, Status::kUnknownOpcode);
  cbor::Value request = cbor::Value::map();
  if (!body.empty()) {
    const Status s = cbor::decode(body, request);
    if (!ok(s)) return error_response(header, s);
  }
  const cbor::MapReader in(request);

  CommandContext ctx{device, connection, *op, header, nullptr, nullptr, nullptr};
  Reply reply;
  Status status = Status::kOk;
  {
    // Zeroization waits for every command past the gate; Zeroize itself
    // takes that lock exclusively inside.
    std::shared_lock<std::shared_mutex> running;
    if (op->opcode != protocol::Opcode::kZeroize) {
      running = std::shared_lock(device.command_mutex());
    }
    status = gate(ctx, in);
    if (ok(status)) status = find_handler(op->opcode)(ctx, in, reply);
    ctx.session.reset();
    ctx.partition.reset();
    ctx.key.reset();
  }
  // A refusal in a latched state says why.
  if (reply.body.find(protocol::kMessage) == nullptr) {
    const fips::DeviceState& state = fips::device_state();
    if (status == Status::kDeviceError || status == Status::kSelfTestFailed) {
      reply.body.set(
          protocol::kMessage,
          cbor::Value::text("self-test " + state.failed_test() +
                            " failed: the device is in its error state until it restarts"));
    } else if (status == Status::kZeroized) {
      reply.body.set(protocol::kMessage,
                     cbor::Value::text("the device is zeroized (" + state.reason() +
                                       "): it serves nothing until `ihsmd --provision`"));
    } else if (status == Status::kTamperLocked) {
      reply.body.set(protocol::kMessage,
                     cbor::Value::text("tamper event (" + state.reason() +
                                       "): the device is locked until it restarts"));
    }
  }
  // A challenge answers exactly one envelope-carrying command, whatever
  // became of it: a recorded envelope can never be replayed.
  if (carries_envelope(in)) connection.challenge.reset();

  DispatchResult r;
  r.header = header;
  r.header.flags = protocol::frame_flag::kResponse;
  r.header.status = static_cast<uint16_t>(status);
  if (ok(status)) {
    if (reply.approved) r.header.flags |= protocol::frame_flag::kApproved;
    r.body = cbor::encode(reply.body);
  } else {
    r.body = cbor::encode(error_body(reply.body));
  }
  if (r.body.size() > protocol::kMaxBody) {
    return error_response(header, Status::kInternalError, "response too large");
  }
  return r;
}

}  // namespace ihsm::device
