// Offline verification of the audit log (docs/security-policy.md, "Audit
// log"): checkpoints first (each signature up to the trusted DeviceID
// certificate), then the chain record by record, then checkpoints and heads
// against the records. The first failure is reported with its seq and
// what it looks like: a deleted, edited or reordered record, or a cut-off
// tail.
#include <algorithm>
#include <map>
#include <unordered_map>

#include "common/audit.h"
#include "host/chain.h"
#include "ihsm/audit.h"

namespace ihsm {
namespace {

// A reordered record hashes correctly under the seq it was made with; look
// for it this far around the place it was found.
constexpr size_t kReorderWindow = 16;

struct Signed {
  uint64_t seq = 0;
  Bytes hash;
};

AuditVerdict failed(AuditVerdict v, std::string reason, uint64_t seq, std::string detail) {
  v.valid = false;
  v.reason = std::move(reason);
  v.seq = seq;
  v.detail = std::move(detail);
  return v;
}

std::string str(uint64_t v) { return std::to_string(v); }

// Verifies one signed checkpoint; the error text is empty on success.
std::string check_signed(const Bytes& sign1, const AuditVerifyOptions& options, Bytes& fingerprint,
                         Signed& out) {
  Bytes payload;
  std::string error = detail::verify_alias_signed(sign1, options.trusted_root_pem, payload);
  audit::Checkpoint c;
  const bool decoded = ok(audit::decode_checkpoint(payload, c));
  if (decoded) out.seq = c.seq;
  if (!error.empty()) return error;
  if (!decoded) return "the payload is not an audit checkpoint";
  if (fingerprint.empty()) fingerprint = c.fingerprint;
  if (c.fingerprint != fingerprint) return "it is signed for another device fingerprint";
  out.hash = std::move(c.hash);
  return {};
}

}  // namespace

Bytes encode_audit_log(const AuditLog& log) { return audit::encode_log_file(log); }

Status decode_audit_log(std::span<const uint8_t> in, AuditLog& out) {
  return audit::decode_log_file(in, out);
}

AuditVerdict verify_audit(const std::vector<AuditLog>& parts, const AuditVerifyOptions& options) {
  AuditVerdict v;
  // The parts as one log; a record in two parts (an archive written by a
  // rotation whose commit then failed) is taken once if it is the same.
  std::vector<const AuditRecord*> records;
  std::vector<const Bytes*> checkpoints, heads;
  for (const Bytes& h : options.heads) heads.push_back(&h);
  for (const AuditLog& part : parts) {
    size_t i = 0;
    while (i < part.records.size() && !records.empty() &&
           part.records[i].seq <= records.back()->seq) {
      const AuditRecord& r = part.records[i];
      const auto same = std::find_if(records.begin(), records.end(), [&](const AuditRecord* t) {
        return t->seq == r.seq && t->hash == r.hash;
      });
      if (same == records.end()) break;
      ++i;
    }
    for (; i < part.records.size(); ++i) records.push_back(&part.records[i]);
    for (const Bytes& c : part.checkpoints) checkpoints.push_back(&c);
    if (part.head) heads.push_back(&*part.head);
  }

  // 1. Signatures.
  Bytes fingerprint;
  std::map<uint64_t, Bytes> signed_at;  // seq -> hash, from valid checkpoints
  for (const Bytes* c : checkpoints) {
    Signed s;
    const std::string error = check_signed(*c, options, fingerprint, s);
    if (!error.empty()) return failed(v, "checkpoint", s.seq, "checkpoint signature: " + error);
    const auto [at, inserted] = signed_at.emplace(s.seq, s.hash);
    if (!inserted && at->second != s.hash) {
      return failed(v, "checkpoint", s.seq, "two signed checkpoints disagree on this record");
    }
    ++v.checkpoints;
  }
  std::vector<Signed> signed_heads;
  for (const Bytes* h : heads) {
    Signed s;
    const std::string error = check_signed(*h, options, fingerprint, s);
    if (!error.empty()) return failed(v, "checkpoint", s.seq, "signed head: " + error);
    signed_heads.push_back(std::move(s));
    ++v.checkpoints;
  }
  if (records.empty()) {
    if (!signed_heads.empty() || !signed_at.empty()) {
      return failed(v, "truncated", 1, "the log is empty but signed checkpoints cover records");
    }
    return failed(v, "malformed", 0, "no records");
  }
  v.first_seq = records.front()->seq;
  v.last_seq = records.back()->seq;

  // 2. The chain.
  std::unordered_map<std::string, uint64_t> seq_of_hash;
  for (const AuditRecord* r : records) {
    seq_of_hash.emplace(std::string(r->hash.begin(), r->hash.end()), r->seq);
  }
  const AuditRecord& first = *records.front();
  if (first.seq == 0) return failed(v, "malformed", 0, "a record has seq 0");
  if (first.seq == 1) {
    if (first.prev_hash != audit::genesis_hash()) {
      return failed(v, "edited", 1, "the first record's prev_hash is not the genesis value");
    }
  } else {
    const auto anchor = signed_at.find(first.seq - 1);
    if (anchor == signed_at.end()) {
      return failed(v, "deleted", first.seq - 1,
                    "the log starts at seq " + str(first.seq) +
                        " and no signed checkpoint anchors it: records up to seq " +
                        str(first.seq - 1) + " are missing (give the archives with --file)");
    }
    if (anchor->second != first.prev_hash) {
      return failed(
          v, "anchor", first.seq,
          "the first record does not link to the signed checkpoint at seq " + str(first.seq - 1));
    }
  }
  for (size_t i = 0; i < records.size(); ++i) {
    const AuditRecord& r = *records[i];
    if (i > 0) {
      const AuditRecord& prev = *records[i - 1];
      if (r.seq > prev.seq + 1) {
        return failed(v, "deleted", prev.seq + 1,
                      r.seq == prev.seq + 2 ? "record " + str(prev.seq + 1) + " is missing"
                                            : "records " + str(prev.seq + 1) + " to " +
                                                  str(r.seq - 1) + " are missing");
      }
      if (r.seq <= prev.seq) {
        return failed(v, "reordered", r.seq,
                      "seq " + str(r.seq) + " comes after seq " + str(prev.seq));
      }
    }
    if (audit::record_hash(r.prev_hash, r) != r.hash) {
      // Moved here from another place? It hashes under its own seq.
      const size_t lo = i > kReorderWindow ? i - kReorderWindow : 0;
      const size_t hi = std::min(records.size(), i + kReorderWindow + 1);
      for (size_t j = lo; j < hi; ++j) {
        if (j == i) continue;
        AuditRecord moved = r;
        moved.seq = records[j]->seq;
        if (audit::record_hash(moved.prev_hash, moved) == r.hash) {
          return failed(
              v, "reordered", r.seq,
              "the record at seq " + str(r.seq) + " is the record made as seq " + str(moved.seq));
        }
      }
      return failed(v, "edited", r.seq,
                    "the record at seq " + str(r.seq) + " does not match its hash");
    }
    if (i > 0 && r.prev_hash != records[i - 1]->hash) {
      const auto other = seq_of_hash.find(std::string(r.prev_hash.begin(), r.prev_hash.end()));
      if (other != seq_of_hash.end()) {
        return failed(v, "reordered", r.seq,
                      "the record at seq " + str(r.seq) + " follows seq " + str(other->second) +
                          ", not seq " + str(records[i - 1]->seq));
      }
      return failed(v, "edited", records[i - 1]->seq,
                    "the record at seq " + str(r.seq) + " does not link to seq " +
                        str(records[i - 1]->seq) + ": that record was rewritten");
    }
    ++v.records;
  }

  // 3. Checkpoints and heads against the records.
  const auto record_at = [&](uint64_t seq) -> const AuditRecord* {
    if (seq < v.first_seq || seq > v.last_seq) return nullptr;
    return records[seq - v.first_seq];  // contiguous after step 2
  };
  for (const auto& [seq, hash] : signed_at) {
    if (seq > v.last_seq) {
      return failed(v, "truncated", v.last_seq + 1,
                    "a signed checkpoint covers seq " + str(seq) + " but the log ends at seq " +
                        str(v.last_seq));
    }
    const AuditRecord* r = record_at(seq);
    if (r != nullptr && r->hash != hash) {
      return failed(v, "checkpoint", seq,
                    "the record at seq " + str(seq) +
                        " is not the one the device signed: the log was rewritten");
    }
  }
  for (const Signed& h : signed_heads) {
    if (h.seq > v.last_seq) {
      return failed(v, "truncated", v.last_seq + 1,
                    "the device's signed head is at seq " + str(h.seq) +
                        " but the log ends at seq " + str(v.last_seq));
    }
    const AuditRecord* r = record_at(h.seq);
    if (r != nullptr && r->hash != h.hash) {
      return failed(v, "truncated", h.seq,
                    "the record at seq " + str(h.seq) +
                        " is not the device's signed head: the log was cut back and continued");
    }
  }
  v.valid = true;
  v.detail = str(v.records) + " records (seq " + str(v.first_seq) + " to " + str(v.last_seq) +
             ") chain and match " + str(v.checkpoints) + " signed checkpoints";
  return v;
}

}  // namespace ihsm
