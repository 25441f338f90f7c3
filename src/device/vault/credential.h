// One role's credential in a partition: an scrypt verifier of the PIN and
// the failure counters that drive back-off and lockout.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>

#include "common/cbor.h"
#include "common/secret.h"
#include "ihsm/status.h"

namespace ihsm::device {

struct LoginPolicy {
  uint32_t max_failures = 10;           // consecutive failures that lock the role
  uint32_t free_failures = 2;           // failures before back-off starts
  uint64_t backoff_base_ms = 1000;      // first wait, doubling per failure
  uint64_t backoff_max_ms = 60 * 1000;  // cap on one wait
  // Shortest PIN a role may be given (PINs already set keep working).
  // protocol::kMinPin by default; 7 in the approved configuration.
  size_t min_new_pin_length = 4;
  // scrypt cost for new verifiers (stored per verifier).
  uint64_t scrypt_n = 1u << 15;
  uint32_t scrypt_r = 8;
  uint32_t scrypt_p = 1;
};

class Credential {
 public:
  using Clock = std::chrono::steady_clock;

  bool is_set() const { return !verifier_.empty(); }
  bool locked() const { return locked_; }
  uint32_t failures() const { return failures_; }

  // Replaces the PIN and clears failures and lock.
  Status set_pin(std::span<const uint8_t> pin, const LoginPolicy& policy);
  void unlock() {
    locked_ = false;
    failures_ = 0;
    next_attempt_.reset();
  }

  // A PIN check in three steps so the slow part runs without locks:
  // begin_attempt() (under the partition lock) says whether an attempt may
  // run now (kPinLocked, kPinBackoff with the wait in *retry_after_ms,
  // kPinNotInitialized) and copies the verifier; matches() runs scrypt; record()
  // (under the lock again) counts the outcome and returns kOk,
  // kPinIncorrect or kPinLocked.
  struct Check {
    SecretBytes salt;
    uint64_t n = 0;
    uint32_t r = 0, p = 0;
    SecretBytes expected;
  };
  Status begin_attempt(Clock::time_point now, uint64_t* retry_after_ms, Check& check);
  static bool matches(const Check& check, std::span<const uint8_t> pin);
  Status record(bool success, const LoginPolicy& policy, Clock::time_point now);
  uint32_t retries_left(const LoginPolicy& policy) const {
    return failures_ >= policy.max_failures ? 0 : policy.max_failures - failures_;
  }

  cbor::Value to_cbor() const;
  Status from_cbor(const cbor::Value& v);

 private:
  SecretBytes salt_;
  uint64_t n_ = 0;
  uint32_t r_ = 0, p_ = 0;
  SecretBytes verifier_;
  uint32_t failures_ = 0;
  bool locked_ = false;
  // Back-off is in monotonic time and not persisted: a restart keeps the
  // failure count (and lock) but not the remaining wait.
  std::optional<Clock::time_point> next_attempt_;
};

}  // namespace ihsm::device
