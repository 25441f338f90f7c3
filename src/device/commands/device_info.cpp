// Device-level commands that need no session: status, PIN challenges and
// the fast path's queue.
#include "device/commands/commands.h"
#include "device/fips/state.h"

namespace ihsm::device::commands {

using cbor::Value;
using namespace protocol;

Status GetDeviceInfo(CommandContext& ctx, const cbor::MapReader&, Reply& out) {
  const Device& d = ctx.device;
  out.body.set(kProtocolRevision, Value::uint(kRevision));
  out.body.set(kFirmwareVersion, Value::text(d.firmware_version()));
  // In the error state: "error", and the self-test that put it there;
  // "zeroized" or "tamper-locked" and why.
  const fips::DeviceState& state = fips::device_state();
  out.body.set(kState, Value::text(state.name()));
  if (state.state() == fips::State::kError) {
    out.body.set(kMessage, Value::text(state.failed_test()));
  } else if (!state.operational()) {
    out.body.set(kMessage, Value::text(state.reason()));
    out.body.set(kReason, Value::text(state.reason()));
  }
  out.body.set(kTamperEvents, tamper_events_to_cbor(d, false));
  out.body.set(kMeasurement, Value::bytes(d.measurement()));
  out.body.set(kSecurityVersion, Value::uint(d.security_version()));
  out.body.set(kMinSecurityVersion, Value::uint(d.min_security_version()));
  out.body.set(kIdentityKey, Value::bytes(d.identity_public_der()));
  out.body.set(kPinTransportKey, Value::bytes(d.pin_transport_public_der()));
  out.body.set(kPinTransportSig, Value::bytes(d.pin_transport_signature()));
  out.body.set(kIsOwner, Value::boolean(d.is_owner(ctx.connection.peer.uid)));
  // Only the partitions this caller may open: others are none of its business.
  const auto& peer = ctx.connection.peer;
  uint64_t visible = 0;
  for (const auto& p : d.partitions()) {
    if (d.is_owner(peer.uid) || p->admits(peer.uid, peer.gid)) ++visible;
  }
  out.body.set(kCount, Value::uint(visible));
  if (const hardening::State* h = d.hardening()) {
    out.body.set(kProcessUid, Value::uint(h->uid));
    out.body.set(kMemoryLocked, Value::boolean(h->memory_locked));
    out.body.set(kCoreDumpsOff, Value::boolean(h->core_dumps_off));
    out.body.set(kNoNewPrivs, Value::boolean(h->no_new_privs));
    // Log-only in sanitizer builds: present, not enforcing.
    out.body.set(kSyscallFilter,
                 Value::boolean(h->syscall_filter.load() && !hardening::sanitizer_build()));
  }
  return Status::kOk;
}

Status GetChallenge(CommandContext& ctx, const cbor::MapReader&, Reply& out) {
  std::array<uint8_t, kChallengeSize> challenge{};
  const Status s = crypto::random_bytes(challenge);
  if (!ok(s)) return s;
  ctx.connection.set_challenge(challenge);
  out.body.set(kChallenge, Value::bytes(challenge));
  return Status::kOk;
}

// The server makes the queue and sends its memfd with this response
// (Server::open_queue); here only what any command gets: the gate, and a
// clear refusal when the device runs without queues.
Status OpenQueue(CommandContext& ctx, const cbor::MapReader&, Reply& out) {
  const uint32_t depth = ctx.device.config().queue_depth;
  if (depth == 0) {
    out.body.set(kMessage, Value::text("the device runs without shared-memory queues"));
    return Status::kResourceExhausted;
  }
  out.body.set(kQueueDepth, Value::uint(depth));
  out.open_queue = true;
  return Status::kOk;
}

}  // namespace ihsm::device::commands
