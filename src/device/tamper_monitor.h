// The tamper monitor: one thread that drives the polled sensors
// (fips/sensors.h) and carries out a zeroization a tamper event asked for.
// Every ~20 ms: the intrusion input (poll on its FIFO), the debugger
// sensor, a pending zeroization; every integrity interval (default 10 s):
// the state files.
#pragma once

#include <atomic>
#include <string>
#include <thread>

#include "device/device.h"
#include "device/fips/sensors.h"

namespace ihsm::device {

class TamperMonitor {
 public:
  explicit TamperMonitor(Device& device) : device_(device), integrity_(device.state_dir()) {}
  ~TamperMonitor() { stop(); }
  TamperMonitor(const TamperMonitor&) = delete;
  TamperMonitor& operator=(const TamperMonitor&) = delete;

  // Creates and opens the intrusion input (before any privilege drop),
  // then starts the thread.
  Status start();
  void stop();
  const std::string& intrusion_path() const { return intrusion_path_; }

 private:
  void run();

  Device& device_;
  fips::IntrusionSensor intrusion_;
  fips::DebuggerSensor debugger_;
  fips::IntegritySensor integrity_;
  std::string intrusion_path_;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace ihsm::device
