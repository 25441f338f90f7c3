#include "device/vault/policy.h"

#include <algorithm>

#include "protocol/fields.h"

namespace ihsm::device {
namespace {

using namespace usage;

// Protection attributes any key may carry at creation.
constexpr uint32_t kProtection =
    kSensitive | kExtractable | kWrapWithTrusted | kModifiable | kDestroyable;
constexpr uint32_t kCipherUsage = kEncrypt | kDecrypt;
constexpr uint32_t kWrapUsage = kWrap | kUnwrap;

struct KindRule {
  ObjectClass object_class;
  KeyType key_type;
  uint32_t allowed;   // usage bits this kind may carry
  uint32_t defaults;  // usage bits when the template says nothing
};

// Public keys are never secret: no sensitive/extractable semantics apply.
constexpr KindRule kRules[] = {
    {ObjectClass::kSecretKey, KeyType::kAes, kEncrypt | kDecrypt | kWrap | kUnwrap | kDerive,
     kEncrypt | kDecrypt},
    {ObjectClass::kSecretKey, KeyType::kGenericSecret, kSign | kVerify | kDerive, kSign | kVerify},
    {ObjectClass::kPrivateKey, KeyType::kEc, kSign | kDerive, kSign},
    {ObjectClass::kPublicKey, KeyType::kEc, kVerify, kVerify},
    {ObjectClass::kPrivateKey, KeyType::kRsa, kSign | kDecrypt | kUnwrap, kSign},
    {ObjectClass::kPublicKey, KeyType::kRsa, kVerify | kEncrypt | kWrap, kVerify},
    {ObjectClass::kPrivateKey, KeyType::kEcEdwards, kSign, kSign},
    {ObjectClass::kPublicKey, KeyType::kEcEdwards, kVerify, kVerify},
    {ObjectClass::kPrivateKey, KeyType::kEcMontgomery, kDerive, kDerive},
    {ObjectClass::kPublicKey, KeyType::kEcMontgomery, 0, 0},
};

const KindRule* rule_for(const KeyObject& key) {
  for (const auto& r : kRules) {
    if (r.object_class == key.object_class && r.key_type == key.key_type) return &r;
  }
  return nullptr;
}

bool is_public(const KeyObject& key) { return key.object_class == ObjectClass::kPublicKey; }

Status check_combination(uint32_t flags, const PolicyConfig& config, std::string& why) {
  if (!config.allow_wrap_with_cipher_usage && (flags & kWrapUsage) && (flags & kCipherUsage)) {
    why = "a key may not both wrap/unwrap and encrypt/decrypt";
    return Status::kAttributeInvalid;
  }
  return Status::kOk;
}

}  // namespace

Status apply_template(const cbor::MapReader& tmpl, const PolicyConfig& config, KeyObject& key,
                      std::string& why) {
  using namespace protocol;
  const KindRule* rule = rule_for(key);
  if (rule == nullptr) {
    why = "unsupported key class and type";
    return Status::kAttributeInvalid;
  }
  Status s = tmpl.opt_text(kLabel, key.label, kMaxLabel);
  if (ok(s)) s = tmpl.opt_bytes(kId, key.id, kMaxId);
  if (ok(s) && tmpl.has(kToken)) s = tmpl.get_bool(kToken, key.token);
  std::optional<uint64_t> flags, mask;
  if (ok(s)) s = tmpl.opt_uint(kFlags, flags, UINT32_MAX);
  if (ok(s)) s = tmpl.opt_uint(kFlagsMask, mask, UINT32_MAX);
  if (!ok(s)) return s;

  const uint32_t protection_defaults =
      is_public(key) ? (kModifiable | kDestroyable) : (kSensitive | kModifiable | kDestroyable);
  uint32_t result = rule->defaults | protection_defaults;
  if (flags) {
    const uint32_t m = mask ? static_cast<uint32_t>(*mask) : kBasic;
    result = (result & ~m) | (static_cast<uint32_t>(*flags) & m);
    if ((m & kDeviceSet) != 0) {
      why = "always-sensitive and never-extractable are set by the device";
      return Status::kAttributeReadOnly;
    }
    if ((static_cast<uint32_t>(*flags) & m & kTrusted) != 0) {
      why = "only the officer marks a key trusted (SetKeyAttributes)";
      return Status::kAttributeReadOnly;
    }
  }
  const uint32_t allowed =
      rule->allowed | (is_public(key) ? (kModifiable | kDestroyable) : kProtection);
  if ((result & ~allowed) != 0) {
    why = "attributes not allowed for this key: " + flags_to_string(result & ~allowed);
    return Status::kAttributeInvalid;
  }
  s = check_combination(result, config, why);
  if (!ok(s)) return s;
  key.flags = result;

  if (const cbor::Value* list = tmpl.get(kAllowedMechanisms)) {
    if (!list->is(cbor::Value::Type::kArray)) return Status::kMalformedBody;
    if (list->items().size() > kMaxAllowedMechanisms) return Status::kFieldTooLarge;
    key.allowed_mechanisms.clear();
    for (const auto& item : list->items()) {
      if (!item.is(cbor::Value::Type::kUint) || item.as_uint() > UINT32_MAX) {
        return Status::kMalformedBody;
      }
      key.allowed_mechanisms.push_back(static_cast<Mechanism>(item.as_uint()));
    }
  }
  return Status::kOk;
}

void set_origin(KeyObject& key, KeyOrigin origin, const KeyObject* base) {
  key.flags &= ~kDeviceSet;
  key.origin = origin;
  if (is_public(key)) {
    key.local = origin == KeyOrigin::kGenerated;
    return;
  }
  const bool sensitive = key.has(kSensitive);
  const bool extractable = key.has(kExtractable);
  switch (origin) {
    case KeyOrigin::kGenerated:
      key.local = true;
      if (sensitive) key.flags |= kAlwaysSensitive;
      if (!extractable) key.flags |= kNeverExtractable;
      break;
    case KeyOrigin::kDerived:
      // PKCS#11: inherited from the base key.
      key.local = false;
      if (sensitive && base != nullptr && base->has(kAlwaysSensitive))
        key.flags |= kAlwaysSensitive;
      if (!extractable && base != nullptr && base->has(kNeverExtractable)) {
        key.flags |= kNeverExtractable;
      }
      break;
    case KeyOrigin::kUnwrapped:
      // It existed outside in wrapped form: never "always sensitive".
      key.local = false;
      // Whatever a trusted key unwraps may have been wrap-with-trusted
      // before; keep it so, or unwrap-then-rewrap would launder it.
      if (base != nullptr && base->has(kTrusted)) key.flags |= kWrapWithTrusted;
      break;
    case KeyOrigin::kCreated:
      key.local = false;
      break;
  }
}

Status check_attribute_change(const KeyObject& key, uint32_t new_flags, uint32_t mask,
                              bool changes_label_or_id, Role role, const PolicyConfig& config,
                              std::string& why) {
  if ((mask & ~kAll) != 0) {
    why = "unknown attribute bits";
    return Status::kAttributeInvalid;
  }
  const uint32_t wanted = (key.flags & ~mask) | (new_flags & mask);
  const uint32_t changed = wanted ^ key.flags;
  if (changed == 0 && !changes_label_or_id) return Status::kOk;
  if ((changed & kDeviceSet) != 0) {
    why = "always-sensitive and never-extractable are set by the device";
    return Status::kAttributeReadOnly;
  }
  if ((changed & (kModifiable | kDestroyable)) != 0) {
    why = "modifiable and destroyable are fixed at creation";
    return Status::kAttributeReadOnly;
  }
  // Only the officer marks keys trusted, and it may change nothing else.
  if (role == Role::kCryptoOfficer) {
    if ((changed & ~kTrusted) != 0 || changes_label_or_id) {
      why = "the officer may only change the trusted attribute";
      return Status::kAttributeReadOnly;
    }
    return Status::kOk;
  }
  if ((changed & kTrusted) != 0) {
    why = "only the officer marks a key trusted";
    return Status::kAttributeReadOnly;
  }
  if (!key.has(kModifiable)) {
    why = "key is not modifiable";
    return Status::kActionProhibited;
  }
  if ((changed & kSensitive) && key.has(kSensitive)) {
    why = "sensitive cannot be cleared once set";
    return Status::kAttributeReadOnly;
  }
  if ((changed & kExtractable) && !key.has(kExtractable)) {
    why = "extractable cannot be set once cleared";
    return Status::kAttributeReadOnly;
  }
  if ((changed & kWrapWithTrusted) && key.has(kWrapWithTrusted)) {
    why = "wrap-with-trusted cannot be cleared once set";
    return Status::kAttributeReadOnly;
  }
  const KindRule* rule = rule_for(key);
  const uint32_t allowed = (rule ? rule->allowed : 0) |
                           (is_public(key) ? (kModifiable | kDestroyable) : kProtection) |
                           kDeviceSet | kTrusted;
  if ((wanted & ~allowed) != 0) {
    why = "attributes not allowed for this key: " + flags_to_string(wanted & ~allowed);
    return Status::kAttributeInvalid;
  }
  return check_combination(wanted, config, why);
}

Status check_pair_combination(uint32_t public_flags, uint32_t private_flags,
                              const PolicyConfig& config, std::string& why) {
  const Status s = check_combination(public_flags | private_flags, config, why);
  if (!ok(s)) why = "a key pair may not both wrap/unwrap and encrypt/decrypt";
  return s;
}

Status check_copy(const KeyObject& object, uint32_t new_flags, uint32_t mask, std::string& why) {
  if (!object.copyable()) {
    why = object.pair_handle != 0
              ? "a key pair's halves are not copied (a copy could take usages across the pair)"
              : "only a key that is not modifiable is copied (copies could split its usages)";
    return Status::kActionProhibited;
  }
  if ((mask & ~kAll) != 0) {
    why = "unknown attribute bits";
    return Status::kAttributeInvalid;
  }
  const uint32_t wanted = (object.flags & ~mask) | (new_flags & mask);
  const uint32_t gained = wanted & ~object.flags;
  const uint32_t lost = object.flags & ~wanted;
  if (!object.is_key()) {
    if (((gained | lost) & ~(kModifiable | kDestroyable)) != 0) {
      why = "certificates and data objects take only modifiable and destroyable";
      return Status::kAttributeInvalid;
    }
    return Status::kOk;
  }
  if (((gained | lost) & (kDeviceSet | kTrusted)) != 0) {
    why = "always-sensitive, never-extractable and trusted are not set by a copy";
    return Status::kAttributeReadOnly;
  }
  if ((gained & ~(kSensitive | kWrapWithTrusted)) != 0) {
    why = "a copy may not gain " + flags_to_string(gained & ~(kSensitive | kWrapWithTrusted));
    return Status::kAttributeReadOnly;
  }
  if ((lost & (kSensitive | kWrapWithTrusted)) != 0) {
    why = "a copy may not clear " + flags_to_string(lost & (kSensitive | kWrapWithTrusted));
    return Status::kAttributeReadOnly;
  }
  return Status::kOk;
}

Status check_destroy(const KeyObject& key) {
  return key.has(kDestroyable) ? Status::kOk : Status::kActionProhibited;
}

uint32_t security_strength(const KeyObject& key) {
  switch (key.key_type) {
    case KeyType::kAes:
      return key.key_bits;
    case KeyType::kGenericSecret:
      return std::min<uint32_t>(key.key_bits, 256);
    case KeyType::kRsa:
      if (key.key_bits >= 15360) return 256;
      if (key.key_bits >= 7680) return 192;
      if (key.key_bits >= 3072) return 128;
      if (key.key_bits >= 2048) return 112;
      return 80;
    case KeyType::kEc:
      return key.key_bits >= 512 ? 256 : key.key_bits / 2;
    case KeyType::kEcEdwards:
    case KeyType::kEcMontgomery:
      return 128;
  }
  return 0;
}

Status check_wrap(const KeyObject& wrapping, const KeyObject& target) {
  if (target.object_class == ObjectClass::kPublicKey) return Status::kKeyTypeMismatch;
  if (!target.has(kExtractable)) return Status::kKeyNotExtractable;
  if (target.has(kWrapWithTrusted) && !wrapping.has(kTrusted)) return Status::kKeyNotWrappable;
  if (security_strength(wrapping) < security_strength(target)) {
    return Status::kWrappingKeyTooWeak;
  }
  return Status::kOk;
}

Status check_allowed_mechanism(const KeyObject& key, Mechanism m) {
  if (key.allowed_mechanisms.empty()) return Status::kOk;
  return std::find(key.allowed_mechanisms.begin(), key.allowed_mechanisms.end(), m) !=
                 key.allowed_mechanisms.end()
             ? Status::kOk
             : Status::kKeyUsageNotAllowed;
}

}  // namespace ihsm::device
