// The audit log against a real ihsmd (docs/security-policy.md, "Audit
// log"): the events commands and the device itself record, verification
// of an untouched log, and an attacker with write access to objects.db
// (the daemon stopped) who deletes, edits, reorders or cuts off records or
// forges a checkpoint: each is caught and named at its seq. Rotation keeps
// the chain verifiable across archive files.
#include <filesystem>

#include "common/audit.h"
#include "ihsm/audit.h"
#include "integration/lib_fixture.h"
#include "support/sqlite_file.h"

namespace ihsm::test {
namespace {

class AuditTest : public LibTest {
 protected:
  std::string db_path() const { return state_dir() + "/objects.db"; }

  AuditLog read_log() {
    Client c = connect();
    auto log = c.read_audit();
    if (!log) throw std::runtime_error("read_audit: " + std::string(status_name(log.status())));
    return std::move(log).value();
  }

  std::string root_pem() {
    Client c = connect();
    return pem_of_cert(c.certificates().value().at(0));
  }

  // As `ihsm audit verify` does it: a head signed now, then the records.
  AuditVerdict verify_live(std::vector<Bytes> heads = {}, std::vector<AuditLog> before = {}) {
    Client c = connect();
    AuditLog log;
    const Bytes head = c.audit_checkpoint().value();
    log = c.read_audit().value();
    log.head = head;
    AuditVerifyOptions o;
    o.trusted_root_pem = pem_of_cert(c.certificates().value().at(0));
    o.heads = std::move(heads);
    before.push_back(std::move(log));
    return verify_audit(before, o);
  }

  const AuditRecord* find_event(const AuditLog& log, const std::string& event,
                                Status status = Status::kOk) {
    for (const auto& r : log.records) {
      if (r.event == event && r.status == static_cast<uint16_t>(status)) return &r;
    }
    return nullptr;
  }

  // Some of everything: partition, logins (one failed), keys made,
  // exported (masked and wrapped) and destroyed, a self-test, a partition
  // deleted.
  void make_events() {
    Client c = connect();
    const PartitionId p = make_partition(c, "audited").id;
    const PartitionId gone = make_partition(c, "short-lived").id;
    {
      Session s = open(c, p);
      EXPECT_STATUS(s.login(Role::kCryptoUser, SecretPin("wrong-pin-9999")), Status::kPinIncorrect);
      ASSERT_OK(s.login(Role::kCryptoUser, SecretPin(kUserPin)));
      KeyTemplate kek_t = tmpl(usage::kWrap | usage::kUnwrap, "kek");
      const KeyHandle kek = s.generate_aes_key(256, kek_t).value();
      KeyTemplate target_t = tmpl(usage::kEncrypt | usage::kExtractable, "target");
      target_t.token = true;
      target_ = s.generate_aes_key(256, target_t).value();
      ASSERT_OK(s.wrap_key(kek, target_, Mechanism::kAesKeyWrapKwp));
      ASSERT_OK(s.export_masked_key(target_));
      ASSERT_OK(s.destroy_key(kek));
      kek_ = kek;
    }
    ASSERT_OK(c.self_test());
    ASSERT_OK(c.delete_partition(gone));
    partition_ = p;
    deleted_partition_ = gone;
  }

  PartitionId partition_ = 0, deleted_partition_ = 0;
  KeyHandle target_ = 0, kek_ = 0;
};

TEST_F(AuditTest, CommandsAndDeviceEventsAreRecorded) {
  make_events();
  if (HasFatalFailure()) return;
  const AuditLog log = read_log();
  ASSERT_GE(log.records.size(), 10u);
  EXPECT_EQ(log.records[0].seq, 1u);
  EXPECT_EQ(log.records[0].event, "boot");
  EXPECT_EQ(log.records[1].event, "self-test");  // the power-on self-tests
  const uint32_t me = static_cast<uint32_t>(::getuid());

  const AuditRecord* created = find_event(log, "partition-create");
  ASSERT_NE(created, nullptr);
  EXPECT_EQ(created->partition, partition_);
  EXPECT_EQ(created->uid, me);
  EXPECT_EQ(created->opcode, 0x0010);

  const AuditRecord* failed = find_event(log, "login-failed", Status::kPinIncorrect);
  ASSERT_NE(failed, nullptr);
  EXPECT_EQ(failed->partition, partition_);
  const AuditRecord* login = find_event(log, "login");
  ASSERT_NE(login, nullptr);
  EXPECT_GT(login->seq, failed->seq);

  int keys_created = 0;
  for (const auto& r : log.records) keys_created += r.event == "key-create" ? 1 : 0;
  EXPECT_EQ(keys_created, 2);
  const AuditRecord* destroyed = find_event(log, "key-destroy");
  ASSERT_NE(destroyed, nullptr);
  EXPECT_EQ(destroyed->object, kek_);
  int exports = 0;
  for (const auto& r : log.records) {
    if (r.event == "key-export") {
      ++exports;
      EXPECT_EQ(r.object, target_);  // the exported key, wrapped or masked
    }
  }
  EXPECT_EQ(exports, 2);
  const AuditRecord* self_test = find_event(log, "self-test");
  ASSERT_NE(self_test, nullptr);
  const AuditRecord* deleted = find_event(log, "partition-delete");
  ASSERT_NE(deleted, nullptr);
  EXPECT_EQ(deleted->partition, deleted_partition_);

  // No PIN, in any form, in any record.
  for (const auto& r : log.records) {
    const std::string detail(r.detail.begin(), r.detail.end());
    EXPECT_EQ(detail.find(kUserPin), std::string::npos) << r.event;
    EXPECT_EQ(detail.find("wrong-pin"), std::string::npos) << r.event;
  }

  const AuditVerdict v = verify_live();
  EXPECT_TRUE(v.valid) << v.reason << " at " << v.seq << ": " << v.detail;
  EXPECT_EQ(v.records, log.records.size());
}

TEST_F(AuditTest, TheLogSurvivesARestartAndStaysOneChain) {
  make_events();
  if (HasFatalFailure()) return;
  ASSERT_TRUE(restart_daemon());
  const AuditLog log = read_log();
  ASSERT_NE(find_event(log, "shutdown"), nullptr);
  int boots = 0;
  for (const auto& r : log.records) boots += r.event == "boot" ? 1 : 0;
  EXPECT_EQ(boots, 2);
  const AuditVerdict v = verify_live();
  EXPECT_TRUE(v.valid) << v.reason << " at " << v.seq << ": " << v.detail;
}

// Every attack starts from the same stopped device: a copy of objects.db.
class AuditTamperTest : public AuditTest {
 protected:
  void SetUp() override {
    AuditTest::SetUp();
    if (HasFatalFailure()) return;
    make_events();
    if (HasFatalFailure()) return;
    root_ = root_pem();
    Client c = connect();
    head_ = c.audit_checkpoint().value();  // what an auditor kept
    last_seq_ = read_log().records.back().seq;
    ASSERT_TRUE(daemon().stop());
    pristine_ = dir().file("pristine.db");
    std::filesystem::copy_file(db_path(), pristine_);
  }

  // Restores the pristine store, lets `attack` edit it, starts the device
  // and verifies its log (with the head kept from before, if `kept`).
  AuditVerdict attack(const std::function<void(SqliteFile&)>& edit, bool kept = false) {
    if (daemon().running()) {
      EXPECT_TRUE(daemon().stop());
    }
    for (const char* suffix : {"", "-wal", "-shm"}) {
      std::filesystem::remove(db_path() + suffix);
    }
    std::filesystem::copy_file(pristine_, db_path());
    {
      SqliteFile db(db_path());
      edit(db);
    }
    EXPECT_TRUE(daemon().start());
    return verify_live(kept ? std::vector<Bytes>{head_} : std::vector<Bytes>{});
  }

  // A record in the middle of what make_events() wrote.
  uint64_t middle() const { return last_seq_ / 2; }

  std::string root_, pristine_;
  Bytes head_;
  uint64_t last_seq_ = 0;
};

TEST_F(AuditTamperTest, AnUntouchedCopyVerifies) {
  const AuditVerdict v = attack([](SqliteFile&) {}, true);
  EXPECT_TRUE(v.valid) << v.reason << " at " << v.seq << ": " << v.detail;
}

TEST_F(AuditTamperTest, ADeletedRecordIsNamed) {
  const uint64_t k = middle();
  const AuditVerdict v = attack(
      [&](SqliteFile& db) { db.exec("DELETE FROM audit WHERE seq = " + std::to_string(k)); });
  EXPECT_FALSE(v.valid);
  EXPECT_EQ(v.reason, "deleted") << v.detail;
  EXPECT_EQ(v.seq, k);
}

TEST_F(AuditTamperTest, AnEditedEventOrDetailIsNamed) {
  const uint64_t k = middle();
  AuditVerdict v = attack([&](SqliteFile& db) {
    db.exec("UPDATE audit SET event = 'logout' WHERE seq = " + std::to_string(k));
  });
  EXPECT_EQ(v.reason, "edited") << v.detail;
  EXPECT_EQ(v.seq, k);

  v = attack([&](SqliteFile& db) {
    const std::string where = " WHERE seq = " + std::to_string(k + 1);
    Bytes detail = db.blob("SELECT detail FROM audit" + where);
    ASSERT_FALSE(detail.empty());
    detail.back() ^= 0x01;
    db.set_blob("UPDATE audit SET detail = ?1" + where, detail);
  });
  EXPECT_EQ(v.reason, "edited") << v.detail;
  EXPECT_EQ(v.seq, k + 1);
}

TEST_F(AuditTamperTest, AReorderedPairIsNamed) {
  const std::string a = std::to_string(middle()), b = std::to_string(middle() + 1);
  const AuditVerdict v = attack([&](SqliteFile& db) {
    db.exec("UPDATE audit SET seq = -1 WHERE seq = " + a);
    db.exec("UPDATE audit SET seq = " + a + " WHERE seq = " + b);
    db.exec("UPDATE audit SET seq = " + b + " WHERE seq = -1");
  });
  EXPECT_EQ(v.reason, "reordered") << v.detail;
  EXPECT_EQ(v.seq, middle());
}

TEST_F(AuditTamperTest, ACutOffTailIsCaught) {
  const std::string keep = std::to_string(last_seq_ - 3);
  // Records only: the device's shutdown checkpoint still covers them, and
  // the chain resumes from it, so the gap is named.
  AuditVerdict v =
      attack([&](SqliteFile& db) { db.exec("DELETE FROM audit WHERE seq > " + keep); });
  EXPECT_FALSE(v.valid);
  EXPECT_EQ(v.reason, "deleted") << v.detail;
  EXPECT_EQ(v.seq, last_seq_ - 2);
  // Records and checkpoints: only the head the auditor kept shows it.
  v = attack(
      [&](SqliteFile& db) {
        db.exec("DELETE FROM audit WHERE seq > " + keep);
        db.exec("DELETE FROM audit_checkpoint WHERE seq > " + keep);
      },
      true);
  EXPECT_FALSE(v.valid);
  EXPECT_EQ(v.reason, "truncated") << v.detail;
}

TEST_F(AuditTamperTest, AForgedCheckpointIsRefused) {
  const AuditVerdict v = attack([&](SqliteFile& db) {
    const std::string where = " WHERE seq = (SELECT MIN(seq) FROM audit_checkpoint)";
    Bytes signed_head = db.blob("SELECT signed FROM audit_checkpoint" + where);
    signed_head[signed_head.size() - 10] ^= 0x01;  // inside the signature
    db.set_blob("UPDATE audit_checkpoint SET signed = ?1" + where, signed_head);
  });
  EXPECT_FALSE(v.valid);
  EXPECT_EQ(v.reason, "checkpoint") << v.detail;
}

class AuditRotationTest : public AuditTest {
 protected:
  std::vector<std::string> daemon_args() const override {
    return {"--audit-max-records", "16", "--audit-checkpoint-every", "5"};
  }

  std::vector<std::string> archives() {
    std::vector<std::string> out;
    for (const auto& e : std::filesystem::directory_iterator(state_dir())) {
      const std::string name = e.path().filename();
      if (name.starts_with("audit-") && name.ends_with(".cbor")) out.push_back(e.path());
    }
    // audit-<device fingerprint>-<first>-<last>.cbor, oldest first.
    std::sort(out.begin(), out.end(), [](const std::string& a, const std::string& b) {
      const auto first = [](const std::string& p) {
        const std::string n = std::filesystem::path(p).filename();
        const size_t tag_end = n.find('-', 6);
        EXPECT_EQ(tag_end, 6 + 16u) << n << ": no 8-byte device fingerprint";
        return std::stoull(n.substr(tag_end + 1));
      };
      return first(a) < first(b);
    });
    return out;
  }

  std::vector<AuditLog> archive_logs() {
    std::vector<AuditLog> out;
    for (const std::string& path : archives()) {
      const std::string raw = read_file(path);
      AuditLog log;
      EXPECT_EQ(decode_audit_log(Bytes(raw.begin(), raw.end()), log), Status::kOk) << path;
      out.push_back(std::move(log));
    }
    return out;
  }
};

TEST_F(AuditRotationTest, TheChainStaysVerifiableAcrossRotations) {
  Client c = connect();
  for (int i = 0; i < 40; ++i) ASSERT_OK(c.self_test());
  // The last self-test's record commits with the next group: a durable
  // write (a checkpoint) waits for it.
  ASSERT_OK(c.audit_checkpoint());
  const std::vector<std::string> files = archives();
  ASSERT_GE(files.size(), 2u);
  const AuditLog live = read_log();
  EXPECT_LE(live.records.size(), 17u);
  EXPECT_GT(live.records.front().seq, 1u);
  const AuditRecord* rotated = find_event(live, "audit-rotate");
  ASSERT_NE(rotated, nullptr);

  // The live log alone, anchored by the rotation's checkpoint.
  AuditVerdict v = verify_live();
  EXPECT_TRUE(v.valid) << v.reason << " at " << v.seq << ": " << v.detail;
  // Every archive and then the live log: one chain from seq 1.
  v = verify_live({}, archive_logs());
  EXPECT_TRUE(v.valid) << v.reason << " at " << v.seq << ": " << v.detail;
  EXPECT_EQ(v.first_seq, 1u);

  // An owner rotation on demand.
  ASSERT_OK(c.audit_checkpoint(true));
  EXPECT_EQ(archives().size(), files.size() + 1);
  v = verify_live({}, archive_logs());
  EXPECT_TRUE(v.valid) << v.reason << " at " << v.seq << ": " << v.detail;

  // A tampered archive is caught.
  AuditLog first;
  const std::string raw = read_file(files[0]);
  ASSERT_EQ(decode_audit_log(Bytes(raw.begin(), raw.end()), first), Status::kOk);
  first.records[3].event = "logout";
  const Bytes edited = encode_audit_log(first);
  write_file(files[0], std::string(edited.begin(), edited.end()));
  v = verify_live({}, archive_logs());
  EXPECT_FALSE(v.valid);
  EXPECT_EQ(v.reason, "edited") << v.detail;
  EXPECT_EQ(v.seq, first.records[3].seq);
}

// A power-on self-test failure is recorded; the device in its error state
// still lets the owner read its log (verification is on the host) but
// signs no new checkpoint, and the chain from before stays valid.
TEST_F(AuditTest, AFailedPowerOnSelfTestIsRecordedAndTheLogStaysReadable) {
  make_events();
  if (HasFatalFailure()) return;
  ASSERT_TRUE(daemon().stop());
  ::setenv("IHSM_FAULT_INJECT", "aes-gcm", 1);
  daemon().args() = {"--firmware-dir", IHSM_FAULTY_FIRMWARE_DIR};
  const auto started = daemon().start();
  ::unsetenv("IHSM_FAULT_INJECT");
  ASSERT_TRUE(started);

  Client c = connect();
  EXPECT_STATUS(c.audit_checkpoint(), Status::kDeviceError);
  auto log = c.read_audit();
  ASSERT_OK(log);
  const AuditRecord& last = log.value().records.back();
  EXPECT_EQ(last.event, "self-test");
  EXPECT_EQ(last.status, static_cast<uint16_t>(Status::kSelfTestFailed));
  const std::string detail(last.detail.begin(), last.detail.end());
  EXPECT_NE(detail.find("aes-gcm"), std::string::npos);
  EXPECT_EQ(log.value().records[log.value().records.size() - 2].event, "boot");

  AuditVerifyOptions o;
  o.trusted_root_pem = pem_of_cert(c.certificates().value().at(0));
  const AuditVerdict v = verify_audit({log.value()}, o);
  EXPECT_TRUE(v.valid) << v.reason << " at " << v.seq << ": " << v.detail;
}

}  // namespace
}  // namespace ihsm::test
