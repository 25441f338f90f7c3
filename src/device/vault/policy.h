// Key policy with PKCS#11 semantics, in one place: which attributes a key
// may carry, how they may change, and which wraps are allowed. The gate
// and the key-creating commands call these; no handler decides policy on
// its own.
#pragma once

#include <string>

#include "common/cbor.h"
#include "device/vault/key_object.h"
#include "ihsm/status.h"

namespace ihsm::device {

struct PolicyConfig {
  // Off by default: a key that may both wrap/unwrap and encrypt/decrypt
  // lets a caller decrypt a wrapped key (or unwrap a key it encrypted
  // itself) and so read or plant key material.
  bool allow_wrap_with_cipher_usage = false;
};

// Reads label, id, flags (+ mask) and allowed mechanisms from a template
// map into `key`, over the defaults for key->object_class / key->key_type,
// and checks them against what that kind of key may carry. `key` must
// have its class and type set.
Status apply_template(const cbor::MapReader& tmpl, const PolicyConfig& config, KeyObject& key,
                      std::string& why);
// Sets the device-computed attributes once the key exists. For derived
// keys `base` is the key derived from; for unwrapped keys, the unwrapping key.
void set_origin(KeyObject& key, KeyOrigin origin, const KeyObject* base);

// SetKeyAttributes: may `role` change `key` to `new_flags` (only the bits
// in `mask`), and the label or id? kAttributeReadOnly or kActionProhibited.
Status check_attribute_change(const KeyObject& key, uint32_t new_flags, uint32_t mask,
                              bool changes_label_or_id, Role role, const PolicyConfig& config,
                              std::string& why);

// The wrap/cipher rule for a key pair, which counts as one key: a public
// key that wraps and a private key that decrypts are Clulow's attack
// across the pair (wrap K to the public key, decrypt the blob with the
// private one). kAttributeInvalid unless the config lifts the rule.
Status check_pair_combination(uint32_t public_flags, uint32_t private_flags,
                              const PolicyConfig& config, std::string& why);

// CopyObject: may `object` be copied with flags changed to `new_flags`
// (bits in `mask`)? Keys only when KeyObject::copyable(); a key's copy
// may become more protected (sensitive, wrap-with-trusted) and lose
// usages and protections the owner may drop (extractable, modifiable,
// destroyable), never gain a usage. Certificates and data objects may
// set modifiable and destroyable freely. kActionProhibited or
// kAttributeReadOnly.
Status check_copy(const KeyObject& object, uint32_t new_flags, uint32_t mask, std::string& why);

Status check_destroy(const KeyObject& key);

// May `wrapping` wrap `target`? kKeyNotExtractable, kKeyNotWrappable,
// kWrappingKeyTooWeak.
Status check_wrap(const KeyObject& wrapping, const KeyObject& target);

// Security strength in bits (SP 800-57 Part 1, Table 2).
uint32_t security_strength(const KeyObject& key);

// CKA_ALLOWED_MECHANISMS: kKeyUsageNotAllowed when the list excludes `m`.
Status check_allowed_mechanism(const KeyObject& key, Mechanism m);

}  // namespace ihsm::device
