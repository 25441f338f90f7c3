// The audit log's owner commands (docs/security-policy.md, "Audit log"):
// reading it page by page, and a freshly signed head (which is also how a
// verifier catches records cut off the end), optionally with a rotation.
#include <algorithm>

#include "common/audit.h"
#include "device/commands/commands.h"

namespace ihsm::device::commands {

using cbor::Value;
using namespace protocol;

namespace {

// Room left in a page for the checkpoints that go with its records.
constexpr size_t kCheckpointBudget = 96 * 1024;

}  // namespace

Status AuditRead(CommandContext& ctx, const cbor::MapReader& in, Reply& out) {
  std::optional<uint64_t> after, limit;
  if (Status s = in.opt_uint(kAuditSeq, after, uint64_t{INT64_MAX}); !ok(s)) return s;
  if (Status s = in.opt_uint(kLimit, limit, kMaxAuditPage); !ok(s)) return s;
  if (limit && *limit == 0) return fail(out, Status::kInvalidArgument, "limit must be at least 1");
  std::vector<audit::Record> records;
  bool more = false;
  const store::ObjectStore& store = ctx.device.store();
  Status s = store.read_audit(after.value_or(0), limit.value_or(kMaxAuditPage),
                              kMaxAuditPageBytes - kCheckpointBudget, records, more);
  if (!ok(s)) return s;
  // The checkpoints from `after` on (the first page also gets the one that
  // anchors the live log after a rotation) up to the page's last record.
  const uint64_t from = after.value_or(0);
  const uint64_t to = records.empty() || !more ? uint64_t{INT64_MAX} : records.back().seq;
  std::vector<std::pair<uint64_t, Bytes>> checkpoints;
  s = store.read_audit_checkpoints(from, to, checkpoints);
  if (!ok(s)) return s;
  // Checkpoints that do not fit (only with a very small
  // --audit-checkpoint-every) end the page early: the records after the
  // last one sent come with the next page, and their checkpoints with them.
  size_t budget = kCheckpointBudget;
  auto list = Value::array();
  for (const auto& [seq, c] : checkpoints) {
    if (c.size() > budget) {
      while (records.size() > 1 && records.back().seq >= seq) records.pop_back();
      more = true;
      break;
    }
    budget -= c.size();
    list.push(Value::bytes(c));
  }
  auto items = Value::array();
  for (const audit::Record& r : records) items.push(audit::record_to_cbor(r));
  out.body.set(kAuditRecords, std::move(items));
  out.body.set(kAuditCheckpoints, std::move(list));
  out.body.set(kMore, Value::boolean(more));
  return Status::kOk;
}

Status AuditCheckpoint(CommandContext& ctx, const cbor::MapReader& in, Reply& out) {
  bool rotate = false;
  if (Status s = in.opt_bool(kAuditRotate, rotate); !ok(s)) return s;
  store::AuditHead head;
  const Status s = ctx.device.audit_checkpoint(rotate, head);
  if (!ok(s)) return s;
  out.body.set(kAuditHead, Value::bytes(head.checkpoint));
  out.body.set(kAuditSeq, Value::uint(head.seq));
  return Status::kOk;
}

}  // namespace ihsm::device::commands
