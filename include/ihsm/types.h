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
  kPublicKey = 0x2,   // CKO_PUBLIC_KEY
  kPrivateKey = 0x3,  // CKO_PRIVATE_KEY
  kSecretKey = 0x4,   // CKO_SECRET_KEY
};

enum class KeyType : uint32_t {
  kEc = 0x3,    // CKK_EC
  kAes = 0x1F,  // CKK_AES
};

// Named curves the device supports.
enum class Curve : uint32_t {
  kP256 = 1,
  kP384 = 2,
  kP521 = 3,
};

enum class Mechanism : uint32_t {
  kEcKeyPairGen = 0x1040,  // CKM_EC_KEY_PAIR_GEN
  kEcdsa = 0x1041,         // CKM_ECDSA: the caller supplies the digest
  kEcdsaSha256 = 0x1044,   // CKM_ECDSA_SHA256: hash-then-sign inside the device
  kEcdsaSha384 = 0x1045,
  kEcdsaSha512 = 0x1046,
  kAesKeyGen = 0x1080,  // CKM_AES_KEY_GEN
  kAesGcm = 0x1087,     // CKM_AES_GCM
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
constexpr uint32_t kAll = (1u << 9) - 1;
}  // namespace usage

// What the caller asks for when creating a key.
struct KeyTemplate {
  std::string label;  // <= 128 bytes
  Bytes id;           // <= 64 bytes
  // Unset: the device's defaults for the key kind (docs/protocol.md).
  std::optional<uint32_t> flags;
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
  bool local = true;          // generated inside the device
  KeyHandle pair_handle = 0;  // the other half of a key pair, 0 if none
};

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
  Bytes identity_public_key;  // DER SubjectPublicKeyInfo, ECC P-384
};

struct DeviceInfo {
  uint32_t protocol_revision = 0;
  std::string firmware_version;
  std::string state;               // "operational" for now
  Bytes identity_public_key;       // device identity, DER SPKI, ECC P-384
  Bytes pin_transport_public_key;  // DER SPKI, ECC P-384
  bool caller_is_owner = false;
  uint32_t partition_count = 0;
};

std::string_view curve_name(Curve c);                         // "P-256"
std::optional<Curve> curve_from_name(std::string_view name);  // "P-256", "p256", "prime256v1", ...
std::string_view mechanism_name(Mechanism m);                 // "ECDSA-SHA256"
std::optional<Mechanism> mechanism_from_name(std::string_view name);
std::string_view role_name(Role r);
std::string flags_to_string(uint32_t flags);  // "sign,verify,sensitive"
std::optional<uint32_t> flags_from_string(std::string_view csv);

}  // namespace ihsm
