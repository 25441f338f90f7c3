// Certificates and data objects, and masked keys: how objects are given to
// the device and how a key leaves it (only masked) and comes back.
#include "device/commands/commands.h"
#include "device/object_table.h"

namespace ihsm::device::commands {

using cbor::Value;
using namespace protocol;

Status CreateObject(CommandContext& ctx, const cbor::MapReader& in, Reply& out) {
  uint64_t object_class = 0;
  Status s = in.get_uint(kClass, object_class, UINT32_MAX);
  if (!ok(s)) return s;
  auto object = std::make_shared<KeyObject>();
  object->object_class = static_cast<ObjectClass>(object_class);
  if (object->is_key()) {
    return fail(out, Status::kAttributeInvalid,
                "CreateObject makes certificates and data objects; keys are generated, "
                "derived or unwrapped");
  }
  std::optional<uint64_t> cert_type, flags, mask;
  s = in.opt_text(kLabel, object->label, kMaxLabel);
  if (ok(s)) s = in.opt_bytes(kId, object->id, kMaxId);
  if (ok(s)) s = in.opt_bool(kToken, object->token);
  if (ok(s)) s = in.get_bytes(kValue, object->value, kMaxObjectValue);
  if (ok(s)) s = in.opt_uint(kCertificateType, cert_type, UINT32_MAX);
  if (ok(s)) s = in.opt_text(kApplication, object->application, kMaxLabel);
  if (ok(s)) s = in.opt_uint(kFlags, flags, UINT32_MAX);
  if (ok(s)) s = in.opt_uint(kFlagsMask, mask, UINT32_MAX);
  if (!ok(s)) return s;
  if (object->object_class == ObjectClass::kCertificate) {
    if (!object->application.empty()) {
      return fail(out, Status::kAttributeInvalid, "a certificate has no application");
    }
    object->certificate_type = static_cast<uint32_t>(cert_type.value_or(0));
  } else if (cert_type) {
    return fail(out, Status::kAttributeInvalid, "a data object has no certificate type");
  }
  // These objects carry no key usage: only whether they may change or go.
  constexpr uint32_t kObjectFlags = usage::kModifiable | usage::kDestroyable;
  object->flags = kObjectFlags;
  if (flags) {
    const uint32_t m = static_cast<uint32_t>(mask.value_or(kObjectFlags));
    if ((m & ~kObjectFlags) != 0 || (*flags & m & ~kObjectFlags) != 0) {
      return fail(out, Status::kAttributeInvalid,
                  "certificates and data objects take only modifiable and destroyable");
    }
    object->flags = (object->flags & ~m) | (static_cast<uint32_t>(*flags) & m);
  }
  set_origin(*object, KeyOrigin::kCreated, nullptr);
  return add_object(ctx, std::move(object), out);
}

// C_CopyObject: a new object with the source's value and attributes, its
// own handle and uid; label, id, token and (within check_copy) the flags
// may differ. Key pairs are not linked to their copies.
Status CopyObject(CommandContext& ctx, const cbor::MapReader& in, Reply& out) {
  if (!ctx.key) return Status::kMissingField;
  const KeyObject& source = *ctx.key;
  auto copy = source.duplicate();
  std::optional<uint64_t> flags, mask;
  Status s = in.opt_text(kLabel, copy->label, kMaxLabel);
  if (ok(s)) s = in.opt_bytes(kId, copy->id, kMaxId);
  if (ok(s)) s = in.opt_bool(kToken, copy->token);
  if (ok(s)) s = in.opt_uint(kFlags, flags, UINT32_MAX);
  if (ok(s)) s = in.opt_uint(kFlagsMask, mask, UINT32_MAX);
  if (!ok(s)) return s;
  if (flags.has_value() != mask.has_value()) return Status::kMissingField;
  std::string why;
  s = check_copy(source, static_cast<uint32_t>(flags.value_or(0)),
                 static_cast<uint32_t>(mask.value_or(0)), why);
  if (!ok(s)) return why.empty() ? s : fail(out, s, why);
  if (mask) {
    copy->flags = (source.flags & ~static_cast<uint32_t>(*mask)) |
                  (static_cast<uint32_t>(*flags) & static_cast<uint32_t>(*mask));
  }
  copy->pair_handle = 0;
  // A new incarnation: prepare() gives it its own GCM fixed field.
  copy->gcm_invocations = 0;
  return add_object(ctx, std::move(copy), out);
}

Status GetObjectValue(CommandContext& ctx, const cbor::MapReader&, Reply& out) {
  if (!ctx.key) return Status::kMissingField;
  if (ctx.key->is_key()) {
    // A public key's value is public: GetPublicKey gives it as SPKI.
    return fail(out, Status::kAttributeSensitive,
                "a key's value never leaves the device (use GetPublicKey or ExportMaskedKey)");
  }
  out.body.set(kValue, Value::bytes(ctx.key->value));
  return Status::kOk;
}

Status ExportMaskedKey(CommandContext& ctx, const cbor::MapReader&, Reply& out) {
  if (!ctx.key) return Status::kMissingField;
  Bytes blob;
  if (ctx.key->token) {
    // The store holds exactly the record export hands out.
    std::optional<store::ObjectRow> row;
    Status s = ctx.device.store().get(ctx.partition->id, ctx.key->handle, row);
    if (!ok(s)) return s;
    if (!row) return Status::kNoSuchKey;
    blob = std::move(row->blob);
  } else {
    const Status s = mask_object(*ctx.key, ctx.device.masking_scope(*ctx.partition), blob);
    if (!ok(s)) return s;
  }
  out.body.set(kMaskedKey, Value::bytes(blob));
  return Status::kOk;
}

Status LoadMaskedKey(CommandContext& ctx, const cbor::MapReader& in, Reply& out) {
  Bytes blob;
  Status s = in.get_bytes(kMaskedKey, blob, kMaxMaskedRecord);
  if (!ok(s)) return s;
  std::shared_ptr<KeyObject> object;
  s = unmask_object(blob, ctx.device.masking_scope(*ctx.partition), true, object);
  if (!ok(s)) return s;
  // A destroyed token object stays destroyed: its old blobs are refused.
  bool destroyed = false;
  s = ctx.device.store().is_destroyed(ctx.partition->id, object->uid, destroyed);
  if (!ok(s)) return s;
  if (destroyed) return Status::kMaskedKeyRevoked;
  if (object->token) {
    // The object is still stored: its blob names it, no copy is made.
    std::optional<store::ObjectRow> row;
    s = ctx.device.store().get(ctx.partition->id, object->handle, row);
    if (!ok(s)) return s;
    if (row && row->uid == object->uid) {
      out.body.set(kKey, Value::uint(object->handle));
      return Status::kOk;
    }
  }
  // Otherwise a session object of this connection, same uid and attributes.
  object->token = false;
  object->pair_handle = 0;
  object->handle = ctx.partition->allocate_session_handle();
  if (object->is_key()) {
    s = ctx.device.next_key_incarnation(object->gcm_fixed_field);
    if (!ok(s)) return s;
  }
  const KeyHandle handle = object->handle;
  s = objects::publish(ctx.device, *ctx.partition, ctx.session->id, ctx.connection.id,
                       {std::move(object)});
  if (!ok(s)) return s;
  out.body.set(kKey, Value::uint(handle));
  return Status::kOk;
}

}  // namespace ihsm::device::commands
