// Key generation, lookup and destruction.
#include "device/commands/commands.h"

namespace ihsm::device::commands {

using cbor::Value;
using namespace protocol;

namespace {

// Flags each kind of key may carry; anything else is an inconsistent template.
constexpr uint32_t kAesAllowed = usage::kAll;
constexpr uint32_t kEcPrivateAllowed =
    usage::kSign | usage::kDerive | usage::kSensitive | usage::kExtractable;
constexpr uint32_t kEcPublicAllowed = usage::kVerify | usage::kDerive;

constexpr uint32_t kAesDefault = usage::kEncrypt | usage::kDecrypt | usage::kSensitive;
constexpr uint32_t kEcPrivateDefault = usage::kSign | usage::kSensitive;
constexpr uint32_t kEcPublicDefault = usage::kVerify;

Status read_template(const cbor::MapReader& in, uint32_t default_flags, uint32_t allowed,
                     KeyObject& key, Reply& out) {
  Status s = in.opt_text(kLabel, key.label, kMaxLabel);
  if (ok(s)) s = in.opt_bytes(kId, key.id, kMaxId);
  std::optional<uint64_t> flags;
  if (ok(s)) s = in.opt_uint(kFlags, flags, UINT32_MAX);
  if (!ok(s)) return s;
  key.flags = flags ? static_cast<uint32_t>(*flags) : default_flags;
  if ((key.flags & ~allowed) != 0) {
    return fail(out, Status::kAttributeInvalid,
                "flags not allowed for this key: " + flags_to_string(key.flags & ~allowed));
  }
  return Status::kOk;
}

void claim(KeyObject& key, const CommandContext& ctx) {
  key.owner_session = ctx.session->id;
  key.owner_connection = ctx.connection.id;
  key.local = true;
}

}  // namespace

Status GenerateKey(CommandContext& ctx, const cbor::MapReader& in, Reply& out) {
  uint64_t mechanism = 0, bits = 0;
  Status s = in.get_uint(kMechanism, mechanism);
  if (ok(s)) s = in.get_uint(kKeyBits, bits);
  if (!ok(s)) return s;
  if (mechanism != static_cast<uint64_t>(Mechanism::kAesKeyGen)) return Status::kMechanismInvalid;
  if (bits != 128 && bits != 192 && bits != 256) return Status::kKeySizeInvalid;

  auto key = std::make_shared<KeyObject>();
  s = read_template(in, kAesDefault, kAesAllowed, *key, out);
  if (!ok(s)) return s;
  key->object_class = ObjectClass::kSecretKey;
  key->key_type = KeyType::kAes;
  key->key_bits = static_cast<uint32_t>(bits);
  key->secret = SecretBytes(bits / 8);
  s = crypto::random_bytes(key->secret.reveal_mutable());
  if (!ok(s)) return s;
  claim(*key, ctx);
  KeyHandle handle = 0;
  {
    std::lock_guard lock(ctx.partition->mutex);
    handle = ctx.partition->add_key(std::move(key));
  }
  out.body.set(kKey, Value::uint(handle));
  return Status::kOk;
}

Status GenerateKeyPair(CommandContext& ctx, const cbor::MapReader& in, Reply& out) {
  uint64_t mechanism = 0, raw_curve = 0;
  Status s = in.get_uint(kMechanism, mechanism);
  if (ok(s)) s = in.get_uint(kCurve, raw_curve);
  if (!ok(s)) return s;
  if (mechanism != static_cast<uint64_t>(Mechanism::kEcKeyPairGen)) {
    return Status::kMechanismInvalid;
  }
  if (raw_curve < 1 || raw_curve > 3) return Status::kMechanismParamInvalid;
  const Curve curve = static_cast<Curve>(raw_curve);

  auto pub = std::make_shared<KeyObject>();
  auto priv = std::make_shared<KeyObject>();
  static const Value kEmpty = Value::map();
  const Value* pub_tmpl = in.get(kPublicTemplate);
  const Value* priv_tmpl = in.get(kPrivateTemplate);
  const cbor::MapReader pub_in(pub_tmpl ? *pub_tmpl : kEmpty);
  const cbor::MapReader priv_in(priv_tmpl ? *priv_tmpl : kEmpty);
  if (!pub_in.is_map() || !priv_in.is_map()) return Status::kMalformedBody;
  s = read_template(pub_in, kEcPublicDefault, kEcPublicAllowed, *pub, out);
  if (ok(s)) s = read_template(priv_in, kEcPrivateDefault, kEcPrivateAllowed, *priv, out);
  if (!ok(s)) return s;

  s = crypto::generate_ec_key(curve, priv->pkey);  // includes the pairwise-consistency test
  if (!ok(s)) return s;
  // The public object holds only the public half.
  Bytes spki;
  s = crypto::public_key_der(priv->pkey.get(), spki);
  if (ok(s)) s = crypto::public_key_from_der(spki, pub->pkey);
  if (!ok(s)) return s;
  for (KeyObject* k : {pub.get(), priv.get()}) {
    k->key_type = KeyType::kEc;
    k->curve = curve;
    k->key_bits = crypto::curve_bits(curve);
    claim(*k, ctx);
  }
  pub->object_class = ObjectClass::kPublicKey;
  priv->object_class = ObjectClass::kPrivateKey;
  KeyObject* pub_raw = pub.get();
  KeyObject* priv_raw = priv.get();
  KeyHandle pub_handle = 0, priv_handle = 0;
  {
    std::lock_guard lock(ctx.partition->mutex);
    pub_handle = ctx.partition->add_key(std::move(pub));
    priv_handle = ctx.partition->add_key(std::move(priv));
    // Still under the lock that published them: nobody has read them yet.
    pub_raw->pair_handle = priv_handle;
    priv_raw->pair_handle = pub_handle;
  }
  out.body.set(kPublicHandle, Value::uint(pub_handle));
  out.body.set(kPrivateHandle, Value::uint(priv_handle));
  return Status::kOk;
}

Status GetKeyInfo(CommandContext& ctx, const cbor::MapReader&, Reply& out) {
  if (!ctx.key) return Status::kMissingField;
  out.body = key_info_to_cbor(ctx.key->info());
  return Status::kOk;
}

Status FindKeys(CommandContext& ctx, const cbor::MapReader& in, Reply& out) {
  std::optional<std::string> label;
  std::optional<Bytes> id;
  std::optional<uint64_t> object_class;
  std::string label_value;
  Bytes id_value;
  Status s = Status::kOk;
  if (in.has(kLabel)) {
    s = in.get_text(kLabel, label_value, kMaxLabel);
    label = label_value;
  }
  if (ok(s) && in.has(kId)) {
    s = in.get_bytes(kId, id_value, kMaxId);
    id = id_value;
  }
  if (ok(s)) s = in.opt_uint(kClass, object_class);
  if (!ok(s)) return s;

  auto list = Value::array();
  std::lock_guard lock(ctx.partition->mutex);
  ctx.partition->for_each_key([&](const KeyObject& k) {
    if (k.owner_connection != ctx.connection.id) return;
    if (label && k.label != *label) return;
    if (id && k.id != *id) return;
    if (object_class && static_cast<uint64_t>(k.object_class) != *object_class) return;
    list.push(key_info_to_cbor(k.info()));
  });
  out.body.set(kKeys, std::move(list));
  return Status::kOk;
}

Status DestroyKey(CommandContext& ctx, const cbor::MapReader&, Reply&) {
  if (!ctx.key) return Status::kMissingField;
  std::lock_guard lock(ctx.partition->mutex);
  // Material is cleansed when the last in-flight operation drops its reference.
  return ctx.partition->remove_key(ctx.key->handle) ? Status::kOk : Status::kNoSuchKey;
}

Status GetPublicKey(CommandContext& ctx, const cbor::MapReader&, Reply& out) {
  if (!ctx.key) return Status::kMissingField;
  if (ctx.key->key_type != KeyType::kEc || !ctx.key->pkey) return Status::kKeyTypeMismatch;
  Bytes spki;
  const Status s = crypto::public_key_der(ctx.key->pkey.get(), spki);
  if (!ok(s)) return s;
  out.body.set(kPublicKey, Value::bytes(spki));
  return Status::kOk;
}

}  // namespace ihsm::device::commands
