// The audit log's record and file formats (docs/security-policy.md, "Audit
// log"). Shared by the device, which appends, hashes and signs, and by
// libihsm, which verifies offline. Decoding is for hostile input: every
// size bounded, every type checked.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/cbor.h"
#include "ihsm/audit.h"
#include "ihsm/status.h"
#include "ihsm/types.h"

namespace ihsm::audit {

constexpr size_t kHashSize = 32;  // SHA-256
constexpr size_t kMaxEvent = 32;
constexpr size_t kMaxDetail = 1024;           // the encoded detail map
constexpr size_t kMaxCheckpoint = 16 * 1024;  // one COSE_Sign1 with its x5chain
constexpr size_t kMaxFileSize = 256u << 20;   // an archive or export file
constexpr size_t kMaxRecordsPerFile = 1u << 20;
// The first record's prev_hash.
inline const Bytes& genesis_hash() {
  static const Bytes zero(kHashSize, 0);
  return zero;
}

using Record = ::ihsm::AuditRecord;

// SHA-256("ihsm audit record v1" || prev_hash || canonical CBOR of the
// record's members 1..9: seq, time, event, partition, uid, opcode, status,
// object, detail).
Bytes record_hash(std::span<const uint8_t> prev_hash, const Record& r);

// The wire and file form: a map with members 1..11 (the canonical ones,
// then prev_hash and hash).
cbor::Value record_to_cbor(const Record& r);
Status record_from_cbor(const cbor::Value& v, Record& out);

// What a checkpoint signs: the payload of a COSE_Sign1 (ES384, Alias key,
// x5chain [Alias, DeviceID]). A format-1 ihsm payload of kind 4, so it can
// never pass for an attestation report (kinds 1-3).
struct Checkpoint {
  Bytes fingerprint;  // the device fingerprint (Device::fingerprint)
  uint64_t seq = 0;
  Bytes hash;  // of the record at seq
  uint64_t time_ms = 0;
};
constexpr uint64_t kCheckpointKind = 4;
Bytes encode_checkpoint(const Checkpoint& c);
Status decode_checkpoint(std::span<const uint8_t> payload, Checkpoint& out);

// An archive file (audit-<first>-<last>.cbor, written at rotation) or an
// export (ihsm audit export).
using LogFile = ::ihsm::AuditLog;
Bytes encode_log_file(const LogFile& f);
Status decode_log_file(std::span<const uint8_t> in, LogFile& out);

}  // namespace ihsm::audit
