#include "device/store/object_store.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string_view>
#include <type_traits>
#include <utility>

#include "protocol/fields.h"

namespace ihsm::device::store {
namespace {

constexpr int kBusyTimeoutMs = 5000;
// How long records queued by write_async wait for a write to share a commit.
constexpr std::chrono::milliseconds kAsyncDelay{5};
// Readers are opened on demand up to this many; more callers wait for one.
constexpr size_t kMaxReaders = 4;

// Each step brings the schema to `version`; they run in order, all pending
// ones in one transaction, so a crash never leaves half a migration.
struct Migration {
  int version;
  const char* sql;
};
constexpr Migration kMigrations[] = {
    {1, R"sql(
CREATE TABLE objects (
  handle INTEGER PRIMARY KEY,
  partition INTEGER NOT NULL,
  uid BLOB NOT NULL UNIQUE,
  class INTEGER NOT NULL,
  label TEXT NOT NULL,
  id BLOB NOT NULL,
  blob BLOB NOT NULL
);
CREATE INDEX objects_partition_label ON objects (partition, label);
CREATE INDEX objects_partition_id ON objects (partition, id);
CREATE INDEX objects_partition_class ON objects (partition, class);
CREATE INDEX objects_partition ON objects (partition);
CREATE TABLE destroyed (
  partition INTEGER NOT NULL,
  uid BLOB NOT NULL,
  PRIMARY KEY (partition, uid)
) WITHOUT ROWID;
CREATE TABLE meta (
  name TEXT PRIMARY KEY,
  value INTEGER NOT NULL
);
)sql"},
    // The audit log: records of one hash chain, and the signed checkpoints
    // over it (docs/security-policy.md, "Audit log").
    {2, R"sql(
CREATE TABLE audit (
  seq INTEGER PRIMARY KEY,
  time INTEGER NOT NULL,
  event TEXT NOT NULL,
  partition INTEGER NOT NULL,
  uid INTEGER NOT NULL,
  opcode INTEGER NOT NULL,
  status INTEGER NOT NULL,
  object INTEGER NOT NULL,
  detail BLOB NOT NULL,
  prev_hash BLOB NOT NULL,
  hash BLOB NOT NULL
);
CREATE TABLE audit_checkpoint (
  seq INTEGER PRIMARY KEY,
  hash BLOB NOT NULL,
  time INTEGER NOT NULL,
  signed BLOB NOT NULL
);
)sql"},
};

constexpr bool migrations_are_contiguous() {
  int expected = 1;
  for (const Migration& m : kMigrations) {
    if (m.version != expected++) return false;
  }
  return expected - 1 == ObjectStore::kSchemaVersion;
}
static_assert(migrations_are_contiguous(), "one migration per schema version, ending at current");

// Row queries select the columns in the order read_row() expects. find()
// appends its filters to kFindSql.
constexpr const char* kGetSql =
    "SELECT handle, partition, uid, class, label, id, blob FROM objects "
    "WHERE handle = ?1 AND partition = ?2";
constexpr const char* kFindSql =
    "SELECT handle, partition, uid, class, label, id, blob FROM objects WHERE partition = ?1";

struct StatementDeleter {
  void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
};
using StatementPtr = std::unique_ptr<sqlite3_stmt, StatementDeleter>;

struct DatabaseDeleter {
  void operator()(sqlite3* db) const {
    // Every statement is finalized before its connection closes (members
    // are destroyed in reverse order), so SQLITE_BUSY here is a bug.
    if (sqlite3_close(db) != SQLITE_OK) {
      std::fprintf(stderr, "ihsmd: object store: close: %s\n", sqlite3_errmsg(db));
    }
  }
};
using DatabasePtr = std::unique_ptr<sqlite3, DatabaseDeleter>;

Status storage_failure(sqlite3* db, const char* what) {
  std::fprintf(stderr, "ihsmd: object store: %s: %s\n", what,
               db != nullptr ? sqlite3_errmsg(db) : "out of memory");
  return Status::kStorageFailure;
}

// Resets a cached statement on every exit path: a statement left mid-step
// would hold its read snapshot (stale reads, blocked checkpoints).
class StatementScope {
 public:
  explicit StatementScope(sqlite3_stmt* s) : s_(s) {}
  ~StatementScope() {
    // The return value repeats the last step's error, already handled.
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
  }
  StatementScope(const StatementScope&) = delete;
  StatementScope& operator=(const StatementScope&) = delete;

 private:
  sqlite3_stmt* s_;
};

// Binds parameters in a chain and keeps the first failure.
class Binder {
 public:
  explicit Binder(sqlite3_stmt* s) : s_(s) {}
  Binder& integer(int index, int64_t v) {
    if (rc_ == SQLITE_OK) rc_ = sqlite3_bind_int64(s_, index, v);
    return *this;
  }
  Binder& blob(int index, std::span<const uint8_t> v) {
    if (rc_ != SQLITE_OK) return *this;
    // A null pointer would bind NULL, which the NOT NULL columns refuse;
    // an empty id is a zero-length blob.
    rc_ = v.empty() ? sqlite3_bind_zeroblob(s_, index, 0)
                    : sqlite3_bind_blob64(s_, index, v.data(), v.size(), SQLITE_TRANSIENT);
    return *this;
  }
  Binder& text(int index, std::string_view v) {
    if (rc_ == SQLITE_OK) {
      rc_ = sqlite3_bind_text64(s_, index, v.data(), v.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
    }
    return *this;
  }
  bool ok() const { return rc_ == SQLITE_OK; }

 private:
  sqlite3_stmt* s_;
  int rc_ = SQLITE_OK;
};

// Token handles and partition ids are unsigned; SQLite integers are signed.
// Every handle below kSessionHandleBase fits.
int64_t to_sql(KeyHandle h) { return static_cast<int64_t>(h); }
int64_t to_sql(PartitionId p) { return static_cast<int64_t>(p); }
bool is_token_handle(KeyHandle h) { return h > 0 && h < kSessionHandleBase; }

// `persistent`: the statement is cached for the connection's lifetime.
Status prepare(sqlite3* db, std::string_view sql, StatementPtr& out, bool persistent = true) {
  sqlite3_stmt* s = nullptr;
  if (sqlite3_prepare_v3(db, sql.data(), static_cast<int>(sql.size()),
                         persistent ? SQLITE_PREPARE_PERSISTENT : 0, &s, nullptr) != SQLITE_OK) {
    sqlite3_finalize(s);
    return storage_failure(db, "prepare");
  }
  out.reset(s);
  return Status::kOk;
}

// Steps a statement whose rows, if any, are not needed; the caller holds
// the StatementScope that covers its bindings.
Status step_all(sqlite3* db, sqlite3_stmt* s, const char* what) {
  int rc;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
  }
  return rc == SQLITE_DONE ? Status::kOk : storage_failure(db, what);
}

// The same for a statement without parameters.
Status run(sqlite3* db, sqlite3_stmt* s, const char* what) {
  StatementScope scope(s);
  return step_all(db, s, what);
}

// Runs `sql` once and collects the first column of every row as text
// (pragmas: user_version, journal_mode, quick_check, integrity_check).
Status query_text(sqlite3* db, const char* sql, std::vector<std::string>& rows) {
  rows.clear();
  StatementPtr s;
  if (Status st = prepare(db, sql, s, false); !ok(st)) return st;
  int rc;
  while ((rc = sqlite3_step(s.get())) == SQLITE_ROW) {
    const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(s.get(), 0));
    const int n = sqlite3_column_bytes(s.get(), 0);
    rows.emplace_back(text != nullptr ? std::string(text, static_cast<size_t>(n)) : std::string());
  }
  return rc == SQLITE_DONE ? Status::kOk : storage_failure(db, sql);
}

Status exec(sqlite3* db, const char* sql, const char* what) {
  if (sqlite3_exec(db, sql, nullptr, nullptr, nullptr) != SQLITE_OK) {
    return storage_failure(db, what);
  }
  return Status::kOk;
}

Status column_bytes(sqlite3* db, sqlite3_stmt* s, int column, Bytes& out) {
  const auto* p = static_cast<const uint8_t*>(sqlite3_column_blob(s, column));
  const int n = sqlite3_column_bytes(s, column);
  // A zero-length blob comes back as a null pointer; so does a failed
  // allocation, told apart by the error code.
  if (p == nullptr && sqlite3_errcode(db) == SQLITE_NOMEM) return storage_failure(db, "read");
  if (p != nullptr) {
    out.assign(p, p + n);
  } else {
    out.clear();
  }
  return Status::kOk;
}

// Columns in kGetSql/kFindSql order. Integer columns out of their type's range
// can only come from tampering; the uid length is the device's to check.
Status read_row(sqlite3* db, sqlite3_stmt* s, ObjectRow& row) {
  const int64_t handle = sqlite3_column_int64(s, 0);
  const int64_t partition = sqlite3_column_int64(s, 1);
  const int64_t object_class = sqlite3_column_int64(s, 3);
  if (!is_token_handle(static_cast<KeyHandle>(handle)) || partition < 0 ||
      partition > int64_t{UINT32_MAX} || object_class < 0 || object_class > int64_t{UINT32_MAX}) {
    std::fprintf(stderr,
                 "ihsmd: object store: row with an out-of-range handle, partition or class\n");
    return Status::kStorageFailure;
  }
  row.handle = static_cast<KeyHandle>(handle);
  row.partition = static_cast<PartitionId>(partition);
  row.object_class = static_cast<uint32_t>(object_class);
  const auto* label = reinterpret_cast<const char*>(sqlite3_column_text(s, 4));
  const int label_size = sqlite3_column_bytes(s, 4);
  if (label == nullptr && sqlite3_errcode(db) == SQLITE_NOMEM) return storage_failure(db, "read");
  if (label != nullptr) {
    row.label.assign(label, static_cast<size_t>(label_size));
  } else {
    row.label.clear();
  }
  if (Status st = column_bytes(db, s, 2, row.uid); !ok(st)) return st;
  if (Status st = column_bytes(db, s, 5, row.id); !ok(st)) return st;
  return column_bytes(db, s, 6, row.blob);
}

constexpr const char* kAuditColumns =
    "seq, time, event, partition, uid, opcode, status, object, detail, prev_hash, hash";

// Columns in kAuditColumns order. Values out of range can only come from
// tampering: they are clamped into the record, whose hash then fails.
Status read_audit_row(sqlite3* db, sqlite3_stmt* s, audit::Record& r) {
  const auto u64 = [&](int c) { return static_cast<uint64_t>(sqlite3_column_int64(s, c)); };
  r.seq = u64(0);
  r.time_ms = u64(1);
  const auto* event = reinterpret_cast<const char*>(sqlite3_column_text(s, 2));
  const int n = sqlite3_column_bytes(s, 2);
  if (event == nullptr && sqlite3_errcode(db) == SQLITE_NOMEM) return storage_failure(db, "read");
  r.event.assign(event != nullptr ? event : "", event != nullptr ? static_cast<size_t>(n) : 0);
  r.partition = static_cast<uint32_t>(u64(3));
  r.uid = static_cast<uint32_t>(u64(4));
  r.opcode = static_cast<uint16_t>(u64(5));
  r.status = static_cast<uint16_t>(u64(6));
  r.object = u64(7);
  if (Status st = column_bytes(db, s, 8, r.detail); !ok(st)) return st;
  if (Status st = column_bytes(db, s, 9, r.prev_hash); !ok(st)) return st;
  return column_bytes(db, s, 10, r.hash);
}

// Public entry points return a status, never throw; allocation failure is
// the only exception the code below can raise.
template <typename F>
Status no_throw(F&& f) noexcept {
  try {
    return f();
  } catch (const std::bad_alloc&) {
    return Status::kResourceExhausted;
  } catch (...) {
    return Status::kInternalError;
  }
}

Status create_private_file(const std::string& path) {
  // Created (or tightened) before SQLite opens it: SQLite gives the -wal and
  // -shm files the mode of the database file.
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    std::fprintf(stderr, "ihsmd: object store: cannot open %s: %s\n", path.c_str(),
                 std::strerror(errno));
    return Status::kStorageFailure;
  }
  const bool tightened = ::fchmod(fd, 0600) == 0;
  const int saved = errno;
  ::close(fd);
  if (!tightened) {
    std::fprintf(stderr, "ihsmd: object store: cannot chmod %s: %s\n", path.c_str(),
                 std::strerror(saved));
    return Status::kStorageFailure;
  }
  return Status::kOk;
}

Status open_connection(const std::string& path, int flags, DatabasePtr& out) {
  sqlite3* raw = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &raw, flags | SQLITE_OPEN_NOFOLLOW, nullptr);
  DatabasePtr db(raw);  // closes on every path, also after a failed open
  if (rc != SQLITE_OK) return storage_failure(db.get(), "open");
  sqlite3_extended_result_codes(db.get(), 1);
  if (sqlite3_busy_timeout(db.get(), kBusyTimeoutMs) != SQLITE_OK) {
    return storage_failure(db.get(), "busy timeout");
  }
  out = std::move(db);
  return Status::kOk;
}

Status read_user_version(sqlite3* db, int& out) {
  std::vector<std::string> rows;
  if (Status s = query_text(db, "PRAGMA user_version", rows); !ok(s)) return s;
  if (rows.size() != 1) return storage_failure(db, "user_version");
  out = std::atoi(rows[0].c_str());
  return Status::kOk;
}

}  // namespace

// ---- writer connection: every statement a write op needs, prepared once ----

struct ObjectStore::WriterConnection {
  DatabasePtr db;  // declared first: closes after the statements finalize
  StatementPtr begin, commit, rollback, savepoint, release, rollback_to;
  StatementPtr insert, update, destroy, mark_destroyed, clear_destroyed, delete_objects,
      delete_marks, store_next_handle, set_meta;
  StatementPtr insert_audit, insert_checkpoint, audit_upto, checkpoints_upto, delete_audit_upto,
      prune_checkpoints;

  Status prepare_all() {
    const std::pair<StatementPtr*, const char*> sql[] = {
        {&begin, "BEGIN IMMEDIATE"},
        {&commit, "COMMIT"},
        {&rollback, "ROLLBACK"},
        {&savepoint, "SAVEPOINT p"},
        {&release, "RELEASE p"},
        {&rollback_to, "ROLLBACK TO p"},
        {&insert,
         "INSERT INTO objects (handle, partition, uid, class, label, id, blob) "
         "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"},
        {&update,
         "UPDATE objects SET class = ?3, label = ?4, id = ?5, blob = ?6 "
         "WHERE handle = ?1 AND partition = ?2"},
        {&destroy, "DELETE FROM objects WHERE handle = ?1 AND partition = ?2 RETURNING uid"},
        {&mark_destroyed, "INSERT OR IGNORE INTO destroyed (partition, uid) VALUES (?1, ?2)"},
        {&clear_destroyed, "DELETE FROM destroyed WHERE partition = ?1 AND uid = ?2"},
        {&delete_objects, "DELETE FROM objects WHERE partition = ?1"},
        {&delete_marks, "DELETE FROM destroyed WHERE partition = ?1"},
        {&store_next_handle,
         "INSERT OR REPLACE INTO meta (name, value) VALUES ('next_handle', ?1)"},
        {&set_meta, "INSERT OR REPLACE INTO meta (name, value) VALUES (?1, ?2)"},
        {&insert_audit,
         "INSERT INTO audit (seq, time, event, partition, uid, opcode, status, object, detail, "
         "prev_hash, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"},
        {&insert_checkpoint,
         "INSERT OR REPLACE INTO audit_checkpoint (seq, hash, time, signed) "
         "VALUES (?1, ?2, ?3, ?4)"},
        {&audit_upto,
         "SELECT seq, time, event, partition, uid, opcode, status, object, detail, prev_hash, "
         "hash FROM audit WHERE seq <= ?1 ORDER BY seq"},
        {&checkpoints_upto, "SELECT signed FROM audit_checkpoint WHERE seq <= ?1 ORDER BY seq"},
        {&delete_audit_upto, "DELETE FROM audit WHERE seq <= ?1"},
        {&prune_checkpoints, "DELETE FROM audit_checkpoint WHERE seq < ?1"},
    };
    for (const auto& [slot, text] : sql) {
      if (Status s = prepare(db.get(), text, *slot); !ok(s)) return s;
    }
    return Status::kOk;
  }

  Status apply(const InsertObject& op, std::atomic<KeyHandle>& next_handle) {
    const ObjectRow& r = op.row;
    if (!is_token_handle(r.handle)) return Status::kInvalidArgument;
    // An explicit handle (a restore) moves the high-water mark past it so
    // allocate_handle() never hands it out again.
    KeyHandle next = next_handle.load();
    while (next <= r.handle && !next_handle.compare_exchange_weak(next, r.handle + 1)) {
    }
    sqlite3_stmt* s = insert.get();
    StatementScope scope(s);
    if (!Binder(s)
             .integer(1, to_sql(r.handle))
             .integer(2, to_sql(r.partition))
             .blob(3, r.uid)
             .integer(4, int64_t{r.object_class})
             .text(5, r.label)
             .blob(6, r.id)
             .blob(7, r.blob)
             .ok()) {
      return storage_failure(db.get(), "bind insert");
    }
    const int rc = sqlite3_step(s);
    if (rc == SQLITE_DONE) return Status::kOk;
    const int ext = sqlite3_extended_errcode(db.get());
    if (ext == SQLITE_CONSTRAINT_PRIMARYKEY || ext == SQLITE_CONSTRAINT_UNIQUE) {
      return Status::kObjectExists;
    }
    return storage_failure(db.get(), "insert");
  }

  Status apply(const UpdateObject& op) {
    const ObjectRow& r = op.row;
    if (!is_token_handle(r.handle)) return Status::kNoSuchKey;
    sqlite3_stmt* s = update.get();
    StatementScope scope(s);
    if (!Binder(s)
             .integer(1, to_sql(r.handle))
             .integer(2, to_sql(r.partition))
             .integer(3, int64_t{r.object_class})
             .text(4, r.label)
             .blob(5, r.id)
             .blob(6, r.blob)
             .ok()) {
      return storage_failure(db.get(), "bind update");
    }
    if (sqlite3_step(s) != SQLITE_DONE) return storage_failure(db.get(), "update");
    return sqlite3_changes(db.get()) == 1 ? Status::kOk : Status::kNoSuchKey;
  }

  Status apply(const DestroyObject& op) {
    if (!is_token_handle(op.handle)) return Status::kNoSuchKey;
    Bytes uid;
    {
      sqlite3_stmt* s = destroy.get();
      StatementScope scope(s);
      if (!Binder(s).integer(1, to_sql(op.handle)).integer(2, to_sql(op.partition)).ok()) {
        return storage_failure(db.get(), "bind destroy");
      }
      int rc = sqlite3_step(s);
      if (rc == SQLITE_DONE) return Status::kNoSuchKey;
      if (rc != SQLITE_ROW) return storage_failure(db.get(), "destroy");
      if (Status st = column_bytes(db.get(), s, 0, uid); !ok(st)) return st;
      // RETURNING rows must be stepped to the end for the statement to finish.
      while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
      }
      if (rc != SQLITE_DONE) return storage_failure(db.get(), "destroy");
    }
    sqlite3_stmt* s = mark_destroyed.get();
    StatementScope scope(s);
    if (!Binder(s).integer(1, to_sql(op.partition)).blob(2, uid).ok()) {
      return storage_failure(db.get(), "bind destroyed mark");
    }
    return step_all(db.get(), s, "destroyed mark");
  }

  Status apply(const ClearDestroyed& op) {
    sqlite3_stmt* s = clear_destroyed.get();
    StatementScope scope(s);
    if (!Binder(s).integer(1, to_sql(op.partition)).blob(2, op.uid).ok()) {
      return storage_failure(db.get(), "bind clear destroyed");
    }
    return step_all(db.get(), s, "clear destroyed");
  }

  Status apply(const DeletePartition& op) {
    for (sqlite3_stmt* s : {delete_objects.get(), delete_marks.get()}) {
      StatementScope scope(s);
      if (!Binder(s).integer(1, to_sql(op.partition)).ok()) {
        return storage_failure(db.get(), "bind delete partition");
      }
      if (Status st = step_all(db.get(), s, "delete partition"); !ok(st)) return st;
    }
    return Status::kOk;
  }

  Status apply(const SetMeta& op) {
    // next_handle belongs to the store itself.
    if (op.name == "next_handle" || op.value > uint64_t{INT64_MAX}) {
      return Status::kInvalidArgument;
    }
    sqlite3_stmt* s = set_meta.get();
    StatementScope scope(s);
    if (!Binder(s).text(1, op.name).integer(2, static_cast<int64_t>(op.value)).ok()) {
      return storage_failure(db.get(), "bind set meta");
    }
    return step_all(db.get(), s, "set meta");
  }

  Status apply(const WriteOp& op, std::atomic<KeyHandle>& next_handle) {
    return std::visit(
        [&](const auto& o) -> Status {
          using T = std::decay_t<decltype(o)>;
          if constexpr (std::is_same_v<T, InsertObject>) {
            return apply(o, next_handle);
          } else if constexpr (std::is_same_v<T, AppendAudit> || std::is_same_v<T, SignAuditHead>) {
            return Status::kInternalError;  // the store applies these itself (apply_audit)
          } else {
            return apply(o);
          }
        },
        op);
  }

  Status insert_record(const audit::Record& r) {
    sqlite3_stmt* s = insert_audit.get();
    StatementScope scope(s);
    if (!Binder(s)
             .integer(1, static_cast<int64_t>(r.seq))
             .integer(2, static_cast<int64_t>(r.time_ms))
             .text(3, r.event)
             .integer(4, int64_t{r.partition})
             .integer(5, int64_t{r.uid})
             .integer(6, int64_t{r.opcode})
             .integer(7, int64_t{r.status})
             .integer(8, static_cast<int64_t>(r.object))
             .blob(9, r.detail)
             .blob(10, r.prev_hash)
             .blob(11, r.hash)
             .ok()) {
      return storage_failure(db.get(), "bind audit");
    }
    return step_all(db.get(), s, "insert audit");
  }

  Status insert_signed(uint64_t seq, std::span<const uint8_t> hash, uint64_t time_ms,
                       std::span<const uint8_t> checkpoint) {
    sqlite3_stmt* s = insert_checkpoint.get();
    StatementScope scope(s);
    if (!Binder(s)
             .integer(1, static_cast<int64_t>(seq))
             .blob(2, hash)
             .integer(3, static_cast<int64_t>(time_ms))
             .blob(4, checkpoint)
             .ok()) {
      return storage_failure(db.get(), "bind checkpoint");
    }
    return step_all(db.get(), s, "insert checkpoint");
  }

  // Records and checkpoints up to `seq`, for an archive file.
  Status read_upto(uint64_t seq, audit::LogFile& out) {
    {
      sqlite3_stmt* s = audit_upto.get();
      StatementScope scope(s);
      if (!Binder(s).integer(1, static_cast<int64_t>(seq)).ok()) {
        return storage_failure(db.get(), "bind archive");
      }
      int rc;
      while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        audit::Record r;
        if (Status st = read_audit_row(db.get(), s, r); !ok(st)) return st;
        out.records.push_back(std::move(r));
      }
      if (rc != SQLITE_DONE) return storage_failure(db.get(), "archive records");
    }
    sqlite3_stmt* s = checkpoints_upto.get();
    StatementScope scope(s);
    if (!Binder(s).integer(1, static_cast<int64_t>(seq)).ok()) {
      return storage_failure(db.get(), "bind archive");
    }
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
      Bytes c;
      if (Status st = column_bytes(db.get(), s, 0, c); !ok(st)) return st;
      out.checkpoints.push_back(std::move(c));
    }
    return rc == SQLITE_DONE ? Status::kOk : storage_failure(db.get(), "archive checkpoints");
  }

  // Drops the archived records, and the checkpoints before the one that
  // anchors the live log.
  Status drop_upto(uint64_t seq) {
    for (sqlite3_stmt* s : {delete_audit_upto.get(), prune_checkpoints.get()}) {
      StatementScope scope(s);
      if (!Binder(s).integer(1, static_cast<int64_t>(seq)).ok()) {
        return storage_failure(db.get(), "bind rotation");
      }
      if (Status st = step_all(db.get(), s, "rotation"); !ok(st)) return st;
    }
    return Status::kOk;
  }

  Status store_high_water(KeyHandle next) {
    sqlite3_stmt* s = store_next_handle.get();
    StatementScope scope(s);
    if (!Binder(s).integer(1, to_sql(next)).ok()) {
      return storage_failure(db.get(), "bind next_handle");
    }
    return step_all(db.get(), s, "store next_handle");
  }

  // Undoes the open transaction, if SQLite has not already done so itself
  // (it rolls back on its own after some I/O and out-of-memory errors).
  void roll_back() {
    if (sqlite3_get_autocommit(db.get()) == 0) {
      // Failing here leaves the connection unusable; the next BEGIN fails
      // and reports it.
      (void)run(db.get(), rollback.get(), "rollback");
    }
  }
};

// ---- read connections: leased one caller at a time ----

struct ObjectStore::ReadConnection {
  DatabasePtr db;  // declared first: closes after the statements finalize
  StatementPtr get, count, is_destroyed, partitions, read_meta, audit_page, audit_checkpoints;
  // One find statement per combination of optional filters (bit 0 label,
  // bit 1 id, bit 2 class), so each can use its index.
  std::array<StatementPtr, 8> find;

  // The statement in `slot`, prepared on first use.
  Status statement(StatementPtr& slot, std::string_view sql, sqlite3_stmt*& out) {
    if (!slot) {
      if (Status s = prepare(db.get(), sql, slot); !ok(s)) return s;
    }
    out = slot.get();
    return Status::kOk;
  }
};

class ObjectStore::ReadLease {
 public:
  explicit ReadLease(const ObjectStore& store) : store_(store) {}
  ~ReadLease() {
    if (!conn_) return;
    std::lock_guard lock(store_.readers_mutex_);
    store_.idle_readers_.push_back(std::move(conn_));  // capacity reserved at open: no throw
    store_.readers_cv_.notify_one();
  }
  ReadLease(const ReadLease&) = delete;
  ReadLease& operator=(const ReadLease&) = delete;

  Status acquire() {
    std::unique_lock lock(store_.readers_mutex_);
    store_.readers_cv_.wait(
        lock, [&] { return !store_.idle_readers_.empty() || store_.open_readers_ < kMaxReaders; });
    if (!store_.idle_readers_.empty()) {
      conn_ = std::move(store_.idle_readers_.back());
      store_.idle_readers_.pop_back();
      return Status::kOk;
    }
    ++store_.open_readers_;
    lock.unlock();
    const Status s = open_new();
    if (!ok(s)) {
      conn_.reset();
      lock.lock();
      --store_.open_readers_;
      store_.readers_cv_.notify_one();
    }
    return s;
  }

  ReadConnection& connection() { return *conn_; }

 private:
  Status open_new() {
    conn_.reset(new (std::nothrow) ReadConnection);
    if (!conn_) return Status::kResourceExhausted;
    return open_connection(store_.path_, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, conn_->db);
  }

  const ObjectStore& store_;
  std::unique_ptr<ReadConnection> conn_;
};

// ---- open and close ----

ObjectStore::ObjectStore() = default;

ObjectStore::~ObjectStore() {
  {
    std::lock_guard lock(queue_mutex_);
    stopping_ = true;
  }
  queue_cv_.notify_all();
  if (writer_.joinable()) writer_.join();  // the writer drains the queue first
  // Readers close first so the writer connection is the last one and
  // checkpoints the WAL into the database file.
  idle_readers_.clear();
  writer_db_.reset();
}

Status ObjectStore::open(const std::string& path, std::unique_ptr<ObjectStore>& out) {
  out.reset();
  return no_throw([&] {
    if (sqlite3_threadsafe() == 0) {
      std::fprintf(stderr, "ihsmd: object store: SQLite is built without thread support\n");
      return Status::kStorageFailure;
    }
    std::unique_ptr<ObjectStore> store(new ObjectStore());
    store->path_ = path;
    store->idle_readers_.reserve(kMaxReaders);
    if (Status s = create_private_file(path); !ok(s)) return s;
    if (Status s = store->open_writer(); !ok(s)) return s;
    store->writer_ = std::thread(&ObjectStore::writer_loop, store.get());
    out = std::move(store);
    return Status::kOk;
  });
}

Status ObjectStore::check_schema_version(int version) const {
  if (version < 0) {
    std::fprintf(stderr, "ihsmd: object store: %s has an invalid schema version %d\n",
                 path_.c_str(), version);
    return Status::kStorageFailure;
  }
  if (version > kSchemaVersion) {
    std::fprintf(stderr,
                 "ihsmd: object store: %s has schema version %d, newer than this ihsmd "
                 "supports (%d): refusing to open it\n",
                 path_.c_str(), version, kSchemaVersion);
    return Status::kStorageFailure;
  }
  return Status::kOk;
}

Status ObjectStore::open_writer() {
  writer_db_ = std::make_unique<WriterConnection>();
  DatabasePtr& db = writer_db_->db;
  if (Status s = open_connection(
          path_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, db);
      !ok(s)) {
    return s;
  }
  // Refuse a newer schema before changing anything in the file.
  int version = 0;
  if (Status s = read_user_version(db.get(), version); !ok(s)) return s;
  if (Status s = check_schema_version(version); !ok(s)) return s;
  std::vector<std::string> rows;
  if (Status s = query_text(db.get(), "PRAGMA journal_mode=WAL", rows); !ok(s)) return s;
  if (rows.size() != 1 || rows[0] != "wal") {
    std::fprintf(stderr, "ihsmd: object store: cannot switch %s to WAL mode\n", path_.c_str());
    return Status::kStorageFailure;
  }
  if (Status s = exec(db.get(), "PRAGMA synchronous=FULL", "synchronous"); !ok(s)) return s;
  if (Status s = exec(db.get(), "PRAGMA foreign_keys=ON", "foreign_keys"); !ok(s)) return s;
  if (Status s = query_text(db.get(), "PRAGMA quick_check", rows); !ok(s)) return s;
  if (rows.size() != 1 || rows[0] != "ok") {
    // The report names pages and indexes, never row contents.
    std::fprintf(stderr, "ihsmd: object store: %s fails quick_check:\n", path_.c_str());
    for (const std::string& r : rows) std::fprintf(stderr, "  %s\n", r.c_str());
    return Status::kStorageFailure;
  }

  // Migrations: version and steps are read and applied under one write lock.
  if (version < kSchemaVersion) {
    if (Status s = exec(db.get(), "BEGIN IMMEDIATE", "begin migration"); !ok(s)) return s;
    Status s = read_user_version(db.get(), version);
    if (ok(s)) s = check_schema_version(version);
    for (const Migration& m : kMigrations) {
      if (!ok(s)) break;
      if (m.version <= version) continue;
      s = exec(db.get(), m.sql, "migration");
      if (ok(s)) {
        const std::string set = "PRAGMA user_version=" + std::to_string(m.version);
        s = exec(db.get(), set.c_str(), "set user_version");
      }
    }
    if (ok(s)) s = exec(db.get(), "COMMIT", "commit migration");
    if (!ok(s)) {
      if (sqlite3_get_autocommit(db.get()) == 0) {
        (void)exec(db.get(), "ROLLBACK", "rollback migration");
      }
      return s;
    }
  }

  // The high-water mark: past every stored handle and every handle ever
  // committed, even if the object holding it has since been destroyed.
  if (Status s = query_text(db.get(), "SELECT value FROM meta WHERE name = 'next_handle'", rows);
      !ok(s)) {
    return s;
  }
  const int64_t stored = rows.empty() ? 0 : std::strtoll(rows[0].c_str(), nullptr, 10);
  if (Status s = query_text(db.get(), "SELECT IFNULL(MAX(handle), 0) FROM objects", rows); !ok(s)) {
    return s;
  }
  const int64_t max_handle = rows.empty() ? 0 : std::strtoll(rows[0].c_str(), nullptr, 10);
  if (stored < 0 || static_cast<KeyHandle>(stored) > kSessionHandleBase || max_handle < 0 ||
      static_cast<KeyHandle>(max_handle) >= kSessionHandleBase) {
    std::fprintf(stderr, "ihsmd: object store: %s holds an out-of-range handle\n", path_.c_str());
    return Status::kStorageFailure;
  }
  stored_next_handle_ = static_cast<KeyHandle>(stored);
  next_handle_ =
      std::max({stored_next_handle_, static_cast<KeyHandle>(max_handle) + 1, KeyHandle{1}});
  if (Status s = writer_db_->prepare_all(); !ok(s)) return s;
  return load_audit_state();
}

// The chain continues from the highest of the last record and the last
// checkpoint: after a rotation the table may be empty, and if records
// were cut off the end while the device was down, the next record links
// to the checkpointed hash, so the verifier reports the missing ones.
Status ObjectStore::load_audit_state() {
  sqlite3* db = writer_db_->db.get();
  audit_ = AuditState{};
  audit_.head = audit::genesis_hash();
  for (const char* sql : {"SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1",
                          "SELECT seq, hash FROM audit_checkpoint ORDER BY seq DESC LIMIT 1"}) {
    StatementPtr st;
    if (Status s = prepare(db, sql, st, false); !ok(s)) return s;
    const int rc = sqlite3_step(st.get());
    if (rc == SQLITE_DONE) continue;
    if (rc != SQLITE_ROW) return storage_failure(db, "audit head");
    const int64_t seq = sqlite3_column_int64(st.get(), 0);
    Bytes hash;
    if (Status s = column_bytes(db, st.get(), 1, hash); !ok(s)) return s;
    if (seq <= 0 || hash.size() != audit::kHashSize) {
      std::fprintf(stderr, "ihsmd: object store: the audit log's head is malformed\n");
      return Status::kStorageFailure;
    }
    if (static_cast<uint64_t>(seq) > audit_.seq) {
      audit_.seq = static_cast<uint64_t>(seq);
      audit_.head = std::move(hash);
    }
  }
  std::vector<std::string> rows;
  if (Status s = query_text(db, "SELECT COUNT(*) FROM audit", rows); !ok(s)) return s;
  audit_.live = rows.empty() ? 0 : std::strtoull(rows[0].c_str(), nullptr, 10);
  return Status::kOk;
}

// ---- writes ----

struct ObjectStore::Pending {
  std::vector<WriteOp> ops;
  Status status = Status::kOk;
  bool done = false;   // guarded by queue_mutex_
  bool async = false;  // nobody waits: write_async
  std::condition_variable cv;
};

namespace {

uint64_t now_ms() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

}  // namespace

void ObjectStore::write_async(std::vector<WriteOp> ops) {
  const Status s = no_throw([&] {
    auto pending = std::make_shared<Pending>();
    pending->ops = std::move(ops);
    pending->async = true;
    std::lock_guard lock(queue_mutex_);
    if (stopping_) return Status::kStorageFailure;
    queue_.push_back(std::move(pending));
    queue_cv_.notify_one();
    return Status::kOk;
  });
  if (!ok(s)) {
    std::fprintf(stderr, "ihsmd: object store: an audit record was not queued: %s\n",
                 std::string(status_name(s)).c_str());
  }
}

void ObjectStore::set_audit_hooks(AuditHooks hooks) {
  // Under the queue lock: the writer reads the hooks only while it holds a
  // group taken from the queue after this.
  std::lock_guard lock(queue_mutex_);
  audit_hooks_ = std::move(hooks);
}

Status ObjectStore::append_audit(audit::Record record) {
  if (audit_.seq >= uint64_t{INT64_MAX}) return Status::kResourceExhausted;
  if (record.event.size() > audit::kMaxEvent || record.detail.size() > audit::kMaxDetail) {
    return Status::kInvalidArgument;
  }
  record.seq = audit_.seq + 1;
  record.prev_hash = audit_.head;
  record.hash = audit::record_hash(record.prev_hash, record);
  if (record.hash.size() != audit::kHashSize) return Status::kInternalError;
  if (Status s = writer_db_->insert_record(record); !ok(s)) return s;
  audit_.seq = record.seq;
  audit_.head = record.hash;
  ++audit_.live;
  const uint64_t every = audit_hooks_.checkpoint_every;
  if (every != 0 && record.seq % every == 0 && audit_hooks_.sign) {
    // A device that cannot sign (its error state) leaves the gap to the
    // next checkpoint it can make; the chain itself is unbroken.
    const Status s = sign_head(nullptr);
    if (s == Status::kStorageFailure) return s;
  }
  return Status::kOk;
}

Status ObjectStore::sign_head(AuditHead* out) {
  if (audit_.seq == 0) return Status::kInvalidArgument;  // nothing to sign yet
  if (!audit_hooks_.sign) return Status::kInternalError;
  Bytes signed_head;
  if (Status s = audit_hooks_.sign(audit_.seq, audit_.head, signed_head); !ok(s)) return s;
  if (Status s = writer_db_->insert_signed(audit_.seq, audit_.head, now_ms(), signed_head);
      !ok(s)) {
    return s;
  }
  if (out != nullptr) {
    out->seq = audit_.seq;
    out->hash = audit_.head;
    out->checkpoint = std::move(signed_head);
  }
  return Status::kOk;
}

// A checkpoint at the head, every record up to it into
// audit-[<tag>-]<first>-<last>.cbor (with the checkpoints that cover them), those
// records out of the table, then an audit-rotate record: the live log
// starts at a record whose prev_hash is the archived last hash, anchored by
// the checkpoint that stays in the table.
Status ObjectStore::rotate_audit() {
  if (audit_.live == 0) return Status::kOk;
  if (!audit_hooks_.archive) return Status::kInternalError;
  AuditHead head;
  if (Status s = sign_head(&head); !ok(s)) return s;
  audit::LogFile file;
  if (Status s = writer_db_->read_upto(head.seq, file); !ok(s)) return s;
  if (file.records.empty()) return Status::kOk;
  const uint64_t first = file.records.front().seq, last = file.records.back().seq;
  const std::string tag = audit_hooks_.archive_tag.empty() ? "" : audit_hooks_.archive_tag + "-";
  const std::string name =
      "audit-" + tag + std::to_string(first) + "-" + std::to_string(last) + ".cbor";
  if (Status s = audit_hooks_.archive(name, audit::encode_log_file(file)); !ok(s)) return s;
  if (Status s = writer_db_->drop_upto(head.seq); !ok(s)) return s;
  audit_.live -= std::min<uint64_t>(audit_.live, file.records.size());
  audit::Record rotated;
  rotated.time_ms = now_ms();
  rotated.event = "audit-rotate";
  rotated.uid = audit_hooks_.device_uid;
  cbor::Value detail = cbor::Value::map();
  detail.set(protocol::kAuditFirst, cbor::Value::uint(first));
  detail.set(protocol::kAuditLast, cbor::Value::uint(last));
  detail.set(protocol::kPath, cbor::Value::text(name));
  rotated.detail = cbor::encode(detail);
  return append_audit(std::move(rotated));
}

Status ObjectStore::apply_audit(const WriteOp& op, bool& handled) {
  handled = true;
  if (const auto* append = std::get_if<AppendAudit>(&op)) return append_audit(append->record);
  if (const auto* sign = std::get_if<SignAuditHead>(&op)) {
    if (sign->rotate) {
      if (Status s = rotate_audit(); !ok(s)) return s;
    }
    return sign_head(sign->out.get());
  }
  handled = false;
  return Status::kOk;
}

KeyHandle ObjectStore::allocate_handle() { return next_handle_.fetch_add(1); }

uint64_t ObjectStore::commit_count() const { return commit_count_.load(); }

Status ObjectStore::write(std::vector<WriteOp> ops) {
  return no_throw([&] {
    auto pending = std::make_shared<Pending>();
    pending->ops = std::move(ops);
    std::unique_lock lock(queue_mutex_);
    if (stopping_) return Status::kStorageFailure;
    queue_.push_back(pending);
    queue_cv_.notify_one();
    pending->cv.wait(lock, [&] { return pending->done; });
    return pending->status;
  });
}

void ObjectStore::writer_loop() {
  Group group;
  for (;;) {
    {
      std::unique_lock lock(queue_mutex_);
      queue_cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and everything queued is done
      // Records queued without waiting (write_async) ride with the next
      // write someone waits for, so they cost no fsync of their own; alone,
      // they wait at most kAsyncDelay.
      const auto only_async = [&] {
        return std::all_of(queue_.begin(), queue_.end(),
                           [](const std::shared_ptr<Pending>& p) { return p->async; });
      };
      if (!stopping_ && only_async()) {
        queue_cv_.wait_for(lock, kAsyncDelay, [&] { return stopping_ || !only_async(); });
      }
      group.swap(queue_);  // every waiting batch joins this group
    }
    apply_group(group);
    {
      std::lock_guard lock(queue_mutex_);
      for (const auto& pending : group) {
        if (pending->async && !ok(pending->status)) {
          std::fprintf(stderr, "ihsmd: object store: an audit record was not stored: %s\n",
                       std::string(status_name(pending->status)).c_str());
        }
        pending->done = true;
        pending->cv.notify_one();
      }
    }
    group.clear();
  }
}

void ObjectStore::apply_group(Group& group) noexcept {
  WriterConnection& w = *writer_db_;
  sqlite3* db = w.db.get();
  // The audit chain as committed: a batch or group undone takes its
  // records (and their seq numbers) with it.
  const AuditState audit_at_start = audit_;
  // Marks every batch of the group with `s` after undoing the transaction.
  const auto fail_group = [&](Status s) {
    w.roll_back();
    audit_ = audit_at_start;
    for (const auto& pending : group) pending->status = s;
  };
  try {
    if (!ok(run(db, w.begin.get(), "begin"))) {
      fail_group(Status::kStorageFailure);
      return;
    }
    for (const auto& pending : group) {
      if (!ok(run(db, w.savepoint.get(), "savepoint"))) {
        fail_group(Status::kStorageFailure);
        return;
      }
      Status s = Status::kOk;
      const AuditState audit_at_batch = audit_;
      for (const WriteOp& op : pending->ops) {
        bool handled = false;
        s = apply_audit(op, handled);
        if (!handled) s = w.apply(op, next_handle_);
        if (!ok(s)) break;
      }
      if (!ok(s)) audit_ = audit_at_batch;
      // After some errors (I/O, full disk) SQLite has rolled back the whole
      // transaction, the batches before this one included.
      const bool lost = sqlite3_get_autocommit(db) != 0;
      if (lost || (!ok(s) && !ok(run(db, w.rollback_to.get(), "rollback to savepoint"))) ||
          !ok(run(db, w.release.get(), "release savepoint"))) {
        fail_group(Status::kStorageFailure);
        return;
      }
      pending->status = s;  // a failed batch is undone; the others go on
    }
    // Rotation in its own savepoint: if it fails, the group still commits
    // and the log simply stays longer until the next try.
    if (audit_hooks_.max_records != 0 && audit_.live > audit_hooks_.max_records) {
      const AuditState before = audit_;
      if (!ok(run(db, w.savepoint.get(), "savepoint"))) {
        fail_group(Status::kStorageFailure);
        return;
      }
      const Status rotated = rotate_audit();
      if (!ok(rotated)) {
        std::fprintf(stderr, "ihsmd: object store: audit rotation failed: %s\n",
                     std::string(status_name(rotated)).c_str());
        audit_ = before;
      }
      if (sqlite3_get_autocommit(db) != 0 ||
          (!ok(rotated) && !ok(run(db, w.rollback_to.get(), "rollback to savepoint"))) ||
          !ok(run(db, w.release.get(), "release savepoint"))) {
        fail_group(Status::kStorageFailure);
        return;
      }
    }
    // Read after the batches: covers every handle allocated before its
    // batch was queued, so a restart never hands one out again.
    const KeyHandle high_water = next_handle_.load();
    if ((high_water > stored_next_handle_ && !ok(w.store_high_water(high_water))) ||
        !ok(run(db, w.commit.get(), "commit"))) {
      fail_group(Status::kStorageFailure);
      return;
    }
    stored_next_handle_ = std::max(stored_next_handle_, high_water);
    commit_count_.fetch_add(1);
  } catch (...) {
    // Only allocation can throw (copying a uid); nothing of the group stays.
    fail_group(Status::kResourceExhausted);
  }
}

// ---- reads ----

Status ObjectStore::get(PartitionId partition, KeyHandle handle,
                        std::optional<ObjectRow>& out) const {
  out.reset();
  if (!is_token_handle(handle)) return Status::kOk;  // never a stored handle
  return no_throw([&] {
    ReadLease lease(*this);
    if (Status s = lease.acquire(); !ok(s)) return s;
    ReadConnection& c = lease.connection();
    sqlite3_stmt* s = nullptr;
    if (Status st = c.statement(c.get, kGetSql, s); !ok(st)) return st;
    StatementScope scope(s);
    if (!Binder(s).integer(1, to_sql(handle)).integer(2, to_sql(partition)).ok()) {
      return storage_failure(c.db.get(), "bind get");
    }
    const int rc = sqlite3_step(s);
    if (rc == SQLITE_DONE) return Status::kOk;
    if (rc != SQLITE_ROW) return storage_failure(c.db.get(), "get");
    ObjectRow row;
    if (Status st = read_row(c.db.get(), s, row); !ok(st)) return st;
    out = std::move(row);
    return Status::kOk;
  });
}

std::string ObjectStore::find_sql(const Query& query) {
  std::string sql = kFindSql;
  if (query.label) sql += " AND label = ?2";
  if (query.id) sql += " AND id = ?3";
  // With a label or an id, "+class" keeps SQLite off the class index: it
  // rates (partition, class) as good as (partition, label), but a class
  // matches most of a partition (540 us against 70 us per lookup among
  // 5,000 objects). The class is then checked on the few rows found.
  if (query.object_class) sql += (query.label || query.id) ? " AND +class = ?4" : " AND class = ?4";
  sql += " AND handle > ?5 ORDER BY handle LIMIT ?6";
  return sql;
}

Status ObjectStore::find(const Query& query, std::vector<ObjectRow>& out) const {
  out.clear();
  if (query.limit == 0 || query.after >= kSessionHandleBase - 1) return Status::kOk;
  const Status status = no_throw([&] {
    ReadLease lease(*this);
    if (Status s = lease.acquire(); !ok(s)) return s;
    ReadConnection& c = lease.connection();
    const unsigned mask =
        (query.label ? 1u : 0u) | (query.id ? 2u : 0u) | (query.object_class ? 4u : 0u);
    if (!c.find[mask]) {
      if (Status st = prepare(c.db.get(), find_sql(query), c.find[mask]); !ok(st)) return st;
    }
    sqlite3_stmt* s = c.find[mask].get();
    StatementScope scope(s);
    Binder bind(s);
    bind.integer(1, to_sql(query.partition));
    if (query.label) bind.text(2, *query.label);
    if (query.id) bind.blob(3, *query.id);
    if (query.object_class) bind.integer(4, int64_t{*query.object_class});
    const auto limit = static_cast<int64_t>(std::min<size_t>(query.limit, INT64_MAX));
    bind.integer(5, to_sql(query.after)).integer(6, limit);
    if (!bind.ok()) return storage_failure(c.db.get(), "bind find");
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
      ObjectRow row;
      if (Status st = read_row(c.db.get(), s, row); !ok(st)) return st;
      out.push_back(std::move(row));
    }
    return rc == SQLITE_DONE ? Status::kOk : storage_failure(c.db.get(), "find");
  });
  if (!ok(status)) out.clear();
  return status;
}

Status ObjectStore::is_destroyed(PartitionId partition, std::span<const uint8_t> uid,
                                 bool& out) const {
  out = false;
  return no_throw([&] {
    ReadLease lease(*this);
    if (Status s = lease.acquire(); !ok(s)) return s;
    ReadConnection& c = lease.connection();
    sqlite3_stmt* s = nullptr;
    if (Status st = c.statement(c.is_destroyed,
                                "SELECT 1 FROM destroyed WHERE partition = ?1 AND uid = ?2", s);
        !ok(st)) {
      return st;
    }
    StatementScope scope(s);
    if (!Binder(s).integer(1, to_sql(partition)).blob(2, uid).ok()) {
      return storage_failure(c.db.get(), "bind is_destroyed");
    }
    const int rc = sqlite3_step(s);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return storage_failure(c.db.get(), "is_destroyed");
    out = rc == SQLITE_ROW;
    return Status::kOk;
  });
}

Status ObjectStore::count(PartitionId partition, uint64_t& out) const {
  out = 0;
  return no_throw([&] {
    ReadLease lease(*this);
    if (Status s = lease.acquire(); !ok(s)) return s;
    ReadConnection& c = lease.connection();
    sqlite3_stmt* s = nullptr;
    if (Status st = c.statement(c.count, "SELECT COUNT(*) FROM objects WHERE partition = ?1", s);
        !ok(st)) {
      return st;
    }
    StatementScope scope(s);
    if (!Binder(s).integer(1, to_sql(partition)).ok()) {
      return storage_failure(c.db.get(), "bind count");
    }
    if (sqlite3_step(s) != SQLITE_ROW) return storage_failure(c.db.get(), "count");
    out = static_cast<uint64_t>(sqlite3_column_int64(s, 0));
    return Status::kOk;
  });
}

Status ObjectStore::read_meta(std::string_view name, uint64_t& out) const {
  out = 0;
  return no_throw([&] {
    ReadLease lease(*this);
    if (Status s = lease.acquire(); !ok(s)) return s;
    ReadConnection& c = lease.connection();
    sqlite3_stmt* s = nullptr;
    if (Status st = c.statement(c.read_meta, "SELECT value FROM meta WHERE name = ?1", s);
        !ok(st)) {
      return st;
    }
    StatementScope scope(s);
    if (!Binder(s).text(1, name).ok()) return storage_failure(c.db.get(), "bind read_meta");
    const int rc = sqlite3_step(s);
    if (rc == SQLITE_DONE) return Status::kOk;
    if (rc != SQLITE_ROW) return storage_failure(c.db.get(), "read_meta");
    const int64_t v = sqlite3_column_int64(s, 0);
    if (v < 0) return storage_failure(c.db.get(), "read_meta: negative value");
    out = static_cast<uint64_t>(v);
    return Status::kOk;
  });
}

Status ObjectStore::partitions(std::vector<PartitionId>& out) const {
  out.clear();
  const Status status = no_throw([&] {
    ReadLease lease(*this);
    if (Status s = lease.acquire(); !ok(s)) return s;
    ReadConnection& c = lease.connection();
    sqlite3_stmt* s = nullptr;
    if (Status st = c.statement(c.partitions,
                                "SELECT partition FROM objects UNION "
                                "SELECT partition FROM destroyed ORDER BY 1",
                                s);
        !ok(st)) {
      return st;
    }
    StatementScope scope(s);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
      const int64_t p = sqlite3_column_int64(s, 0);
      if (p < 0 || p > int64_t{UINT32_MAX}) {
        std::fprintf(stderr, "ihsmd: object store: row with an out-of-range partition\n");
        return Status::kStorageFailure;
      }
      out.push_back(static_cast<PartitionId>(p));
    }
    return rc == SQLITE_DONE ? Status::kOk : storage_failure(c.db.get(), "partitions");
  });
  if (!ok(status)) out.clear();
  return status;
}

Status ObjectStore::read_audit(uint64_t after, size_t limit, size_t max_bytes,
                               std::vector<audit::Record>& out, bool& more) const {
  out.clear();
  more = false;
  if (limit == 0 || after >= uint64_t{INT64_MAX}) return Status::kOk;
  const Status status = no_throw([&] {
    ReadLease lease(*this);
    if (Status s = lease.acquire(); !ok(s)) return s;
    ReadConnection& c = lease.connection();
    sqlite3_stmt* s = nullptr;
    if (Status st = c.statement(c.audit_page,
                                std::string("SELECT ") + kAuditColumns +
                                    " FROM audit WHERE seq > ?1 ORDER BY seq LIMIT ?2",
                                s);
        !ok(st)) {
      return st;
    }
    StatementScope scope(s);
    // One more than asked for tells whether more follow.
    const auto fetch = static_cast<int64_t>(std::min<size_t>(limit, INT32_MAX) + 1);
    if (!Binder(s).integer(1, static_cast<int64_t>(after)).integer(2, fetch).ok()) {
      return storage_failure(c.db.get(), "bind read_audit");
    }
    size_t bytes = 0;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
      audit::Record r;
      if (Status st = read_audit_row(c.db.get(), s, r); !ok(st)) return st;
      const size_t size =
          128 + r.event.size() + r.detail.size() + r.prev_hash.size() + r.hash.size();
      if (out.size() == limit || (!out.empty() && bytes + size > max_bytes)) {
        more = true;
        break;
      }
      bytes += size;
      out.push_back(std::move(r));
    }
    if (!more && rc != SQLITE_DONE) return storage_failure(c.db.get(), "read_audit");
    return Status::kOk;
  });
  if (!ok(status)) out.clear();
  return status;
}

Status ObjectStore::read_audit_checkpoints(uint64_t from, uint64_t to,
                                           std::vector<std::pair<uint64_t, Bytes>>& out) const {
  out.clear();
  if (from > to) return Status::kOk;
  const Status status = no_throw([&] {
    ReadLease lease(*this);
    if (Status s = lease.acquire(); !ok(s)) return s;
    ReadConnection& c = lease.connection();
    sqlite3_stmt* s = nullptr;
    if (Status st =
            c.statement(c.audit_checkpoints,
                        "SELECT signed, seq FROM audit_checkpoint WHERE seq >= ?1 AND seq <= "
                        "?2 ORDER BY seq",
                        s);
        !ok(st)) {
      return st;
    }
    StatementScope scope(s);
    const auto clamp = [](uint64_t v) {
      return static_cast<int64_t>(std::min<uint64_t>(v, uint64_t{INT64_MAX}));
    };
    if (!Binder(s).integer(1, clamp(from)).integer(2, clamp(to)).ok()) {
      return storage_failure(c.db.get(), "bind checkpoints");
    }
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
      Bytes b;
      if (Status st = column_bytes(c.db.get(), s, 0, b); !ok(st)) return st;
      out.emplace_back(static_cast<uint64_t>(sqlite3_column_int64(s, 1)), std::move(b));
    }
    return rc == SQLITE_DONE ? Status::kOk : storage_failure(c.db.get(), "checkpoints");
  });
  if (!ok(status)) out.clear();
  return status;
}

Status ObjectStore::integrity_check(std::string& report) const {
  report.clear();
  return no_throw([&] {
    ReadLease lease(*this);
    if (Status s = lease.acquire(); !ok(s)) return s;
    std::vector<std::string> rows;
    if (Status s = query_text(lease.connection().db.get(), "PRAGMA integrity_check", rows);
        !ok(s)) {
      return s;
    }
    for (size_t i = 0; i < rows.size(); ++i) {
      if (i > 0) report += '\n';
      report += rows[i];
    }
    return Status::kOk;
  });
}

}  // namespace ihsm::device::store
