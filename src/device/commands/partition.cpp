// Partition administration: the device owner's commands.
#include "device/commands/commands.h"

namespace ihsm::device::commands {

using cbor::Value;
using namespace protocol;

namespace {

constexpr uint64_t kMaxSessionsLimit = 4096;

}  // namespace

Status PartitionCreate(CommandContext& ctx, const cbor::MapReader& in, Reply& out) {
  std::string name;
  std::optional<uint64_t> uid, gid, max_sessions;
  Status s = in.get_text(kName, name, kMaxPartitionName);
  if (ok(s)) s = in.opt_uint(kBoundUid, uid, UINT32_MAX);
  if (ok(s)) s = in.opt_uint(kBoundGid, gid, UINT32_MAX);
  if (ok(s)) s = in.opt_uint(kMaxSessions, max_sessions, kMaxSessionsLimit);
  if (!ok(s)) return s;
  if (name.empty()) return fail(out, Status::kInvalidArgument, "partition name is empty");

  SecretBytes officer_pin, user_pin;
  s = open_pin_envelope(ctx, in, kPinEnvelope, 0, Role::kCryptoOfficer, officer_pin);
  if (!ok(s)) return s;
  const bool with_user = in.has(kUserPinEnvelope);
  if (with_user) {
    s = open_pin_envelope(ctx, in, kUserPinEnvelope, 0, Role::kCryptoUser, user_pin);
    if (!ok(s)) return s;
  }
  std::optional<uint32_t> bound_uid, bound_gid;
  if (uid) bound_uid = static_cast<uint32_t>(*uid);
  if (gid) bound_gid = static_cast<uint32_t>(*gid);
  std::shared_ptr<Partition> p;
  s = ctx.device.create_partition(name, bound_uid, bound_gid,
                                  static_cast<uint32_t>(max_sessions.value_or(0)), officer_pin,
                                  with_user ? &user_pin : nullptr, p);
  if (!ok(s)) return s;
  std::lock_guard lock(p->mutex);
  out.body = partition_info_to_cbor(p->info(ctx.device.config().login));
  return Status::kOk;
}

Status PartitionList(CommandContext& ctx, const cbor::MapReader&, Reply& out) {
  const auto& peer = ctx.connection.peer;
  const bool owner = ctx.device.is_owner(peer.uid);
  auto list = Value::array();
  for (const auto& p : ctx.device.partitions()) {
    if (!owner && !p->admits(peer.uid, peer.gid)) continue;
    std::lock_guard lock(p->mutex);
    list.push(partition_info_to_cbor(p->info(ctx.device.config().login)));
  }
  out.body.set(kPartitions, std::move(list));
  return Status::kOk;
}

Status PartitionDelete(CommandContext& ctx, const cbor::MapReader& in, Reply&) {
  uint64_t id = 0;
  const Status s = in.get_uint(kPartition, id, UINT32_MAX);
  if (!ok(s)) return s;
  return ctx.device.delete_partition(static_cast<PartitionId>(id));
}

Status PartitionReset(CommandContext& ctx, const cbor::MapReader& in, Reply& out) {
  uint64_t id = 0;
  Status s = in.get_uint(kPartition, id, UINT32_MAX);
  if (!ok(s)) return s;
  SecretBytes officer_pin, user_pin;
  s = open_pin_envelope(ctx, in, kPinEnvelope, static_cast<PartitionId>(id), Role::kCryptoOfficer,
                        officer_pin);
  if (!ok(s)) return s;
  const bool with_user = in.has(kUserPinEnvelope);
  if (with_user) {
    s = open_pin_envelope(ctx, in, kUserPinEnvelope, static_cast<PartitionId>(id),
                          Role::kCryptoUser, user_pin);
    if (!ok(s)) return s;
  }
  std::shared_ptr<Partition> p;
  s = ctx.device.reset_partition(static_cast<PartitionId>(id), officer_pin,
                                 with_user ? &user_pin : nullptr, p);
  if (!ok(s)) return s;
  std::lock_guard lock(p->mutex);
  out.body = partition_info_to_cbor(p->info(ctx.device.config().login));
  return Status::kOk;
}

Status PartitionUnlockOfficer(CommandContext& ctx, const cbor::MapReader& in, Reply&) {
  Status s;
  auto p = partition_named(ctx, in, s);
  if (!p) return s;
  {
    std::lock_guard lock(p->mutex);
    p->officer.unlock();
  }
  return ctx.device.save_partitions();
}

}  // namespace ihsm::device::commands
