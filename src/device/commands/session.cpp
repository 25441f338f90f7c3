// Sessions, login and PIN management.
#include "device/commands/commands.h"

namespace ihsm::device::commands {

using cbor::Value;
using namespace protocol;

Status SessionOpen(CommandContext& ctx, const cbor::MapReader& in, Reply& out) {
  uint64_t id = 0;
  Status s = in.get_uint(kPartition, id, UINT32_MAX);
  if (!ok(s)) return s;
  std::shared_ptr<SessionState> session;
  s = ctx.device.open_session(static_cast<PartitionId>(id), ctx.connection.id,
                              ctx.connection.peer.uid, ctx.connection.peer.gid, session);
  if (!ok(s)) return s;
  out.body.set(kSession, Value::uint(session->id));
  return Status::kOk;
}

Status SessionClose(CommandContext& ctx, const cbor::MapReader&, Reply&) {
  return ctx.device.close_session(ctx.session->id);
}

Status SessionInfo(CommandContext& ctx, const cbor::MapReader&, Reply& out) {
  out.body.set(kSession, Value::uint(ctx.session->id));
  out.body.set(kPartition, Value::uint(ctx.partition->id));
  out.body.set(kRole, Value::uint(static_cast<uint64_t>(ctx.session->role.load())));
  return Status::kOk;
}

Status Login(CommandContext& ctx, const cbor::MapReader& in, Reply& out) {
  uint64_t raw_role = 0;
  Status s = in.get_uint(kRole, raw_role);
  if (!ok(s)) return s;
  if (raw_role != static_cast<uint64_t>(Role::kCryptoUser) &&
      raw_role != static_cast<uint64_t>(Role::kCryptoOfficer)) {
    return fail(out, Status::kInvalidArgument, "role must be user (1) or officer (2)");
  }
  const Role role = static_cast<Role>(raw_role);
  if (ctx.session->role.load() != Role::kPublic) return Status::kAlreadyLoggedIn;
  SecretBytes pin;
  s = open_pin_envelope(ctx, in, kPinEnvelope, ctx.partition->id, role, pin);
  if (!ok(s)) return s;
  s = verify_pin(ctx, *ctx.partition, role, pin, out);
  // The officer-login tamper sensor counts failed officer logins (a wrong
  // PIN, or an attempt on a locked officer) device-wide.
  if (role == Role::kCryptoOfficer) {
    if (s == Status::kPinIncorrect || s == Status::kPinLocked) {
      ctx.device.officer_logins().failed(ctx.partition->id);
    }
    if (ok(s)) ctx.device.officer_logins().succeeded();
  }
  if (!ok(s)) return s;
  ctx.session->role = role;
  return Status::kOk;
}

Status Logout(CommandContext& ctx, const cbor::MapReader&, Reply&) {
  if (ctx.session->role.load() == Role::kPublic) return Status::kNotLoggedIn;
  ctx.session->role = Role::kPublic;
  return Status::kOk;
}

Status InitUserPin(CommandContext& ctx, const cbor::MapReader& in, Reply&) {
  SecretBytes pin;
  Status s = open_pin_envelope(ctx, in, kPinEnvelope, ctx.partition->id, Role::kCryptoUser, pin);
  if (!ok(s)) return s;
  Credential fresh;  // scrypt outside the lock
  s = fresh.set_pin(pin.reveal(), ctx.device.config().login);
  if (!ok(s)) return s;
  {
    std::lock_guard lock(ctx.partition->mutex);
    ctx.partition->user = std::move(fresh);
  }
  return ctx.device.save_partitions();
}

Status SetPin(CommandContext& ctx, const cbor::MapReader& in, Reply& out) {
  const Role role = ctx.session->role.load();
  SecretBytes old_pin, new_pin;
  Status s = open_pin_envelope(ctx, in, kPinEnvelope, ctx.partition->id, role, old_pin);
  if (ok(s)) s = open_pin_envelope(ctx, in, kNewPinEnvelope, ctx.partition->id, role, new_pin);
  if (!ok(s)) return s;
  // The old PIN is checked like a login: it counts towards lockout.
  s = verify_pin(ctx, *ctx.partition, role, old_pin, out);
  if (!ok(s)) return s;
  Credential fresh;
  s = fresh.set_pin(new_pin.reveal(), ctx.device.config().login);
  if (!ok(s)) return s;
  {
    std::lock_guard lock(ctx.partition->mutex);
    ctx.partition->credential(role) = std::move(fresh);
  }
  return ctx.device.save_partitions();
}

Status UnlockUser(CommandContext& ctx, const cbor::MapReader&, Reply&) {
  {
    std::lock_guard lock(ctx.partition->mutex);
    ctx.partition->user.unlock();
  }
  return ctx.device.save_partitions();
}

}  // namespace ihsm::device::commands
