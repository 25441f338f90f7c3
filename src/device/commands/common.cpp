// Encoders and small helpers shared by the command families.
#include "device/commands/commands.h"

namespace ihsm::device::commands {

using cbor::Value;
using namespace protocol;

Status fail(Reply& out, Status status, std::string_view message) {
  out.body.set(kMessage, Value::text(message));
  return status;
}

cbor::Value partition_info_to_cbor(const PartitionInfo& info) {
  auto v = Value::map();
  v.set(kPartition, Value::uint(info.id));
  v.set(kName, Value::text(info.name));
  if (info.bound_uid) v.set(kBoundUid, Value::uint(*info.bound_uid));
  if (info.bound_gid) v.set(kBoundGid, Value::uint(*info.bound_gid));
  v.set(kMaxSessions, Value::uint(info.max_sessions));
  v.set(kOpenSessions, Value::uint(info.open_sessions));
  v.set(kUserPinSet, Value::boolean(info.user_pin_set));
  v.set(kUserLocked, Value::boolean(info.user_pin_locked));
  v.set(kOfficerLocked, Value::boolean(info.officer_pin_locked));
  v.set(kIdentityKey, Value::bytes(info.identity_public_key));
  return v;
}

cbor::Value key_info_to_cbor(const KeyInfo& info) {
  auto v = Value::map();
  v.set(kKey, Value::uint(info.handle));
  v.set(kClass, Value::uint(static_cast<uint64_t>(info.object_class)));
  v.set(kKeyType, Value::uint(static_cast<uint64_t>(info.key_type)));
  v.set(kKeyBits, Value::uint(info.key_bits));
  if (info.curve) v.set(kCurve, Value::uint(static_cast<uint64_t>(*info.curve)));
  v.set(kLabel, Value::text(info.label));
  v.set(kId, Value::bytes(info.id));
  v.set(kFlags, Value::uint(info.flags));
  v.set(kLocal, Value::boolean(info.local));
  if (info.pair_handle != 0) v.set(kPairHandle, Value::uint(info.pair_handle));
  return v;
}

}  // namespace ihsm::device::commands
