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
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <variant>
#include <vector>

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
using WriteOp = std::variant<InsertObject, UpdateObject, DestroyObject, ClearDestroyed,
                             DeletePartition, SetMeta>;

class ObjectStore {
 public:
  static constexpr int kSchemaVersion = 1;
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

  // Reads (any thread, concurrently with writes; see only committed data).
  Status get(PartitionId partition, KeyHandle handle, std::optional<ObjectRow>& out) const;
  Status find(const Query& query, std::vector<ObjectRow>& out) const;
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
  std::thread writer_;
};

}  // namespace ihsm::device::store
