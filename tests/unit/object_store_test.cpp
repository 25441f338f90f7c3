// The object store (src/device/store/object_store.h): persistence across
// reopen, lookups, batch atomicity, destroyed marks, group commit, and the
// refusals at open (newer schema, not a database).
#include "device/store/object_store.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <set>
#include <stdexcept>
#include <thread>

#include "support/util.h"

namespace ihsm::device::store {
namespace {

using namespace std::chrono_literals;

constexpr PartitionId kPart = 1;
constexpr PartitionId kOtherPart = 2;
constexpr uint32_t kSecretKey = 4;
constexpr uint32_t kPrivateKey = 3;

// 16 bytes, unique per `n`.
Bytes uid(uint64_t n) {
  Bytes u(16, 0xA5);
  for (int i = 0; i < 8; ++i) u[static_cast<size_t>(i)] = static_cast<uint8_t>(n >> (8 * i));
  return u;
}

ObjectRow row(PartitionId partition, KeyHandle handle, std::string label = "key", Bytes id = {0x01},
              uint32_t object_class = kSecretKey) {
  ObjectRow r;
  r.handle = handle;
  r.partition = partition;
  r.uid = uid(handle);
  r.object_class = object_class;
  r.label = std::move(label);
  r.id = std::move(id);
  r.blob = Bytes{0xB0, static_cast<uint8_t>(handle), 0xB1};
  return r;
}

void expect_same(const ObjectRow& a, const ObjectRow& b) {
  EXPECT_EQ(a.handle, b.handle);
  EXPECT_EQ(a.partition, b.partition);
  EXPECT_EQ(a.uid, b.uid);
  EXPECT_EQ(a.object_class, b.object_class);
  EXPECT_EQ(a.label, b.label);
  EXPECT_EQ(a.id, b.id);
  EXPECT_EQ(a.blob, b.blob);
}

std::vector<KeyHandle> handles(const std::vector<ObjectRow>& rows) {
  std::vector<KeyHandle> out;
  for (const ObjectRow& r : rows) out.push_back(r.handle);
  return out;
}

// A second, plain SQLite connection to the same file, for what the store's
// API does not show (pragmas, query plans) and for holding its write lock.
class RawDb {
 public:
  explicit RawDb(const std::string& path) {
    if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE, nullptr) != SQLITE_OK) {
      throw std::runtime_error("cannot open " + path);
    }
    sqlite3_busy_timeout(db_, 5000);
  }
  ~RawDb() { sqlite3_close(db_); }
  RawDb(const RawDb&) = delete;
  RawDb& operator=(const RawDb&) = delete;

  void exec(const std::string& sql) {
    char* err = nullptr;
    if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
      const std::string msg = err != nullptr ? err : "?";
      sqlite3_free(err);
      throw std::runtime_error(sql + ": " + msg);
    }
  }
  // Column `column` of every row, as text.
  std::vector<std::string> rows(const std::string& sql, int column = 0) {
    sqlite3_stmt* s = nullptr;
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &s, nullptr) != SQLITE_OK) {
      throw std::runtime_error(sql + ": " + sqlite3_errmsg(db_));
    }
    std::vector<std::string> out;
    while (sqlite3_step(s) == SQLITE_ROW) {
      const auto* t = reinterpret_cast<const char*>(sqlite3_column_text(s, column));
      out.emplace_back(t != nullptr ? t : "");
    }
    sqlite3_finalize(s);
    return out;
  }

 private:
  sqlite3* db_ = nullptr;
};

class ObjectStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(ObjectStore::open(path(), store_), Status::kOk); }

  std::string path() const { return dir_.file(ObjectStore::kFileName); }

  void reopen() {
    store_.reset();
    ASSERT_EQ(ObjectStore::open(path(), store_), Status::kOk);
  }

  Status insert(const ObjectRow& r) { return store_->write({InsertObject{r}}); }

  std::optional<ObjectRow> get(PartitionId partition, KeyHandle handle) {
    std::optional<ObjectRow> out;
    EXPECT_EQ(store_->get(partition, handle, out), Status::kOk);
    return out;
  }

  std::vector<ObjectRow> find(const Query& q) {
    std::vector<ObjectRow> out;
    EXPECT_EQ(store_->find(q, out), Status::kOk);
    return out;
  }

  uint64_t count(PartitionId partition) {
    uint64_t n = 0;
    EXPECT_EQ(store_->count(partition, n), Status::kOk);
    return n;
  }

  bool destroyed(PartitionId partition, const Bytes& u) {
    bool out = false;
    EXPECT_EQ(store_->is_destroyed(partition, u, out), Status::kOk);
    return out;
  }

  test::TempDir dir_;
  std::unique_ptr<ObjectStore> store_;
};

TEST_F(ObjectStoreTest, CreatesAPrivateWalDatabaseAtTheCurrentSchema) {
  struct stat st {};
  ASSERT_EQ(::stat(path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  RawDb raw(path());
  EXPECT_EQ(raw.rows("PRAGMA journal_mode"), std::vector<std::string>{"wal"});
  EXPECT_EQ(raw.rows("PRAGMA user_version"),
            std::vector<std::string>{std::to_string(ObjectStore::kSchemaVersion)});
}

TEST_F(ObjectStoreTest, ReopenKeepsRowsAndTheHandleHighWater) {
  const KeyHandle h1 = store_->allocate_handle();
  const KeyHandle h2 = store_->allocate_handle();
  const KeyHandle h3 = store_->allocate_handle();
  ASSERT_LT(h1, h2);
  ASSERT_LT(h2, h3);
  const ObjectRow r1 = row(kPart, h1, "one");
  ASSERT_EQ(
      store_->write({InsertObject{r1}, InsertObject{row(kPart, h2)}, InsertObject{row(kPart, h3)}}),
      Status::kOk);
  // The highest handle goes away: only the stored mark can keep it unused.
  ASSERT_EQ(store_->write({DestroyObject{kPart, h3}}), Status::kOk);

  reopen();
  const auto got = get(kPart, h1);
  ASSERT_TRUE(got.has_value());
  expect_same(*got, r1);
  EXPECT_TRUE(get(kPart, h2).has_value());
  EXPECT_FALSE(get(kPart, h3).has_value());
  EXPECT_TRUE(destroyed(kPart, uid(h3)));
  const KeyHandle h4 = store_->allocate_handle();
  EXPECT_GT(h4, h3);

  // A handle allocated but never stored is covered once any batch commits,
  // an empty one included.
  const KeyHandle h5 = store_->allocate_handle();
  ASSERT_EQ(store_->write({}), Status::kOk);
  reopen();
  EXPECT_GT(store_->allocate_handle(), h5);
}

TEST_F(ObjectStoreTest, AnExplicitHandleRaisesTheHighWater) {
  ASSERT_EQ(insert(row(kPart, 1000)), Status::kOk);
  EXPECT_GT(store_->allocate_handle(), 1000u);
  reopen();
  EXPECT_GT(store_->allocate_handle(), 1000u);
}

TEST_F(ObjectStoreTest, GetAndFindByLabelIdAndClass) {
  ASSERT_EQ(store_->write({
                InsertObject{row(kPart, 1, "a", {0x01}, kSecretKey)},
                InsertObject{row(kPart, 2, "b", {0x02}, kSecretKey)},
                InsertObject{row(kPart, 3, "a", {0x02}, kPrivateKey)},
                InsertObject{row(kOtherPart, 4, "a", {0x01}, kSecretKey)},
            }),
            Status::kOk);
  EXPECT_FALSE(get(kOtherPart, 1).has_value());  // a handle is looked up in its partition
  EXPECT_FALSE(get(kPart, 99).has_value());
  EXPECT_FALSE(get(kPart, kSessionHandleBase).has_value());

  Query q;
  q.partition = kPart;
  EXPECT_EQ(handles(find(q)), (std::vector<KeyHandle>{1, 2, 3}));
  q.label = "a";
  EXPECT_EQ(handles(find(q)), (std::vector<KeyHandle>{1, 3}));
  q.object_class = kPrivateKey;
  EXPECT_EQ(handles(find(q)), (std::vector<KeyHandle>{3}));
  q.label.reset();
  q.object_class.reset();
  q.id = Bytes{0x02};
  EXPECT_EQ(handles(find(q)), (std::vector<KeyHandle>{2, 3}));
  q.object_class = kSecretKey;
  EXPECT_EQ(handles(find(q)), (std::vector<KeyHandle>{2}));
  q = Query{};
  q.partition = kOtherPart;
  q.label = "a";
  const auto other = find(q);
  ASSERT_EQ(other.size(), 1u);
  expect_same(other[0], row(kOtherPart, 4, "a", {0x01}, kSecretKey));
  q.label = "c";
  EXPECT_TRUE(find(q).empty());
  EXPECT_EQ(count(kPart), 3u);
  EXPECT_EQ(count(kOtherPart), 1u);
  EXPECT_EQ(count(7), 0u);
}

TEST_F(ObjectStoreTest, EmptyLabelAndIdAreStoredAndFound) {
  // A zero-length blob must not be bound as NULL (the columns are NOT NULL).
  const ObjectRow r = row(kPart, 5, "", {});
  ASSERT_EQ(insert(r), Status::kOk);
  const auto got = get(kPart, 5);
  ASSERT_TRUE(got.has_value());
  expect_same(*got, r);
  Query q;
  q.partition = kPart;
  q.label = "";
  q.id = Bytes{};
  EXPECT_EQ(handles(find(q)), std::vector<KeyHandle>{5});
}

TEST_F(ObjectStoreTest, FindPagesInHandleOrder) {
  std::vector<WriteOp> ops;
  for (KeyHandle h = 10; h >= 1; --h) ops.push_back(InsertObject{row(kPart, h)});
  ASSERT_EQ(store_->write(std::move(ops)), Status::kOk);
  Query q;
  q.partition = kPart;
  q.label = "key";
  q.limit = 3;
  std::vector<KeyHandle> all;
  for (;;) {
    const auto page = find(q);
    if (page.empty()) break;
    ASSERT_LE(page.size(), 3u);
    for (const ObjectRow& r : page) all.push_back(r.handle);
    q.after = page.back().handle;
  }
  EXPECT_EQ(all, (std::vector<KeyHandle>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}));
  q.after = 0;
  q.limit = 0;
  EXPECT_TRUE(find(q).empty());
}

TEST_F(ObjectStoreTest, DuplicateUidOrHandleIsObjectExists) {
  ASSERT_EQ(insert(row(kPart, 1)), Status::kOk);
  ObjectRow same_uid = row(kOtherPart, 2);
  same_uid.uid = uid(1);
  EXPECT_EQ(insert(same_uid), Status::kObjectExists);
  ObjectRow same_handle = row(kOtherPart, 1);
  same_handle.uid = uid(77);
  EXPECT_EQ(insert(same_handle), Status::kObjectExists);
  EXPECT_EQ(count(kPart), 1u);
  EXPECT_EQ(count(kOtherPart), 0u);
  // Handles outside the token range are refused outright.
  EXPECT_EQ(insert(row(kPart, 0)), Status::kInvalidArgument);
  EXPECT_EQ(insert(row(kPart, kSessionHandleBase)), Status::kInvalidArgument);
}

TEST_F(ObjectStoreTest, UpdateReplacesTheIndexedColumnsAndBlob) {
  ASSERT_EQ(insert(row(kPart, 1, "old", {0x01}, kSecretKey)), Status::kOk);
  ObjectRow updated = row(kPart, 1, "new", {0x09, 0x09}, kPrivateKey);
  updated.blob = Bytes(300, 0x5C);
  ASSERT_EQ(store_->write({UpdateObject{updated}}), Status::kOk);
  const auto got = get(kPart, 1);
  ASSERT_TRUE(got.has_value());
  expect_same(*got, updated);
  Query q;
  q.partition = kPart;
  q.label = "old";
  EXPECT_TRUE(find(q).empty());

  EXPECT_EQ(store_->write({UpdateObject{row(kPart, 2)}}), Status::kNoSuchKey);
  EXPECT_EQ(store_->write({UpdateObject{row(kOtherPart, 1)}}), Status::kNoSuchKey);
}

TEST_F(ObjectStoreTest, AFailingBatchLeavesNothingOfIt) {
  ASSERT_EQ(insert(row(kPart, 1)), Status::kOk);
  ObjectRow dup = row(kPart, 3);
  dup.uid = uid(1);
  EXPECT_EQ(store_->write({InsertObject{row(kPart, 2)}, UpdateObject{row(kPart, 1, "changed")},
                           InsertObject{dup}}),
            Status::kObjectExists);
  EXPECT_EQ(store_->write(
                {InsertObject{row(kPart, 4)}, DestroyObject{kPart, 1}, DestroyObject{kPart, 99}}),
            Status::kNoSuchKey);
  EXPECT_FALSE(get(kPart, 2).has_value());
  EXPECT_FALSE(get(kPart, 4).has_value());
  const auto one = get(kPart, 1);
  ASSERT_TRUE(one.has_value());
  EXPECT_EQ(one->label, "key");
  EXPECT_FALSE(destroyed(kPart, uid(1)));
  EXPECT_EQ(count(kPart), 1u);
}

TEST_F(ObjectStoreTest, AFailingBatchDoesNotSinkTheOthersInItsGroup) {
  // Hold the database's write lock from outside: the writer stalls in
  // BEGIN on a first batch, and the three batches queued meanwhile (good,
  // failing, good, in that order) are taken together as the next group.
  RawDb raw(path());
  raw.exec("BEGIN IMMEDIATE");
  const uint64_t commits_before = store_->commit_count();
  Status plug = Status::kInternalError, before = Status::kInternalError,
         bad = Status::kInternalError, after = Status::kInternalError;
  ObjectRow dup = row(kPart, 21);
  dup.uid = uid(1);
  std::vector<std::thread> threads;
  threads.emplace_back([&] { plug = insert(row(kPart, 1)); });
  std::this_thread::sleep_for(100ms);
  threads.emplace_back([&] {
    before = store_->write({InsertObject{row(kPart, 10)}, InsertObject{row(kPart, 11)}});
  });
  std::this_thread::sleep_for(20ms);
  threads.emplace_back([&] {
    bad = store_->write({InsertObject{row(kPart, 20)}, InsertObject{dup}});
  });
  std::this_thread::sleep_for(20ms);
  threads.emplace_back([&] { after = insert(row(kPart, 30)); });
  std::this_thread::sleep_for(200ms);
  raw.exec("COMMIT");
  for (auto& t : threads) t.join();

  EXPECT_EQ(plug, Status::kOk);
  EXPECT_EQ(before, Status::kOk);
  EXPECT_EQ(bad, Status::kObjectExists);
  EXPECT_EQ(after, Status::kOk);
  // Normally two commits, {plug} and {before, bad, after}; a thread that
  // starts late on a loaded machine only adds a commit of its own, and the
  // outcome below must be the same either way.
  EXPECT_GE(store_->commit_count() - commits_before, 2u);
  EXPECT_LE(store_->commit_count() - commits_before, 4u);
  EXPECT_TRUE(get(kPart, 10).has_value());
  EXPECT_TRUE(get(kPart, 11).has_value());
  EXPECT_FALSE(get(kPart, 20).has_value());
  EXPECT_TRUE(get(kPart, 30).has_value());
  EXPECT_EQ(count(kPart), 4u);
}

TEST_F(ObjectStoreTest, DestroyRecordsAMarkAndClearDestroyedForgetsIt) {
  const ObjectRow r = row(kPart, 1);
  ASSERT_EQ(insert(r), Status::kOk);
  EXPECT_FALSE(destroyed(kPart, r.uid));
  EXPECT_EQ(store_->write({DestroyObject{kOtherPart, 1}}), Status::kNoSuchKey);
  ASSERT_EQ(store_->write({DestroyObject{kPart, 1}}), Status::kOk);
  EXPECT_FALSE(get(kPart, 1).has_value());
  EXPECT_TRUE(destroyed(kPart, r.uid));
  EXPECT_FALSE(destroyed(kOtherPart, r.uid));
  EXPECT_EQ(store_->write({DestroyObject{kPart, 1}}), Status::kNoSuchKey);

  // A restore: forget the mark and bring the object back, in one batch.
  ASSERT_EQ(store_->write({ClearDestroyed{kPart, r.uid}, InsertObject{r}}), Status::kOk);
  EXPECT_FALSE(destroyed(kPart, r.uid));
  EXPECT_TRUE(get(kPart, 1).has_value());
}

TEST_F(ObjectStoreTest, DeletePartitionRemovesItsObjectsAndMarks) {
  ASSERT_EQ(store_->write({InsertObject{row(1, 1)}, InsertObject{row(1, 2)},
                           InsertObject{row(2, 3)}, InsertObject{row(3, 4)}}),
            Status::kOk);
  ASSERT_EQ(store_->write({DestroyObject{1, 2}, DestroyObject{3, 4}}), Status::kOk);
  std::vector<PartitionId> parts;
  ASSERT_EQ(store_->partitions(parts), Status::kOk);
  EXPECT_EQ(parts, (std::vector<PartitionId>{1, 2, 3}));  // 3 holds only a destroyed mark

  ASSERT_EQ(store_->write({DeletePartition{1}}), Status::kOk);
  EXPECT_EQ(count(1), 0u);
  EXPECT_FALSE(destroyed(1, uid(2)));
  EXPECT_EQ(count(2), 1u);
  ASSERT_EQ(store_->write({DeletePartition{3}}), Status::kOk);
  ASSERT_EQ(store_->partitions(parts), Status::kOk);
  EXPECT_EQ(parts, std::vector<PartitionId>{2});
}

TEST_F(ObjectStoreTest, ConcurrentWritersAreAllDurableAndShareCommits) {
  constexpr int kThreads = 8;
  constexpr int kPerThread = 200;
  const uint64_t commits_before = store_->commit_count();
  std::vector<std::vector<KeyHandle>> per_thread(kThreads);
  std::vector<int> failures(kThreads, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const KeyHandle h = store_->allocate_handle();
        // Reads run on the pool (fewer connections than threads) meanwhile.
        std::optional<ObjectRow> out;
        if (!ok(insert(row(kPart, h, "t" + std::to_string(t)))) ||
            !ok(store_->get(kPart, h, out)) || !out.has_value()) {
          ++failures[static_cast<size_t>(t)];
        }
        per_thread[static_cast<size_t>(t)].push_back(h);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(std::count(failures.begin(), failures.end(), 0), kThreads);
  std::set<KeyHandle> all;
  for (const auto& hs : per_thread) all.insert(hs.begin(), hs.end());
  EXPECT_EQ(all.size(), size_t{kThreads * kPerThread});
  EXPECT_EQ(count(kPart), uint64_t{kThreads * kPerThread});
  const uint64_t commits = store_->commit_count() - commits_before;
  EXPECT_LT(commits, uint64_t{kThreads * kPerThread});

  reopen();
  EXPECT_EQ(count(kPart), uint64_t{kThreads * kPerThread});
  EXPECT_GT(store_->allocate_handle(), *all.rbegin());
}

TEST_F(ObjectStoreTest, IntegrityCheckSaysOk) {
  ASSERT_EQ(store_->write({InsertObject{row(kPart, 1)}, InsertObject{row(kPart, 2)}}), Status::kOk);
  ASSERT_EQ(store_->write({DestroyObject{kPart, 1}}), Status::kOk);
  std::string report;
  ASSERT_EQ(store_->integrity_check(report), Status::kOk);
  EXPECT_EQ(report, "ok");
}

// The store's own find statements (ObjectStore::find_sql), for every
// combination of filters: a label or id lookup must use its index, never
// the class index (which SQLite rates as good but which matches most of a
// partition: ~8x slower among 5,000 objects, issue 8).
TEST_F(ObjectStoreTest, FindStatementsUseTheLabelAndIdIndexes) {
  // Enough rows of one class that a wrong plan would matter.
  std::vector<WriteOp> ops;
  for (KeyHandle h = 1; h <= 200; ++h) {
    ops.push_back(InsertObject{row(kPart, h, "label-" + std::to_string(h), Bytes{uint8_t(h)})});
  }
  ASSERT_EQ(store_->write(std::move(ops)), Status::kOk);
  RawDb raw(path());
  // Column 3 of EXPLAIN QUERY PLAN is the plan's text.
  const auto plan = [&](const Query& q) {
    std::string text;
    for (const std::string& r : raw.rows("EXPLAIN QUERY PLAN " + ObjectStore::find_sql(q), 3)) {
      text += r + "\n";
    }
    return text;
  };
  const auto uses = [](const std::string& text, const char* index) {
    return text.find(std::string("INDEX ") + index + " ") != std::string::npos;
  };
  for (unsigned mask = 0; mask < 8; ++mask) {
    Query q;
    q.partition = kPart;
    if (mask & 1u) q.label = "label-7";
    if (mask & 2u) q.id = Bytes{7};
    if (mask & 4u) q.object_class = kSecretKey;
    const std::string p = plan(q);
    SCOPED_TRACE("filters " + std::to_string(mask) + ":\n" + p);
    if (q.label && !q.id) {
      EXPECT_TRUE(uses(p, "objects_partition_label"));
    }
    if (q.id && !q.label) {
      EXPECT_TRUE(uses(p, "objects_partition_id"));
    }
    if (q.label && q.id) {
      EXPECT_TRUE(uses(p, "objects_partition_label") || uses(p, "objects_partition_id"));
    }
    if (q.label || q.id) {
      EXPECT_FALSE(uses(p, "objects_partition_class"));
    }
    // Same rows whatever the plan.
    const auto found = find(q);
    if (q.label || q.id) {
      EXPECT_EQ(handles(found), std::vector<KeyHandle>{7});
    } else {
      EXPECT_EQ(found.size(), 200u);
    }
  }
}

TEST_F(ObjectStoreTest, ADatabaseFromNewerCodeIsRefused) {
  ASSERT_EQ(insert(row(kPart, 1)), Status::kOk);
  store_.reset();
  {
    RawDb raw(path());
    raw.exec("PRAGMA user_version = " + std::to_string(ObjectStore::kSchemaVersion + 1));
  }
  testing::internal::CaptureStderr();
  const Status s = ObjectStore::open(path(), store_);
  const std::string err = testing::internal::GetCapturedStderr();
  EXPECT_EQ(s, Status::kStorageFailure);
  EXPECT_EQ(store_, nullptr);
  EXPECT_NE(err.find("newer"), std::string::npos) << err;
}

TEST_F(ObjectStoreTest, AFileThatIsNotADatabaseIsRefused) {
  store_.reset();
  const std::string other = dir_.file("garbage.db");
  test::write_file(other, std::string(4096, 'x'));
  testing::internal::CaptureStderr();
  EXPECT_EQ(ObjectStore::open(other, store_), Status::kStorageFailure);
  testing::internal::GetCapturedStderr();
  EXPECT_EQ(store_, nullptr);
}

// ---- the audit log's table (the chain itself is verified in
// unit/audit_verify_test.cpp and integration/audit_test.cpp) ----

audit::Record audit_event(const std::string& event) {
  audit::Record r;
  r.time_ms = 1700000000000;
  r.event = event;
  r.partition = kPart;
  r.uid = 1000;
  r.detail = cbor::encode(cbor::Value::map());
  return r;
}

std::vector<audit::Record> read_all_audit(const ObjectStore& store) {
  std::vector<audit::Record> out;
  bool more = false;
  EXPECT_EQ(store.read_audit(0, 1000, 1 << 20, out, more), Status::kOk);
  EXPECT_FALSE(more);
  return out;
}

TEST_F(ObjectStoreTest, AuditRecordsChainInCommitOrder) {
  ASSERT_EQ(store_->write({AppendAudit{audit_event("boot")}}), Status::kOk);
  store_->write_async({AppendAudit{audit_event("login")}});
  // A batch that fails takes its record and its seq with it.
  ASSERT_EQ(insert(row(kPart, 5)), Status::kOk);
  EXPECT_EQ(store_->write({AppendAudit{audit_event("lost")}, InsertObject{row(kPart, 5)}}),
            Status::kObjectExists);
  ASSERT_EQ(store_->write({AppendAudit{audit_event("key-destroy")}}), Status::kOk);
  reopen();  // the chain continues after a restart
  ASSERT_EQ(store_->write({AppendAudit{audit_event("boot")}}), Status::kOk);

  const std::vector<audit::Record> records = read_all_audit(*store_);
  ASSERT_EQ(records.size(), 4u);
  Bytes prev = audit::genesis_hash();
  for (size_t i = 0; i < records.size(); ++i) {
    EXPECT_EQ(records[i].seq, i + 1);
    EXPECT_EQ(records[i].prev_hash, prev);
    EXPECT_EQ(records[i].hash, audit::record_hash(records[i].prev_hash, records[i]));
    prev = records[i].hash;
  }
  EXPECT_EQ(records[1].event, "login");
  EXPECT_EQ(records[2].event, "key-destroy");

  // Paging: a limit, and a byte budget that still returns one record.
  std::vector<audit::Record> page;
  bool more = false;
  ASSERT_EQ(store_->read_audit(1, 2, 1 << 20, page, more), Status::kOk);
  ASSERT_EQ(page.size(), 2u);
  EXPECT_EQ(page[0].seq, 2u);
  EXPECT_TRUE(more);
  ASSERT_EQ(store_->read_audit(0, 10, 1, page, more), Status::kOk);
  EXPECT_EQ(page.size(), 1u);
  EXPECT_TRUE(more);
}

TEST_F(ObjectStoreTest, AVersionOneStoreMigratesAndKeepsItsObjects) {
  store_.reset();
  for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path() + suffix);
  test::write_file(path(), "");  // an empty file is an empty database
  {
    RawDb raw(path());
    raw.exec(
        "CREATE TABLE objects (handle INTEGER PRIMARY KEY, partition INTEGER NOT NULL, uid BLOB "
        "NOT NULL UNIQUE, class INTEGER NOT NULL, label TEXT NOT NULL, id BLOB NOT NULL, blob "
        "BLOB NOT NULL);"
        "CREATE TABLE destroyed (partition INTEGER NOT NULL, uid BLOB NOT NULL, PRIMARY KEY "
        "(partition, uid)) WITHOUT ROWID;"
        "CREATE TABLE meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);"
        "INSERT INTO objects VALUES (7, 1, x'00112233445566778899aabbccddeeff', 4, 'old', x'01', "
        "x'b0');"
        "PRAGMA user_version = 1;");
  }
  ASSERT_EQ(ObjectStore::open(path(), store_), Status::kOk);
  RawDb raw(path());
  EXPECT_EQ(raw.rows("PRAGMA user_version"), std::vector<std::string>{"2"});
  EXPECT_EQ(raw.rows("SELECT COUNT(*) FROM audit"), std::vector<std::string>{"0"});
  EXPECT_EQ(raw.rows("SELECT COUNT(*) FROM audit_checkpoint"), std::vector<std::string>{"0"});
  const auto old = get(1, 7);
  ASSERT_TRUE(old.has_value());
  EXPECT_EQ(old->label, "old");
  ASSERT_EQ(store_->write({AppendAudit{audit_event("boot")}}), Status::kOk);
  EXPECT_EQ(read_all_audit(*store_).size(), 1u);
}

}  // namespace
}  // namespace ihsm::device::store
