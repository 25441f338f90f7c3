// The firmware image's entry: what runs once the boot stage has verified
// this image (src/device/boot/). Everything under src/device except boot/
// is the measured image, ihsm-firmware.so.
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <thread>

#include "common/cbor.h"
#include "device/boot/handoff.h"
#include "device/device.h"
#include "device/fips/self_tests.h"
#include "device/fips/state.h"
#include "device/hardening.h"
#include "device/server.h"
#include "device/tamper_monitor.h"
#include "protocol/fields.h"

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
  // The first records of this run: the boot with what was measured, then
  // the power-on self-tests' outcome (docs/security-policy.md, "Audit log").
  {
    // Durable: a start is rare, and its records must be there before the
    // first command's.
    device::AuditEvent boot_event;
    boot_event.event = "boot";
    boot_event.durable = true;
    boot_event.detail.set(protocol::kFirmwareVersion, cbor::Value::text(dev.firmware_version()))
        .set(protocol::kSecurityVersion, cbor::Value::uint(dev.security_version()))
        .set(protocol::kMinSecurityVersion, cbor::Value::uint(dev.min_security_version()))
        .set(protocol::kMeasurement, cbor::Value::bytes(dev.measurement()));
    device::AuditEvent self_test_event;
    self_test_event.event = "self-test";
    self_test_event.durable = true;
    self_test_event.status = self_tests.passed() ? Status::kOk : Status::kSelfTestFailed;
    self_test_event.detail.set(protocol::kPassed, cbor::Value::boolean(self_tests.passed()))
        .set(protocol::kCount, cbor::Value::uint(self_tests.outcomes.size()))
        .set(protocol::kElapsedUs,
             cbor::Value::uint(static_cast<uint64_t>(self_tests.elapsed.count())));
    if (!self_tests.passed()) {
      self_test_event.detail.set(protocol::kFailedTest,
                                 cbor::Value::text(self_tests.first_failure));
    }
    for (device::AuditEvent* e : {&boot_event, &self_test_event}) {
      if (!ok(s = dev.audit(std::move(*e)))) {
        std::fprintf(stderr, "ihsmd: cannot write the audit log: %s\n",
                     std::string(status_name(s)).c_str());
        // A device tamper-locked at load (its partition records fail to
        // authenticate) starts without its store, to report that state.
        if (device::fips::device_state().operational()) return 1;
      }
    }
  }
  // The tamper sensors run from here on (the intrusion input is created
  // now, in the state directory the daemon's user owns).
  device::TamperMonitor tamper_monitor(dev);
  if (!ok(s = tamper_monitor.start())) return 1;
  device::Server server(dev, boot->listener);
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
  // Hardening step 8: every thread that exists now, and every one started
  // later, may make only the system calls of the allow-list
  // (device/hardening_syscalls.cpp). Only then are clients let in.
  if (!ok(s = device::hardening::install_syscall_filter(boot->hardening))) {
    std::fprintf(stderr, "ihsmd: cannot install the system-call filter\n");
    ::kill(::getpid(), SIGTERM);
    signal_thread.join();
    return 1;
  }
  device::hardening::refresh_from_kernel(boot->hardening);
  if (!ok(boot->listener.start_listening())) {
    std::fprintf(stderr, "ihsmd: cannot listen on %s\n", config.socket_path.c_str());
    ::kill(::getpid(), SIGTERM);
    signal_thread.join();
    return 1;
  }
  const size_t partitions = dev.partitions().size();
  const device::fips::DeviceState& state = device::fips::device_state();
  const bool operational = state.operational();
  std::fprintf(stderr,
               "ihsmd: ready: serving %s (state %s, %zu partition%s, firmware %s svn %u, "
               "measurement %s..., self-tests %.1f ms, %s, seccomp %s)\n",
               config.socket_path.c_str(), config.state_dir.c_str(), partitions,
               partitions == 1 ? "" : "s", dev.firmware_version().c_str(), dev.security_version(),
               hex_prefix(dev.measurement(), 8).c_str(), self_test_ms,
               operational ? "operational"
               : state.state() == device::fips::State::kError
                   ? ("ERROR STATE: self-test " + state.failed_test() + " failed").c_str()
                   : (std::string(state.name()) + ": " + state.reason()).c_str(),
               device::hardening::sanitizer_build() ? "log-only (sanitizer build)" : "enforcing");
  server.run();
  tamper_monitor.stop();
  // A clean stop leaves a signed head: records cut off the end while the
  // device is down are then missing below a checkpoint.
  device::AuditEvent stop_event;
  stop_event.event = "shutdown";
  stop_event.durable = true;
  (void)dev.audit(std::move(stop_event));
  device::store::AuditHead head;
  (void)dev.audit_checkpoint(false, head);
  // If run() ended for another reason, wake the signal thread.
  ::kill(::getpid(), SIGTERM);
  signal_thread.join();
  std::fprintf(stderr, "ihsmd: stopped\n");
  return 0;
}
