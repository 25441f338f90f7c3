// Partition backup and restore (owner). A backup is the partition's
// stored records, already masked, plus a header; it restores on the same
// device only. docs/key-hierarchy.md describes the format and the keys.
#include <ctime>

#include "device/commands/commands.h"
#include "device/crypto/algorithms.h"
#include "device/object_table.h"

namespace ihsm::device::commands {

using cbor::Value;
using namespace protocol;

namespace {

constexpr uint64_t kBackupFormat = 1;
constexpr size_t kKeyIdSize = 16;
constexpr size_t kEscrowSize = 12 + 32 + 16;  // IV, seed, tag

// Backup header map keys (part of the backup format).
enum HeaderField : uint64_t {
  kHdrFormat = 1,
  kHdrDevice = 2,
  kHdrPartition = 3,
  kHdrName = 4,
  kHdrCreated = 5,
  kHdrMaskingKeyId = 6,
  kHdrSeedEscrow = 7,
};

std::span<const uint8_t> as_bytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

// Names a masking key without revealing it: tells a restore whether the
// records are under the partition's current key.
Status masking_key_id(std::span<const uint8_t> masking_key, Bytes& out) {
  const auto label = as_bytes("ihsm-masking-key-id-v1");
  SecretBytes input(label.size() + masking_key.size());
  auto in = input.reveal_mutable();
  std::copy(label.begin(), label.end(), in.begin());
  std::copy(masking_key.begin(), masking_key.end(), in.begin() + label.size());
  Bytes digest;
  const Status s = crypto::digest(crypto::Hash::kSha256, input.reveal(), digest);
  if (!ok(s)) return s;
  out.assign(digest.begin(), digest.begin() + kKeyIdSize);
  return Status::kOk;
}

Bytes escrow_aad(const Device& device, PartitionId id) {
  const auto label = as_bytes("ihsm-backup-escrow-v1");
  const Bytes& fingerprint = device.fingerprint();
  // Sized up front (GCC 12 misreads a growing insert as out of bounds).
  Bytes aad(label.size() + fingerprint.size());
  std::copy(label.begin(), label.end(), aad.begin());
  std::copy(fingerprint.begin(), fingerprint.end(), aad.begin() + label.size());
  for (int i = 3; i >= 0; --i) aad.push_back(static_cast<uint8_t>(id >> (8 * i)));
  return aad;
}

Status open_backup_secret(CommandContext& ctx, const cbor::MapReader& in, PartitionId id,
                          SecretBytes& secret, Reply& out) {
  const Status s = open_pin_envelope(ctx, in, kPinEnvelope, id, Role::kPublic, secret);
  if (s == Status::kPinInvalid || (ok(s) && secret.size() < kMinBackupSecret)) {
    return fail(out, Status::kInvalidArgument, "a backup secret has 8 to 64 bytes");
  }
  return s;
}

Status make_header(CommandContext& ctx, const Partition& p, const SecretBytes* secret, Bytes& out) {
  auto header = Value::map();
  header.set(kHdrFormat, Value::uint(kBackupFormat));
  header.set(kHdrDevice, Value::bytes(ctx.device.fingerprint()));
  header.set(kHdrPartition, Value::uint(p.id));
  header.set(kHdrName, Value::text(p.name));
  header.set(kHdrCreated, Value::uint(static_cast<uint64_t>(std::time(nullptr))));
  Bytes key_id;
  Status s = masking_key_id(p.masking_key.reveal(), key_id);
  if (!ok(s)) return s;
  header.set(kHdrMaskingKeyId, Value::bytes(key_id));
  if (secret != nullptr) {
    // The seed, under a key only this device can derive and only with the
    // owner's secret: what lets the records open after a reset.
    SecretBytes backup_key;
    s = ctx.device.derive_backup_key(p.id, secret->reveal(), backup_key);
    uint8_t iv[12];
    if (ok(s)) s = crypto::random_bytes(iv);
    Bytes ciphertext, tag;
    if (ok(s)) {
      s = crypto::aes_gcm_encrypt(backup_key.reveal(), iv, escrow_aad(ctx.device, p.id),
                                  p.masking_seed.reveal(), ciphertext, tag);
    }
    if (!ok(s)) return s;
    Bytes escrow(std::begin(iv), std::end(iv));
    escrow.insert(escrow.end(), ciphertext.begin(), ciphertext.end());
    escrow.insert(escrow.end(), tag.begin(), tag.end());
    header.set(kHdrSeedEscrow, Value::bytes(escrow));
  }
  out = cbor::encode(header);
  return Status::kOk;
}

}  // namespace

Status PartitionBackup(CommandContext& ctx, const cbor::MapReader& in, Reply& out) {
  Status s;
  auto p = partition_named(ctx, in, s);
  if (!p) return s;
  std::optional<uint64_t> after;
  s = in.opt_uint(kAfter, after, store::kSessionHandleBase);
  if (!ok(s)) return s;
  if (!after) {
    // The first page carries the header (and the escrowed seed, if the
    // owner gave a backup secret).
    SecretBytes secret;
    const bool with_secret = in.has(kPinEnvelope);
    if (with_secret) {
      s = open_backup_secret(ctx, in, p->id, secret, out);
      if (!ok(s)) return s;
    }
    Bytes header;
    s = make_header(ctx, *p, with_secret ? &secret : nullptr, header);
    if (!ok(s)) return s;
    out.body.set(kBackupHeader, Value::bytes(header));
  }
  store::Query q;
  q.partition = p->id;
  q.after = after.value_or(0);
  q.limit = kMaxBackupPage + 1;
  std::vector<store::ObjectRow> rows;
  s = ctx.device.store().find(q, rows);
  if (!ok(s)) return s;
  auto records = Value::array();
  size_t bytes = 0, taken = 0;
  KeyHandle last = q.after;
  for (const auto& row : rows) {
    if (taken == kMaxBackupPage || bytes + row.blob.size() > kMaxBackupPageBytes) break;
    records.push(Value::bytes(row.blob));
    bytes += row.blob.size();
    last = row.handle;
    ++taken;
  }
  out.body.set(kRecords, std::move(records));
  out.body.set(kMore, Value::boolean(taken < rows.size()));
  out.body.set(kAfter, Value::uint(last));
  return Status::kOk;
}

Status PartitionRestore(CommandContext& ctx, const cbor::MapReader& in, Reply& out) {
  Status s;
  auto p = partition_named(ctx, in, s);
  if (!p) return s;
  Bytes header_bytes;
  s = in.get_bytes(kBackupHeader, header_bytes, 4096);
  if (!ok(s)) return s;
  const Value* records = in.get(kRecords);
  if (records == nullptr) return Status::kMissingField;
  if (!records->is(Value::Type::kArray) || records->items().size() > kMaxBackupPage) {
    return Status::kMalformedBody;
  }

  Value header;
  if (!ok(cbor::decode(header_bytes, header))) return Status::kBackupInvalid;
  const cbor::MapReader hr(header);
  uint64_t format = 0, source_id = 0;
  Bytes device, key_id, escrow;
  if (!hr.is_map() || !ok(hr.get_uint(kHdrFormat, format)) || format != kBackupFormat ||
      !ok(hr.get_bytes(kHdrDevice, device, kDeviceFingerprintSize)) ||
      !ok(hr.get_uint(kHdrPartition, source_id, UINT32_MAX)) ||
      !ok(hr.get_bytes(kHdrMaskingKeyId, key_id, kKeyIdSize)) ||
      !ok(hr.opt_bytes(kHdrSeedEscrow, escrow, kEscrowSize))) {
    return Status::kBackupInvalid;
  }
  if (device != ctx.device.fingerprint()) return Status::kBackupWrongDevice;

  // Which key the records are under: the partition's current one, or an
  // earlier one recovered from the escrowed seed with the owner's secret.
  const PartitionId source = static_cast<PartitionId>(source_id);
  Bytes current_id;
  s = masking_key_id(p->masking_key.reveal(), current_id);
  if (!ok(s)) return s;
  SecretBytes source_key;
  if (source == p->id && key_id == current_id) {
    source_key = p->masking_key.clone();
  } else if (!in.has(kPinEnvelope) || escrow.size() != kEscrowSize) {
    return fail(out, Status::kBackupSecretRequired,
                escrow.empty() ? "the partition was reset or is another one, and the backup "
                                 "was made without a backup secret"
                               : "the partition was reset or is another one: give the backup "
                                 "secret");
  } else {
    SecretBytes secret, backup_key, seed;
    s = open_backup_secret(ctx, in, p->id, secret, out);
    if (ok(s)) s = ctx.device.derive_backup_key(source, secret.reveal(), backup_key);
    if (!ok(s)) return s;
    const std::span<const uint8_t> e(escrow);
    if (!ok(crypto::aes_gcm_decrypt(backup_key.reveal(), e.first(12),
                                    escrow_aad(ctx.device, source), e.subspan(12, 32), e.last(16),
                                    seed))) {
      return fail(out, Status::kBackupInvalid, "the backup secret does not open this backup");
    }
    s = ctx.device.derive_masking_key(source, seed.reveal(), source_key);
    if (!ok(s)) return s;
  }
  const MaskingScope from{ctx.device.fingerprint(), source, source_key.reveal(),
                          ctx.device.security_version()};

  // Every record opens before any is written: a bad backup restores nothing.
  std::vector<store::WriteOp> writes;
  uint64_t skipped = 0;
  for (const auto& item : records->items()) {
    if (!item.is(Value::Type::kBytes)) return Status::kMalformedBody;
    std::shared_ptr<KeyObject> object;
    s = unmask_object(item.as_bytes(), from, true, object);
    if (!ok(s))
      return fail(out, s == Status::kMaskedKeyInvalid ? Status::kBackupInvalid : s,
                  "a record of the backup fails authentication");
    if (!object->token) return fail(out, Status::kBackupInvalid, "a record is not a token object");
    std::optional<store::ObjectRow> existing;
    s = ctx.device.store().get(p->id, object->handle, existing);
    if (!ok(s)) return s;
    if (existing) {
      ++skipped;  // already there (a restore over the same partition)
      continue;
    }
    store::InsertObject insert;
    s = objects::to_row(ctx.device, *p, *object, insert.row);
    if (!ok(s)) return s;
    writes.push_back(store::ClearDestroyed{p->id, object->uid});
    writes.push_back(std::move(insert));
  }
  const uint64_t restored = writes.size() / 2;
  if (!writes.empty()) {
    s = ctx.device.store().write(std::move(writes));
    // Objects have one home on a device: the same uid cannot live in two
    // partitions at once.
    if (s == Status::kObjectExists) {
      return fail(out, s,
                  "objects of this backup exist in another partition of this device: restore "
                  "into the partition they came from, or delete that one first");
    }
    if (!ok(s)) return s;
  }
  out.body.set(kCount, Value::uint(restored));
  out.body.set(kSkipped, Value::uint(skipped));
  return Status::kOk;
}

}  // namespace ihsm::device::commands
