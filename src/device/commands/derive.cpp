// Key derivation inside the device: ECDH (P-256/384/521, X25519), HKDF and
// SP 800-108 counter-mode KBKDF. Every result is a new key object; no
// derived secret is ever returned.
#include <algorithm>

#include "device/commands/commands.h"

namespace ihsm::device::commands {

using cbor::Value;
using namespace protocol;

namespace {

Status read_length(const cbor::MapReader& tmpl, size_t& length) {
  uint64_t v = 0;
  const Status s = tmpl.get_uint(kValueLength, v, 512);
  if (!ok(s)) return s;
  if (v == 0) return Status::kKeySizeInvalid;
  length = static_cast<size_t>(v);
  return Status::kOk;
}

}  // namespace

Status DeriveKey(CommandContext& ctx, const cbor::MapReader& in, Reply& out) {
  if (!ctx.key) return Status::kMissingField;
  const KeyObject& base = *ctx.key;
  uint64_t raw = 0;
  Status s = in.get_uint(kMechanism, raw, UINT32_MAX);
  if (!ok(s)) return s;
  const auto mechanism = static_cast<Mechanism>(raw);
  const cbor::MapReader params(params_of(in));
  const Value* tmpl_value = in.get(kTemplate);
  if (tmpl_value == nullptr) return Status::kMissingField;
  const cbor::MapReader tmpl(*tmpl_value);
  if (!params.is_map() || !tmpl.is_map()) return Status::kMalformedBody;
  size_t length = 0;
  s = read_length(tmpl, length);
  if (!ok(s)) return s;

  SecretBytes value(length);
  switch (mechanism) {
    case Mechanism::kEcdh1Derive: {
      if (base.object_class != ObjectClass::kPrivateKey ||
          (base.key_type != KeyType::kEc && base.key_type != KeyType::kEcMontgomery)) {
        return Status::kKeyTypeMismatch;
      }
      Bytes peer;
      s = params.get_bytes(kPeerPublic, peer, 133);
      if (s == Status::kMissingField) return Status::kMechanismParamInvalid;
      if (!ok(s)) return s;
      SecretBytes z;
      s = crypto::ecdh_derive(base.pkey.get(), peer, z);
      if (!ok(s)) return s == Status::kInvalidArgument ? Status::kMechanismParamInvalid : s;
      // CKD_NULL: the key is the leading bytes of Z.
      if (length > z.size()) return Status::kKeySizeInvalid;
      std::copy_n(z.reveal().begin(), length, value.reveal_mutable().begin());
      // SP 800-56A wants Z to go through a KDF: Z straight into an AES key
      // is not approved, into a generic secret for HKDF/KBKDF it is. X25519
      // is not an approved scheme.
      uint64_t type = 0;
      if (!ok(tmpl.get_uint(kKeyType, type)) ||
          static_cast<KeyType>(type) != KeyType::kGenericSecret ||
          base.key_type == KeyType::kEcMontgomery) {
        out.approved = false;
      }
      break;
    }
    case Mechanism::kHkdfDerive: {
      if (base.key_type != KeyType::kGenericSecret && base.key_type != KeyType::kAes) {
        return Status::kKeyTypeMismatch;
      }
      uint64_t hash_mech = 0, mode = 1;
      Bytes salt, info;
      s = params.get_uint(kHash, hash_mech);
      if (ok(s)) s = params.opt_bytes(kSalt, salt, kMaxKdfInput);
      if (ok(s)) s = params.opt_bytes(kInfo, info, kMaxKdfInput);
      std::optional<uint64_t> mode_opt;
      if (ok(s)) s = params.opt_uint(kHkdfMode, mode_opt, 3);
      if (s == Status::kMissingField) return Status::kMechanismParamInvalid;
      if (!ok(s)) return s;
      mode = mode_opt.value_or(1);
      crypto::Hash hash{};
      if (!ok(hash_from_mechanism(hash_mech, hash)) || mode == 0) {
        return Status::kMechanismParamInvalid;
      }
      const auto hkdf_mode = mode == 1   ? crypto::HkdfMode::kExtractAndExpand
                             : mode == 2 ? crypto::HkdfMode::kExtractOnly
                                         : crypto::HkdfMode::kExpandOnly;
      if (hkdf_mode == crypto::HkdfMode::kExtractOnly && length != crypto::hash_size(hash)) {
        return fail(out, Status::kKeySizeInvalid, "HKDF extract gives exactly the hash length");
      }
      s = crypto::hkdf(hash, hkdf_mode, base.secret.reveal(), salt, info, value);
      if (!ok(s)) return s;
      break;
    }
    case Mechanism::kSp800108CounterKdf: {
      if (base.key_type != KeyType::kGenericSecret && base.key_type != KeyType::kAes) {
        return Status::kKeyTypeMismatch;
      }
      uint64_t prf = 0;
      std::optional<uint64_t> counter_bits;
      Bytes label, context;
      s = params.get_uint(kPrfHash, prf);
      if (ok(s)) s = params.opt_bytes(kKdfLabel, label, kMaxKdfInput);
      if (ok(s)) s = params.opt_bytes(kKdfContext, context, kMaxKdfInput);
      if (ok(s)) s = params.opt_uint(kCounterBits, counter_bits, 32);
      crypto::KbkdfLayout layout;
      if (ok(s)) s = params.opt_bool(kKdfSeparator, layout.separator);
      if (ok(s)) s = params.opt_bool(kKdfLength, layout.length);
      if (s == Status::kMissingField) return Status::kMechanismParamInvalid;
      if (!ok(s)) return s;
      crypto::Hash hash{};
      if (!ok(hash_from_mechanism(prf, hash))) return Status::kMechanismParamInvalid;
      s = crypto::kbkdf_counter_hmac(hash, base.secret.reveal(), label, context,
                                     static_cast<uint32_t>(counter_bits.value_or(32)), value,
                                     layout);
      if (!ok(s)) return s;
      break;
    }
    default:
      return Status::kMechanismInvalid;
  }
  std::shared_ptr<KeyObject> key;
  s = make_secret_key(ctx, tmpl, std::move(value), KeyOrigin::kDerived, &base, key, out);
  if (!ok(s)) return s;
  return add_object(ctx, std::move(key), out);
}

}  // namespace ihsm::device::commands
