#include "device/dispatch.h"

#include <array>
#include <shared_mutex>
#include <string_view>

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

// ---- the audit log: which commands are security-relevant events ----

// One row per audited opcode: the event name, the name when the command
// was refused (empty: the same), and whether the record must be on disk
// before the response leaves (docs/security-policy.md, "Audit log"): for a
// change that happened, and for a failed login. Other refusals changed
// nothing and do not cost an fsync (anyone could make the device do them).
// Every outcome is recorded, success or refusal, with its status.
struct AuditedOpcode {
  protocol::Opcode opcode;
  std::string_view event;
  std::string_view refused_event;
  bool durable_if_done;
  bool durable_if_refused;
};

using protocol::Opcode;
constexpr AuditedOpcode kAudited[] = {
    {Opcode::kLogin, "login", "login-failed", false, true},
    {Opcode::kLogout, "logout", "", false, false},
    {Opcode::kInitUserPin, "pin-init", "", false, false},
    {Opcode::kSetPin, "pin-change", "", false, false},
    {Opcode::kUnlockUser, "pin-unlock", "", false, false},
    {Opcode::kPartitionCreate, "partition-create", "", false, false},
    {Opcode::kPartitionDelete, "partition-delete", "", true, false},
    {Opcode::kPartitionReset, "partition-reset", "", true, false},
    {Opcode::kPartitionUnlockOfficer, "partition-unlock", "", false, false},
    {Opcode::kPartitionBackup, "partition-backup", "", false, false},
    {Opcode::kPartitionRestore, "partition-restore", "", false, false},
    {Opcode::kFirmwareUpdate, "firmware-update", "", true, false},
    {Opcode::kSelfTest, "self-test", "", false, false},
    {Opcode::kGenerateKey, "key-create", "", false, false},
    {Opcode::kGenerateKeyPair, "key-create", "", false, false},
    {Opcode::kCreateObject, "key-create", "", false, false},
    {Opcode::kCopyObject, "key-create", "", false, false},
    {Opcode::kDeriveKey, "key-create", "", false, false},
    {Opcode::kUnwrapKey, "key-create", "", false, false},
    {Opcode::kLoadMaskedKey, "key-create", "", false, false},
    {Opcode::kSetKeyAttributes, "key-change", "", false, false},
    {Opcode::kDestroyKey, "key-destroy", "", false, false},
    {Opcode::kExportMaskedKey, "key-export", "", false, false},
    {Opcode::kWrapKey, "key-export", "", false, false},
    // Zeroize is recorded by Device::zeroize and tamper events by
    // Device::record_tamper (both durable, through Device::audit), before
    // the log and the keys they would name are gone.
};

// Scalar members of a request or reply worth a record; never a bytes
// field, so a PIN envelope, a key or a blob can never end up in the log.
constexpr uint64_t kAuditDetailFields[] = {
    protocol::kRole,          protocol::kKeyType,         protocol::kKeyBits,
    protocol::kCurve,         protocol::kMechanism,       protocol::kClass,
    protocol::kToken,         protocol::kLabel,           protocol::kName,
    protocol::kBoundUid,      protocol::kBoundGid,        protocol::kPublicHandle,
    protocol::kPrivateHandle, protocol::kTarget,          protocol::kPassed,
    protocol::kFailedTest,    protocol::kFirmwareVersion, protocol::kSecurityVersion,
    protocol::kRetriesLeft,   protocol::kCount,           protocol::kSkipped,
    protocol::kMessage,
};
constexpr size_t kMaxAuditText = 128;

const AuditedOpcode* audited(Opcode op) {
  for (const auto& a : kAudited) {
    if (a.opcode == op) return &a;
  }
  return nullptr;
}

// Text cut to kMaxAuditText bytes at a UTF-8 character boundary.
cbor::Value audit_scalar(const cbor::Value& v) {
  if (!v.is(cbor::Value::Type::kText) || v.as_text().size() <= kMaxAuditText) return v;
  std::string_view t = v.as_text();
  size_t n = kMaxAuditText;
  while (n > 0 && (static_cast<uint8_t>(t[n]) & 0xC0) == 0x80) --n;
  return cbor::Value::text(t.substr(0, n));
}

uint64_t uint_field(const cbor::Value& body, uint64_t field) {
  const cbor::Value* v = body.find(field);
  return v != nullptr && v->is(cbor::Value::Type::kUint) ? v->as_uint() : 0;
}

void audit_command(const CommandContext& ctx, const AuditedOpcode& a, const cbor::Value& request,
                   const Reply& reply, Status status) {
  AuditEvent e;
  const bool refused = !ok(status);
  e.event = std::string(refused && !a.refused_event.empty() ? a.refused_event : a.event);
  e.uid = ctx.connection.peer.uid;
  e.opcode = static_cast<uint16_t>(ctx.op.opcode);
  e.status = status;
  e.durable = refused ? a.durable_if_refused : a.durable_if_done;
  if (ctx.partition) {
    e.partition = ctx.partition->id;
  } else {
    const uint64_t p = uint_field(request, protocol::kPartition);
    e.partition =
        static_cast<PartitionId>(p != 0 ? p : uint_field(reply.body, protocol::kPartition));
  }
  // The object acted on: the one a command made, else the one it named
  // (a wrap names the exported key as its target).
  for (const uint64_t f : {protocol::kKey, protocol::kPrivateHandle}) {
    if (e.object == 0) e.object = uint_field(reply.body, f);
  }
  for (const uint64_t f : {protocol::kTarget, protocol::kKey}) {
    if (e.object == 0) e.object = uint_field(request, f);
  }
  for (const uint64_t f : kAuditDetailFields) {
    const cbor::Value* v = reply.body.find(f);
    if (v == nullptr) v = request.find(f);
    if (v != nullptr && !v->is(cbor::Value::Type::kBytes)) e.detail.set(f, audit_scalar(*v));
  }
  // The command has happened either way: a record that cannot be stored is
  // reported by the store on stderr.
  (void)ctx.device.audit(std::move(e));
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
    // Recorded under the command lock: a zeroization (which takes the log
    // with it) is never half-way while a record is written.
    if (const AuditedOpcode* a = audited(op->opcode);
        a != nullptr && fips::device_state().state() != fips::State::kZeroized) {
      audit_command(ctx, *a, request, reply, status);
    }
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
  if (carries_envelope(in)) connection.clear_challenge();

  DispatchResult r;
  r.header = header;
  r.header.flags = protocol::frame_flag::kResponse;
  r.header.status = static_cast<uint16_t>(status);
  if (ok(status)) {
    if (reply.approved) r.header.flags |= protocol::frame_flag::kApproved;
    r.body = cbor::encode(reply.body);
    r.open_queue = reply.open_queue;
  } else {
    r.body = cbor::encode(error_body(reply.body));
  }
  if (r.body.size() > protocol::kMaxBody) {
    return error_response(header, Status::kInternalError, "response too large");
  }
  return r;
}

}  // namespace ihsm::device
