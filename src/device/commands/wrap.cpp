// Wrapping and unwrapping keys: AES-KW, AES-KWP, AES-GCM, RSA-OAEP and
// RSA-AES-KEY-WRAP. Policy (extractable, wrap-with-trusted, strength) is
// checked by vault/policy before any byte is wrapped.
#include "device/commands/commands.h"
#include "device/crypto/key_facts.h"
#include "device/gate.h"

namespace ihsm::device::commands {

using cbor::Value;
using namespace protocol;

namespace {

// The ephemeral AES key of RSA-AES-KEY-WRAP (PKCS#11 CK_RSA_AES_KEY_WRAP_PARAMS).
Status rsa_aes_params(const cbor::MapReader& params, crypto::OaepParams& oaep, uint32_t& aes_bits) {
  uint64_t hash = 0, mgf = 0;
  std::optional<uint64_t> bits;
  Status s = params.get_uint(kHash, hash);
  if (ok(s)) s = params.get_uint(kMgfHash, mgf);
  if (ok(s)) s = params.opt_bytes(kSourceData, oaep.label, kMaxOaepLabel);
  if (ok(s)) s = params.opt_uint(kKeyBits, bits, 256);
  if (s == Status::kMissingField) return Status::kMechanismParamInvalid;
  if (!ok(s)) return s;
  if (!ok(hash_from_mechanism(hash, oaep.hash)) || !ok(hash_from_mechanism(mgf, oaep.mgf1))) {
    return Status::kMechanismParamInvalid;
  }
  aes_bits = static_cast<uint32_t>(bits.value_or(256));
  if (aes_bits != 128 && aes_bits != 192 && aes_bits != 256) return Status::kMechanismParamInvalid;
  return Status::kOk;
}

Status read_oaep_params(const cbor::MapReader& params, crypto::OaepParams& oaep) {
  uint32_t unused = 0;
  return rsa_aes_params(params, oaep, unused);
}

bool is_rsa(const KeyObject& k, ObjectClass c) {
  return k.key_type == KeyType::kRsa && k.object_class == c;
}
bool is_aes(const KeyObject& k) { return k.key_type == KeyType::kAes && !k.secret.empty(); }

// The bytes a key is wrapped as: raw value for secret keys, PKCS#8 for
// private keys.
Status key_material(const KeyObject& key, SecretBytes& out) {
  if (key.object_class == ObjectClass::kSecretKey) {
    out = key.secret.clone();
    return Status::kOk;
  }
  return crypto::private_key_der(key.pkey.get(), out);
}

}  // namespace

Status WrapKey(CommandContext& ctx, const cbor::MapReader& in, Reply& out) {
  if (!ctx.key) return Status::kMissingField;
  const KeyObject& wrapping = *ctx.key;
  uint64_t raw = 0, target_handle = 0;
  Status s = in.get_uint(kMechanism, raw, UINT32_MAX);
  if (ok(s)) s = in.get_uint(kTarget, target_handle);
  if (!ok(s)) return s;
  std::shared_ptr<const KeyObject> target;
  s = resolve_key(ctx, target_handle, target);
  if (!ok(s)) return s;
  s = check_wrap(wrapping, *target);
  if (!ok(s)) return s;
  const auto mechanism = static_cast<Mechanism>(raw);
  const cbor::MapReader params(params_of(in));
  if (!params.is_map()) return Status::kMalformedBody;

  SecretBytes material;
  s = key_material(*target, material);
  if (!ok(s)) return s;
  Bytes wrapped;
  switch (mechanism) {
    case Mechanism::kAesKeyWrap:
    case Mechanism::kAesKeyWrapKwp:
      if (!is_aes(wrapping)) return Status::kKeyTypeMismatch;
      if (mechanism == Mechanism::kAesKeyWrap && material.size() % 8 != 0) {
        return fail(out, Status::kDataLengthInvalid,
                    "AES-KW wraps multiples of 8 bytes; use AES-KEY-WRAP-KWP");
      }
      s = mechanism == Mechanism::kAesKeyWrap
              ? crypto::aes_kw_wrap(wrapping.secret.reveal(), material.reveal(), wrapped)
              : crypto::aes_kwp_wrap(wrapping.secret.reveal(), material.reveal(), wrapped);
      break;
    case Mechanism::kAesGcm: {
      if (!is_aes(wrapping)) return Status::kKeyTypeMismatch;
      if (in.has(kIv)) return fail(out, Status::kMechanismParamInvalid, "the device draws the IV");
      Bytes aad, ciphertext, tag;
      uint8_t fresh[kGcmIvSize];
      s = in.opt_bytes(kAad, aad, kMaxAad);
      if (ok(s) && !wrapping.next_gcm_iv(fresh)) s = Status::kIvExhausted;
      const Bytes iv(fresh, fresh + kGcmIvSize);
      if (ok(s)) {
        s = crypto::aes_gcm_encrypt(wrapping.secret.reveal(), iv, aad, material.reveal(),
                                    ciphertext, tag);
      }
      if (!ok(s)) return s;
      wrapped = iv;
      wrapped.insert(wrapped.end(), ciphertext.begin(), ciphertext.end());
      wrapped.insert(wrapped.end(), tag.begin(), tag.end());
      break;
    }
    case Mechanism::kRsaPkcsOaep: {
      if (!is_rsa(wrapping, ObjectClass::kPublicKey)) return Status::kKeyTypeMismatch;
      crypto::OaepParams oaep;
      s = read_oaep_params(params, oaep);
      if (ok(s))
        s = crypto::rsa_oaep_encrypt(wrapping.pkey.get(), oaep, material.reveal(), wrapped);
      break;
    }
    case Mechanism::kRsaAesKeyWrap: {
      if (!is_rsa(wrapping, ObjectClass::kPublicKey)) return Status::kKeyTypeMismatch;
      crypto::OaepParams oaep;
      uint32_t aes_bits = 0;
      s = rsa_aes_params(params, oaep, aes_bits);
      if (!ok(s)) return s;
      SecretBytes ephemeral(aes_bits / 8);
      Bytes head, tail;
      s = crypto::random_bytes(ephemeral.reveal_mutable());
      if (ok(s)) s = crypto::rsa_oaep_encrypt(wrapping.pkey.get(), oaep, ephemeral.reveal(), head);
      if (ok(s)) s = crypto::aes_kwp_wrap(ephemeral.reveal(), material.reveal(), tail);
      if (!ok(s)) return s;
      wrapped = std::move(head);
      wrapped.insert(wrapped.end(), tail.begin(), tail.end());
      break;
    }
    default:
      return Status::kMechanismInvalid;
  }
  if (!ok(s)) return s;
  out.body.set(kWrapped, Value::bytes(wrapped));
  return Status::kOk;
}

Status UnwrapKey(CommandContext& ctx, const cbor::MapReader& in, Reply& out) {
  if (!ctx.key) return Status::kMissingField;
  const KeyObject& unwrapping = *ctx.key;
  uint64_t raw = 0;
  Bytes wrapped;
  Status s = in.get_uint(kMechanism, raw, UINT32_MAX);
  if (ok(s)) s = in.get_bytes(kWrapped, wrapped, kMaxWrapped);
  if (!ok(s)) return s;
  const Value* tmpl_value = in.get(kTemplate);
  if (tmpl_value == nullptr) return Status::kMissingField;
  const cbor::MapReader tmpl(*tmpl_value);
  const cbor::MapReader params(params_of(in));
  if (!tmpl.is_map() || !params.is_map()) return Status::kMalformedBody;
  const auto mechanism = static_cast<Mechanism>(raw);

  SecretBytes material;
  switch (mechanism) {
    case Mechanism::kAesKeyWrap:
    case Mechanism::kAesKeyWrapKwp:
      if (!is_aes(unwrapping)) return Status::kKeyTypeMismatch;
      s = mechanism == Mechanism::kAesKeyWrap
              ? crypto::aes_kw_unwrap(unwrapping.secret.reveal(), wrapped, material)
              : crypto::aes_kwp_unwrap(unwrapping.secret.reveal(), wrapped, material);
      break;
    case Mechanism::kAesGcm: {
      if (!is_aes(unwrapping)) return Status::kKeyTypeMismatch;
      if (wrapped.size() < kGcmIvSize + kGcmTagSize) return Status::kWrappedKeyInvalid;
      Bytes aad;
      s = in.opt_bytes(kAad, aad, kMaxAad);
      if (!ok(s)) return s;
      const std::span<const uint8_t> w(wrapped);
      s = crypto::aes_gcm_decrypt(unwrapping.secret.reveal(), w.first(kGcmIvSize), aad,
                                  w.subspan(kGcmIvSize, w.size() - kGcmIvSize - kGcmTagSize),
                                  w.last(kGcmTagSize), material);
      break;
    }
    case Mechanism::kRsaPkcsOaep: {
      if (!is_rsa(unwrapping, ObjectClass::kPrivateKey)) return Status::kKeyTypeMismatch;
      crypto::OaepParams oaep;
      s = read_oaep_params(params, oaep);
      if (!ok(s)) return s;
      s = crypto::rsa_oaep_decrypt(unwrapping.pkey.get(), oaep, wrapped, material);
      break;
    }
    case Mechanism::kRsaAesKeyWrap: {
      if (!is_rsa(unwrapping, ObjectClass::kPrivateKey)) return Status::kKeyTypeMismatch;
      crypto::OaepParams oaep;
      uint32_t aes_bits = 0;
      s = rsa_aes_params(params, oaep, aes_bits);
      if (!ok(s)) return s;
      const size_t head = unwrapping.key_bits / 8;
      if (wrapped.size() <= head) return Status::kWrappedKeyInvalid;
      SecretBytes ephemeral;
      const std::span<const uint8_t> w(wrapped);
      s = crypto::rsa_oaep_decrypt(unwrapping.pkey.get(), oaep, w.first(head), ephemeral);
      if (ok(s) && ephemeral.size() != aes_bits / 8) s = Status::kWrappedKeyInvalid;
      if (ok(s)) s = crypto::aes_kwp_unwrap(ephemeral.reveal(), w.subspan(head), material);
      break;
    }
    default:
      return Status::kMechanismInvalid;
  }
  // One answer for every way a wrapped key can be bad: no oracle.
  if (!ok(s)) {
    return s == Status::kMechanismParamInvalid || s == Status::kFieldTooLarge
               ? s
               : Status::kWrappedKeyInvalid;
  }

  uint64_t object_class = 0;
  s = tmpl.get_uint(kClass, object_class, UINT32_MAX);
  if (!ok(s)) return s;
  std::shared_ptr<KeyObject> key;
  if (static_cast<ObjectClass>(object_class) == ObjectClass::kSecretKey) {
    s = make_secret_key(ctx, tmpl, std::move(material), KeyOrigin::kUnwrapped, &unwrapping, key,
                        out);
    if (!ok(s)) return s;
  } else if (static_cast<ObjectClass>(object_class) == ObjectClass::kPrivateKey) {
    uint64_t type = 0;
    s = tmpl.get_uint(kKeyType, type, UINT32_MAX);
    if (!ok(s)) return s;
    key = std::make_shared<KeyObject>();
    crypto::KeyFacts facts;
    if (!ok(crypto::private_key_from_der(material.reveal(), key->pkey)) ||
        !ok(crypto::key_facts(key->pkey.get(), facts))) {
      return Status::kWrappedKeyInvalid;
    }
    if (facts.type != static_cast<KeyType>(type)) {
      return fail(out, Status::kAttributeInvalid, "wrapped key is not of the template's key type");
    }
    key->object_class = ObjectClass::kPrivateKey;
    key->key_type = facts.type;
    key->curve = facts.curve;
    key->key_bits = facts.bits;
    std::string why;
    s = apply_template(tmpl, ctx.device.config().policy, *key, why);
    if (!ok(s)) return why.empty() ? s : fail(out, s, why);
    set_origin(*key, KeyOrigin::kUnwrapped, &unwrapping);
  } else {
    return fail(out, Status::kAttributeInvalid, "unwrap makes secret or private keys");
  }
  return add_object(ctx, std::move(key), out);
}

}  // namespace ihsm::device::commands
