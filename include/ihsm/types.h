// Vocabulary shared by the device and its clients: key classes and types,
// mechanisms, roles and key attributes. Numeric values follow PKCS#11
// (CKO_*, CKK_*, CKM_*) so the PKCS#11 module maps them one to one.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ihsm {

using Bytes = std::vector<uint8_t>;
using KeyHandle = uint64_t;
using SessionId = uint64_t;
using PartitionId = uint32_t;

enum class ObjectClass : uint32_t {
  kData = 0x0,         // CKO_DATA: an application's bytes, stored next to its keys
  kCertificate = 0x1,  // CKO_CERTIFICATE: public, stored next to the key it certifies
  kPublicKey = 0x2,    // CKO_PUBLIC_KEY
  kPrivateKey = 0x3,   // CKO_PRIVATE_KEY
  kSecretKey = 0x4,    // CKO_SECRET_KEY
};

enum class KeyType : uint32_t {
  kRsa = 0x0,             // CKK_RSA
  kEc = 0x3,              // CKK_EC
  kGenericSecret = 0x10,  // CKK_GENERIC_SECRET (HMAC keys, derived secrets)
  kAes = 0x1F,            // CKK_AES
  kEcEdwards = 0x40,      // CKK_EC_EDWARDS (Ed25519)
  kEcMontgomery = 0x41,   // CKK_EC_MONTGOMERY (X25519)
};

// Named curves the device supports.
enum class Curve : uint32_t {
  kP256 = 1,
  kP384 = 2,
  kP521 = 3,
  kEd25519 = 4,
  kX25519 = 5,
};

// Mechanism parameters travel in the request's params map; see
// docs/mechanisms.md for each mechanism's parameters, limits and approval.
enum class Mechanism : uint32_t {
  kRsaKeyPairGen = 0x0000,  // CKM_RSA_PKCS_KEY_PAIR_GEN
  kRsaPkcs = 0x0001,        // CKM_RSA_PKCS: sign a DigestInfo-wrapped digest; decrypt refused
  kRsaPkcsOaep = 0x0009,    // CKM_RSA_PKCS_OAEP
  kRsaPkcsPss = 0x000D,     // CKM_RSA_PKCS_PSS: digest input
  kSha256RsaPkcs = 0x0040,  // CKM_SHA256_RSA_PKCS
  kSha384RsaPkcs = 0x0041,
  kSha512RsaPkcs = 0x0042,
  kSha256RsaPkcsPss = 0x0043,  // CKM_SHA256_RSA_PKCS_PSS
  kSha384RsaPkcsPss = 0x0044,
  kSha512RsaPkcsPss = 0x0045,
  kSha256 = 0x0250,      // CKM_SHA256
  kSha256Hmac = 0x0251,  // CKM_SHA256_HMAC
  kSha384 = 0x0260,
  kSha384Hmac = 0x0261,
  kSha512 = 0x0270,
  kSha512Hmac = 0x0271,
  kGenericSecretKeyGen = 0x0350,  // CKM_GENERIC_SECRET_KEY_GEN
  kSp800108CounterKdf = 0x03AC,   // CKM_SP800_108_COUNTER_KDF
  kEcKeyPairGen = 0x1040,         // CKM_EC_KEY_PAIR_GEN
  kEcdsa = 0x1041,                // CKM_ECDSA: the caller supplies the digest
  kEcdsaSha256 = 0x1044,          // CKM_ECDSA_SHA256: hash-then-sign inside the device
  kEcdsaSha384 = 0x1045,
  kEcdsaSha512 = 0x1046,
  kEcdh1Derive = 0x1050,             // CKM_ECDH1_DERIVE (also X25519)
  kRsaAesKeyWrap = 0x1054,           // CKM_RSA_AES_KEY_WRAP
  kEcEdwardsKeyPairGen = 0x1055,     // CKM_EC_EDWARDS_KEY_PAIR_GEN
  kEcMontgomeryKeyPairGen = 0x1056,  // CKM_EC_MONTGOMERY_KEY_PAIR_GEN
  kEddsa = 0x1057,                   // CKM_EDDSA (Ed25519, pure)
  kAesKeyGen = 0x1080,               // CKM_AES_KEY_GEN
  kAesCbc = 0x1082,                  // CKM_AES_CBC (no padding)
  kAesCbcPad = 0x1085,               // CKM_AES_CBC_PAD (PKCS#7)
  kAesCtr = 0x1086,                  // CKM_AES_CTR
  kAesGcm = 0x1087,                  // CKM_AES_GCM
  kAesKeyWrap = 0x2109,              // CKM_AES_KEY_WRAP (RFC 3394)
  kAesKeyWrapKwp = 0x210B,           // CKM_AES_KEY_WRAP_KWP (RFC 5649)
  kHkdfDerive = 0x402A,              // CKM_HKDF_DERIVE
};

// Roles of a session. kPublic is an opened, not logged-in session.
enum class Role : uint32_t {
  kPublic = 0,
  kCryptoUser = 1,     // PKCS#11 CKU_USER
  kCryptoOfficer = 2,  // PKCS#11 CKU_SO
};

// Usage and protection flags of a key, PKCS#11 attribute semantics.
namespace usage {
constexpr uint32_t kSign = 1u << 0;
constexpr uint32_t kVerify = 1u << 1;
constexpr uint32_t kEncrypt = 1u << 2;
constexpr uint32_t kDecrypt = 1u << 3;
constexpr uint32_t kDerive = 1u << 4;
constexpr uint32_t kWrap = 1u << 5;
constexpr uint32_t kUnwrap = 1u << 6;
constexpr uint32_t kSensitive = 1u << 7;
constexpr uint32_t kExtractable = 1u << 8;
// Set by the device only (PKCS#11 CKA_ALWAYS_SENSITIVE, CKA_NEVER_EXTRACTABLE).
constexpr uint32_t kAlwaysSensitive = 1u << 9;
constexpr uint32_t kNeverExtractable = 1u << 10;
constexpr uint32_t kWrapWithTrusted = 1u << 11;  // may only be wrapped by a trusted key
constexpr uint32_t kTrusted = 1u << 12;          // set by the officer only
constexpr uint32_t kModifiable = 1u << 13;
constexpr uint32_t kDestroyable = 1u << 14;
constexpr uint32_t kAll = (1u << 15) - 1;
constexpr uint32_t kDeviceSet = kAlwaysSensitive | kNeverExtractable;
// The bits a template's `flags` covers when it gives no mask: usage and
// sensitivity. Modifiable, destroyable, trusted and wrap-with-trusted keep
// their defaults unless named in the mask.
constexpr uint32_t kBasic = (1u << 9) - 1;
}  // namespace usage

// What the caller asks for when creating a key.
struct KeyTemplate {
  std::string label;  // <= 128 bytes
  Bytes id;           // <= 64 bytes
  // Unset: the device's defaults for the key kind (docs/protocol.md).
  std::optional<uint32_t> flags;
  // Which bits of `flags` the caller sets; 0 means usage::kBasic.
  uint32_t flags_mask = 0;
  // CKA_ALLOWED_MECHANISMS; empty: any mechanism the key type supports.
  std::vector<Mechanism> allowed_mechanisms;
  // CKA_TOKEN: kept in the device's durable store (and visible to every
  // session of the partition) instead of living as long as the session.
  bool token = false;

  void set(uint32_t bits, bool on) {
    if (!flags) flags = 0;
    flags_mask |= bits;
    *flags = on ? (*flags | bits) : (*flags & ~bits);
  }
};

// What the device reports about a key. Never contains secret material.
struct KeyInfo {
  KeyHandle handle = 0;
  ObjectClass object_class = ObjectClass::kSecretKey;
  KeyType key_type = KeyType::kAes;
  uint32_t key_bits = 0;  // AES key length or curve size
  std::optional<Curve> curve;
  std::string label;
  Bytes id;
  uint32_t flags = 0;
  bool local = true;                          // generated inside the device
  KeyHandle pair_handle = 0;                  // the other half of a key pair, 0 if none
  std::vector<Mechanism> allowed_mechanisms;  // empty: any the key type supports
  bool token = false;                         // a durable token object
  // Certificates and data objects: the value's size, the certificate type
  // (CKC_X_509 = 0) and the data object's application.
  uint32_t value_size = 0;
  uint32_t certificate_type = 0;
  std::string application;
};

// C_CopyObject's rule (CKA_COPYABLE). Keys are copied only when they can
// no longer change: copies that could each take different usages would
// split one key value across, say, a wrap copy and a decrypt copy
// (Clulow's attack on PKCS#11); a frozen key's copies hold at most its
// usages, which already passed the policy. A pair's halves are not copied,
// since the pair rule could not follow a copy. Certificates and data
// objects always may be.
inline bool copyable(ObjectClass object_class, uint32_t flags, KeyHandle pair_handle) {
  const bool is_key =
      object_class != ObjectClass::kData && object_class != ObjectClass::kCertificate;
  return !is_key || ((flags & usage::kModifiable) == 0 && pair_handle == 0);
}
inline bool copyable(const KeyInfo& o) { return copyable(o.object_class, o.flags, o.pair_handle); }

struct PartitionInfo {
  PartitionId id = 0;
  std::string name;
  std::optional<uint32_t> bound_uid;
  std::optional<uint32_t> bound_gid;
  uint32_t max_sessions = 0;
  uint32_t open_sessions = 0;
  bool user_pin_set = false;
  bool user_pin_locked = false;
  bool officer_pin_locked = false;
  // Failed attempts since the last good one, and how many remain before
  // the role locks (PKCS#11 "count low" and "final try").
  uint32_t user_pin_failures = 0;
  uint32_t user_pin_retries_left = 0;
  uint32_t officer_pin_failures = 0;
  uint32_t officer_pin_retries_left = 0;
  Bytes identity_public_key;  // DER SubjectPublicKeyInfo, ECC P-384
};

// A tamper event the device saw (docs/security-policy.md, "Tamper response").
struct TamperEventInfo {
  std::string sensor;    // "intrusion", "debugger", "integrity", "officer-login"
  uint64_t time = 0;     // Unix seconds
  std::string response;  // "zeroize" or "lock"
  std::string detail;    // what the sensor saw (TamperStatus, the owner's, only)
};

struct DeviceInfo {
  uint32_t protocol_revision = 0;
  std::string firmware_version;
  // "operational"; "error" when a self-test failed (then `reason` is the
  // failed test's name; docs/security-policy.md); "boot-failed" when secure
  // boot refused the firmware (then `reason` says why); "zeroized" (every
  // key destroyed; `reason` says why) until `ihsmd --provision`;
  // "tamper-locked" until ihsmd restarts (`reason` names the sensor).
  std::string state;
  std::string reason;
  std::vector<TamperEventInfo> tamper_events;  // without detail
  Bytes identity_public_key;                   // device identity, DER SPKI, ECC P-384
  Bytes pin_transport_public_key;              // DER SPKI, ECC P-384
  bool caller_is_owner = false;
  uint32_t partition_count = 0;
  Bytes measurement;  // SHA-384 of the running firmware image (docs/attestation.md)
  uint32_t security_version = 0;
  uint32_t min_security_version = 0;
  // The daemon's hardening (docs/security-policy.md, section 12); absent
  // from a device in its boot-failed state.
  struct Hardening {
    uint32_t uid = 0;            // the uid ihsmd runs as
    bool memory_locked = false;  // mlockall: nothing of the daemon is swapped
    bool core_dumps_off = false;
    bool no_new_privs = false;
    bool syscall_filter = false;  // seccomp allow-list enforced
  };
  std::optional<Hardening> hardening;
};

// Client::tamper_status (owner): the state, every event with its detail,
// and the configured response of each sensor.
struct TamperStatusReport {
  std::string state;
  std::vector<TamperEventInfo> events;
  std::vector<std::pair<std::string, std::string>> policy;  // sensor, response
};

// The on-demand self-test (Client::self_test; docs/security-policy.md).
struct SelfTestResult {
  std::string name;  // "aes-gcm", "ecdsa-p384-sha-384", ...
  bool passed = false;
};
struct SelfTestReport {
  bool passed = false;                // every test passed
  std::string failed_test;            // the first that failed, when one did
  std::vector<SelfTestResult> tests;  // every test run, in order
  uint64_t elapsed_us = 0;            // how long they took on the device
  std::string state;                  // the device's state afterwards: "operational" or "error"
};

std::string_view curve_name(Curve c);                         // "P-256"
std::optional<Curve> curve_from_name(std::string_view name);  // "P-256", "p256", "prime256v1", ...
std::string_view mechanism_name(Mechanism m);                 // "ECDSA-SHA256"
std::optional<Mechanism> mechanism_from_name(std::string_view name);
std::string_view role_name(Role r);
std::string flags_to_string(uint32_t flags);  // "sign,verify,sensitive"
std::optional<uint32_t> flags_from_string(std::string_view csv);

}  // namespace ihsm
