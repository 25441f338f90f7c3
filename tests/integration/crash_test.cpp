// Durability under SIGKILL: clients create and destroy token keys while
// the test kills ihsmd at random moments, many times. After every restart
// each acknowledged create is present and usable, each acknowledged destroy
// is gone, a key pair is whole or absent, and SQLite's integrity check
// passes on the store file.
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "integration/lib_fixture.h"
#include "support/sqlite_file.h"

namespace ihsm::test {
namespace {

constexpr int kRounds = 25;
constexpr int kWorkers = 2;

struct Ledger {
  std::mutex mutex;
  std::map<KeyHandle, std::string> alive;  // acknowledged, not destroyed
  std::set<KeyHandle> destroyed;           // destroy acknowledged
  std::set<std::string> maybe_created;     // create in flight at the kill
  std::set<KeyHandle> maybe_destroyed;     // destroy in flight at the kill
  std::map<KeyHandle, KeyHandle> pairs;    // private -> public, acknowledged
  uint64_t creates = 0, destroys = 0;
};

class CrashTest : public LibTest {};

void work(const std::string& socket, PartitionId partition, int round, int worker, Ledger& ledger) {
  auto client = Client::connect(socket);
  if (!client) return;
  auto session = client.value().open_session(partition);
  if (!session) return;
  if (!session.value().login(Role::kCryptoUser, SecretPin(kUserPin))) return;
  Session& s = session.value();
  std::mt19937 rng(static_cast<uint32_t>(round * 100 + worker));
  std::vector<KeyHandle> mine;
  for (int n = 0;; ++n) {
    const std::string label =
        "k-" + std::to_string(round) + "-" + std::to_string(worker) + "-" + std::to_string(n);
    if (!mine.empty() && rng() % 3 == 0) {
      const size_t pick = rng() % mine.size();
      const KeyHandle h = mine[pick];
      {
        std::lock_guard lock(ledger.mutex);
        ledger.maybe_destroyed.insert(h);
      }
      const auto r = s.destroy_key(h);
      if (!r) return;  // the daemon is gone: the destroy stays uncertain
      std::lock_guard lock(ledger.mutex);
      ledger.maybe_destroyed.erase(h);
      ledger.alive.erase(h);
      ledger.destroyed.insert(h);
      ++ledger.destroys;
      mine.erase(mine.begin() + static_cast<std::ptrdiff_t>(pick));
      continue;
    }
    {
      std::lock_guard lock(ledger.mutex);
      ledger.maybe_created.insert(label);
    }
    if (n % 5 == 4) {
      KeyTemplate pub = verify_public(label), priv = sign_private(label);
      pub.token = priv.token = true;
      const auto r = s.generate_ec_key_pair(Curve::kP256, pub, priv);
      if (!r) return;
      std::lock_guard lock(ledger.mutex);
      ledger.maybe_created.erase(label);
      ledger.alive[r.value().private_handle] = label;
      ledger.alive[r.value().public_handle] = label;
      ledger.pairs[r.value().private_handle] = r.value().public_handle;
      ledger.creates += 2;
    } else {
      KeyTemplate t = aes_flags(label);
      t.token = true;
      const auto r = s.generate_aes_key(256, t);
      if (!r) return;
      std::lock_guard lock(ledger.mutex);
      ledger.maybe_created.erase(label);
      ledger.alive[r.value()] = label;
      ++ledger.creates;
      mine.push_back(r.value());
    }
  }
}

TEST_F(CrashTest, AcknowledgedCreatesAndDestroysSurviveSigkill) {
  PartitionId partition = 0;
  {
    Client c = connect();
    partition = make_partition(c, "crash").id;
  }
  Ledger ledger;
  std::mt19937 rng(20261129);
  for (int round = 0; round < kRounds; ++round) {
    std::vector<std::thread> workers;
    for (int w = 0; w < kWorkers; ++w) {
      workers.emplace_back(work, socket_path(), partition, round, w, std::ref(ledger));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(40 + rng() % 400));
    daemon().kill_hard();
    for (auto& t : workers) t.join();

    {
      SqliteFile db(state_dir() + "/objects.db");
      ASSERT_EQ(db.integrity_check(), "ok") << "round " << round;
    }
    ASSERT_TRUE(daemon().start()) << "round " << round;
    Client c = connect();
    Session s = login(c, partition);

    std::lock_guard lock(ledger.mutex);
    // Settle what was in flight: either outcome is allowed, once.
    for (const std::string& label : ledger.maybe_created) {
      auto found = s.find_keys(query(label));
      ASSERT_OK(found);
      const auto& keys = found.value();
      ASSERT_TRUE(keys.empty() || keys.size() == 1 || keys.size() == 2) << label;
      if (keys.size() == 2) {  // a pair: both halves, never one
        ASSERT_EQ(keys[0].pair_handle, keys[1].handle) << label;
      }
      if (keys.size() == 1) {
        ASSERT_NE(keys[0].object_class, ObjectClass::kPublicKey) << "half a pair: " << label;
        ASSERT_NE(keys[0].object_class, ObjectClass::kPrivateKey) << "half a pair: " << label;
      }
      for (const auto& k : keys) ledger.alive[k.handle] = label;
    }
    ledger.maybe_created.clear();
    for (const KeyHandle h : ledger.maybe_destroyed) {
      const auto info = s.key_info(h);
      if (info) continue;  // the destroy did not happen: still alive
      ASSERT_EQ(info.status(), Status::kNoSuchKey);
      ledger.alive.erase(h);
      ledger.destroyed.insert(h);
    }
    ledger.maybe_destroyed.clear();

    for (const auto& [h, label] : ledger.alive) {
      const auto info = s.key_info(h);
      ASSERT_OK(info) << "acknowledged key " << h << " (" << label << ") lost in round " << round;
      ASSERT_EQ(info.value().label, label);
      ASSERT_TRUE(info.value().token);
    }
    for (const KeyHandle h : ledger.destroyed) {
      ASSERT_STATUS(s.key_info(h), Status::kNoSuchKey) << "destroyed key " << h << " is back";
    }
    // Usable, not just listed: every AES key of this round encrypts, and
    // every pair of this round signs what its public half verifies.
    const std::string prefix = "k-" + std::to_string(round) + "-";
    for (const auto& [h, label] : ledger.alive) {
      if (label.rfind(prefix, 0) != 0) continue;
      const auto info = s.key_info(h).value();
      if (info.object_class == ObjectClass::kSecretKey) {
        auto ct = s.encrypt_gcm(h, to_bytes(label), {});
        ASSERT_OK(ct);
        auto pt = s.decrypt_gcm(h, ct.value(), {});
        ASSERT_OK(pt);
        ASSERT_EQ(pt.value(), to_bytes(label));
      } else if (info.object_class == ObjectClass::kPrivateKey) {
        auto sig = s.sign(h, Mechanism::kEcdsaSha256, to_bytes(label));
        ASSERT_OK(sig);
        auto spki = s.public_key(info.pair_handle);
        ASSERT_OK(spki);
        ASSERT_TRUE(
            verify_ecdsa(spki.value(), Mechanism::kEcdsaSha256, to_bytes(label), sig.value())
                .value());
      }
    }
  }
  std::fprintf(stderr, "crash test: %d kills, %llu creates and %llu destroys acknowledged\n",
               kRounds, static_cast<unsigned long long>(ledger.creates),
               static_cast<unsigned long long>(ledger.destroys));
  EXPECT_GT(ledger.creates, static_cast<uint64_t>(kRounds));
}

}  // namespace
}  // namespace ihsm::test
