// libihsm: the host API. The CLI, the PKCS#11 module and the OpenSSL
// provider reach the device only through this header.
//
// Every call returns Result<T>: a value or a Status from the one closed set
// (include/ihsm/status.h). Nothing here holds or receives key material;
// PINs are taken as SecretPin and leave the process only encrypted to the
// device (ECDH P-384 + HKDF-SHA384 + AES-256-GCM, see docs/protocol.md).
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "ihsm/audit.h"
#include "ihsm/status.h"
#include "ihsm/types.h"

namespace ihsm {

// Thrown only by Result<T>::value() on an error result.
class Error : public std::runtime_error {
 public:
  Error(Status status, std::string detail);
  Status status() const { return status_; }
  const std::string& detail() const { return detail_; }

 private:
  Status status_;
  std::string detail_;
};

// Extra facts the device sent with an error.
struct ErrorDetail {
  std::string message;
  std::optional<uint64_t> retry_after_ms;  // kPinBackoff
  std::optional<uint64_t> retries_left;    // kPinIncorrect
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}
  Result(Status status, ErrorDetail detail = {}) : status_(status), detail_(std::move(detail)) {}
  bool ok() const { return status_ == Status::kOk; }
  explicit operator bool() const { return ok(); }
  Status status() const { return status_; }
  const ErrorDetail& detail() const { return detail_; }
  // Throws ihsm::Error when !ok().
  T& value() & {
    check();
    return *value_;
  }
  const T& value() const& {
    check();
    return *value_;
  }
  T&& value() && {
    check();
    return std::move(*value_);
  }
  T* operator->() { return &value(); }
  T& operator*() { return value(); }

 private:
  void check() const {
    if (!ok()) throw Error(status_, detail_.message);
  }
  Status status_ = Status::kOk;
  ErrorDetail detail_;
  std::optional<T> value_;
};

struct Unit {};
using Done = Result<Unit>;

// A PIN held in memory that is cleansed on destruction.
class SecretPin {
 public:
  SecretPin() = default;
  explicit SecretPin(std::string_view pin);
  SecretPin(SecretPin&&) noexcept;
  SecretPin& operator=(SecretPin&&) noexcept;
  SecretPin(const SecretPin&) = delete;
  SecretPin& operator=(const SecretPin&) = delete;
  ~SecretPin();
  std::string_view reveal() const { return {data_.data(), data_.size()}; }
  bool empty() const { return data_.empty(); }

 private:
  void wipe();
  std::vector<char> data_;
};

struct PartitionOptions {
  std::string name;
  std::optional<uint32_t> bound_uid;
  std::optional<uint32_t> bound_gid;
  uint32_t max_sessions = 0;  // 0: the device default (64)
};

struct KeyPair {
  KeyHandle public_handle = 0;
  KeyHandle private_handle = 0;
};

struct GcmCiphertext {
  Bytes iv;  // 12 bytes
  Bytes ciphertext;
  Bytes tag;  // 16 bytes
};

// Search template for FindKeys; unset members match anything.
struct KeyQuery {
  std::optional<std::string> label;
  std::optional<Bytes> id;
  std::optional<ObjectClass> object_class;
};

// A firmware image the device accepted (Client::update_firmware).
struct FirmwareInfo {
  std::string version;
  uint32_t security_version = 0;
  Bytes measurement;
};

// What a copy changes (Session::copy_object); unset members stay as in
// the source.
struct ObjectCopy {
  std::optional<std::string> label;
  std::optional<Bytes> id;
  std::optional<bool> token;
  uint32_t flags = 0;  // the bits of `mask` take these values
  uint32_t mask = 0;
};

// A certificate or data object for Session::create_object.
struct ObjectSpec {
  ObjectClass object_class = ObjectClass::kCertificate;
  std::string label;
  Bytes id;
  Bytes value;                    // <= 32 KiB: a DER certificate, or any bytes
  uint32_t certificate_type = 0;  // CKC_X_509
  std::string application;        // data objects
  bool token = false;
};

// Parameters of a mechanism; each mechanism reads the members
// docs/mechanisms.md lists for it and ignores the rest.
struct MechanismParams {
  std::optional<Mechanism> hash;             // RSA-PSS, RSA-OAEP, HKDF: kSha256/384/512
  std::optional<Mechanism> mgf_hash;         // RSA-PSS, RSA-OAEP: MGF1 hash, kSha256/384/512
  std::optional<uint32_t> salt_length;       // RSA-PSS salt bytes
  Bytes source_data;                         // RSA-OAEP label
  std::optional<uint32_t> counter_bits;      // AES-CTR counter width (default 128)
  Bytes salt, info;                          // HKDF
  std::optional<uint32_t> hkdf_mode;         // 1 extract+expand (default), 2 extract, 3 expand
  Bytes peer_public;                         // ECDH: peer point, or 32 bytes for X25519
  std::optional<Mechanism> prf_hash;         // SP 800-108: HMAC hash
  Bytes kdf_label, kdf_context;              // SP 800-108
  std::optional<uint32_t> kdf_counter_bits;  // SP 800-108 counter width (default 32)
  std::optional<bool> kdf_separator;         // SP 800-108: 0x00 after the label (default true)
  std::optional<bool> kdf_length;            // SP 800-108: [L]_32 at the end (default true)
  std::optional<uint32_t> aes_key_bits;      // RSA-AES-KEY-WRAP ephemeral key (default 256)
};

// One cipher operation: mechanism, parameters, IV (GCM: 12 bytes, absent
// for a device IV; CBC: 16; CTR: the 16-byte counter block) and GCM AAD.
struct CipherSpec {
  Mechanism mechanism = Mechanism::kAesGcm;
  MechanismParams params;
  std::optional<Bytes> iv;
  Bytes aad;
};

struct CipherOutput {
  Bytes iv;    // the IV used (device-drawn for GCM without one)
  Bytes data;  // ciphertext or plaintext
  Bytes tag;   // GCM encryption only
};

// A key the device makes from a derivation or an unwrap.
struct NewKeySpec {
  ObjectClass object_class = ObjectClass::kSecretKey;
  KeyType key_type = KeyType::kAes;
  uint32_t value_length = 32;  // bytes; secret keys only (derive)
  KeyTemplate tmpl;
};

// Whether the last response said the service was FIPS-approved.
struct Approval {
  bool approved = false;
};

class Connection;

class Session {
 public:
  Session(std::shared_ptr<Connection> connection, SessionId id, PartitionId partition);
  ~Session();  // closes the session if still open (errors ignored)
  Session(Session&&) noexcept;
  Session& operator=(Session&&) noexcept;
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  SessionId id() const { return id_; }
  PartitionId partition() const { return partition_; }

  Done login(Role role, const SecretPin& pin);
  Done logout();
  Done init_user_pin(const SecretPin& pin);  // officer: set or reset the user PIN, clears its lock
  Done set_pin(const SecretPin& old_pin, const SecretPin& new_pin);  // the logged-in role's own PIN
  Done unlock_user();                                                // officer
  Result<Role> role();
  Done close();
  // Forgets the session without a word to the device (a forked child must
  // not speak on its parent's connection).
  void release();

  Result<KeyHandle> generate_aes_key(uint32_t bits, const KeyTemplate& tmpl);
  Result<KeyPair> generate_ec_key_pair(Curve curve, const KeyTemplate& public_tmpl,
                                       const KeyTemplate& private_tmpl);
  Result<KeyInfo> key_info(KeyHandle key);
  Result<std::vector<KeyInfo>> find_keys(const KeyQuery& query);
  Done destroy_key(KeyHandle key);
  Result<Bytes> public_key(KeyHandle key);  // DER SubjectPublicKeyInfo

  // ECDSA: kEcdsa takes a digest (20..64 bytes); kEcdsaSha* hash `data`
  // inside the device. The signature is r || s, each the curve's size.
  Result<Bytes> sign(KeyHandle key, Mechanism mechanism, const Bytes& data);

  // AES-GCM. Without `iv` the device draws a fresh one (approved); a
  // caller-chosen IV is accepted but not an approved service.
  Result<GcmCiphertext> encrypt_gcm(KeyHandle key, const Bytes& plaintext, const Bytes& aad,
                                    std::optional<Bytes> iv = std::nullopt);
  Result<Bytes> decrypt_gcm(KeyHandle key, const GcmCiphertext& in, const Bytes& aad);

  Result<Bytes> random(size_t length);

  // ---- the full mechanism set (docs/mechanisms.md)
  // kAesKeyGen (128/192/256) or kGenericSecretKeyGen (>= 112 bits).
  Result<KeyHandle> generate_secret_key(Mechanism mechanism, uint32_t bits,
                                        const KeyTemplate& tmpl);
  // kEcKeyPairGen (curve), kRsaKeyPairGen (rsa_bits 2048/3072/4096),
  // kEcEdwardsKeyPairGen (Ed25519), kEcMontgomeryKeyPairGen (X25519).
  Result<KeyPair> generate_key_pair(Mechanism mechanism, std::optional<Curve> curve,
                                    uint32_t rsa_bits, const KeyTemplate& public_tmpl,
                                    const KeyTemplate& private_tmpl);
  Result<Bytes> sign(KeyHandle key, Mechanism mechanism, const Bytes& data,
                     const MechanismParams& params);
  // kOk when valid; SIGNATURE_INVALID when not.
  Done verify(KeyHandle key, Mechanism mechanism, const Bytes& data, const Bytes& signature,
              const MechanismParams& params = {});
  Result<CipherOutput> encrypt(KeyHandle key, const CipherSpec& spec, const Bytes& plaintext);
  // `tag`: GCM only.
  Result<Bytes> decrypt(KeyHandle key, const CipherSpec& spec, const Bytes& ciphertext,
                        const Bytes& tag = {});
  // Multi-part: one encrypt, one decrypt and one digest at a time per session.
  Result<Bytes> encrypt_init(KeyHandle key, const CipherSpec& spec);  // returns the IV
  Result<Bytes> encrypt_update(const Bytes& plaintext);
  Result<CipherOutput> encrypt_final();  // data and (GCM) tag
  Done decrypt_init(KeyHandle key, const CipherSpec& spec);
  Result<Bytes> decrypt_update(const Bytes& ciphertext);  // GCM: empty until final
  Result<Bytes> decrypt_final(const Bytes& tag = {});
  Result<Bytes> digest(Mechanism mechanism, const Bytes& data);
  Done digest_init(Mechanism mechanism);
  Done digest_update(const Bytes& data);
  Result<Bytes> digest_final();
  // ECDH1-DERIVE, HKDF-DERIVE, SP800-108-COUNTER-KDF: a new secret key.
  Result<KeyHandle> derive_key(KeyHandle base, Mechanism mechanism, const MechanismParams& params,
                               const NewKeySpec& spec);
  Result<Bytes> wrap_key(KeyHandle wrapping_key, KeyHandle target, Mechanism mechanism,
                         const MechanismParams& params = {}, const Bytes& aad = {});
  Result<KeyHandle> unwrap_key(KeyHandle unwrapping_key, Mechanism mechanism, const Bytes& wrapped,
                               const NewKeySpec& spec, const MechanismParams& params = {},
                               const Bytes& aad = {});
  // Changes the bits of `flags` named in `mask` (PKCS#11 C_SetAttributeValue
  // rules: see docs/mechanisms.md), and optionally label and id.
  Done set_key_attributes(KeyHandle key, uint32_t flags, uint32_t mask,
                          const std::optional<std::string>& label = std::nullopt,
                          const std::optional<Bytes>& id = std::nullopt);

  // ---- objects and masked keys (docs/key-hierarchy.md)
  // A certificate or data object (object_class kCertificate or kData).
  Result<KeyHandle> create_object(const ObjectSpec& spec);
  // A key report (COSE_Sign1, signed by the partition identity key) over
  // `nonce` (<= 128 bytes): docs/attestation.md.
  Result<Bytes> attest_key(KeyHandle key, const Bytes& nonce);
  // A new object with the source's value and attributes (C_CopyObject).
  // Keys only when not modifiable and not half of a pair
  // (ACTION_PROHIBITED); a key's copy may gain no usage.
  Result<KeyHandle> copy_object(KeyHandle source, const ObjectCopy& changes = {});
  // The value of a certificate or data object (ATTRIBUTE_SENSITIVE for keys).
  Result<Bytes> object_value(KeyHandle object);
  // The object's masked blob: loadable only into this partition of this
  // device, and (for a token object) only until it is destroyed.
  Result<Bytes> export_masked_key(KeyHandle key);
  // A handle for a masked blob: the token object itself while it exists,
  // else a new session object.
  Result<KeyHandle> load_masked_key(const Bytes& blob);

  // FIPS indicator of this session's most recent response.
  bool last_approved() const;

 private:
  std::shared_ptr<Connection> connection_;
  SessionId id_ = 0;
  PartitionId partition_ = 0;
};

// One page of a partition backup (Client::backup_partition).
struct BackupPage {
  Bytes header;                // first page only
  std::vector<Bytes> records;  // masked records
};

// What a restore did with the records it was given.
struct RestoreCount {
  uint64_t restored = 0;
  uint64_t skipped = 0;  // already present
};

class Client {
 public:
  // Connects to `socket_path`, or to transport::default_socket_path()
  // (IHSM_SOCKET, then the per-user and system defaults) when empty. The
  // connection then asks for the shared-memory queue (the fast path,
  // docs/wire-protocol.md) unless IHSM_TRANSPORT=socket; a device that
  // gives none is served on the socket alone.
  static Result<Client> connect(const std::string& socket_path = "");

  Result<DeviceInfo> device_info();
  Result<PartitionInfo> create_partition(const PartitionOptions& options,
                                         const SecretPin& officer_pin,
                                         const SecretPin* user_pin = nullptr);
  Result<std::vector<PartitionInfo>> list_partitions();
  Result<PartitionInfo> find_partition(const std::string& name);  // by name via list
  Done delete_partition(PartitionId id);
  Done unlock_officer(PartitionId id);  // owner
  // Owner: every object of the partition is destroyed; new PINs, identity
  // key and masking key (PKCS#11 C_InitToken on an existing token).
  Result<PartitionInfo> reset_partition(PartitionId id, const SecretPin& officer_pin,
                                        const SecretPin* user_pin = nullptr);
  // Owner: streams the partition's masked records, page by page, to
  // `sink` (the first page carries the header). With a backup secret
  // (8..64 bytes) the backup also restores after a partition reset.
  Done backup_partition(PartitionId id, const SecretPin* backup_secret,
                        const std::function<Done(const BackupPage&)>& sink);
  // Owner: restores records of a backup of this device into partition `id`
  // (call once per page; records <= 512 and <= 768 KiB per call).
  Result<RestoreCount> restore_partition(PartitionId id, const Bytes& header,
                                         const std::vector<Bytes>& records,
                                         const SecretPin* backup_secret = nullptr);
  Result<Session> open_session(PartitionId partition);

  // ---- attestation and firmware (docs/attestation.md)
  // DER certificates: DeviceID, Alias, and the partition's when given.
  Result<std::vector<Bytes>> certificates(std::optional<PartitionId> partition = std::nullopt);
  // A device report (COSE_Sign1, signed by the Alias key) over `nonce`.
  Result<Bytes> attest_device(const Bytes& nonce);
  // Owner: checks the signed image in `dir` (on the daemon's side) and
  // installs it for the next start.
  Result<FirmwareInfo> update_firmware(const std::string& dir);
  // Runs the device's self-tests again (anyone may). A failure puts the
  // device in its error state; the report says which test failed.
  Result<SelfTestReport> self_test();

  // ---- the audit log (owner; docs/security-policy.md, "Audit log")
  // Every live record after `after`, page by page, with the signed
  // checkpoints that cover them (and the one anchoring the live log).
  Result<AuditLog> read_audit(uint64_t after = 0);
  // A checkpoint the device signs over its current head (COSE_Sign1);
  // with `rotate` it first moves the live log into an archive file.
  Result<Bytes> audit_checkpoint(bool rotate = false);
  // ---- zeroization and tamper response (docs/security-policy.md)
  // Owner (the device's Crypto Officer): destroys every key and secret of
  // the device, in memory and on disk; every masked blob and backup of it
  // becomes unusable. The device then reports "zeroized" and serves
  // nothing until `ihsmd --provision`. Returns the recorded reason.
  Result<std::string> zeroize(const std::string& reason = "");
  // Owner: the tamper events seen and the configured responses.
  Result<TamperStatusReport> tamper_status();

  // FIPS indicator of the most recent response on this connection.
  bool last_approved() const;
  // True when requests travel through the shared-memory queue.
  bool uses_queue() const;

  std::shared_ptr<Connection> connection() const { return connection_; }

 private:
  explicit Client(std::shared_ptr<Connection> c) : connection_(std::move(c)) {}
  std::shared_ptr<Connection> connection_;
};

// Verify an ECDSA r||s signature over `data` (hashed with the mechanism's
// digest, or taken as the digest for kEcdsa) against a DER SPKI, locally
// with OpenSSL. Used by `ihsm verify` and tests; needs no device.
Result<bool> verify_ecdsa(const Bytes& spki_der, Mechanism mechanism, const Bytes& data,
                          const Bytes& signature);
// r||s -> DER ECDSA-Sig-Value, for tools that want X9.62 form.
Result<Bytes> ecdsa_raw_to_der(const Bytes& raw);
// DER ECDSA-Sig-Value -> r||s, each half `component_size` bytes (the
// curve's size: 32, 48 or 66). kSignatureInvalid for anything but a
// canonical DER signature whose r and s fit.
Result<Bytes> ecdsa_der_to_raw(const Bytes& der, size_t component_size);

}  // namespace ihsm
