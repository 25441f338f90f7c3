// Token objects, masked keys, certificates and data objects, the store's
// tamper evidence, and backup/restore, all through libihsm against a real
// ihsmd and its real SQLite store.
#include <gtest/gtest.h>

#include <set>

#include "integration/lib_fixture.h"
#include "support/sqlite_file.h"

namespace ihsm::test {
namespace {

constexpr const char* kBackupSecret = "owner-backup-secret-42";

class LibToken : public LibTest {
 protected:
  void SetUp() override {
    LibTest::SetUp();
    if (HasFatalFailure()) return;
    reconnect();
    partition_ = make_partition(*client_, "tokens").id;
    session_ = std::make_unique<Session>(login(*client_, partition_));
  }
  void TearDown() override {
    session_.reset();
    client_.reset();
    LibTest::TearDown();
  }
  void reconnect() {
    session_.reset();
    client_ = std::make_unique<Client>(connect());
  }
  void relogin() {
    reconnect();
    session_ = std::make_unique<Session>(login(*client_, partition_));
  }
  Session& s() { return *session_; }
  std::string db_path() const { return state_dir() + "/objects.db"; }

  KeyPair token_ec_pair(const std::string& label) {
    KeyTemplate pub = verify_public(label), priv = sign_private(label);
    pub.token = priv.token = true;
    auto r = s().generate_ec_key_pair(Curve::kP256, pub, priv);
    if (!r) throw std::runtime_error("generate: " + std::string(status_name(r.status())));
    return r.value();
  }
  KeyHandle find_one(const std::string& label, ObjectClass c) {
    auto r = s().find_keys(query(label, std::nullopt, c));
    if (!r || r.value().size() != 1) return 0;
    return r.value()[0].handle;
  }
  ::testing::AssertionResult signs_and_verifies(KeyHandle priv, const Bytes& spki) {
    const Bytes msg = to_bytes("token key message");
    auto sig = s().sign(priv, Mechanism::kEcdsaSha256, msg);
    if (!sig) return ::testing::AssertionFailure() << "sign: " << status_name(sig.status());
    auto v = verify_ecdsa(spki, Mechanism::kEcdsaSha256, msg, sig.value());
    if (!v || !v.value()) return ::testing::AssertionFailure() << "signature does not verify";
    return ::testing::AssertionSuccess();
  }

  std::unique_ptr<Client> client_;
  PartitionId partition_ = 0;
  std::unique_ptr<Session> session_;
};

TEST_F(LibToken, TokenKeysSurviveRestartAndCrashSessionKeysDoNot) {
  const KeyPair pair = token_ec_pair("durable");
  const Bytes spki = s().public_key(pair.public_handle).value();
  KeyTemplate aes = aes_flags("durable-aes");
  aes.token = true;
  ASSERT_OK(s().generate_aes_key(256, aes));
  ASSERT_OK(s().generate_aes_key(256, aes_flags("session-aes")));
  auto info = s().key_info(pair.private_handle);
  ASSERT_OK(info);
  EXPECT_TRUE(info.value().token);
  EXPECT_LT(pair.private_handle, KeyHandle{1} << 62);

  // Another connection sees token objects at once, session objects never.
  {
    Client other = connect();
    Session other_s = login(other, partition_);
    auto found = other_s.find_keys(query("durable"));
    ASSERT_OK(found);
    EXPECT_EQ(found.value().size(), 2u);
    EXPECT_TRUE(other_s.find_keys(query("session-aes")).value().empty());
  }

  session_.reset();
  client_.reset();
  daemon().kill_hard();
  ASSERT_TRUE(daemon().start());
  relogin();

  const KeyHandle priv = find_one("durable", ObjectClass::kPrivateKey);
  ASSERT_EQ(priv, pair.private_handle);  // handles of token objects are stable
  EXPECT_TRUE(signs_and_verifies(priv, spki));
  auto pub_info = s().key_info(pair.public_handle);
  ASSERT_OK(pub_info);
  EXPECT_EQ(pub_info.value().pair_handle, priv);
  const KeyHandle aes_handle = find_one("durable-aes", ObjectClass::kSecretKey);
  ASSERT_NE(aes_handle, 0u);
  auto ct = s().encrypt_gcm(aes_handle, to_bytes("hello"), {});
  ASSERT_OK(ct);
  auto pt = s().decrypt_gcm(aes_handle, ct.value(), {});
  ASSERT_OK(pt);
  EXPECT_EQ(pt.value(), to_bytes("hello"));
  EXPECT_TRUE(s().find_keys(query("session-aes")).value().empty());
}

// A stored key enters memory again after each restart (and after each
// cache eviction or masked load): its GCM IVs must still never repeat, so
// each incarnation gets a fixed field never handed out before.
TEST_F(LibToken, GcmIvsOfAStoredKeyNeverRepeatAcrossRestarts) {
  KeyTemplate t = aes_flags("iv");
  t.token = true;
  auto key = s().generate_aes_key(256, t);
  ASSERT_OK(key);
  std::set<Bytes> ivs;
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < 3; ++i) {
      auto ct = s().encrypt_gcm(key.value(), to_bytes("x"), {});
      ASSERT_OK(ct);
      EXPECT_TRUE(ivs.insert(ct.value().iv).second) << "IV repeated in round " << round;
    }
    auto blob = s().export_masked_key(key.value());
    ASSERT_OK(blob);
    session_.reset();
    client_.reset();
    daemon().kill_hard();  // no clean shutdown: the counter must still move on
    ASSERT_TRUE(daemon().start());
    relogin();
  }
  EXPECT_EQ(ivs.size(), 9u);
}

TEST_F(LibToken, DestroyAndAttributeChangesAreDurable) {
  const KeyPair a = token_ec_pair("a");
  const KeyPair b = token_ec_pair("b");
  ASSERT_OK(s().destroy_key(a.private_handle));
  ASSERT_OK(s().set_key_attributes(b.private_handle, 0, usage::kSign, std::string("b-renamed")));
  EXPECT_STATUS(s().key_info(a.private_handle), Status::kNoSuchKey);
  ASSERT_TRUE(restart_daemon());
  relogin();
  EXPECT_STATUS(s().key_info(a.private_handle), Status::kNoSuchKey);
  EXPECT_NE(find_one("a", ObjectClass::kPublicKey), 0u);
  auto info = s().key_info(b.private_handle);
  ASSERT_OK(info);
  EXPECT_EQ(info.value().label, "b-renamed");
  EXPECT_FALSE(info.value().flags & usage::kSign);
  EXPECT_STATUS(s().sign(b.private_handle, Mechanism::kEcdsaSha256, to_bytes("x")),
                Status::kKeyUsageNotAllowed);
}

TEST_F(LibToken, MaskedKeysLoadOnlyWhereTheyBelong) {
  // A session key leaves as a masked blob and comes back in a new session.
  auto pair = s().generate_ec_key_pair(Curve::kP256, verify_public(), sign_private("masked"));
  ASSERT_OK(pair);
  const Bytes spki = s().public_key(pair.value().public_handle).value();
  auto blob = s().export_masked_key(pair.value().private_handle);
  ASSERT_OK(blob);
  EXPECT_LE(blob.value().size(), 4096u);
  // RSA-4096 fits the 4 KiB bound too.
  auto rsa = s().generate_key_pair(Mechanism::kRsaKeyPairGen, std::nullopt, 4096, verify_public(),
                                   sign_private());
  ASSERT_OK(rsa);
  auto rsa_blob = s().export_masked_key(rsa.value().private_handle);
  ASSERT_OK(rsa_blob);
  EXPECT_LE(rsa_blob.value().size(), 4096u);

  relogin();
  EXPECT_STATUS(s().key_info(pair.value().private_handle), Status::kNoSuchKey);
  auto loaded = s().load_masked_key(blob.value());
  ASSERT_OK(loaded);
  EXPECT_TRUE(signs_and_verifies(loaded.value(), spki));
  auto info = s().key_info(loaded.value());
  ASSERT_OK(info);
  EXPECT_EQ(info.value().label, "masked");
  EXPECT_EQ(caller_bits(info.value().flags), usage::kSign | usage::kSensitive);

  // Any changed byte is refused.
  for (size_t i = 0; i < blob.value().size(); i += 7) {
    Bytes bad = blob.value();
    bad[i] ^= 0x01;
    auto r = s().load_masked_key(bad);
    ASSERT_FALSE(r.ok()) << "byte " << i;
    EXPECT_TRUE(r.status() == Status::kMaskedKeyInvalid ||
                r.status() == Status::kMaskedKeyWrongDevice ||
                r.status() == Status::kMaskedKeyWrongPartition)
        << "byte " << i << ": " << status_name(r.status());
  }
  Bytes truncated(blob.value().begin(), blob.value().end() - 1);
  EXPECT_STATUS(s().load_masked_key(truncated), Status::kMaskedKeyInvalid);
  EXPECT_STATUS(s().load_masked_key({}), Status::kMaskedKeyInvalid);

  // Another partition of the same device refuses it.
  const PartitionId other = make_partition(*client_, "other").id;
  Session other_s = login(*client_, other);
  EXPECT_STATUS(other_s.load_masked_key(blob.value()), Status::kMaskedKeyWrongPartition);
}

TEST_F(LibToken, MaskedBlobOfADestroyedTokenKeyIsRevoked) {
  const KeyPair pair = token_ec_pair("revoke");
  auto blob = s().export_masked_key(pair.private_handle);
  ASSERT_OK(blob);
  // While the key exists its blob names it: no copy.
  auto same = s().load_masked_key(blob.value());
  ASSERT_OK(same);
  EXPECT_EQ(same.value(), pair.private_handle);
  ASSERT_OK(s().destroy_key(pair.private_handle));
  EXPECT_STATUS(s().load_masked_key(blob.value()), Status::kMaskedKeyRevoked);
  ASSERT_TRUE(restart_daemon());
  relogin();
  EXPECT_STATUS(s().load_masked_key(blob.value()), Status::kMaskedKeyRevoked);
}

TEST_F(LibToken, BlobsOfAnotherDeviceAreRefused) {
  auto key = s().generate_aes_key(256, aes_flags("elsewhere"));
  ASSERT_OK(key);
  auto blob = s().export_masked_key(key.value());
  ASSERT_OK(blob);
  Daemon second(dir().file("state2"), dir().file("sock2"), {}, dir().file("ihsmd2.log"));
  ASSERT_TRUE(second.start());
  Client c2 = Client::connect(second.socket()).value();
  // Same partition id (1) on the second device: still not its blob.
  const PartitionId p2 = make_partition(c2, "tokens").id;
  EXPECT_EQ(p2, partition_);
  Session s2 = login(c2, p2);
  EXPECT_STATUS(s2.load_masked_key(blob.value()), Status::kMaskedKeyWrongDevice);
  EXPECT_TRUE(second.stop());
}

TEST_F(LibToken, CertificatesAndDataObjects) {
  const Bytes cert = to_bytes("0\x82 not really DER, the device stores what it is given");
  ObjectSpec spec;
  spec.object_class = ObjectClass::kCertificate;
  spec.label = "my cert";
  spec.id = {0x01, 0x02};
  spec.value = cert;
  spec.token = true;
  auto h = s().create_object(spec);
  ASSERT_OK(h);
  ObjectSpec data;
  data.object_class = ObjectClass::kData;
  data.label = "config";
  data.application = "my app";
  data.value = to_bytes("data bytes");
  ASSERT_OK(s().create_object(data));  // a session object

  ASSERT_TRUE(restart_daemon());
  relogin();
  auto certs = s().find_keys(query(std::nullopt, std::nullopt, ObjectClass::kCertificate));
  ASSERT_OK(certs);
  ASSERT_EQ(certs.value().size(), 1u);
  EXPECT_EQ(certs.value()[0].handle, h.value());
  EXPECT_EQ(certs.value()[0].id, (Bytes{0x01, 0x02}));
  EXPECT_EQ(certs.value()[0].value_size, cert.size());
  EXPECT_TRUE(certs.value()[0].token);
  auto value = s().object_value(h.value());
  ASSERT_OK(value);
  EXPECT_EQ(value.value(), cert);
  EXPECT_TRUE(s().find_keys(query("config")).value().empty());

  // A certificate is no key, and a key's value never leaves.
  EXPECT_STATUS(s().sign(h.value(), Mechanism::kEcdsaSha256, to_bytes("x")),
                Status::kKeyUsageNotAllowed);
  auto aes = s().generate_aes_key(256, aes_flags());
  ASSERT_OK(aes);
  EXPECT_STATUS(s().object_value(aes.value()), Status::kAttributeSensitive);
  // Keys are not created raw through CreateObject, and values are bounded.
  ObjectSpec key_spec;
  key_spec.object_class = ObjectClass::kSecretKey;
  key_spec.value = Bytes(32, 1);
  EXPECT_STATUS(s().create_object(key_spec), Status::kAttributeInvalid);
  ObjectSpec huge = data;
  huge.value = Bytes(32 * 1024 + 1, 0);
  EXPECT_STATUS(s().create_object(huge), Status::kFieldTooLarge);
  ASSERT_OK(s().destroy_key(h.value()));
  EXPECT_TRUE(s().find_keys(query("my cert")).value().empty());
}

// C_CopyObject: a session key copied into a durable token key holds the
// same value under its own handle and survives its source and a crash;
// certificates copy with their value. GCM IVs of the copy come from its
// own incarnation, so source and copy never draw the same IV.
TEST_F(LibToken, CopiesAreNewObjectsWithTheSameValue) {
  KeyTemplate t = aes_flags("source");
  t.flags = *t.flags & ~usage::kModifiable;
  t.flags_mask |= usage::kModifiable;
  auto source = s().generate_aes_key(256, t);
  ASSERT_OK(source);
  ObjectCopy to_token;
  to_token.label = "copy";
  to_token.token = true;
  auto copy = s().copy_object(source.value(), to_token);
  ASSERT_OK(copy);
  auto info = s().key_info(copy.value());
  ASSERT_OK(info);
  EXPECT_TRUE(info.value().token);
  EXPECT_EQ(info.value().label, "copy");
  auto sealed = s().encrypt_gcm(source.value(), to_bytes("copied key"), {});
  ASSERT_OK(sealed);
  auto by_copy = s().encrypt_gcm(copy.value(), to_bytes("copied key"), {});
  ASSERT_OK(by_copy);
  EXPECT_NE(sealed.value().iv, by_copy.value().iv);
  const GcmCiphertext ct = sealed.value();
  ASSERT_OK(s().destroy_key(source.value()));
  session_.reset();
  client_.reset();
  daemon().kill_hard();
  ASSERT_TRUE(daemon().start());
  relogin();
  auto opened = s().decrypt_gcm(copy.value(), ct, {});
  ASSERT_OK(opened);
  EXPECT_EQ(opened.value(), to_bytes("copied key"));

  ObjectSpec cert;
  cert.object_class = ObjectClass::kCertificate;
  cert.label = "cert";
  cert.value = to_bytes("certificate bytes");
  auto h = s().create_object(cert);
  ASSERT_OK(h);
  ObjectCopy frozen_copy;
  frozen_copy.mask = usage::kModifiable;  // the copy may not change
  auto cert_copy = s().copy_object(h.value(), frozen_copy);
  ASSERT_OK(cert_copy);
  EXPECT_EQ(s().object_value(cert_copy.value()).value(), cert.value);
  EXPECT_FALSE(s().key_info(cert_copy.value()).value().flags & usage::kModifiable);
  ObjectCopy usage_on_cert;
  usage_on_cert.flags = usage::kSign;
  usage_on_cert.mask = usage::kSign;
  EXPECT_STATUS(s().copy_object(h.value(), usage_on_cert), Status::kAttributeInvalid);
  EXPECT_STATUS(s().copy_object(KeyHandle{0x1234}), Status::kNoSuchKey);
}

TEST_F(LibToken, FindPagesThroughManyObjects) {
  // Session objects (no fsync each) and token objects in one listing.
  ObjectSpec data;
  data.object_class = ObjectClass::kData;
  data.value = to_bytes("x");
  std::set<KeyHandle> made;
  for (int i = 0; i < 2600; ++i) {
    data.label = "page";
    data.token = i % 200 == 0;
    auto h = s().create_object(data);
    ASSERT_OK(h);
    made.insert(h.value());
  }
  auto found = s().find_keys(query("page"));
  ASSERT_OK(found);
  std::set<KeyHandle> seen;
  for (const auto& k : found.value()) seen.insert(k.handle);
  EXPECT_EQ(seen, made);
  EXPECT_EQ(found.value().size(), made.size());
}

TEST_F(LibToken, DeletingAPartitionDeletesItsTokenObjects) {
  token_ec_pair("doomed");
  session_.reset();
  ASSERT_OK(client_->delete_partition(partition_));
  partition_ = make_partition(*client_, "tokens").id;
  session_ = std::make_unique<Session>(login(*client_, partition_));
  EXPECT_TRUE(s().find_keys(query("doomed")).value().empty());
  session_.reset();
  ASSERT_TRUE(restart_daemon());
  relogin();
  EXPECT_TRUE(s().find_keys(query("doomed")).value().empty());
  SqliteFile db(db_path());
  session_.reset();
}

// ---- the store file, changed by someone with write access to the state dir

class LibStoreTamper : public LibToken {
 protected:
  // Stops the daemon, applies `change` to the store, starts it again.
  template <typename F>
  void with_store(F&& change) {
    session_.reset();
    client_.reset();
    ASSERT_TRUE(daemon().stop());
    {
      SqliteFile db(db_path());
      change(db);
    }
    ASSERT_TRUE(daemon().start());
    relogin();
  }
};

TEST_F(LibStoreTamper, AChangedByteInARecordIsRefused) {
  const KeyPair pair = token_ec_pair("flip");
  const std::string where = " WHERE handle = " + std::to_string(pair.private_handle);
  with_store([&](SqliteFile& db) {
    Bytes blob = db.blob("SELECT blob FROM objects" + where);
    blob[blob.size() / 3] ^= 0x20;  // inside the authenticated metadata
    db.set_blob("UPDATE objects SET blob = ?" + where, blob);
  });
  EXPECT_STATUS(s().key_info(pair.private_handle), Status::kObjectCorrupt);
  EXPECT_STATUS(s().sign(pair.private_handle, Mechanism::kEcdsaSha256, to_bytes("x")),
                Status::kObjectCorrupt);
  // Listing leaves it out; its public half is untouched.
  auto found = s().find_keys(query("flip"));
  ASSERT_OK(found);
  ASSERT_EQ(found.value().size(), 1u);
  EXPECT_EQ(found.value()[0].handle, pair.public_handle);
  EXPECT_NE(daemon().log().find("fails authentication"), std::string::npos);
}

TEST_F(LibStoreTamper, AChangedIndexColumnIsRefused) {
  const KeyPair pair = token_ec_pair("honest");
  const std::string where = " WHERE handle = " + std::to_string(pair.private_handle);
  with_store([&](SqliteFile& db) { db.exec("UPDATE objects SET label = 'forged'" + where); });
  EXPECT_TRUE(s().find_keys(query("forged")).value().empty());
  EXPECT_STATUS(s().key_info(pair.private_handle), Status::kObjectCorrupt);
}

TEST_F(LibStoreTamper, RecordsSwappedBetweenRowsOrPartitionsAreRefused) {
  const KeyPair a = token_ec_pair("a");
  const KeyPair b = token_ec_pair("b");
  const PartitionId other = make_partition(*client_, "victim").id;
  KeyHandle victim = 0;
  {
    Session vs = login(*client_, other);
    KeyTemplate t = sign_private("victim");
    KeyTemplate p = verify_public("victim");
    t.token = p.token = true;
    victim = vs.generate_ec_key_pair(Curve::kP256, p, t).value().private_handle;
  }
  with_store([&](SqliteFile& db) {
    // a's record under b's handle; the victim's record moved into our partition.
    const Bytes blob_a =
        db.blob("SELECT blob FROM objects WHERE handle = " + std::to_string(a.private_handle));
    db.set_blob("UPDATE objects SET blob = ? WHERE handle = " + std::to_string(b.private_handle),
                blob_a);
    db.exec("UPDATE objects SET partition = " + std::to_string(partition_) +
            " WHERE handle = " + std::to_string(victim));
  });
  EXPECT_STATUS(s().key_info(b.private_handle), Status::kObjectCorrupt);
  EXPECT_STATUS(s().key_info(victim), Status::kObjectCorrupt);
  EXPECT_TRUE(signs_and_verifies(a.private_handle, s().public_key(a.public_handle).value()));
}

// ---- backup and restore

class LibBackup : public LibToken {
 protected:
  struct Backup {
    Bytes header;
    std::vector<Bytes> records;
  };
  Backup backup(const char* secret) {
    Backup b;
    SecretPin pin(secret == nullptr ? "" : secret);
    auto r = client_->backup_partition(partition_, secret ? &pin : nullptr,
                                       [&](const BackupPage& page) -> Done {
                                         if (!page.header.empty()) b.header = page.header;
                                         for (const auto& rec : page.records)
                                           b.records.push_back(rec);
                                         return Unit{};
                                       });
    if (!r) throw std::runtime_error("backup: " + std::string(status_name(r.status())));
    return b;
  }
};

TEST_F(LibBackup, RestoresOnTheSameDeviceAfterDestroyAndAfterReset) {
  const KeyPair pair = token_ec_pair("backed-up");
  const Bytes spki = s().public_key(pair.public_handle).value();
  ObjectSpec cert;
  cert.label = "backed-up";
  cert.value = to_bytes("certificate bytes");
  cert.token = true;
  ASSERT_OK(s().create_object(cert));
  const Backup b = backup(kBackupSecret);
  EXPECT_EQ(b.records.size(), 3u);

  // Same partition: a destroyed key comes back, the rest is left alone.
  ASSERT_OK(s().destroy_key(pair.private_handle));
  auto r = client_->restore_partition(partition_, b.header, b.records);
  ASSERT_OK(r);
  EXPECT_EQ(r.value().restored, 1u);
  EXPECT_EQ(r.value().skipped, 2u);
  EXPECT_TRUE(signs_and_verifies(pair.private_handle, spki));

  // After a reset the records are under a masking key that is gone...
  session_.reset();
  SecretPin officer(kOfficerPin), user(kUserPin);
  ASSERT_OK(client_->reset_partition(partition_, officer, &user));
  relogin();
  EXPECT_TRUE(s().find_keys(query("backed-up")).value().empty());
  EXPECT_STATUS(client_->restore_partition(partition_, b.header, b.records),
                Status::kBackupSecretRequired);
  SecretPin wrong("not-the-secret");
  EXPECT_STATUS(client_->restore_partition(partition_, b.header, b.records, &wrong),
                Status::kBackupInvalid);
  // ...and the owner's secret brings them back, re-masked under the new key.
  SecretPin secret(kBackupSecret);
  r = client_->restore_partition(partition_, b.header, b.records, &secret);
  ASSERT_OK(r);
  EXPECT_EQ(r.value().restored, 3u);
  ASSERT_TRUE(restart_daemon());
  relogin();
  EXPECT_TRUE(signs_and_verifies(find_one("backed-up", ObjectClass::kPrivateKey), spki));
  EXPECT_EQ(s().find_keys(query("backed-up")).value().size(), 3u);
}

TEST_F(LibBackup, WithoutASecretItDoesNotSurviveAReset) {
  token_ec_pair("no-secret");
  const Backup b = backup(nullptr);
  session_.reset();
  SecretPin officer(kOfficerPin), user(kUserPin), secret(kBackupSecret);
  ASSERT_OK(client_->reset_partition(partition_, officer, &user));
  EXPECT_STATUS(client_->restore_partition(partition_, b.header, b.records, &secret),
                Status::kBackupSecretRequired);
}

TEST_F(LibBackup, RefusedOnASecondDeviceAndWhenTampered) {
  token_ec_pair("portable?");
  const Backup b = backup(kBackupSecret);
  ASSERT_FALSE(b.records.empty());
  SecretPin secret(kBackupSecret);
  Backup bad = b;
  bad.records[0][bad.records[0].size() - 3] ^= 1;
  EXPECT_STATUS(client_->restore_partition(partition_, bad.header, bad.records, &secret),
                Status::kBackupInvalid);

  Daemon second(dir().file("state2"), dir().file("sock2"), {}, dir().file("ihsmd2.log"));
  ASSERT_TRUE(second.start());
  Client c2 = Client::connect(second.socket()).value();
  const PartitionId p2 = make_partition(c2, "tokens").id;
  EXPECT_STATUS(c2.restore_partition(p2, b.header, b.records, &secret), Status::kBackupWrongDevice);
  EXPECT_TRUE(second.stop());
}

TEST_F(LibBackup, ObjectsLiveInOnePartitionAtATime) {
  token_ec_pair("one home");
  const Backup b = backup(kBackupSecret);
  const PartitionId other = make_partition(*client_, "clone").id;
  SecretPin secret(kBackupSecret);
  auto r = client_->restore_partition(other, b.header, b.records, &secret);
  EXPECT_STATUS(r, Status::kObjectExists);
  // Once the source partition is gone, its backup restores elsewhere.
  session_.reset();
  ASSERT_OK(client_->delete_partition(partition_));
  r = client_->restore_partition(other, b.header, b.records, &secret);
  ASSERT_OK(r);
  EXPECT_EQ(r.value().restored, 2u);
  Session os = login(*client_, other);
  EXPECT_EQ(os.find_keys(query("one home")).value().size(), 2u);
}

TEST_F(LibBackup, OnlyTheOwnerBacksUpAndRestores) {
  // The test runs as the daemon's owner; the rule itself is the gate's
  // kOwner access, checked for every owner command in raw_protocol_test.
  SecretPin short_secret("short");
  auto r = client_->backup_partition(partition_, &short_secret,
                                     [](const BackupPage&) -> Done { return Unit{}; });
  EXPECT_EQ(r.status(), Status::kInvalidArgument);
}

}  // namespace
}  // namespace ihsm::test
