// The audit verifier (include/ihsm/audit.h, src/host/audit.cpp) on logs
// built here: a hash chain made with the shared record hash, checkpoints
// signed with a test DICE chain (support/attest_chain.h). Each kind of
// tampering must be named, with the seq where it shows.
#include <gtest/gtest.h>

#include "common/audit.h"
#include "ihsm/audit.h"
#include "support/attest_chain.h"

namespace ihsm {
namespace {

using test::attest::Chain;

class AuditVerifyTest : public ::testing::Test {
 protected:
  void SetUp() override { chain_ = test::attest::make_chain(); }

  // Records 1..n, each linked to the one before.
  std::vector<AuditRecord> make_records(uint64_t n, uint64_t first = 1,
                                        Bytes prev = audit::genesis_hash()) {
    std::vector<AuditRecord> out;
    for (uint64_t seq = first; seq < first + n; ++seq) {
      AuditRecord r;
      r.seq = seq;
      r.time_ms = 1700000000000 + seq;
      r.event = seq % 2 ? "login" : "key-create";
      r.partition = 1;
      r.uid = 1000;
      r.opcode = 0x22;
      r.object = seq * 3;
      r.detail = cbor::encode(cbor::Value::map().set(uint64_t{19}, cbor::Value::text("label")));
      r.prev_hash = prev;
      r.hash = audit::record_hash(r.prev_hash, r);
      prev = r.hash;
      out.push_back(std::move(r));
    }
    return out;
  }

  Bytes checkpoint(uint64_t seq, const Bytes& hash, const Chain* chain = nullptr) {
    const Chain& c = chain ? *chain : chain_;
    audit::Checkpoint cp;
    cp.fingerprint = Bytes(8, 0x42);
    cp.seq = seq;
    cp.hash = hash;
    cp.time_ms = 1700000000000;
    return test::attest::sign_report(audit::encode_checkpoint(cp), c.device_x5chain(),
                                     c.alias_key.get());
  }

  AuditVerdict verify(const std::vector<AuditLog>& parts) {
    AuditVerifyOptions o;
    o.trusted_root_pem = chain_.root_pem();
    return verify_audit(parts, o);
  }

  // Twenty records, a checkpoint at 10, and a head at 20.
  AuditLog sample() {
    AuditLog log;
    log.records = make_records(20);
    log.checkpoints.push_back(checkpoint(10, log.records[9].hash));
    log.head = checkpoint(20, log.records[19].hash);
    return log;
  }

  Chain chain_;
};

TEST_F(AuditVerifyTest, AnUntouchedLogIsValid) {
  const AuditVerdict v = verify({sample()});
  EXPECT_TRUE(v.valid) << v.reason << " " << v.detail;
  EXPECT_EQ(v.records, 20u);
  EXPECT_EQ(v.checkpoints, 2u);
  EXPECT_EQ(v.first_seq, 1u);
  EXPECT_EQ(v.last_seq, 20u);
}

TEST_F(AuditVerifyTest, ADeletedRecordIsNamed) {
  AuditLog log = sample();
  log.records.erase(log.records.begin() + 6);  // seq 7
  const AuditVerdict v = verify({log});
  EXPECT_FALSE(v.valid);
  EXPECT_EQ(v.reason, "deleted");
  EXPECT_EQ(v.seq, 7u);
}

TEST_F(AuditVerifyTest, AnEditedRecordIsNamed) {
  AuditLog log = sample();
  log.records[4].event = "logout";  // seq 5
  AuditVerdict v = verify({log});
  EXPECT_EQ(v.reason, "edited");
  EXPECT_EQ(v.seq, 5u);

  log = sample();
  log.records[12].detail.back() ^= 1;  // seq 13, one byte of the detail
  v = verify({log});
  EXPECT_EQ(v.reason, "edited");
  EXPECT_EQ(v.seq, 13u);
}

TEST_F(AuditVerifyTest, AReorderedPairIsNamed) {
  AuditLog log = sample();
  // Contents swapped, seq kept in place (rows swapped in the table).
  std::swap(log.records[7], log.records[8]);
  std::swap(log.records[7].seq, log.records[8].seq);
  const AuditVerdict v = verify({log});
  EXPECT_EQ(v.reason, "reordered");
  EXPECT_EQ(v.seq, 8u);
}

TEST_F(AuditVerifyTest, ARewrittenChainIsCaughtByTheCheckpoint) {
  AuditLog log = sample();
  // The attacker recomputes every hash from the edit on: the chain is
  // consistent again, but not what the device signed at seq 10.
  log.records[3].event = "logout";
  for (size_t i = 3; i < log.records.size(); ++i) {
    if (i > 0) log.records[i].prev_hash = log.records[i - 1].hash;
    log.records[i].hash = audit::record_hash(log.records[i].prev_hash, log.records[i]);
  }
  const AuditVerdict v = verify({log});
  EXPECT_EQ(v.reason, "checkpoint");
  EXPECT_EQ(v.seq, 10u);
}

TEST_F(AuditVerifyTest, ACutOffTailIsCaughtByTheSignedHead) {
  AuditLog log = sample();
  log.records.resize(17);
  AuditVerdict v = verify({log});
  EXPECT_EQ(v.reason, "truncated");
  EXPECT_EQ(v.seq, 18u);

  // Cut back and continued: the record at the head's seq is another one.
  log = sample();
  log.records.resize(15);
  for (AuditRecord& r : make_records(5, 16, log.records.back().hash)) {
    r.event = "boot";
    r.hash = audit::record_hash(r.prev_hash, r);
    log.records.push_back(r);
  }
  for (size_t i = 16; i < log.records.size(); ++i) {
    log.records[i].prev_hash = log.records[i - 1].hash;
    log.records[i].hash = audit::record_hash(log.records[i].prev_hash, log.records[i]);
  }
  v = verify({log});
  EXPECT_EQ(v.reason, "truncated");
  EXPECT_EQ(v.seq, 20u);
}

TEST_F(AuditVerifyTest, AForgedCheckpointIsRefused) {
  AuditLog log = sample();
  const Chain other = test::attest::make_chain();
  log.checkpoints.push_back(checkpoint(15, log.records[14].hash, &other));
  AuditVerdict v = verify({log});
  EXPECT_EQ(v.reason, "checkpoint");
  EXPECT_EQ(v.seq, 15u);

  log = sample();
  log.checkpoints[0][log.checkpoints[0].size() - 5] ^= 1;  // inside the signature
  v = verify({log});
  EXPECT_EQ(v.reason, "checkpoint");
}

TEST_F(AuditVerifyTest, ArchivesAndTheLiveLogVerifyAsOneChain) {
  AuditLog archive;
  archive.records = make_records(20);
  archive.checkpoints.push_back(checkpoint(20, archive.records.back().hash));
  AuditLog live;
  live.records = make_records(5, 21, archive.records.back().hash);
  live.checkpoints.push_back(archive.checkpoints[0]);  // the anchor stays in the table
  live.head = checkpoint(25, live.records.back().hash);

  AuditVerdict v = verify({archive, live});
  EXPECT_TRUE(v.valid) << v.detail;
  EXPECT_EQ(v.records, 25u);
  // The live log alone is anchored by the signed checkpoint before it.
  v = verify({live});
  EXPECT_TRUE(v.valid) << v.detail;
  EXPECT_EQ(v.first_seq, 21u);
  // Without the anchor the missing records are named.
  live.checkpoints.clear();
  v = verify({live});
  EXPECT_EQ(v.reason, "deleted");
  EXPECT_EQ(v.seq, 20u);
  // A record in both parts (a rotation whose commit failed) counts once.
  live.checkpoints.push_back(archive.checkpoints[0]);
  AuditLog overlap = live;
  overlap.records.insert(overlap.records.begin(), archive.records.end() - 3, archive.records.end());
  v = verify({archive, overlap});
  EXPECT_TRUE(v.valid) << v.detail;
  // A tampered archive is caught.
  archive.records[2].uid = 0;
  v = verify({archive, live});
  EXPECT_EQ(v.reason, "edited");
  EXPECT_EQ(v.seq, 3u);
}

TEST_F(AuditVerifyTest, TheFileFormatRoundTripsAndRefusesGarbage) {
  AuditLog log = sample();
  log.certificates = {test::attest::der_of(chain_.device.get())};
  const Bytes file = encode_audit_log(log);
  AuditLog back;
  ASSERT_EQ(decode_audit_log(file, back), Status::kOk);
  ASSERT_EQ(back.records.size(), 20u);
  EXPECT_EQ(back.records[5].hash, log.records[5].hash);
  EXPECT_EQ(back.records[5].detail, log.records[5].detail);
  EXPECT_EQ(back.checkpoints, log.checkpoints);
  EXPECT_EQ(back.head, log.head);
  EXPECT_EQ(back.certificates, log.certificates);
  EXPECT_TRUE(verify({back}).valid);
  for (size_t cut : {size_t{0}, size_t{1}, file.size() / 2, file.size() - 1}) {
    AuditLog partial;
    EXPECT_NE(decode_audit_log(Bytes(file.begin(), file.begin() + static_cast<long>(cut)), partial),
              Status::kOk);
  }
}

}  // namespace
}  // namespace ihsm
