#include "common/audit.h"

#include <openssl/evp.h>

#include <string_view>

namespace ihsm::audit {
namespace {

using cbor::Value;
using Type = cbor::Value::Type;

enum RecordKey : uint64_t {
  kSeq = 1,
  kTime = 2,
  kEvent = 3,
  kPartition = 4,
  kUid = 5,
  kOpcode = 6,
  kStatus = 7,
  kObject = 8,
  kDetail = 9,
  kPrevHash = 10,
  kHash = 11,
};

enum CheckpointKey : uint64_t {
  kVersion = 1,  // the ihsm payload members every COSE payload starts with
  kKind = 2,
  kFingerprint = 40,
  kCpSeq = 41,
  kCpHash = 42,
  kCpTime = 43,
};

enum FileKey : uint64_t {
  kFormat = 1,
  kRecords = 2,
  kCheckpoints = 3,
  kHead = 4,
  kCertificates = 5,
};

constexpr std::string_view kDomain = "ihsm audit record v1";
constexpr std::string_view kFileFormat = "ihsm audit log v1";
constexpr size_t kMaxFingerprint = 64;
constexpr size_t kMaxCertificates = 4;
constexpr size_t kMaxCertificate = 8 * 1024;

Value canonical_map(const Record& r) {
  // Members in ascending key order, every one present: one encoding only.
  Value m = Value::map();
  m.set(kSeq, Value::uint(r.seq));
  m.set(kTime, Value::uint(r.time_ms));
  m.set(kEvent, Value::text(r.event));
  m.set(kPartition, Value::uint(r.partition));
  m.set(kUid, Value::uint(r.uid));
  m.set(kOpcode, Value::uint(r.opcode));
  m.set(kStatus, Value::uint(r.status));
  m.set(kObject, Value::uint(r.object));
  m.set(kDetail, Value::bytes(r.detail));
  return m;
}

// Every key of `v` is one of 1..max and each is there: nothing unread.
bool exactly_keys(const Value& v, uint64_t max) {
  if (!v.is(Type::kMap) || v.entries().size() != max) return false;
  uint64_t expect = 1;
  for (const auto& [key, unused] : v.entries()) {
    if (!key.is(Type::kUint) || key.as_uint() != expect++) return false;
  }
  return true;
}

}  // namespace

Bytes record_hash(std::span<const uint8_t> prev_hash, const Record& r) {
  const Bytes record = cbor::encode(canonical_map(r));
  Bytes out(kHashSize);
  unsigned int len = 0;
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  const bool done = ctx != nullptr && EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr) == 1 &&
                    EVP_DigestUpdate(ctx, kDomain.data(), kDomain.size()) == 1 &&
                    EVP_DigestUpdate(ctx, prev_hash.data(), prev_hash.size()) == 1 &&
                    EVP_DigestUpdate(ctx, record.data(), record.size()) == 1 &&
                    EVP_DigestFinal_ex(ctx, out.data(), &len) == 1 && len == kHashSize;
  EVP_MD_CTX_free(ctx);
  // An empty hash matches no stored one: a verifier reports it, the
  // device refuses to append.
  return done ? out : Bytes{};
}

cbor::Value record_to_cbor(const Record& r) {
  Value m = canonical_map(r);
  m.set(kPrevHash, Value::bytes(r.prev_hash));
  m.set(kHash, Value::bytes(r.hash));
  return m;
}

Status record_from_cbor(const cbor::Value& v, Record& out) {
  if (!exactly_keys(v, kHash)) return Status::kMalformedBody;
  const cbor::MapReader m(v);
  Record r;
  uint64_t partition = 0, uid = 0, opcode = 0, status = 0;
  if (!ok(m.get_uint(kSeq, r.seq)) || !ok(m.get_uint(kTime, r.time_ms)) ||
      !ok(m.get_text(kEvent, r.event, kMaxEvent)) ||
      !ok(m.get_uint(kPartition, partition, UINT32_MAX)) ||
      !ok(m.get_uint(kUid, uid, UINT32_MAX)) || !ok(m.get_uint(kOpcode, opcode, UINT16_MAX)) ||
      !ok(m.get_uint(kStatus, status, UINT16_MAX)) || !ok(m.get_uint(kObject, r.object)) ||
      !ok(m.get_bytes(kDetail, r.detail, kMaxDetail)) ||
      !ok(m.get_bytes(kPrevHash, r.prev_hash, kHashSize)) ||
      !ok(m.get_bytes(kHash, r.hash, kHashSize)) || r.prev_hash.size() != kHashSize ||
      r.hash.size() != kHashSize) {
    return Status::kMalformedBody;
  }
  r.partition = static_cast<uint32_t>(partition);
  r.uid = static_cast<uint32_t>(uid);
  r.opcode = static_cast<uint16_t>(opcode);
  r.status = static_cast<uint16_t>(status);
  out = std::move(r);
  return Status::kOk;
}

Bytes encode_checkpoint(const Checkpoint& c) {
  Value m = Value::map();
  m.set(kVersion, Value::uint(1));
  m.set(kKind, Value::uint(kCheckpointKind));
  m.set(kFingerprint, Value::bytes(c.fingerprint));
  m.set(kCpSeq, Value::uint(c.seq));
  m.set(kCpHash, Value::bytes(c.hash));
  m.set(kCpTime, Value::uint(c.time_ms));
  return cbor::encode(m);
}

Status decode_checkpoint(std::span<const uint8_t> payload, Checkpoint& out) {
  Value v;
  if (!ok(cbor::decode(payload, v, cbor::DecodeLimits{2, 16})) || !v.is(Type::kMap) ||
      v.entries().size() != 6) {
    return Status::kMalformedBody;
  }
  const cbor::MapReader m(v);
  uint64_t version = 0, kind = 0;
  Checkpoint c;
  if (!ok(m.get_uint(kVersion, version)) || version != 1 || !ok(m.get_uint(kKind, kind)) ||
      kind != kCheckpointKind || !ok(m.get_bytes(kFingerprint, c.fingerprint, kMaxFingerprint)) ||
      !ok(m.get_uint(kCpSeq, c.seq)) || !ok(m.get_bytes(kCpHash, c.hash, kHashSize)) ||
      c.hash.size() != kHashSize || !ok(m.get_uint(kCpTime, c.time_ms))) {
    return Status::kMalformedBody;
  }
  out = std::move(c);
  return Status::kOk;
}

Bytes encode_log_file(const LogFile& f) {
  Value records = Value::array();
  for (const Record& r : f.records) records.push(record_to_cbor(r));
  Value checkpoints = Value::array();
  for (const Bytes& c : f.checkpoints) checkpoints.push(Value::bytes(c));
  Value m = Value::map();
  m.set(kFormat, Value::text(kFileFormat));
  m.set(kRecords, std::move(records));
  m.set(kCheckpoints, std::move(checkpoints));
  if (f.head) m.set(kHead, Value::bytes(*f.head));
  if (!f.certificates.empty()) {
    Value certs = Value::array();
    for (const Bytes& c : f.certificates) certs.push(Value::bytes(c));
    m.set(kCertificates, std::move(certs));
  }
  return cbor::encode(m);
}

Status decode_log_file(std::span<const uint8_t> in, LogFile& out) {
  constexpr Status kBad = Status::kMalformedBody;
  if (in.size() > kMaxFileSize) return Status::kFieldTooLarge;
  Value v;
  if (!ok(cbor::decode(in, v, cbor::DecodeLimits{4, 16 * kMaxRecordsPerFile})) ||
      !v.is(Type::kMap)) {
    return kBad;
  }
  const cbor::MapReader m(v);
  std::string format;
  if (!ok(m.get_text(kFormat, format, 64)) || format != kFileFormat) return kBad;
  for (const auto& [key, unused] : v.entries()) {
    if (!key.is(Type::kUint) || key.as_uint() < kFormat || key.as_uint() > kCertificates) {
      return kBad;
    }
  }
  const Value* records = m.get(kRecords);
  const Value* checkpoints = m.get(kCheckpoints);
  if (records == nullptr || !records->is(Type::kArray) ||
      records->items().size() > kMaxRecordsPerFile || checkpoints == nullptr ||
      !checkpoints->is(Type::kArray)) {
    return kBad;
  }
  LogFile f;
  f.records.reserve(records->items().size());
  for (const Value& r : records->items()) {
    Record rec;
    if (!ok(record_from_cbor(r, rec))) return kBad;
    f.records.push_back(std::move(rec));
  }
  for (const Value& c : checkpoints->items()) {
    if (!c.is(Type::kBytes) || c.as_bytes().size() > kMaxCheckpoint) return kBad;
    f.checkpoints.push_back(c.as_bytes());
  }
  if (m.has(kHead)) {
    Bytes head;
    if (!ok(m.get_bytes(kHead, head, kMaxCheckpoint))) return kBad;
    f.head = std::move(head);
  }
  if (const Value* certs = m.get(kCertificates)) {
    if (!certs->is(Type::kArray) || certs->items().size() > kMaxCertificates) return kBad;
    for (const Value& c : certs->items()) {
      if (!c.is(Type::kBytes) || c.as_bytes().size() > kMaxCertificate) return kBad;
      f.certificates.push_back(c.as_bytes());
    }
  }
  out = std::move(f);
  return Status::kOk;
}

}  // namespace ihsm::audit
