#include "device/gate.h"

#include "device/fips/state.h"
#include "device/object_table.h"

namespace ihsm::device {
namespace {

using protocol::Access;

Status check_role(Access access, Role role) {
  switch (access) {
    case Access::kUser:
      if (role == Role::kCryptoUser) return Status::kOk;
      return role == Role::kPublic ? Status::kNotLoggedIn : Status::kRoleNotAllowed;
    case Access::kOfficer:
      if (role == Role::kCryptoOfficer) return Status::kOk;
      return role == Role::kPublic ? Status::kNotLoggedIn : Status::kRoleNotAllowed;
    case Access::kUserOrOfficer:
      return role == Role::kPublic ? Status::kNotLoggedIn : Status::kOk;
    default:
      return Status::kOk;
  }
}

// What a device in a latched state still answers (docs/security-policy.md,
// "Error state", "Zeroization", "Tamper response"): its status, the tamper
// events, the self-test, closing a session and zeroizing it; while the store exists
// (not zeroized) the audit log (no cryptography: the verifier checks it on
// the host); while its
// DICE identity exists (error, tamper-locked) also the device report and
// the certificates that verify it. Nothing that uses a key of a partition,
// the DRBG or a PIN.
bool answers_in_latched_state(protocol::Opcode op, fips::State state) {
  using protocol::Opcode;
  switch (op) {
    case Opcode::kGetDeviceInfo:
    case Opcode::kSelfTest:
    case Opcode::kSessionClose:
    case Opcode::kZeroize:
    case Opcode::kTamperStatus:
      return true;
    case Opcode::kAttestDevice:
    case Opcode::kGetCertificates:
    case Opcode::kAuditRead:
      // A zeroized device has no Alias key and no DeviceID (nothing to sign
      // with) and no store (the audit log went with it).
      return state != fips::State::kZeroized;
    default:
      return false;
  }
}

}  // namespace

Status resolve_key(const CommandContext& ctx, uint64_t handle,
                   std::shared_ptr<const KeyObject>& out) {
  // Objects of other partitions live in other tables and other store
  // rows: they are simply not found.
  return objects::resolve(ctx.device, *ctx.partition, ctx.connection.id, handle, out);
}

Status gate(CommandContext& ctx, const cbor::MapReader& in) {
  if (!in.is_map()) return Status::kMalformedBody;
  // A failed self-test, a tamper event or a zeroization latched the
  // state: no cryptographic or key service (DEVICE_ERROR, TAMPER_LOCKED,
  // ZEROIZED).
  const fips::DeviceState& state = fips::device_state();
  if (!state.operational() && !answers_in_latched_state(ctx.op.opcode, state.state())) {
    return state.refusal();
  }
  switch (ctx.op.access) {
    case Access::kAnyone:
      return Status::kOk;
    case Access::kOwner:
      return ctx.device.is_owner(ctx.connection.peer.uid) ? Status::kOk : Status::kNotOwner;
    case Access::kSession:
    case Access::kUser:
    case Access::kOfficer:
    case Access::kUserOrOfficer:
      break;
  }

  // A session is only usable from the connection that opened it.
  auto session = ctx.device.find_session(ctx.header.session);
  if (!session || session->closed || session->connection != ctx.connection.id) {
    return Status::kInvalidSession;
  }
  Status s = check_role(ctx.op.access, session->role.load());
  if (!ok(s)) return s;
  ctx.session = session;
  ctx.partition = session->partition;

  if (in.has(protocol::kKey)) {
    uint64_t handle = 0;
    s = in.get_uint(protocol::kKey, handle);
    if (!ok(s)) return s;
    std::shared_ptr<const KeyObject> key;
    s = resolve_key(ctx, handle, key);
    if (!ok(s)) return s;
    if (ctx.op.key_usage != 0 && !key->has(ctx.op.key_usage)) return Status::kKeyUsageNotAllowed;
    // CKA_ALLOWED_MECHANISMS: the mechanism named with the key must be on its list.
    if (in.has(protocol::kMechanism)) {
      uint64_t mechanism = 0;
      s = in.get_uint(protocol::kMechanism, mechanism, UINT32_MAX);
      if (!ok(s)) return s;
      s = check_allowed_mechanism(*key, static_cast<Mechanism>(mechanism));
      if (!ok(s)) return s;
    }
    ctx.key = std::move(key);
  }
  return Status::kOk;
}

}  // namespace ihsm::device
