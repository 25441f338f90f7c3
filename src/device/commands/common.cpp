// Encoders and small helpers shared by the command families.
#include "device/commands/commands.h"
#include "device/object_table.h"

namespace ihsm::device::commands {

using cbor::Value;
using namespace protocol;

std::shared_ptr<Partition> partition_named(CommandContext& ctx, const cbor::MapReader& in,
                                           Status& status) {
  uint64_t id = 0;
  status = in.get_uint(kPartition, id, UINT32_MAX);
  if (!ok(status)) return nullptr;
  auto p = ctx.device.find_partition(static_cast<PartitionId>(id));
  if (!p) status = Status::kNoSuchPartition;
  return p;
}

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
  v.set(kUserFailures, Value::uint(info.user_pin_failures));
  v.set(kUserRetriesLeft, Value::uint(info.user_pin_retries_left));
  v.set(kOfficerFailures, Value::uint(info.officer_pin_failures));
  v.set(kOfficerRetriesLeft, Value::uint(info.officer_pin_retries_left));
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
  v.set(kToken, Value::boolean(info.token));
  if (info.object_class == ObjectClass::kCertificate || info.object_class == ObjectClass::kData) {
    v.set(kValueSize, Value::uint(info.value_size));
    if (info.object_class == ObjectClass::kCertificate) {
      v.set(kCertificateType, Value::uint(info.certificate_type));
    }
    if (!info.application.empty()) v.set(kApplication, Value::text(info.application));
  }
  if (!info.allowed_mechanisms.empty()) {
    auto list = Value::array();
    for (const Mechanism m : info.allowed_mechanisms)
      list.push(Value::uint(static_cast<uint64_t>(m)));
    v.set(kAllowedMechanisms, std::move(list));
  }
  return v;
}

Status hash_from_mechanism(uint64_t mechanism, crypto::Hash& out) {
  switch (static_cast<Mechanism>(mechanism)) {
    case Mechanism::kSha256:
      out = crypto::Hash::kSha256;
      return Status::kOk;
    case Mechanism::kSha384:
      out = crypto::Hash::kSha384;
      return Status::kOk;
    case Mechanism::kSha512:
      out = crypto::Hash::kSha512;
      return Status::kOk;
    default:
      return Status::kMechanismParamInvalid;
  }
}

const cbor::Value& params_of(const cbor::MapReader& in) {
  static const Value kEmpty = Value::map();
  const Value* p = in.get(kParams);
  return p != nullptr ? *p : kEmpty;
}

Status add_object(CommandContext& ctx, std::shared_ptr<KeyObject> object, Reply& out) {
  Status s = objects::prepare(ctx.device, *ctx.partition, *object);
  if (!ok(s)) return s;
  const KeyHandle handle = object->handle;
  s = objects::publish(ctx.device, *ctx.partition, ctx.session->id, ctx.connection.id,
                       {std::move(object)});
  if (ok(s)) out.body.set(kKey, Value::uint(handle));
  return s;
}

Status make_secret_key(CommandContext& ctx, const cbor::MapReader& tmpl, SecretBytes value,
                       KeyOrigin origin, const KeyObject* base, std::shared_ptr<KeyObject>& out,
                       Reply& reply) {
  if (!tmpl.is_map()) return Status::kMalformedBody;
  uint64_t type = 0;
  Status s = tmpl.get_uint(kKeyType, type, UINT32_MAX);
  if (!ok(s)) return s;
  auto key = std::make_shared<KeyObject>();
  key->object_class = ObjectClass::kSecretKey;
  key->key_type = static_cast<KeyType>(type);
  const size_t len = value.size();
  if (key->key_type == KeyType::kAes) {
    if (len != 16 && len != 24 && len != 32) return Status::kKeySizeInvalid;
  } else if (key->key_type == KeyType::kGenericSecret) {
    if (len < 14 || len > 512) return Status::kKeySizeInvalid;  // >= 112 bits
  } else {
    return fail(reply, Status::kAttributeInvalid, "a secret key is AES or generic secret");
  }
  key->key_bits = static_cast<uint32_t>(len * 8);
  std::string why;
  s = apply_template(tmpl, ctx.device.config().policy, *key, why);
  if (!ok(s)) return why.empty() ? s : fail(reply, s, why);
  key->secret = std::move(value);
  set_origin(*key, origin, base);
  out = std::move(key);
  return Status::kOk;
}

}  // namespace ihsm::device::commands
