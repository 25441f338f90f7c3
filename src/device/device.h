// The device: its identity, its partitions and the sessions open on them.
// One instance per ihsmd. Lock order: Device::mutex_ before any
// Partition::mutex, never the reverse.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>

#include "common/cbor.h"
#include "common/secret.h"
#include "device/crypto/algorithms.h"
#include "device/crypto/backend.h"
#include "device/fips/sensors.h"
#include "device/fips/tamper.h"
#include "device/hardening.h"
#include "device/state_dir.h"
#include "device/store/object_store.h"
#include "device/vault/credential.h"
#include "device/vault/masking.h"
#include "device/vault/partition.h"
#include "device/vault/policy.h"
#include "ihsm/types.h"

namespace ihsm::device {

struct DeviceConfig {
  std::string state_dir;
  std::string socket_path;
  uint32_t default_max_sessions = 64;
  uint32_t max_partitions = 64;
  size_t max_connections = 256;
  // Once a frame's first byte arrives, the rest must follow within this.
  uint32_t frame_timeout_ms = 10000;
  LoginPolicy login;
  PolicyConfig policy;
  // The audit log (docs/security-policy.md, "Audit log").
  uint64_t audit_checkpoint_every = 256;  // a signed checkpoint every this many records
  uint64_t audit_max_records = 100000;    // live records before a rotation into an archive
  fips::TamperConfig tamper;
  // The shared-memory fast path (OpenQueue): slots per connection (0: no
  // queue, the socket only) and the most device workers one queue gets.
  uint32_t queue_depth = 8;
  uint32_t queue_workers = 2;
};

// One security-relevant event for the audit log. Never key material or a
// PIN: the detail map holds scalars only (numbers, text, flags, and for
// the device's own events public bytes such as the firmware measurement).
struct AuditEvent {
  std::string event;  // "boot", "self-test", "zeroize", "tamper", ... (<= 32 bytes)
  PartitionId partition = 0;
  std::optional<uint32_t> uid;  // the caller's; absent: the daemon's own uid
  uint16_t opcode = 0;          // 0: not a command
  Status status = Status::kOk;
  uint64_t object = 0;  // handle of the key or object involved, 0: none
  cbor::Value detail = cbor::Value::map();
  // Waits until the record is on disk. For the events whose loss in a
  // crash matters (zeroize, tamper, failed logins, firmware update,
  // partition delete and reset); the others commit with the next group.
  bool durable = false;
};

// A multi-part encrypt or decrypt in progress (PKCS#11 C_EncryptInit ...).
// Bounded: one cipher context, plus for GCM decryption the ciphertext held
// back until the tag is checked (at most protocol::kMaxCipherData).
struct CipherOperation {
  std::shared_ptr<const KeyObject> key;
  Mechanism mechanism = Mechanism::kAesGcm;
  crypto::AesStream stream;
  bool hold_until_final = false;
  SecretBytes held;
  bool approved = true;
};

struct DigestOperation {
  crypto::DigestStream stream;
};

struct SessionState {
  SessionId id = 0;
  ConnectionId connection = 0;
  std::shared_ptr<Partition> partition;
  std::atomic<Role> role{Role::kPublic};
  std::atomic<bool> closed{false};
  // One active operation of each kind, as PKCS#11 allows.
  std::mutex operation_mutex;
  std::optional<CipherOperation> encrypt_operation;
  std::optional<CipherOperation> decrypt_operation;
  std::optional<DigestOperation> digest_operation;
};

struct BootHandoff;

class Device {
 public:
  // Takes over what the boot stage verified and derived (the state
  // directory, roots, DICE identity) and on first start provisions the
  // device's own keys.
  Status start(BootHandoff& boot);
  const DeviceConfig& config() const { return config_; }

  // The running firmware, from its verified manifest. The security
  // version is bound into every masked record.
  const std::string& firmware_version() const { return firmware_version_; }
  uint32_t security_version() const { return security_version_; }
  uint32_t min_security_version() const { return min_security_version_; }
  // Once the boot stage has recorded this image's security version as the
  // minimum (before serving starts).
  void security_version_committed() {
    min_security_version_ = std::max(min_security_version_, security_version_);
  }
  const Bytes& measurement() const { return measurement_; }
  const Bytes& trusted_firmware_key() const { return trusted_firmware_key_; }
  // DICE: the Alias key (signs device reports and partition certificates)
  // and the DeviceID and Alias certificates.
  EVP_PKEY* alias_key() const { return alias_key_.get(); }
  const Bytes& alias_cert_der() const { return alias_cert_der_; }
  const Bytes& deviceid_cert_der() const { return deviceid_cert_der_; }

  // Identity (fixed at provisioning).
  EVP_PKEY* identity_key() const { return identity_key_.get(); }
  const Bytes& identity_public_der() const { return identity_public_der_; }
  EVP_PKEY* pin_transport_key() const { return pin_transport_key_.get(); }
  const Bytes& pin_transport_public_der() const { return pin_transport_public_der_; }
  const Bytes& pin_transport_signature() const { return pin_transport_signature_; }

  bool is_owner(uint32_t uid) const { return uid == 0 || uid == owner_uid_; }
  // The hardening measures in force (device/hardening.h); held by the boot
  // stage's handoff, which outlives the device.
  const hardening::State* hardening() const { return hardening_; }

  // Token objects and masking (docs/key-hierarchy.md).
  store::ObjectStore& store() const { return *store_; }
  const Bytes& fingerprint() const { return fingerprint_; }
  MaskingScope masking_scope(const Partition& p) const {
    return {fingerprint_, p.id, p.masking_key.reveal(), security_version_};
  }
  // KBKDF(masking root, partition id || seed): the masking key of a
  // partition, given its seed (also an old seed recovered from a backup).
  Status derive_masking_key(PartitionId id, std::span<const uint8_t> seed, SecretBytes& out) const;
  // KBKDF(backup root, partition id || owner backup secret).
  Status derive_backup_key(PartitionId id, std::span<const uint8_t> backup_secret,
                           SecretBytes& out) const;
  // A value never handed out before on this device (across restarts):
  // the fixed field of a key's GCM IVs each time a key enters memory, so
  // two incarnations of one stored key never share IVs.
  Status next_key_incarnation(uint64_t& out);

  // Partitions.
  Status create_partition(const std::string& name, std::optional<uint32_t> uid,
                          std::optional<uint32_t> gid, uint32_t max_sessions,
                          const SecretBytes& officer_pin, const SecretBytes* user_pin,
                          std::shared_ptr<Partition>& out);
  Status delete_partition(PartitionId id);
  // PKCS#11 C_InitToken on an existing token: every object of the
  // partition is destroyed, its seed, identity key and PINs are new; id,
  // name and bindings stay. Sessions on it end.
  Status reset_partition(PartitionId id, const SecretBytes& officer_pin,
                         const SecretBytes* user_pin, std::shared_ptr<Partition>& out);
  std::shared_ptr<Partition> find_partition(PartitionId id) const;
  std::vector<std::shared_ptr<Partition>> partitions() const;
  // Writes every partition record atomically. Call without holding any
  // partition mutex.
  Status save_partitions();

  // Sessions.
  Status open_session(PartitionId partition, ConnectionId connection, uint32_t uid, uint32_t gid,
                      std::shared_ptr<SessionState>& out);
  std::shared_ptr<SessionState> find_session(SessionId id) const;
  Status close_session(SessionId id);
  void close_connection_sessions(ConnectionId connection);

  ConnectionId next_connection_id() { return next_connection_.fetch_add(1) + 1; }

  // The audit log. audit() appends one record (for commands, dispatch
  // calls it from its one table of audited opcodes; device events such as
  // boot, power-on self-tests, zeroization and tamper call it directly).
  // Returns once queued, or for a durable event once committed.
  Status audit(AuditEvent event);
  // Signs the current head (and with `rotate` first archives the live log).
  Status audit_checkpoint(bool rotate, store::AuditHead& out);
  // A tamper event, as a durable "tamper" record (TamperPolicy's recorder).
  void record_tamper(const fips::TamperEvent& e);

  // Tamper response (docs/security-policy.md): the one policy, and the
  // officer-login sensor the Login command feeds.
  fips::TamperPolicy& tamper() { return tamper_; }
  const fips::TamperPolicy& tamper() const { return tamper_; }
  fips::OfficerLoginSensor& officer_logins() { return officer_logins_; }
  const StateDir& state_dir() const { return *state_; }

  // Every command holds this shared while it runs (dispatch), zeroize()
  // exclusively: the destruction never races a command that holds a key,
  // the store or a root.
  std::shared_mutex& command_mutex() { return command_mutex_; }

  // Zeroization (docs/security-policy.md, "Zeroization"): latches the
  // zeroized state at once, waits for running commands, then ends every
  // session, drops every key object and partition, closes the store,
  // cleanses every root and key of the device, and destroys the state
  // files on disk (fips/zeroize.h), leaving the ZEROIZED marker.
  // Idempotent. Never call it from inside a command other than Zeroize
  // (the command lock): tamper events go through TamperPolicy.
  Status zeroize(std::string_view reason);

 private:
  Status provision();
  Status issue_partition_cert(Partition& p) const;
  Status open_store();
  Status sign_audit_checkpoint(uint64_t seq, std::span<const uint8_t> hash, Bytes& out) const;
  Status new_partition_secrets(Partition& p) const;
  void end_partition_sessions_locked(const std::shared_ptr<Partition>& p);
  Status load();
  Status load_partitions();
  Status seal(std::span<const uint8_t> aad, std::span<const uint8_t> plaintext, Bytes& out) const;
  Status unseal(std::span<const uint8_t> aad, std::span<const uint8_t> sealed,
                SecretBytes& out) const;
  void close_session_locked(const std::shared_ptr<SessionState>& s);

  DeviceConfig config_;
  const StateDir* state_ = nullptr;  // the boot stage's, open and locked
  uint32_t owner_uid_ = 0;
  const hardening::State* hardening_ = nullptr;

  std::string firmware_version_;
  uint32_t security_version_ = 0;
  uint32_t min_security_version_ = 0;
  Bytes measurement_;
  Bytes trusted_firmware_key_;
  crypto::Pkey alias_key_;
  Bytes alias_cert_der_;
  Bytes deviceid_cert_der_;

  // Secrets (docs/key-hierarchy.md): the roots the boot stage derived from
  // the device unique secret: the key that seals partition records, and
  // the KBKDF keys of partition masking keys and of backup keys.
  SecretBytes storage_key_;
  SecretBytes masking_root_;
  SecretBytes backup_root_;
  Bytes fingerprint_;  // first 8 bytes of SHA-256(identity SPKI)
  std::unique_ptr<store::ObjectStore> store_;
  std::mutex incarnation_mutex_;
  uint64_t incarnation_next_ = 0;
  uint64_t incarnation_limit_ = 0;
  crypto::Pkey identity_key_;
  Bytes identity_public_der_;
  crypto::Pkey pin_transport_key_;
  Bytes pin_transport_public_der_;
  Bytes pin_transport_signature_;

  mutable std::shared_mutex mutex_;  // partitions_, sessions_, next_partition_id_
  std::map<PartitionId, std::shared_ptr<Partition>> partitions_;
  std::map<SessionId, std::shared_ptr<SessionState>> sessions_;
  PartitionId next_partition_id_ = 1;
  std::mutex save_mutex_;
  bool zeroized_ = false;  // under save_mutex_: no state file is written again
  std::atomic<ConnectionId> next_connection_{0};
  std::shared_mutex command_mutex_;
  // Held shared by audit() and audit_checkpoint(), which other threads
  // call outside any command; exclusively while zeroize() closes the store.
  std::shared_mutex store_lifetime_mutex_;
  fips::TamperPolicy tamper_;
  fips::OfficerLoginSensor officer_logins_{tamper_};
};

}  // namespace ihsm::device
