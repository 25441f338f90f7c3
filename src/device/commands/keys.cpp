// Key generation, attributes, lookup and destruction.
#include "device/commands/commands.h"
#include "device/crypto/key_facts.h"
#include "device/object_table.h"

namespace ihsm::device::commands {

using cbor::Value;
using namespace protocol;

namespace {

Status template_into(CommandContext& ctx, const cbor::MapReader& tmpl, KeyObject& key, Reply& out) {
  std::string why;
  const Status s = apply_template(tmpl, ctx.device.config().policy, key, why);
  return ok(s) || why.empty() ? s : fail(out, s, why);
}

struct PairKind {
  KeyType type;
  std::optional<Curve> curve;
  uint32_t rsa_bits = 0;
};

Status pair_kind(const cbor::MapReader& in, Mechanism mechanism, PairKind& kind) {
  switch (mechanism) {
    case Mechanism::kEcKeyPairGen: {
      uint64_t curve = 0;
      const Status s = in.get_uint(kCurve, curve);
      if (!ok(s)) return s;
      if (curve < 1 || curve > 3) return Status::kMechanismParamInvalid;
      kind = {KeyType::kEc, static_cast<Curve>(curve)};
      return Status::kOk;
    }
    case Mechanism::kRsaKeyPairGen: {
      uint64_t bits = 0;
      const Status s = in.get_uint(kKeyBits, bits);
      if (!ok(s)) return s;
      if (bits != 2048 && bits != 3072 && bits != 4096) return Status::kKeySizeInvalid;
      kind = {KeyType::kRsa, std::nullopt, static_cast<uint32_t>(bits)};
      return Status::kOk;
    }
    case Mechanism::kEcEdwardsKeyPairGen:
      kind = {KeyType::kEcEdwards, Curve::kEd25519};
      return Status::kOk;
    case Mechanism::kEcMontgomeryKeyPairGen:
      kind = {KeyType::kEcMontgomery, Curve::kX25519};
      return Status::kOk;
    default:
      return Status::kMechanismInvalid;
  }
}

// Every generation runs its pairwise-consistency test inside the backend
// (X25519 has no signature to test; its key agreement is checked instead).
Status generate_pair(const PairKind& kind, crypto::Pkey& out) {
  switch (kind.type) {
    case KeyType::kRsa:
      return crypto::generate_rsa_key(kind.rsa_bits, out);
    case KeyType::kEcEdwards:
      return crypto::generate_ed25519_key(out);
    case KeyType::kEcMontgomery:
      return crypto::generate_x25519_key(out);
    default:
      return crypto::generate_ec_key(*kind.curve, out);
  }
}

}  // namespace

Status GenerateKey(CommandContext& ctx, const cbor::MapReader& in, Reply& out) {
  uint64_t mechanism = 0, bits = 0;
  Status s = in.get_uint(kMechanism, mechanism);
  if (ok(s)) s = in.get_uint(kKeyBits, bits, 4096);
  if (!ok(s)) return s;
  auto key = std::make_shared<KeyObject>();
  key->object_class = ObjectClass::kSecretKey;
  if (mechanism == static_cast<uint64_t>(Mechanism::kAesKeyGen)) {
    if (bits != 128 && bits != 192 && bits != 256) return Status::kKeySizeInvalid;
    key->key_type = KeyType::kAes;
  } else if (mechanism == static_cast<uint64_t>(Mechanism::kGenericSecretKeyGen)) {
    // At least 112 bits (SP 800-131A for HMAC keys), whole bytes.
    if (bits < 112 || bits % 8 != 0) return Status::kKeySizeInvalid;
    key->key_type = KeyType::kGenericSecret;
  } else {
    return Status::kMechanismInvalid;
  }
  key->key_bits = static_cast<uint32_t>(bits);
  s = template_into(ctx, in, *key, out);
  if (!ok(s)) return s;
  key->secret = SecretBytes(bits / 8);
  s = crypto::random_bytes(key->secret.reveal_mutable());
  if (!ok(s)) return s;
  set_origin(*key, KeyOrigin::kGenerated, nullptr);
  return add_object(ctx, std::move(key), out);
}

Status GenerateKeyPair(CommandContext& ctx, const cbor::MapReader& in, Reply& out) {
  uint64_t mechanism = 0;
  Status s = in.get_uint(kMechanism, mechanism, UINT32_MAX);
  if (!ok(s)) return s;
  PairKind kind{};
  s = pair_kind(in, static_cast<Mechanism>(mechanism), kind);
  if (!ok(s)) return s;

  auto pub = std::make_shared<KeyObject>();
  auto priv = std::make_shared<KeyObject>();
  for (KeyObject* k : {pub.get(), priv.get()}) {
    k->key_type = kind.type;
    k->curve = kind.curve;
  }
  pub->object_class = ObjectClass::kPublicKey;
  priv->object_class = ObjectClass::kPrivateKey;
  static const Value kEmpty = Value::map();
  const Value* pub_tmpl = in.get(kPublicTemplate);
  const Value* priv_tmpl = in.get(kPrivateTemplate);
  const cbor::MapReader pub_in(pub_tmpl ? *pub_tmpl : kEmpty);
  const cbor::MapReader priv_in(priv_tmpl ? *priv_tmpl : kEmpty);
  if (!pub_in.is_map() || !priv_in.is_map()) return Status::kMalformedBody;
  s = template_into(ctx, pub_in, *pub, out);
  if (ok(s)) s = template_into(ctx, priv_in, *priv, out);
  if (!ok(s)) return s;
  {
    std::string why;
    s = check_pair_combination(pub->flags, priv->flags, ctx.device.config().policy, why);
    if (!ok(s)) return fail(out, s, why);
  }

  s = generate_pair(kind, priv->pkey);
  if (!ok(s)) return s;
  // docs/mechanisms.md: X25519 is not an SP 800-56A scheme, so its key
  // generation is not an approved service (Ed25519 is, FIPS 186-5).
  if (kind.type == KeyType::kEcMontgomery) out.approved = false;
  // The public object holds only the public half.
  s = crypto::public_half(priv->pkey.get(), pub->pkey);
  if (!ok(s)) return s;
  const uint32_t bits =
      kind.type == KeyType::kRsa ? kind.rsa_bits : crypto::curve_bits(*kind.curve);
  for (KeyObject* k : {pub.get(), priv.get()}) {
    k->key_bits = bits;
    set_origin(*k, KeyOrigin::kGenerated, nullptr);
    s = objects::prepare(ctx.device, *ctx.partition, *k);
    if (!ok(s)) return s;
  }
  pub->pair_handle = priv->handle;
  priv->pair_handle = pub->handle;
  const KeyHandle pub_handle = pub->handle, priv_handle = priv->handle;
  // Both halves in one durable write when both are token objects.
  s = objects::publish(ctx.device, *ctx.partition, ctx.session->id, ctx.connection.id,
                       {std::move(pub), std::move(priv)});
  if (!ok(s)) return s;
  out.body.set(kPublicHandle, Value::uint(pub_handle));
  out.body.set(kPrivateHandle, Value::uint(priv_handle));
  return Status::kOk;
}

Status GetKeyInfo(CommandContext& ctx, const cbor::MapReader&, Reply& out) {
  if (!ctx.key) return Status::kMissingField;
  out.body = key_info_to_cbor(ctx.key->info());
  return Status::kOk;
}

Status SetKeyAttributes(CommandContext& ctx, const cbor::MapReader& in, Reply& out) {
  if (!ctx.key) return Status::kMissingField;
  uint64_t flags = 0, mask = 0;
  std::string label;
  Bytes id;
  Status s = in.get_uint(kFlags, flags, UINT32_MAX);
  if (ok(s)) s = in.get_uint(kFlagsMask, mask, UINT32_MAX);
  if (ok(s)) s = in.opt_text(kLabel, label, kMaxLabel);
  if (ok(s)) s = in.opt_bytes(kId, id, kMaxId);
  if (!ok(s)) return s;
  const bool new_label = in.has(kLabel), new_id = in.has(kId);
  std::string why;
  s = check_attribute_change(*ctx.key, static_cast<uint32_t>(flags), static_cast<uint32_t>(mask),
                             new_label || new_id, ctx.session->role.load(),
                             ctx.device.config().policy, why);
  if (!ok(s)) return why.empty() ? s : fail(out, s, why);
  // Keys are immutable once published: the change is a new object under
  // the same handle, so an operation already holding the old one is not
  // affected mid-flight.
  const KeyObject& old = *ctx.key;
  // Same key value, same IV sequence: the counter and fixed field move over.
  auto changed = old.duplicate();
  changed->label = new_label ? label : old.label;
  changed->id = new_id ? id : old.id;
  changed->flags = (old.flags & ~static_cast<uint32_t>(mask)) |
                   (static_cast<uint32_t>(flags) & static_cast<uint32_t>(mask));
  // One change at a time per partition: the pair rule below reads the
  // other half, so two changes to the two halves cannot pass it one by one.
  std::lock_guard change_lock(ctx.partition->attribute_change_mutex);
  if (old.pair_handle != 0) {
    std::shared_ptr<const KeyObject> other;
    if (ok(objects::resolve(ctx.device, *ctx.partition, ctx.connection.id, old.pair_handle,
                            other))) {
      const bool is_public = old.object_class == ObjectClass::kPublicKey;
      s = check_pair_combination(is_public ? changed->flags : other->flags,
                                 is_public ? other->flags : changed->flags,
                                 ctx.device.config().policy, why);
      if (!ok(s)) return fail(out, s, why);
    }
  }
  return objects::replace(ctx.device, *ctx.partition, std::move(changed));
}

Status FindKeys(CommandContext& ctx, const cbor::MapReader& in, Reply& out) {
  objects::FindQuery query;
  std::string label;
  Bytes id;
  std::optional<uint64_t> object_class, after, limit;
  Status s = Status::kOk;
  if (in.has(kLabel)) {
    s = in.get_text(kLabel, label, kMaxLabel);
    query.label = label;
  }
  if (ok(s) && in.has(kId)) {
    s = in.get_bytes(kId, id, kMaxId);
    query.id = id;
  }
  if (ok(s)) s = in.opt_uint(kClass, object_class, UINT32_MAX);
  if (ok(s)) s = in.opt_uint(kAfter, after);
  if (ok(s)) s = in.opt_uint(kLimit, limit, kMaxFindLimit);
  if (!ok(s)) return s;
  if (object_class) query.object_class = static_cast<uint32_t>(*object_class);
  query.after = after.value_or(0);
  query.limit = limit.value_or(kMaxFindLimit);
  if (query.limit == 0) return Status::kInvalidArgument;

  std::vector<std::shared_ptr<const KeyObject>> found;
  bool more = false;
  s = objects::find(ctx.device, *ctx.partition, ctx.connection.id, query, found, more);
  if (!ok(s)) return s;
  auto list = Value::array();
  for (const auto& k : found) list.push(key_info_to_cbor(k->info()));
  out.body.set(kKeys, std::move(list));
  out.body.set(kMore, Value::boolean(more));
  return Status::kOk;
}

Status DestroyKey(CommandContext& ctx, const cbor::MapReader&, Reply&) {
  if (!ctx.key) return Status::kMissingField;
  const Status s = check_destroy(*ctx.key);
  if (!ok(s)) return s;
  return objects::destroy(ctx.device, *ctx.partition, *ctx.key);
}

Status GetPublicKey(CommandContext& ctx, const cbor::MapReader&, Reply& out) {
  if (!ctx.key) return Status::kMissingField;
  if (ctx.key->object_class == ObjectClass::kSecretKey || !ctx.key->pkey) {
    return Status::kKeyTypeMismatch;
  }
  Bytes spki;
  const Status s = crypto::public_key_der(ctx.key->pkey.get(), spki);
  if (!ok(s)) return s;
  out.body.set(kPublicKey, Value::bytes(spki));
  return Status::kOk;
}

}  // namespace ihsm::device::commands
