#include "device/fips/state.h"

#include <cstdio>

namespace ihsm::device::fips {

void DeviceState::enter_error(std::string_view failed_test) {
  std::lock_guard lock(mutex_);
  if (state_.load(std::memory_order_relaxed) == State::kError) {
    std::fprintf(stderr,
                 "ihsmd: self-test %.*s failed (the device is already in its error state)\n",
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

DeviceState& device_state() {
  static DeviceState state;
  return state;
}

Status conditional_test_failed(std::string_view test) {
  device_state().enter_error(test);
  return Status::kSelfTestFailed;
}

}  // namespace ihsm::device::fips
