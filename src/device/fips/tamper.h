// The tamper-response policy (docs/security-policy.md, "Tamper response"):
// one policy for every sensor. A sensor (fips/sensors.h) reports an event
// {sensor, detail}; the policy logs it, records it (TamperStatus,
// GetDeviceInfo) and responds as configured for that sensor:
//   zeroize: latch the zeroized state now, then destroy every key and
//            secret (Device::zeroize, run by the tamper monitor thread);
//   lock:    latch the tamper-locked state: every cryptographic and key
//            service answers TAMPER_LOCKED until ihsmd restarts.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ihsm::device::fips {

enum class TamperResponse : uint8_t { kZeroize = 1, kLock = 2 };
std::string_view response_name(TamperResponse r);

// The sensors, by the names the policy, the logs and the protocol use.
inline constexpr std::string_view kSensorIntrusion = "intrusion";
inline constexpr std::string_view kSensorDebugger = "debugger";
inline constexpr std::string_view kSensorIntegrity = "integrity";
inline constexpr std::string_view kSensorOfficerLogin = "officer-login";

struct TamperConfig {
  // Defaults: the physical and debugging attacks zeroize, the softer
  // signals (a state file changed, guessed officer PINs) lock.
  std::map<std::string, TamperResponse, std::less<>> responses = {
      {std::string(kSensorIntrusion), TamperResponse::kZeroize},
      {std::string(kSensorDebugger), TamperResponse::kZeroize},
      {std::string(kSensorIntegrity), TamperResponse::kLock},
      {std::string(kSensorOfficerLogin), TamperResponse::kLock},
  };
  // Consecutive failed Crypto Officer logins, device-wide, that raise an
  // "officer-login" event (0: the sensor is off).
  uint32_t officer_failures = 20;
  // The intrusion input FIFO; empty: <state-dir>/intrusion.
  std::string intrusion_input;
  // How often the integrity sensor re-reads the state files.
  uint32_t integrity_interval_ms = 10000;
};

// Parses "intrusion=zeroize,debugger=lock,..." into `config.responses`
// (sensors not named keep their response). False, with `why`, for an
// unknown sensor or response, a repeated sensor or a malformed item.
bool parse_tamper_responses(std::string_view text, TamperConfig& config, std::string& why);

struct TamperEvent {
  std::string sensor;
  std::string detail;
  uint64_t time = 0;  // Unix seconds
  TamperResponse response = TamperResponse::kLock;
};

class TamperPolicy {
 public:
  void configure(const TamperConfig& config);
  const TamperConfig& config() const { return config_; }  // fixed after configure()

  // The one place a tamper event is handled (every sensor calls it).
  // Safe from any thread, also inside a command: the zeroization it may
  // start runs later, outside any command (take_pending_zeroize).
  void report(std::string_view sensor, std::string_view detail);

  // Events seen since start, oldest first (at most kMaxTamperEvents; the
  // oldest are dropped beyond that).
  std::vector<TamperEvent> events() const;

  // The reason of a zeroization a tamper event asked for, once.
  std::optional<std::string> take_pending_zeroize();

  // Where each event is recorded before the response runs (the device's
  // audit log, once its store is open). Called outside the policy's lock.
  using Recorder = std::function<void(const TamperEvent&)>;
  void set_recorder(Recorder recorder);

 private:
  TamperConfig config_;
  mutable std::mutex mutex_;
  Recorder recorder_;
  std::vector<TamperEvent> events_;
  std::optional<std::string> pending_zeroize_;
};

}  // namespace ihsm::device::fips
