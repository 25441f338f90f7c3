#include "device/fips/state.h"

#include <cstdio>

namespace ihsm::device::fips {

void DeviceState::enter_error(std::string_view failed_test) {
  std::lock_guard lock(mutex_);
  if (state_.load(std::memory_order_relaxed) != State::kOperational) {
    std::fprintf(stderr, "ihsmd: self-test %.*s failed (the device's state is already latched)\n",
                 static_cast<int>(failed_test.size()), failed_test.data());
    return;
  }
  failed_test_ = failed_test;
  // Published after the name, so whoever sees kError finds the name set.
  state_.store(State::kError, std::memory_order_release);
  std::fprintf(stderr,
               "ihsmd: self-test %.*s failed: the device is in its error state until it restarts "
               "(only status, device report, certificates, self-test and session close answer)\n",
               static_cast<int>(failed_test.size()), failed_test.data());
}

std::string DeviceState::failed_test() const {
  std::lock_guard lock(mutex_);
  return failed_test_;
}

void DeviceState::enter_tamper_locked(std::string_view sensor) {
  std::lock_guard lock(mutex_);
  const State now = state_.load(std::memory_order_relaxed);
  if (now == State::kZeroized || now == State::kTamperLocked) return;
  reason_ = sensor;
  state_.store(State::kTamperLocked, std::memory_order_release);
  std::fprintf(stderr,
               "ihsmd: tamper (%.*s): the device is locked until it restarts (only status "
               "services answer)\n",
               static_cast<int>(sensor.size()), sensor.data());
}

void DeviceState::enter_zeroized(std::string_view reason) {
  std::lock_guard lock(mutex_);
  if (state_.load(std::memory_order_relaxed) == State::kZeroized) return;
  reason_ = reason;
  state_.store(State::kZeroized, std::memory_order_release);
}

std::string DeviceState::reason() const {
  std::lock_guard lock(mutex_);
  return reason_;
}

std::string_view DeviceState::name() const {
  switch (state()) {
    case State::kOperational:
      return "operational";
    case State::kError:
      return "error";
    case State::kZeroized:
      return "zeroized";
    case State::kTamperLocked:
      return "tamper-locked";
  }
  return "error";
}

Status DeviceState::refusal() const {
  switch (state()) {
    case State::kZeroized:
      return Status::kZeroized;
    case State::kTamperLocked:
      return Status::kTamperLocked;
    default:
      return Status::kDeviceError;
  }
}

DeviceState& device_state() {
  static DeviceState state;
  return state;
}

Status conditional_test_failed(std::string_view test) {
  device_state().enter_error(test);
  return Status::kSelfTestFailed;
}

}  // namespace ihsm::device::fips
