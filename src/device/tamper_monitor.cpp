#include "device/tamper_monitor.h"

#include <poll.h>

#include <chrono>
#include <cstdio>

#include "device/fips/state.h"

namespace ihsm::device {

namespace {
constexpr int kPollMs = 20;
}

Status TamperMonitor::start() {
  const fips::TamperConfig& config = device_.tamper().config();
  intrusion_path_ = config.intrusion_input.empty() ? device_.state_dir().path() + "/intrusion"
                                                   : config.intrusion_input;
  const Status s = intrusion_.open(intrusion_path_);
  if (!ok(s)) {
    std::fprintf(stderr, "ihsmd: cannot create the intrusion input %s\n", intrusion_path_.c_str());
    return s;
  }
  thread_ = std::thread([this] { run(); });
  return Status::kOk;
}

void TamperMonitor::stop() {
  stopping_ = true;
  if (thread_.joinable()) thread_.join();
}

void TamperMonitor::run() {
  using Clock = std::chrono::steady_clock;
  const auto interval = std::chrono::milliseconds(device_.tamper().config().integrity_interval_ms);
  auto next_integrity = Clock::now() + interval;
  // Each sensor reports once: the policy has latched its response by then.
  bool intrusion_seen = false, debugger_seen = false, integrity_seen = false;
  while (!stopping_) {
    pollfd p{intrusion_.fd(), POLLIN, 0};
    const int ready = ::poll(&p, 1, kPollMs);
    std::string detail;
    if (ready > 0 && intrusion_.triggered() && !intrusion_seen) {
      intrusion_seen = true;
      device_.tamper().report(fips::kSensorIntrusion,
                              "intrusion input " + intrusion_path_ + " written (chassis opened)");
    }
    if (!debugger_seen && debugger_.traced(detail)) {
      debugger_seen = true;
      device_.tamper().report(fips::kSensorDebugger, detail);
    }
    if (!integrity_seen && Clock::now() >= next_integrity) {
      next_integrity = Clock::now() + interval;
      if (fips::device_state().state() != fips::State::kZeroized && integrity_.changed(detail)) {
        integrity_seen = true;
        device_.tamper().report(fips::kSensorIntegrity, detail);
      }
    }
    if (auto reason = device_.tamper().take_pending_zeroize()) device_.zeroize(*reason);
  }
}

}  // namespace ihsm::device
