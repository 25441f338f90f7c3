// The device's object store: token objects (keys as masked records,
// certificates, data objects) in one SQLite database in the state
// directory. The store never sees plaintext key material: every record is
// a masked blob made by vault/masking, and the columns next to it (class,
// label, id) are copies kept only so lookups can use an index; the device
// checks them against the authenticated copy inside the blob.
//
// Durability: WAL journal with synchronous=FULL, so a write is on disk
// when it returns. Writes from many threads are committed in groups by one
// writer thread: each caller's batch is its own savepoint (all or nothing)
// inside a shared transaction, and one fsync covers the whole group.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "common/audit.h"
#include "ihsm/status.h"
#include "ihsm/types.h"

namespace ihsm::device::store {

// One stored object. `blob` is the masked record; the other columns are
// index copies of fields authenticated inside it.
struct ObjectRow {
  KeyHandle handle = 0;  // token handles are < kSessionHandleBase
  PartitionId partition = 0;
  Bytes uid;  // 16 random bytes, unique per object
  uint32_t object_class = 0;
  std::string label;
  Bytes id;
  Bytes blob;
};

// Token handles come from the store and stay below this; session objects
// use handles from this value up, so the two never collide.
constexpr KeyHandle kSessionHandleBase = KeyHandle{1} << 62;

struct Query {
  PartitionId partition = 0;
  std::optional<std::string> label;
  std::optional<Bytes> id;
  std::optional<uint32_t> object_class;
  KeyHandle after = 0;  // paging: only handles > after, ascending
  size_t limit = 1024;
};

// Write operations. A batch of them commits all or nothing.
struct InsertObject {
  ObjectRow row;  // kObjectExists if the handle or uid is taken
};
struct UpdateObject {
  ObjectRow row;  // replaces label, id, class and blob of (partition, handle); kNoSuchKey if absent
};
struct DestroyObject {
  PartitionId partition = 0;
  KeyHandle handle = 0;  // kNoSuchKey if absent; records (partition, uid) as destroyed
};
struct ClearDestroyed {
  PartitionId partition = 0;
  Bytes uid;  // forgets a destroyed mark (a restore brings the object back)
};
struct DeletePartition {
  PartitionId partition = 0;  // every object and destroyed mark of the partition
};
struct SetMeta {
  std::string name;  // a device counter kept with the objects (read_meta)
  uint64_t value = 0;
};
// The audit log (docs/security-policy.md, "Audit log"): one hash chain,
// extended only by the writer thread, so seq and prev_hash follow commit
// order. The record's seq, prev_hash and hash are assigned there.
struct AppendAudit {
  audit::Record record;
};
// The head of the log as the writer has it: the last record's seq and
// hash and a checkpoint signed over them.
struct AuditHead {
  uint64_t seq = 0;
  Bytes hash;
  Bytes checkpoint;  // COSE_Sign1
};
// Signs the current head (after the ops queued before it) and stores the
// checkpoint; with `rotate`, also moves every record up to it into an
// archive file. `out` receives the head.
struct SignAuditHead {
  bool rotate = false;
  std::shared_ptr<AuditHead> out;
};
using WriteOp = std::variant<InsertObject, UpdateObject, DestroyObject, ClearDestroyed,
                             DeletePartition, SetMeta, AppendAudit, SignAuditHead>;

// What the store needs from the device for the audit log. Set once, before
// the first audit write.
struct AuditHooks {
  // Signs a checkpoint over (seq, hash): a COSE_Sign1. May fail (the
  // device in its error state): automatic checkpoints are then skipped.
  std::function<Status(uint64_t seq, std::span<const uint8_t> hash, Bytes& signed_out)> sign;
  // Writes an archive file atomically into the state directory.
  std::function<Status(const std::string& name, std::span<const uint8_t> data)> archive;
  uint64_t checkpoint_every = 256;  // a signed checkpoint every this many records
  uint64_t max_records = 100000;    // live records before a rotation
  uint32_t device_uid = 0;          // the uid in records the device writes itself
  // Names the device in archive names (audit-<tag>-<first>-<last>.cbor), so
  // the archives a zeroized device leaves never clash with its successor's.
  std::string archive_tag;
};

class ObjectStore {
 public:
  static constexpr int kSchemaVersion = 2;
  static constexpr const char* kFileName = "objects.db";

  // Opens or creates `path`, applies schema migrations (refusing a
  // database newer than this code with kStorageFailure), checks
  // `PRAGMA quick_check`, and starts the writer thread.
  static Status open(const std::string& path, std::unique_ptr<ObjectStore>& out);
  ~ObjectStore();  // drains queued writes, stops the writer, closes
  ObjectStore(const ObjectStore&) = delete;
  ObjectStore& operator=(const ObjectStore&) = delete;

  // A fresh token handle, never handed out before (also across restarts:
  // the high-water mark is stored with the next commit).
  KeyHandle allocate_handle();

  // Applies `ops` atomically; returns once they are durable, or with the
  // status of the first failing op (nothing of the batch applied).
  Status write(std::vector<WriteOp> ops);
  // Queues `ops` for the next group commit and returns at once: for audit
  // records whose loss in a crash is acceptable (the command does not pay
  // an fsync). A failure is reported on stderr only.
  void write_async(std::vector<WriteOp> ops);
  void set_audit_hooks(AuditHooks hooks);

  // Audit records with seq > after, in seq order, at most `limit` of them
  // and at most about `max_bytes` (at least one record); `more` when
  // records follow.
  Status read_audit(uint64_t after, size_t limit, size_t max_bytes, std::vector<audit::Record>& out,
                    bool& more) const;
  // Stored checkpoints (seq, COSE_Sign1) with from <= seq <= to, in seq order.
  Status read_audit_checkpoints(uint64_t from, uint64_t to,
                                std::vector<std::pair<uint64_t, Bytes>>& out) const;

  // Reads (any thread, concurrently with writes; see only committed data).
  Status get(PartitionId partition, KeyHandle handle, std::optional<ObjectRow>& out) const;
  Status find(const Query& query, std::vector<ObjectRow>& out) const;
  // The SQL find() prepares for the filters `query` sets (their values are
  // bound, not in the text); public so a test can check its query plan.
  static std::string find_sql(const Query& query);
  Status is_destroyed(PartitionId partition, std::span<const uint8_t> uid, bool& out) const;
  Status count(PartitionId partition, uint64_t& out) const;
  // A value stored with SetMeta; 0 if never set.
  Status read_meta(std::string_view name, uint64_t& out) const;
  // Partitions that have rows (objects or destroyed marks).
  Status partitions(std::vector<PartitionId>& out) const;
  // `PRAGMA integrity_check`: "ok" or SQLite's report.
  Status integrity_check(std::string& report) const;

  // Group transactions committed since open (one fsync each); lets tests
  // and diagnostics see that concurrent writes share commits.
  uint64_t commit_count() const;

 private:
  struct Pending;
  struct WriterConnection;
  struct ReadConnection;
  class ReadLease;
  using Group = std::deque<std::shared_ptr<Pending>>;

  ObjectStore();  // defined where the nested types are complete
  Status check_schema_version(int version) const;
  Status open_writer();
  void writer_loop();
  void apply_group(Group& group) noexcept;
  Status load_audit_state();
  Status append_audit(audit::Record record);
  Status sign_head(AuditHead* out);
  Status rotate_audit();
  Status apply_audit(const WriteOp& op, bool& handled);

  std::string path_;
  // The writer connection; after open() only the writer thread touches it.
  std::unique_ptr<WriterConnection> writer_db_;
  mutable std::mutex readers_mutex_;
  mutable std::condition_variable readers_cv_;
  mutable std::vector<std::unique_ptr<ReadConnection>> idle_readers_;
  mutable size_t open_readers_ = 0;  // idle plus leased
  std::mutex queue_mutex_;
  std::condition_variable queue_cv_;
  Group queue_;
  bool stopping_ = false;
  std::atomic<KeyHandle> next_handle_{1};
  KeyHandle stored_next_handle_ = 0;  // meta.next_handle as committed; writer thread only
  std::atomic<uint64_t> commit_count_{0};
  // The chain's end as committed plus this group's records; writer thread only.
  struct AuditState {
    uint64_t seq = 0;   // the last record's (or the last archived checkpoint's)
    Bytes head;         // its hash
    uint64_t live = 0;  // records in the table
  };
  AuditState audit_;
  AuditHooks audit_hooks_;  // set before the first audit write
  std::thread writer_;
};

}  // namespace ihsm::device::store
