// The firmware image's entry: what runs once the boot stage has verified
// this image (src/device/boot/). Everything under src/device except boot/
// is the measured image, ihsm-firmware.so.
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <thread>

#include "device/boot/handoff.h"
#include "device/device.h"
#include "device/fips/self_tests.h"
#include "device/fips/state.h"
#include "device/server.h"
#include "device/tamper_monitor.h"

using namespace ihsm;

namespace {

std::string hex_prefix(const Bytes& b, size_t n) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < b.size() && i < n; ++i) {
    out.push_back(digits[b[i] >> 4]);
    out.push_back(digits[b[i] & 15]);
  }
  return out;
}

}  // namespace

extern "C" __attribute__((visibility("default"))) int ihsm_firmware_entry(
    device::BootHandoff* boot) {
  const device::DeviceConfig config = boot->config;
  // Signals are taken by one thread with sigwait, never by a handler.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  // The power-on self-tests run first, before any algorithm is used (the
  // device's start already unseals, signs and derives). A failure latches
  // the error state: the device still starts and serves, so that a host
  // can read its state, but the gate refuses every cryptographic and key
  // service (docs/security-policy.md).
  const device::fips::SelfTestReport self_tests = device::fips::run_power_on_self_tests();
  const double self_test_ms = static_cast<double>(self_tests.elapsed.count()) / 1000.0;
  if (self_tests.passed()) {
    std::fprintf(stderr, "ihsmd: self-tests: %zu passed in %.1f ms\n", self_tests.outcomes.size(),
                 self_test_ms);
  } else {
    std::fprintf(stderr, "ihsmd: self-tests: %s FAILED (%.1f ms): entering the error state\n",
                 self_tests.first_failure.c_str(), self_test_ms);
  }

  device::Device dev;
  Status s = dev.start(*boot);
  if (!ok(s)) {
    std::fprintf(stderr, "ihsmd: cannot start device from %s: %s\n", config.state_dir.c_str(),
                 std::string(status_name(s)).c_str());
    return 1;
  }
  // The tamper sensors run from here on (the intrusion input is created
  // now, before the daemon could drop its privileges).
  device::TamperMonitor tamper_monitor(dev);
  if (!ok(s = tamper_monitor.start())) return 1;
  device::Server server(dev);
  s = server.listen(config.socket_path, boot->socket_mode);
  if (s == Status::kBusy) {
    std::fprintf(stderr, "ihsmd: another daemon is serving %s\n", config.socket_path.c_str());
    return 1;
  }
  if (!ok(s)) {
    std::fprintf(stderr, "ihsmd: cannot listen on %s\n", config.socket_path.c_str());
    return 1;
  }
  // Up, serving and self-tested: this image may now become the device's
  // minimum. An image in its error state never raises it, so the image
  // before it still boots.
  if (!device::fips::device_state().operational()) {
    std::fprintf(stderr,
                 "ihsmd: not recording security version %u as the minimum: the device is in its "
                 "error state\n",
                 dev.security_version());
  } else {
    if (boot->commit_security_version && !ok(s = boot->commit_security_version())) {
      std::fprintf(stderr, "ihsmd: cannot record the security version: %s\n",
                   std::string(status_name(s)).c_str());
      return 1;
    }
    dev.security_version_committed();
  }
  std::thread signal_thread([&server, signals] {
    int sig = 0;
    sigwait(&signals, &sig);
    std::fprintf(stderr, "ihsmd: signal %d: shutting down\n", sig);
    server.stop();
  });
  const size_t partitions = dev.partitions().size();
  const device::fips::DeviceState& state = device::fips::device_state();
  const bool operational = state.operational();
  std::fprintf(stderr,
               "ihsmd: ready: serving %s (state %s, %zu partition%s, firmware %s svn %u, "
               "measurement %s..., self-tests %.1f ms, %s)\n",
               config.socket_path.c_str(), config.state_dir.c_str(), partitions,
               partitions == 1 ? "" : "s", dev.firmware_version().c_str(), dev.security_version(),
               hex_prefix(dev.measurement(), 8).c_str(), self_test_ms,
               operational ? "operational"
               : state.state() == device::fips::State::kError
                   ? ("ERROR STATE: self-test " + state.failed_test() + " failed").c_str()
                   : (std::string(state.name()) + ": " + state.reason()).c_str());
  server.run();
  tamper_monitor.stop();
  // If run() ended for another reason, wake the signal thread.
  ::kill(::getpid(), SIGTERM);
  signal_thread.join();
  std::fprintf(stderr, "ihsmd: stopped\n");
  return 0;
}
