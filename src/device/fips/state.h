// The device's FIPS 140-3 state (docs/security-policy.md, "Error state",
// "Zeroization", "Tamper response"): operational, or latched in the error
// state by a failed self-test, in the tamper-locked state by a tamper
// event, or zeroized. There is one per firmware process; a latched state
// never goes back to operational in the process (ihsmd restarts; a
// zeroized device stays zeroized until `ihsmd --provision`), and the gate
// refuses every cryptographic and key service while it is latched. A
// later, harder state overrides an earlier one: zeroized > tamper-locked >
// error.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>

#include "ihsm/status.h"

namespace ihsm::device::fips {

// The values are the device report's "state" member (docs/attestation.md).
enum class State : uint8_t { kOperational = 0, kError = 1, kZeroized = 2, kTamperLocked = 3 };

class DeviceState {
 public:
  State state() const { return state_.load(std::memory_order_acquire); }
  bool operational() const { return state() == State::kOperational; }
  // Latches the error state and logs it. The first failure is the one the
  // device reports; later ones are only logged.
  void enter_error(std::string_view failed_test);
  // The test that put the device in its error state ("" while operational).
  std::string failed_test() const;
  // Latches kTamperLocked (unless already zeroized) naming the sensor.
  void enter_tamper_locked(std::string_view sensor);
  // Latches kZeroized with its reason (the first reason is kept).
  void enter_zeroized(std::string_view reason);
  // Why the device is zeroized or tamper-locked ("" otherwise).
  std::string reason() const;
  // "operational", "error", "zeroized" or "tamper-locked" (GetDeviceInfo).
  std::string_view name() const;
  // The status a refused service answers in the current state: kDeviceError,
  // kZeroized or kTamperLocked.
  Status refusal() const;

 private:
  std::atomic<State> state_{State::kOperational};
  mutable std::mutex mutex_;  // failed_test_, reason_
  std::string failed_test_;
  std::string reason_;
};

// The firmware's one state.
DeviceState& device_state();

// A conditional self-test (a pairwise-consistency test, the continuous
// test on DRBG output) failed inside the crypto layer: latches the error
// state naming `test` and returns kSelfTestFailed for the caller to pass on.
Status conditional_test_failed(std::string_view test);

}  // namespace ihsm::device::fips
