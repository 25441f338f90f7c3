// The device's audit log on the host side (docs/security-policy.md, "Audit
// log"): its records, and the offline verification of a log read from the
// device (Client::read_audit) or from export and archive files. Needs no
// daemon: records, checkpoints and the device's DeviceID certificate.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "ihsm/status.h"
#include "ihsm/types.h"

namespace ihsm {

// One record of the hash chain. hash = SHA-256("ihsm audit record v1" ||
// prev_hash || canonical CBOR of seq..detail) (src/common/audit.cpp).
struct AuditRecord {
  uint64_t seq = 0;
  uint64_t time_ms = 0;  // device clock, milliseconds since 1970
  std::string event;     // "login", "login-failed", "key-create", ...
  uint32_t partition = 0;
  uint32_t uid = 0;     // the caller's uid (SO_PEERCRED)
  uint16_t opcode = 0;  // 0: an event of the device itself
  uint16_t status = 0;  // the command's outcome
  uint64_t object = 0;  // key or object handle, 0: none
  Bytes detail;         // CBOR map: protocol field number -> scalar
  Bytes prev_hash;
  Bytes hash;
};

// A log or a part of one: records in seq order, the signed checkpoints
// (COSE_Sign1) that cover them, and (an export) the signed head the device
// gave when it was read and its certificates, DeviceID first.
struct AuditLog {
  std::vector<AuditRecord> records;
  std::vector<Bytes> checkpoints;
  std::optional<Bytes> head;
  std::vector<Bytes> certificates;
};

// The file form of an AuditLog (archives audit-<first>-<last>.cbor in the
// state directory, and `ihsm audit export`).
Bytes encode_audit_log(const AuditLog& log);
Status decode_audit_log(std::span<const uint8_t> in, AuditLog& out);

struct AuditVerifyOptions {
  // The DeviceID certificate, PEM: every checkpoint must chain to it.
  std::string trusted_root_pem;
  // Signed heads the verifier got from the device (or kept from an earlier
  // read): each must match the record at its seq. The last part's `head`
  // is added automatically.
  std::vector<Bytes> heads;
};

struct AuditVerdict {
  bool valid = false;
  // When invalid, what the first failure is: "deleted" (a gap or a link to
  // a record that is not there), "edited" (a record's hash does not
  // recompute), "reordered" (a record at another place than its own),
  // "truncated" (records missing after the last one present), "checkpoint"
  // (a signature that does not verify, or a checkpoint that does not match
  // its record), "anchor" (the first record links to nothing signed) or
  // "malformed".
  std::string reason;
  uint64_t seq = 0;  // the record (or checkpoint) where it was found
  std::string detail;
  uint64_t records = 0;      // records checked
  uint64_t checkpoints = 0;  // checkpoints verified
  uint64_t first_seq = 0, last_seq = 0;
};

// Checks, in order: every checkpoint's chain and signature (and that all
// come from one device); then record by record: seq without gaps, each
// prev_hash the previous record's hash (the first one genesis or a signed
// checkpoint's hash), each hash recomputing; then every checkpoint and
// head against the record at its seq. `parts` are archives oldest first,
// then the live log; records in both (a rotation that did not finish) are
// taken once.
AuditVerdict verify_audit(const std::vector<AuditLog>& parts, const AuditVerifyOptions& options);

}  // namespace ihsm
