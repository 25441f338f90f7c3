// The tamper sensors (docs/security-policy.md, "Tamper sensors"), each
// small and separate; each turns what it sees into an event for the one
// policy (fips/tamper.h). The tamper monitor thread (src/device/
// tamper_monitor.cpp) drives the first three; the Login command the last.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "device/fips/tamper.h"
#include "device/state_dir.h"
#include "ihsm/status.h"

namespace ihsm::device::fips {

// The intrusion input, like a chassis switch the host platform drives: a
// FIFO (mode 0600) the daemon creates; any byte written to it means the
// chassis was opened (`echo 1 > /var/lib/ihsm/intrusion`).
class IntrusionSensor {
 public:
  IntrusionSensor() = default;
  ~IntrusionSensor();
  IntrusionSensor(const IntrusionSensor&) = delete;
  IntrusionSensor& operator=(const IntrusionSensor&) = delete;

  // Creates the FIFO if needed and opens it once, read-write (so it never
  // reads end-of-file when no writer is attached) and non-blocking; the
  // descriptor stays open, so the input keeps working after ihsmd drops
  // its privileges.
  Status open(const std::string& path);
  int fd() const { return fd_; }
  // Reads whatever was written; true when anything was.
  bool triggered();

 private:
  int fd_ = -1;
};

// A debugger attached to ihsmd: any thread of the process with a tracer
// (/proc/self/task/*/status TracerPid). A PTRACE_ATTACH stops every thread;
// the event is seen as soon as the debugger lets the process run again.
class DebuggerSensor {
 public:
  // True, with which thread and which tracer, when one is traced.
  bool traced(std::string& detail) const;
};

// The device's own state files (boot.cbor, device.cbor, partitions.cbor)
// changed behind its back: StateDir keeps a hash of what the device last
// read or wrote of each, and this compares the files against it.
class IntegritySensor {
 public:
  explicit IntegritySensor(const StateDir& state) : state_(state) {}
  bool changed(std::string& detail) const;

 private:
  const StateDir& state_;
};

// Failed Crypto Officer logins, counted device-wide (across partitions, so
// guessing one PIN per partition is seen too): `threshold` consecutive
// failures raise an "officer-login" event; a good officer login anywhere
// resets the count. 0 turns the sensor off. The per-partition lockout
// (--pin-max-failures) works independently of it.
class OfficerLoginSensor {
 public:
  OfficerLoginSensor(TamperPolicy& policy) : policy_(policy) {}
  void configure(uint32_t threshold) { threshold_ = threshold; }
  void failed(uint32_t partition);
  void succeeded() { failures_.store(0); }

 private:
  TamperPolicy& policy_;
  uint32_t threshold_ = 0;
  std::atomic<uint32_t> failures_{0};
};

}  // namespace ihsm::device::fips
