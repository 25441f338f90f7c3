#include "device/device.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <ctime>

#include "common/audit.h"
#include "common/cbor.h"
#include "common/cose.h"
#include "device/boot/dice.h"
#include "device/boot/handoff.h"
#include "device/fips/state.h"
#include "device/fips/zeroize.h"
#include "protocol/fields.h"

// docs/key-hierarchy.md: every key below comes from the device unique
// secret; the labels here are part of the derivation and never change.

namespace ihsm::device {
namespace {

constexpr const char* kDeviceFile = "device.cbor";
constexpr const char* kPartitionsFile = "partitions.cbor";
constexpr uint64_t kStateVersion = 1;

enum DeviceField : uint64_t {
  kDevVersion = 1,
  kDevUniqueSecret = 2,  // before the boot stage held it: moved to boot.cbor
  kDevIdentityKey = 3,
  kDevPinTransportKey = 4,
  kDevCreated = 5,
};

enum PartitionField : uint64_t {
  kPartVersion = 1,
  kPartNextId = 2,
  kPartRecords = 3,
};

enum RecordField : uint64_t {
  kRecId = 1,
  kRecName = 2,
  kRecUid = 3,
  kRecGid = 4,
  kRecMaxSessions = 5,
  kRecIdentityKey = 6,  // sealed PKCS#8
  kRecOfficer = 7,
  kRecUser = 8,
  kRecMaskingSeed = 9,  // sealed 32 bytes
};

constexpr size_t kMaskingSeedSize = 32;
constexpr uint64_t kIncarnationBlock = 4096;
constexpr const char* kIncarnationMeta = "key_incarnation";

std::span<const uint8_t> as_bytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

void put_be32(Bytes& out, uint32_t v) {
  for (int i = 3; i >= 0; --i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

Bytes seed_aad(PartitionId id) {
  Bytes aad = {'s', 'e', 'e', 'd'};
  put_be32(aad, id);
  return aad;
}

Bytes partition_aad(PartitionId id) {
  const std::string_view label = "ihsm-partition-v1";
  Bytes aad(label.begin(), label.end());
  for (int i = 3; i >= 0; --i) aad.push_back(static_cast<uint8_t>(id >> (8 * i)));
  return aad;
}

}  // namespace

Status Device::start(BootHandoff& boot) {
  config_ = boot.config;
  state_ = &boot.state;
  tamper_.configure(config_.tamper);
  officer_logins_.configure(config_.tamper.officer_failures);
  firmware_version_ = boot.firmware_version;
  security_version_ = boot.security_version;
  min_security_version_ = boot.min_security_version;
  measurement_ = boot.measurement;
  trusted_firmware_key_ = boot.trusted_firmware_key;
  alias_cert_der_ = boot.alias_cert_der;
  deviceid_cert_der_ = boot.deviceid_cert_der;
  storage_key_ = std::move(boot.storage_key);
  masking_root_ = std::move(boot.masking_root);
  backup_root_ = std::move(boot.backup_root);
  Status s = crypto::private_key_from_der(boot.alias_key_der.reveal(), alias_key_);
  boot.alias_key_der = SecretBytes();
  if (!ok(s)) return s;
  owner_uid_ = static_cast<uint32_t>(::geteuid());
  hardening_ = &boot.hardening;
  s = state_->exists(kDeviceFile) ? load() : provision();
  if (!ok(s)) return s;
  s = crypto::public_key_der(identity_key_.get(), identity_public_der_);
  if (!ok(s)) return s;
  s = crypto::public_key_der(pin_transport_key_.get(), pin_transport_public_der_);
  if (!ok(s)) return s;
  Bytes digest;
  s = crypto::digest(crypto::Hash::kSha256, identity_public_der_, digest);
  if (!ok(s)) return s;
  fingerprint_.assign(digest.begin(), digest.begin() + kDeviceFingerprintSize);
  // The identity key vouches for the PIN transport key, so a client can
  // tell it encrypts PINs to this device.
  s = crypto::ecdsa_sign_sha384_der(identity_key_.get(), pin_transport_public_der_,
                                    pin_transport_signature_);
  if (!ok(s)) return s;
  s = load_partitions();
  if (s == Status::kStorageFailure) {
    // The integrity sensor at load: the partition records do not parse or
    // authenticate. The device starts without them and without its store
    // (whose objects would otherwise be purged as orphans) and the policy
    // responds (default: lock).
    partitions_.clear();
    tamper_.report(fips::kSensorIntegrity,
                   "partitions.cbor fails to parse or authenticate at load");
    return Status::kOk;
  }
  return ok(s) ? open_store() : s;
}

Status Device::issue_partition_cert(Partition& p) const {
  return boot::make_partition_cert(alias_key_.get(), alias_cert_der_, p.identity_key.get(), p.id,
                                   p.identity_cert_der);
}

Status Device::derive_masking_key(PartitionId id, std::span<const uint8_t> seed,
                                  SecretBytes& out) const {
  if (seed.size() != kMaskingSeedSize) return Status::kInternalError;
  SecretBytes context(4 + seed.size());
  auto c = context.reveal_mutable();
  for (int i = 0; i < 4; ++i) c[i] = static_cast<uint8_t>(id >> (24 - 8 * i));
  std::copy(seed.begin(), seed.end(), c.begin() + 4);
  out = SecretBytes(kMaskingKeySize);
  return crypto::kbkdf_counter_hmac(crypto::Hash::kSha384, masking_root_.reveal(),
                                    as_bytes("ihsm partition masking key v1"), context.reveal(), 32,
                                    out);
}

Status Device::derive_backup_key(PartitionId id, std::span<const uint8_t> backup_secret,
                                 SecretBytes& out) const {
  SecretBytes context(4 + backup_secret.size());
  auto c = context.reveal_mutable();
  for (int i = 0; i < 4; ++i) c[i] = static_cast<uint8_t>(id >> (24 - 8 * i));
  std::copy(backup_secret.begin(), backup_secret.end(), c.begin() + 4);
  out = SecretBytes(32);
  return crypto::kbkdf_counter_hmac(crypto::Hash::kSha384, backup_root_.reveal(),
                                    as_bytes("ihsm partition backup key v1"), context.reveal(), 32,
                                    out);
}

Status Device::open_store() {
  Status s = store::ObjectStore::open(state_->path() + "/" + store::ObjectStore::kFileName, store_);
  if (!ok(s)) return s;
  store::AuditHooks hooks;
  hooks.sign = [this](uint64_t seq, std::span<const uint8_t> hash, Bytes& out) {
    return sign_audit_checkpoint(seq, hash, out);
  };
  hooks.archive = [this](const std::string& name, std::span<const uint8_t> data) {
    return state_->write_atomic(name, data);
  };
  hooks.checkpoint_every = config_.audit_checkpoint_every;
  hooks.max_records = config_.audit_max_records;
  hooks.device_uid = owner_uid_;
  for (const uint8_t b : fingerprint_) {
    static constexpr char kHex[] = "0123456789abcdef";
    hooks.archive_tag += kHex[b >> 4];
    hooks.archive_tag += kHex[b & 15];
  }
  store_->set_audit_hooks(std::move(hooks));
  // Tamper events go into the log before their response runs; one seen
  // while loading the state (before the store existed) is recorded now.
  for (const fips::TamperEvent& e : tamper_.events()) record_tamper(e);
  tamper_.set_recorder([this](const fips::TamperEvent& e) { record_tamper(e); });
  // Objects of partitions that no longer exist (a delete interrupted
  // between the partition file and the store) are removed now.
  std::vector<PartitionId> present;
  s = store_->partitions(present);
  if (!ok(s)) return s;
  std::vector<store::WriteOp> purge;
  for (const PartitionId id : present) {
    if (partitions_.count(id) == 0) purge.push_back(store::DeletePartition{id});
  }
  return purge.empty() ? Status::kOk : store_->write(std::move(purge));
}

// A checkpoint is a COSE_Sign1 by the Alias key with x5chain [Alias,
// DeviceID]: it verifies against the DeviceID certificate, which stays the
// same for the device's lifetime, and names the firmware that signed it.
Status Device::sign_audit_checkpoint(uint64_t seq, std::span<const uint8_t> hash,
                                     Bytes& out) const {
  // A failed self-test may be the signature's own: sign nothing then. (A
  // device being zeroized or tamper-locked still signs: its last records
  // go into a signed archive, section 13.)
  if (!fips::device_state().failed_test().empty()) return Status::kDeviceError;
  audit::Checkpoint c;
  c.fingerprint = fingerprint_;
  c.seq = seq;
  c.hash.assign(hash.begin(), hash.end());
  c.time_ms = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count());
  cose::Sign1 signed_head;
  signed_head.x5chain = {alias_cert_der_, deviceid_cert_der_};
  signed_head.payload = audit::encode_checkpoint(c);
  EVP_PKEY* key = alias_key_.get();
  const Status s = cose::sign(signed_head, [key](std::span<const uint8_t> tbs, Bytes& sig) {
    return cose::es384_sign(key, tbs, sig);
  });
  if (!ok(s)) return s;
  out = cose::encode_sign1(signed_head);
  return Status::kOk;
}

namespace {

// Scalars only: a detail map can never carry a key, a PIN or a blob.
bool is_audit_scalar(const cbor::Value& v) {
  using T = cbor::Value::Type;
  return v.is(T::kUint) || v.is(T::kNegint) || v.is(T::kText) || v.is(T::kBool) ||
         (v.is(T::kBytes) && v.as_bytes().size() <= 64);
}

}  // namespace

void Device::record_tamper(const fips::TamperEvent& e) {
  AuditEvent a;
  a.event = "tamper";
  a.durable = true;
  a.status =
      e.response == fips::TamperResponse::kZeroize ? Status::kZeroized : Status::kTamperLocked;
  a.detail.set(protocol::kSensor, cbor::Value::text(e.sensor))
      .set(protocol::kResponse, cbor::Value::text(std::string(fips::response_name(e.response))))
      .set(protocol::kMessage, cbor::Value::text(e.detail.substr(0, 128)));
  if (const Status s = audit(std::move(a)); !ok(s)) {
    std::fprintf(stderr, "ihsmd: the tamper event was not recorded in the audit log: %s\n",
                 std::string(status_name(s)).c_str());
  }
}

Status Device::audit(AuditEvent event) {
  // Zeroization closes the store under this lock (exclusively): a record
  // from another thread (the tamper monitor) never meets a closing store.
  std::shared_lock store_lock(store_lifetime_mutex_);
  if (!store_) return Status::kInternalError;
  audit::Record r;
  r.time_ms = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count());
  r.event = std::move(event.event);
  if (r.event.empty() || r.event.size() > audit::kMaxEvent) return Status::kInternalError;
  r.partition = event.partition;
  r.uid = event.uid.value_or(owner_uid_);
  r.opcode = event.opcode;
  r.status = static_cast<uint16_t>(event.status);
  r.object = event.object;
  cbor::Value detail = cbor::Value::map();
  if (event.detail.is(cbor::Value::Type::kMap)) {
    for (const auto& [key, value] : event.detail.entries()) {
      if (key.is(cbor::Value::Type::kUint) && is_audit_scalar(value)) {
        detail.set(key.as_uint(), value);
      }
    }
  }
  r.detail = cbor::encode(detail);
  if (r.detail.size() > audit::kMaxDetail) r.detail = cbor::encode(cbor::Value::map());
  std::vector<store::WriteOp> ops;
  ops.push_back(store::AppendAudit{std::move(r)});
  if (event.durable) return store_->write(std::move(ops));
  store_->write_async(std::move(ops));
  return Status::kOk;
}

Status Device::audit_checkpoint(bool rotate, store::AuditHead& out) {
  std::shared_lock store_lock(store_lifetime_mutex_);
  if (!store_) return Status::kInternalError;
  auto head = std::make_shared<store::AuditHead>();
  std::vector<store::WriteOp> ops;
  ops.push_back(store::SignAuditHead{rotate, head});
  const Status s = store_->write(std::move(ops));
  if (ok(s)) out = *head;
  return s;
}

Status Device::next_key_incarnation(uint64_t& out) {
  std::lock_guard lock(incarnation_mutex_);
  if (incarnation_next_ == incarnation_limit_) {
    // Reserve a block durably before handing out any value of it, so a
    // crash can only skip values, never repeat them.
    uint64_t base = 0;
    Status s = store_->read_meta(kIncarnationMeta, base);
    if (!ok(s)) return s;
    if (base > (uint64_t{1} << 62)) return Status::kResourceExhausted;  // never, in practice
    std::vector<store::WriteOp> ops;
    ops.push_back(store::SetMeta{kIncarnationMeta, base + kIncarnationBlock});
    s = store_->write(std::move(ops));
    if (!ok(s)) return s;
    incarnation_next_ = base;
    incarnation_limit_ = base + kIncarnationBlock;
  }
  out = incarnation_next_++;
  return Status::kOk;
}

Status Device::provision() {
  // The boot stage has provisioned the device secret; these are the
  // firmware's own keys.
  crypto::Pkey identity, transport;
  Status s = Status::kOk;
  if (!ok(s = crypto::generate_ec_key(Curve::kP384, identity))) return s;
  if (!ok(s = crypto::generate_ec_key(Curve::kP384, transport))) return s;
  SecretBytes identity_der, transport_der;
  if (!ok(s = crypto::private_key_der(identity.get(), identity_der))) return s;
  if (!ok(s = crypto::private_key_der(transport.get(), transport_der))) return s;

  auto record = cbor::Value::map();
  record.set(kDevVersion, cbor::Value::uint(kStateVersion));
  record.set(kDevIdentityKey, cbor::Value::bytes(identity_der.reveal()));
  record.set(kDevPinTransportKey, cbor::Value::bytes(transport_der.reveal()));
  record.set(kDevCreated, cbor::Value::uint(static_cast<uint64_t>(std::time(nullptr))));
  Bytes encoded = cbor::encode(record);
  s = state_->write_atomic(kDeviceFile, encoded);
  // The record held private keys: leave no copy.
  secure_cleanse(encoded.data(), encoded.size());
  record.wipe();
  if (!ok(s)) return s;
  identity_key_ = std::move(identity);
  pin_transport_key_ = std::move(transport);
  return Status::kOk;
}

Status Device::load() {
  Bytes raw;
  Status s = state_->read(kDeviceFile, raw, 64 * 1024);
  if (!ok(s)) return s;
  SecretBytes file(raw);
  secure_cleanse(raw.data(), raw.size());
  cbor::Value v;
  Bytes identity, transport;
  // Every copy of the record's secrets is cleansed on every way out.
  struct Cleanse {
    cbor::Value& v;
    Bytes& a;
    Bytes& b;
    ~Cleanse() {
      v.wipe();
      for (Bytes* x : {&a, &b}) secure_cleanse(x->data(), x->size());
    }
  } cleanse{v, identity, transport};
  if (!ok(cbor::decode(file.reveal(), v))) return Status::kStorageFailure;
  cbor::MapReader r(v);
  uint64_t version = 0;
  if (!ok(r.get_uint(kDevVersion, version)) || version != kStateVersion ||
      !ok(r.get_bytes(kDevIdentityKey, identity, 4096)) ||
      !ok(r.get_bytes(kDevPinTransportKey, transport, 4096))) {
    return Status::kStorageFailure;
  }
  s = crypto::private_key_from_der(identity, identity_key_);
  if (ok(s)) s = crypto::private_key_from_der(transport, pin_transport_key_);
  if (!ok(s)) return Status::kStorageFailure;
  if (r.has(kDevUniqueSecret)) {
    // A record from before the boot stage: it has already moved the device
    // unique secret into boot.cbor, so the firmware's file drops it.
    auto record = cbor::Value::map();
    record.set(kDevVersion, cbor::Value::uint(kStateVersion));
    record.set(kDevIdentityKey, cbor::Value::bytes(identity));
    record.set(kDevPinTransportKey, cbor::Value::bytes(transport));
    if (const cbor::Value* created = r.get(kDevCreated)) record.set(kDevCreated, *created);
    Bytes encoded = cbor::encode(record);
    s = state_->write_atomic(kDeviceFile, encoded);
    secure_cleanse(encoded.data(), encoded.size());
    record.wipe();
  }
  return s;
}

Status Device::seal(std::span<const uint8_t> aad, std::span<const uint8_t> plaintext,
                    Bytes& out) const {
  Bytes iv(12), ct, tag;
  Status s = crypto::random_bytes(iv);
  if (ok(s)) s = crypto::aes_gcm_encrypt(storage_key_.reveal(), iv, aad, plaintext, ct, tag);
  if (!ok(s)) return s;
  out = iv;
  out.insert(out.end(), ct.begin(), ct.end());
  out.insert(out.end(), tag.begin(), tag.end());
  return Status::kOk;
}

Status Device::unseal(std::span<const uint8_t> aad, std::span<const uint8_t> sealed,
                      SecretBytes& out) const {
  if (sealed.size() < 28) return Status::kStorageFailure;
  return crypto::aes_gcm_decrypt(storage_key_.reveal(), sealed.first(12), aad,
                                 sealed.subspan(12, sealed.size() - 28), sealed.last(16), out);
}

Status Device::load_partitions() {
  if (!state_->exists(kPartitionsFile)) return Status::kOk;
  Bytes raw;
  Status s = state_->read(kPartitionsFile, raw);
  if (!ok(s)) return s;
  cbor::Value v;
  if (!ok(cbor::decode(raw, v))) return Status::kStorageFailure;
  cbor::MapReader r(v);
  uint64_t version = 0, next_id = 0;
  const cbor::Value* records = r.get(kPartRecords);
  if (!ok(r.get_uint(kPartVersion, version)) || version != kStateVersion ||
      !ok(r.get_uint(kPartNextId, next_id, UINT32_MAX)) || records == nullptr ||
      !records->is(cbor::Value::Type::kArray)) {
    return Status::kStorageFailure;
  }
  next_partition_id_ = static_cast<PartitionId>(next_id);
  bool upgraded = false;
  for (const auto& rec : records->items()) {
    cbor::MapReader pr(rec);
    auto p = std::make_shared<Partition>();
    uint64_t id = 0, max_sessions = 0;
    std::optional<uint64_t> uid, gid;
    Bytes sealed;
    if (!ok(pr.get_uint(kRecId, id, UINT32_MAX)) ||
        !ok(pr.get_text(kRecName, p->name, protocol::kMaxPartitionName)) ||
        !ok(pr.opt_uint(kRecUid, uid, UINT32_MAX)) || !ok(pr.opt_uint(kRecGid, gid, UINT32_MAX)) ||
        !ok(pr.get_uint(kRecMaxSessions, max_sessions, UINT32_MAX)) ||
        !ok(pr.get_bytes(kRecIdentityKey, sealed, 8192)) || pr.get(kRecOfficer) == nullptr ||
        pr.get(kRecUser) == nullptr || !ok(p->officer.from_cbor(*pr.get(kRecOfficer))) ||
        !ok(p->user.from_cbor(*pr.get(kRecUser)))) {
      return Status::kStorageFailure;
    }
    p->id = static_cast<PartitionId>(id);
    if (uid) p->bound_uid = static_cast<uint32_t>(*uid);
    if (gid) p->bound_gid = static_cast<uint32_t>(*gid);
    p->max_sessions = static_cast<uint32_t>(max_sessions);
    SecretBytes der;
    if (!ok(unseal(partition_aad(p->id), sealed, der)) ||
        !ok(crypto::private_key_from_der(der.reveal(), p->identity_key)) ||
        !ok(crypto::public_key_der(p->identity_key.get(), p->identity_public_der)) ||
        !ok(issue_partition_cert(*p))) {
      return Status::kStorageFailure;
    }
    if (pr.has(kRecMaskingSeed)) {
      Bytes sealed_seed;
      if (!ok(pr.get_bytes(kRecMaskingSeed, sealed_seed, 256)) ||
          !ok(unseal(seed_aad(p->id), sealed_seed, p->masking_seed)) ||
          p->masking_seed.size() != kMaskingSeedSize) {
        return Status::kStorageFailure;
      }
    } else {
      // A partition from before masking keys existed: it gets its seed now.
      p->masking_seed = SecretBytes(kMaskingSeedSize);
      if (!ok(crypto::random_bytes(p->masking_seed.reveal_mutable())))
        return Status::kCryptoFailure;
      upgraded = true;
    }
    if (!ok(derive_masking_key(p->id, p->masking_seed.reveal(), p->masking_key))) {
      return Status::kCryptoFailure;
    }
    partitions_.emplace(p->id, std::move(p));
  }
  return upgraded ? save_partitions() : Status::kOk;
}

Status Device::save_partitions() {
  std::lock_guard save_lock(save_mutex_);
  if (zeroized_) return Status::kZeroized;
  // The integrity sensor at each save: a state file changed behind the
  // device's back is reported, and not overwritten (it is the evidence).
  if (std::string detail; fips::IntegritySensor(*state_).changed(detail)) {
    tamper_.report(fips::kSensorIntegrity, detail + " (seen at a save)");
    const Status refusal = fips::device_state().refusal();
    return fips::device_state().operational() ? Status::kStorageFailure : refusal;
  }
  auto records = cbor::Value::array();
  PartitionId next_id = 0;
  {
    std::shared_lock lock(mutex_);
    next_id = next_partition_id_;
    for (const auto& [id, p] : partitions_) {
      SecretBytes der;
      Bytes sealed, sealed_seed;
      Status s = crypto::private_key_der(p->identity_key.get(), der);
      if (ok(s)) s = seal(partition_aad(id), der.reveal(), sealed);
      if (ok(s)) s = seal(seed_aad(id), p->masking_seed.reveal(), sealed_seed);
      if (!ok(s)) return s;
      auto rec = cbor::Value::map();
      rec.set(kRecId, cbor::Value::uint(id));
      rec.set(kRecName, cbor::Value::text(p->name));
      if (p->bound_uid) rec.set(kRecUid, cbor::Value::uint(*p->bound_uid));
      if (p->bound_gid) rec.set(kRecGid, cbor::Value::uint(*p->bound_gid));
      rec.set(kRecMaxSessions, cbor::Value::uint(p->max_sessions));
      rec.set(kRecIdentityKey, cbor::Value::bytes(sealed));
      rec.set(kRecMaskingSeed, cbor::Value::bytes(sealed_seed));
      {
        std::lock_guard plock(p->mutex);
        rec.set(kRecOfficer, p->officer.to_cbor());
        rec.set(kRecUser, p->user.to_cbor());
      }
      records.push(std::move(rec));
    }
  }
  auto file = cbor::Value::map();
  file.set(kPartVersion, cbor::Value::uint(kStateVersion));
  file.set(kPartNextId, cbor::Value::uint(next_id));
  file.set(kPartRecords, std::move(records));
  return state_->write_atomic(kPartitionsFile, cbor::encode(file));
}

Status Device::create_partition(const std::string& name, std::optional<uint32_t> uid,
                                std::optional<uint32_t> gid, uint32_t max_sessions,
                                const SecretBytes& officer_pin, const SecretBytes* user_pin,
                                std::shared_ptr<Partition>& out) {
  if (name.empty() || name.size() > protocol::kMaxPartitionName) return Status::kInvalidArgument;
  auto p = std::make_shared<Partition>();
  p->name = name;
  p->bound_uid = uid;
  p->bound_gid = gid;
  p->max_sessions = max_sessions == 0 ? config_.default_max_sessions : max_sessions;
  // Slow work (key generation, scrypt) before taking the lock.
  Status s = new_partition_secrets(*p);
  if (ok(s)) s = p->officer.set_pin(officer_pin.reveal(), config_.login);
  if (ok(s) && user_pin != nullptr) s = p->user.set_pin(user_pin->reveal(), config_.login);
  if (!ok(s)) return s;
  {
    std::unique_lock lock(mutex_);
    if (partitions_.size() >= config_.max_partitions) return Status::kResourceExhausted;
    for (const auto& [id, existing] : partitions_) {
      if (existing->name == name) return Status::kPartitionExists;
    }
    p->id = next_partition_id_++;
    // The masking key and the certificate name the id; both are quick
    // enough for the lock.
    s = derive_masking_key(p->id, p->masking_seed.reveal(), p->masking_key);
    if (ok(s)) s = issue_partition_cert(*p);
    if (!ok(s)) return s;
    partitions_.emplace(p->id, p);
  }
  s = save_partitions();
  if (!ok(s)) {
    std::unique_lock lock(mutex_);
    partitions_.erase(p->id);
    return s;
  }
  out = std::move(p);
  return Status::kOk;
}

Status Device::new_partition_secrets(Partition& p) const {
  Status s = crypto::generate_ec_key(Curve::kP384, p.identity_key);
  if (ok(s)) s = crypto::public_key_der(p.identity_key.get(), p.identity_public_der);
  if (!ok(s)) return s;
  p.masking_seed = SecretBytes(kMaskingSeedSize);
  return crypto::random_bytes(p.masking_seed.reveal_mutable());
}

void Device::end_partition_sessions_locked(const std::shared_ptr<Partition>& p) {
  for (auto it = sessions_.begin(); it != sessions_.end();) {
    if (it->second->partition == p) {
      it->second->closed = true;
      it = sessions_.erase(it);
    } else {
      ++it;
    }
  }
}

Status Device::delete_partition(PartitionId id) {
  std::shared_ptr<Partition> removed;
  {
    std::unique_lock lock(mutex_);
    const auto it = partitions_.find(id);
    if (it == partitions_.end()) return Status::kNoSuchPartition;
    removed = it->second;
    partitions_.erase(it);
    end_partition_sessions_locked(removed);
  }
  // The record goes first: objects left behind by a crash in between
  // belong to no partition and are purged at the next start.
  Status s = save_partitions();
  if (!ok(s)) return s;
  std::vector<store::WriteOp> ops;
  ops.push_back(store::DeletePartition{id});
  // Session keys die with the partition object once no operation holds it.
  return store_->write(std::move(ops));
}

Status Device::reset_partition(PartitionId id, const SecretBytes& officer_pin,
                               const SecretBytes* user_pin, std::shared_ptr<Partition>& out) {
  std::shared_ptr<Partition> old = find_partition(id);
  if (!old) return Status::kNoSuchPartition;
  auto fresh = std::make_shared<Partition>();
  fresh->id = id;
  fresh->name = old->name;
  fresh->bound_uid = old->bound_uid;
  fresh->bound_gid = old->bound_gid;
  fresh->max_sessions = old->max_sessions;
  Status s = new_partition_secrets(*fresh);
  if (ok(s)) s = issue_partition_cert(*fresh);
  if (ok(s)) s = derive_masking_key(id, fresh->masking_seed.reveal(), fresh->masking_key);
  if (ok(s)) s = fresh->officer.set_pin(officer_pin.reveal(), config_.login);
  if (ok(s) && user_pin != nullptr) s = fresh->user.set_pin(user_pin->reveal(), config_.login);
  if (!ok(s)) return s;
  {
    // Out of the table while its objects go, so no session can open on it
    // and create objects that the delete below would take along.
    std::unique_lock lock(mutex_);
    const auto it = partitions_.find(id);
    if (it == partitions_.end() || it->second != old) return Status::kNoSuchPartition;
    end_partition_sessions_locked(old);
    partitions_.erase(it);
  }
  // Objects first: a crash before the new record is written leaves the
  // old credentials over an empty partition, never new ones over old keys.
  std::vector<store::WriteOp> ops;
  ops.push_back(store::DeletePartition{id});
  s = store_->write(std::move(ops));
  {
    std::unique_lock lock(mutex_);
    partitions_.emplace(id, ok(s) ? fresh : old);
  }
  if (ok(s)) s = save_partitions();
  if (!ok(s)) return s;
  out = std::move(fresh);
  return Status::kOk;
}

std::shared_ptr<Partition> Device::find_partition(PartitionId id) const {
  std::shared_lock lock(mutex_);
  const auto it = partitions_.find(id);
  return it == partitions_.end() ? nullptr : it->second;
}

std::vector<std::shared_ptr<Partition>> Device::partitions() const {
  std::shared_lock lock(mutex_);
  std::vector<std::shared_ptr<Partition>> out;
  for (const auto& [id, p] : partitions_) out.push_back(p);
  return out;
}

Status Device::open_session(PartitionId partition, ConnectionId connection, uint32_t uid,
                            uint32_t gid, std::shared_ptr<SessionState>& out) {
  std::unique_lock lock(mutex_);
  const auto it = partitions_.find(partition);
  if (it == partitions_.end()) return Status::kNoSuchPartition;
  Partition& p = *it->second;
  if (!p.admits(uid, gid)) return Status::kPartitionAccessDenied;
  {
    std::lock_guard plock(p.mutex);
    if (p.open_sessions >= p.max_sessions) return Status::kSessionLimit;
    ++p.open_sessions;
  }
  auto s = std::make_shared<SessionState>();
  s->connection = connection;
  s->partition = it->second;
  // Random ids: a session id is not a capability (the gate also checks
  // the connection), but there is no reason to make it guessable.
  do {
    uint8_t raw[8];
    if (!ok(crypto::random_bytes(raw))) return Status::kCryptoFailure;
    s->id = 0;
    for (uint8_t b : raw) s->id = (s->id << 8) | b;
  } while (s->id == 0 || sessions_.count(s->id) != 0);
  sessions_.emplace(s->id, s);
  out = std::move(s);
  return Status::kOk;
}

std::shared_ptr<SessionState> Device::find_session(SessionId id) const {
  std::shared_lock lock(mutex_);
  const auto it = sessions_.find(id);
  return it == sessions_.end() ? nullptr : it->second;
}

void Device::close_session_locked(const std::shared_ptr<SessionState>& s) {
  s->closed = true;
  std::lock_guard plock(s->partition->mutex);
  if (s->partition->open_sessions > 0) --s->partition->open_sessions;
  s->partition->remove_session_keys(s->id);
}

Status Device::close_session(SessionId id) {
  std::unique_lock lock(mutex_);
  const auto it = sessions_.find(id);
  if (it == sessions_.end()) return Status::kInvalidSession;
  close_session_locked(it->second);
  sessions_.erase(it);
  return Status::kOk;
}

void Device::close_connection_sessions(ConnectionId connection) {
  std::unique_lock lock(mutex_);
  for (auto it = sessions_.begin(); it != sessions_.end();) {
    if (it->second->connection == connection) {
      close_session_locked(it->second);
      it = sessions_.erase(it);
    } else {
      ++it;
    }
  }
}

Status Device::zeroize(std::string_view reason) {
  // From this instant the gate refuses every key and cryptographic service.
  fips::device_state().enter_zeroized(reason);
  // Commands already past the gate finish first.
  std::unique_lock commands(command_mutex_);
  {
    std::lock_guard save_lock(save_mutex_);
    if (zeroized_) return Status::kOk;
    zeroized_ = true;  // no state file is written again
  }
  std::fprintf(stderr, "ihsmd: ZEROIZING the device (%.*s)\n", static_cast<int>(reason.size()),
               reason.data());
  // The log outlives the device: the zeroize record, then everything live
  // into a signed archive (audit-<first>-<last>.cbor: events, no secret),
  // which the destruction below keeps. Before the marker, while the log
  // and the Alias key still exist.
  {
    AuditEvent e;
    e.event = "zeroize";
    e.durable = true;
    e.detail.set(protocol::kReason, cbor::Value::text(std::string(reason.substr(0, 128))));
    store::AuditHead head;
    if (!ok(audit(std::move(e))) || !ok(audit_checkpoint(true, head))) {
      std::fprintf(stderr, "ihsmd: zeroize: the audit log could not be archived\n");
    }
  }
  // The marker first: a crash half-way through still comes back zeroized.
  const Status marker = fips::write_zeroized_marker(state_->path(), reason);

  // In memory: sessions (with their operations), every partition (its
  // objects, token cache, masking key and seed, identity key, PIN
  // verifiers), the store, the roots and the device's own keys.
  std::map<SessionId, std::shared_ptr<SessionState>> sessions;
  std::map<PartitionId, std::shared_ptr<Partition>> partitions;
  {
    std::unique_lock lock(mutex_);
    sessions.swap(sessions_);
    partitions.swap(partitions_);
  }
  for (auto& [id, session] : sessions) {
    session->closed = true;
    std::lock_guard op(session->operation_mutex);
    session->encrypt_operation.reset();
    session->decrypt_operation.reset();
    session->digest_operation.reset();
  }
  for (auto& [id, partition] : partitions) partition->zeroize();
  sessions.clear();
  partitions.clear();
  {
    std::unique_lock store_lock(store_lifetime_mutex_);
    store_.reset();  // drains the writer thread and closes SQLite
  }
  storage_key_ = SecretBytes();
  masking_root_ = SecretBytes();
  backup_root_ = SecretBytes();
  // EVP_PKEY_free cleanses the private key material.
  alias_key_.reset();
  identity_key_.reset();
  pin_transport_key_.reset();
  identity_public_der_.clear();
  pin_transport_public_der_.clear();
  pin_transport_signature_.clear();
  alias_cert_der_.clear();
  deviceid_cert_der_.clear();
  fingerprint_.clear();
  if (!ok(crypto::reseed_drbgs())) std::fprintf(stderr, "ihsmd: zeroize: DRBG reseed failed\n");

  // On disk: every state file overwritten, fsync'ed, unlinked.
  state_->forget_tracked();
  size_t destroyed = 0;
  const Status files = fips::destroy_state_files(state_->path(), destroyed);
  std::fprintf(stderr,
               "ihsmd: zeroized: %zu state file%s destroyed%s; serving the zeroized state until "
               "`ihsmd --provision`\n",
               destroyed, destroyed == 1 ? "" : "s",
               ok(files) && ok(marker) ? "" : " (A STATE FILE COULD NOT BE DESTROYED)");
  return ok(marker) ? files : marker;
}

}  // namespace ihsm::device
