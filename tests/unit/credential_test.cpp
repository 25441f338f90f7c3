// PIN credentials (src/device/vault/credential.h): back-off and lockout
// driven by explicit time points, persistence of the counters.
#include "device/vault/credential.h"

#include <gtest/gtest.h>

#include "support/util.h"

namespace ihsm::device {
namespace {

using namespace std::chrono_literals;
using Clock = Credential::Clock;

Bytes pin(std::string_view s) { return Bytes(s.begin(), s.end()); }
Bytes to_vector(const SecretBytes& s) { return Bytes(s.reveal().begin(), s.reveal().end()); }

LoginPolicy fast_policy() {
  LoginPolicy p;
  p.max_failures = 5;
  p.free_failures = 2;
  p.backoff_base_ms = 100;
  p.backoff_max_ms = 400;
  p.scrypt_n = 16;  // keep the unit test fast; the cost is stored per verifier
  p.scrypt_r = 1;
  p.scrypt_p = 1;
  return p;
}

// One complete attempt at `now`: begin, match, record.
Status attempt(Credential& c, const LoginPolicy& policy, Clock::time_point now,
               std::string_view guess, uint64_t* retry_after = nullptr) {
  Credential::Check check;
  uint64_t wait = 0;
  const Status s = c.begin_attempt(now, &wait, check);
  if (retry_after != nullptr) *retry_after = wait;
  if (!ok(s)) return s;
  return c.record(Credential::matches(check, pin(guess)), policy, now);
}

TEST(Credential, UnsetCredentialCannotBeTried) {
  Credential c;
  EXPECT_FALSE(c.is_set());
  Credential::Check check;
  EXPECT_EQ(c.begin_attempt(Clock::now(), nullptr, check), Status::kPinNotInitialized);
}

TEST(Credential, RightAndWrongPin) {
  const auto policy = fast_policy();
  Credential c;
  ASSERT_EQ(c.set_pin(pin("123456"), policy), Status::kOk);
  EXPECT_TRUE(c.is_set());
  const auto t0 = Clock::now();
  EXPECT_EQ(attempt(c, policy, t0, "123456"), Status::kOk);
  EXPECT_EQ(attempt(c, policy, t0, "123457"), Status::kPinIncorrect);
  EXPECT_EQ(attempt(c, policy, t0, "12345"), Status::kPinIncorrect);
  EXPECT_EQ(attempt(c, policy, t0, ""), Status::kPinIncorrect);
  EXPECT_EQ(c.failures(), 3u);
}

TEST(Credential, BackoffAndLockoutWithExplicitTime) {
  const auto policy = fast_policy();
  Credential c;
  ASSERT_EQ(c.set_pin(pin("correct"), policy), Status::kOk);
  const Clock::time_point t0{std::chrono::hours(1000)};
  uint64_t wait = 0;

  // Failures 1 and 2 are free.
  EXPECT_EQ(attempt(c, policy, t0, "wrong"), Status::kPinIncorrect);
  EXPECT_EQ(c.retries_left(policy), 4u);
  EXPECT_EQ(attempt(c, policy, t0, "wrong"), Status::kPinIncorrect);
  EXPECT_EQ(c.retries_left(policy), 3u);
  // The third starts the back-off: 100 ms.
  EXPECT_EQ(attempt(c, policy, t0, "wrong"), Status::kPinIncorrect);
  EXPECT_EQ(c.failures(), 3u);
  EXPECT_EQ(attempt(c, policy, t0, "correct", &wait), Status::kPinBackoff);
  EXPECT_EQ(wait, 100u);
  EXPECT_EQ(attempt(c, policy, t0 + 40ms, "correct", &wait), Status::kPinBackoff);
  EXPECT_EQ(wait, 60u);
  EXPECT_EQ(attempt(c, policy, t0 + 99ms, "correct", &wait), Status::kPinBackoff);
  EXPECT_EQ(wait, 1u);
  EXPECT_EQ(attempt(c, policy, t0 + 99ms + 500us, "correct", &wait), Status::kPinBackoff);
  EXPECT_EQ(wait, 1u);  // rounded up, never 0
  // A refused attempt does not count as a failure.
  EXPECT_EQ(c.failures(), 3u);

  // At the deadline the next attempt runs; failure 4 doubles the wait.
  const auto t1 = t0 + 100ms;
  EXPECT_EQ(attempt(c, policy, t1, "wrong"), Status::kPinIncorrect);
  EXPECT_EQ(attempt(c, policy, t1 + 199ms, "correct", &wait), Status::kPinBackoff);
  EXPECT_EQ(wait, 1u);
  // Failure 5 of 5 locks.
  const auto t2 = t1 + 200ms;
  EXPECT_EQ(attempt(c, policy, t2, "wrong"), Status::kPinLocked);
  EXPECT_TRUE(c.locked());
  EXPECT_EQ(c.retries_left(policy), 0u);
  // Locked stays locked however long one waits, even for the right PIN.
  EXPECT_EQ(attempt(c, policy, t2 + std::chrono::hours(24 * 365), "correct"), Status::kPinLocked);

  // Unlock clears the count and the wait.
  c.unlock();
  EXPECT_FALSE(c.locked());
  EXPECT_EQ(c.failures(), 0u);
  EXPECT_EQ(attempt(c, policy, t2, "correct"), Status::kOk);
}

// After `k` consecutive failures recorded at t0 on a fresh copy of `base`,
// what does an attempt at t0 get? kOk (and wait 0) or kPinBackoff/kPinLocked.
Status after_failures(const cbor::Value& base, const LoginPolicy& policy, uint32_t k,
                      uint64_t& wait) {
  Credential c;
  EXPECT_EQ(c.from_cbor(base), Status::kOk);
  const Clock::time_point t0{std::chrono::hours(7)};
  for (uint32_t i = 0; i < k; ++i) c.record(false, policy, t0);
  wait = 0;
  Credential::Check check;
  return c.begin_attempt(t0, &wait, check);
}

TEST(Credential, WaitDoublesUpToTheCap) {
  auto policy = fast_policy();
  policy.max_failures = 50;
  Credential c;
  ASSERT_EQ(c.set_pin(pin("correct"), policy), Status::kOk);
  const cbor::Value base = c.to_cbor();
  const uint64_t expected[] = {0, 0, 0, 100, 200, 400, 400, 400};
  for (uint32_t k = 0; k < std::size(expected); ++k) {
    uint64_t wait = 0;
    const Status s = after_failures(base, policy, k, wait);
    EXPECT_EQ(s, expected[k] == 0 ? Status::kOk : Status::kPinBackoff) << k;
    EXPECT_EQ(wait, expected[k]) << k;
  }
  // Many failures: the shift is bounded, the wait stays at the cap.
  uint64_t wait = 0;
  EXPECT_EQ(after_failures(base, policy, 49, wait), Status::kPinBackoff);
  EXPECT_EQ(wait, 400u);
  EXPECT_EQ(after_failures(base, policy, 50, wait), Status::kPinLocked);
}

TEST(Credential, DocumentedDefaultSchedule) {
  // docs/protocol.md: failures 1 and 2 cost nothing, then the wait doubles
  // from 1 s up to 60 s; after 10 consecutive failures the role is locked.
  const LoginPolicy defaults;
  EXPECT_EQ(defaults.max_failures, 10u);
  EXPECT_EQ(defaults.free_failures, 2u);
  EXPECT_EQ(defaults.scrypt_n, 1u << 15);
  EXPECT_EQ(defaults.scrypt_r, 8u);
  EXPECT_EQ(defaults.scrypt_p, 1u);
  Credential c;
  ASSERT_EQ(c.set_pin(pin("correct"), fast_policy()), Status::kOk);
  const cbor::Value base = c.to_cbor();
  const uint64_t expected[] = {0, 0, 0, 1000, 2000, 4000, 8000, 16000, 32000, 60000};
  for (uint32_t k = 0; k < std::size(expected); ++k) {
    uint64_t wait = 0;
    const Status s = after_failures(base, defaults, k, wait);
    EXPECT_EQ(s, expected[k] == 0 ? Status::kOk : Status::kPinBackoff) << k;
    EXPECT_EQ(wait, expected[k]) << k;
  }
  uint64_t wait = 0;
  EXPECT_EQ(after_failures(base, defaults, 10, wait), Status::kPinLocked);
}

TEST(Credential, ACheckIsASnapshotOfTheVerifier) {
  const auto policy = fast_policy();
  Credential c;
  ASSERT_EQ(c.set_pin(pin("correct"), policy), Status::kOk);
  const auto now = Clock::now();
  Credential::Check a;
  ASSERT_EQ(c.begin_attempt(now, nullptr, a), Status::kOk);
  EXPECT_TRUE(Credential::matches(a, pin("correct")));
  EXPECT_FALSE(Credential::matches(a, pin("Correct")));
  EXPECT_FALSE(Credential::matches(a, pin("correct ")));
  EXPECT_EQ(c.record(true, policy, now), Status::kOk);
  // Changing the PIN does not change a check already taken...
  ASSERT_EQ(c.set_pin(pin("changed"), policy), Status::kOk);
  EXPECT_TRUE(Credential::matches(a, pin("correct")));
  // ...and a new check sees the new PIN (with a fresh salt).
  Credential::Check b;
  ASSERT_EQ(c.begin_attempt(now, nullptr, b), Status::kOk);
  EXPECT_TRUE(Credential::matches(b, pin("changed")));
  EXPECT_FALSE(Credential::matches(b, pin("correct")));
  EXPECT_NE(to_vector(a.salt), to_vector(b.salt));
  c.record(true, policy, now);
}

TEST(Credential, SuccessResetsTheCount) {
  const auto policy = fast_policy();
  Credential c;
  ASSERT_EQ(c.set_pin(pin("correct"), policy), Status::kOk);
  const Clock::time_point t0{std::chrono::hours(2)};
  for (int i = 0; i < 4; ++i) {
    ASSERT_EQ(attempt(c, policy, t0 + std::chrono::seconds(i), "wrong"), Status::kPinIncorrect);
  }
  EXPECT_EQ(attempt(c, policy, t0 + 10s, "correct"), Status::kOk);
  EXPECT_EQ(c.failures(), 0u);
  EXPECT_EQ(c.retries_left(policy), 5u);
  // The back-off is gone too, and counting starts over.
  EXPECT_EQ(attempt(c, policy, t0 + 10s, "wrong"), Status::kPinIncorrect);
  EXPECT_EQ(attempt(c, policy, t0 + 10s, "wrong"), Status::kPinIncorrect);
  EXPECT_EQ(attempt(c, policy, t0 + 10s, "wrong"), Status::kPinIncorrect);
  EXPECT_EQ(attempt(c, policy, t0 + 10s, "correct"), Status::kPinBackoff);
}

TEST(Credential, SetPinClearsLockAndReplacesThePin) {
  const auto policy = fast_policy();
  Credential c;
  ASSERT_EQ(c.set_pin(pin("first"), policy), Status::kOk);
  const auto t = Clock::now();
  for (int i = 0; i < 5; ++i) c.record(false, policy, t);
  ASSERT_TRUE(c.locked());
  ASSERT_EQ(c.set_pin(pin("second"), policy), Status::kOk);
  EXPECT_FALSE(c.locked());
  EXPECT_EQ(c.failures(), 0u);
  EXPECT_EQ(attempt(c, policy, t, "first"), Status::kPinIncorrect);
  EXPECT_EQ(attempt(c, policy, t, "second"), Status::kOk);
}

TEST(Credential, CountersAndVerifierSurviveSerialisation) {
  const auto policy = fast_policy();
  Credential c;
  ASSERT_EQ(c.set_pin(pin("persisted"), policy), Status::kOk);
  const Clock::time_point t0{std::chrono::hours(3)};
  for (int i = 0; i < 3; ++i) ASSERT_EQ(attempt(c, policy, t0, "wrong"), Status::kPinIncorrect);

  const Bytes stored = cbor::encode(c.to_cbor());
  // The PIN itself is not in the record.
  EXPECT_EQ(
      std::search(stored.begin(), stored.end(), std::begin("persisted"), std::end("persisted") - 1),
      stored.end());
  cbor::Value v;
  ASSERT_EQ(cbor::decode(stored, v), Status::kOk);
  Credential back;
  ASSERT_EQ(back.from_cbor(v), Status::kOk);
  EXPECT_TRUE(back.is_set());
  EXPECT_EQ(back.failures(), 3u);
  EXPECT_FALSE(back.locked());
  // The wait is monotonic time and not persisted (documented); the count is.
  EXPECT_EQ(attempt(back, policy, t0, "persisted"), Status::kOk);

  for (int i = 0; i < 5; ++i) back.record(false, policy, t0);
  ASSERT_TRUE(back.locked());
  Credential locked;
  ASSERT_EQ(locked.from_cbor(back.to_cbor()), Status::kOk);
  EXPECT_TRUE(locked.locked());
  EXPECT_EQ(attempt(locked, policy, t0, "persisted"), Status::kPinLocked);

  // An unset credential round-trips as unset.
  Credential empty, empty_back;
  ASSERT_EQ(empty_back.from_cbor(empty.to_cbor()), Status::kOk);
  EXPECT_FALSE(empty_back.is_set());
}

TEST(Credential, CorruptRecordsAreStorageFailures) {
  Credential c;
  EXPECT_EQ(c.from_cbor(cbor::Value::array()), Status::kStorageFailure);
  EXPECT_EQ(c.from_cbor(cbor::Value::map()), Status::kStorageFailure);
  auto partial = cbor::Value::map();
  partial.set(uint64_t{6}, cbor::Value::uint(0));
  partial.set(uint64_t{7}, cbor::Value::boolean(false));
  partial.set(uint64_t{5}, cbor::Value::bytes(Bytes(32, 1)));  // verifier without salt
  EXPECT_EQ(c.from_cbor(partial), Status::kStorageFailure);
}

}  // namespace
}  // namespace ihsm::device
