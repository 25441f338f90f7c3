// The device's FIPS 140-3 state (docs/security-policy.md, "Error state"):
// operational, or latched in the error state by a failed self-test. There
// is one per firmware process; the state never leaves kError until the
// process ends (ihsmd restarts), and the gate refuses every cryptographic
// and key service while it is there.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>

#include "ihsm/status.h"

namespace ihsm::device::fips {

// The values are the device report's "state" member (docs/attestation.md);
// 2 (zeroized) is reserved for a later slice.
enum class State : uint8_t { kOperational = 0, kError = 1 };

class DeviceState {
 public:
  State state() const { return state_.load(std::memory_order_acquire); }
  bool operational() const { return state() == State::kOperational; }
  // Latches the error state and logs it. The first failure is the one the
  // device reports; later ones are only logged.
  void enter_error(std::string_view failed_test);
  // The test that put the device in its error state ("" while operational).
  std::string failed_test() const;

 private:
  std::atomic<State> state_{State::kOperational};
  mutable std::mutex mutex_;  // failed_test_
  std::string failed_test_;
};

// The firmware's one state.
DeviceState& device_state();

// A conditional self-test (a pairwise-consistency test, the continuous
// test on DRBG output) failed inside the crypto layer: latches the error
// state naming `test` and returns kSelfTestFailed for the caller to pass on.
Status conditional_test_failed(std::string_view test);

}  // namespace ihsm::device::fips
