#include "device/fips/tamper.h"

#include <cstdio>
#include <ctime>
#include <set>

#include "device/fips/state.h"
#include "protocol/fields.h"

namespace ihsm::device::fips {

std::string_view response_name(TamperResponse r) {
  return r == TamperResponse::kZeroize ? "zeroize" : "lock";
}

bool parse_tamper_responses(std::string_view text, TamperConfig& config, std::string& why) {
  std::set<std::string, std::less<>> seen;
  auto responses = config.responses;
  while (!text.empty()) {
    const size_t comma = text.find(',');
    const std::string_view item = text.substr(0, comma);
    text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
    if (comma != std::string_view::npos && text.empty()) {
      why = "trailing comma";
      return false;
    }
    const size_t eq = item.find('=');
    if (eq == std::string_view::npos) {
      why = "'" + std::string(item) + "' is not sensor=response";
      return false;
    }
    const std::string_view sensor = item.substr(0, eq), response = item.substr(eq + 1);
    const auto it = responses.find(sensor);
    if (it == responses.end()) {
      why = "unknown sensor '" + std::string(sensor) +
            "' (intrusion, debugger, integrity, officer-login)";
      return false;
    }
    if (!seen.insert(std::string(sensor)).second) {
      why = "sensor '" + std::string(sensor) + "' named twice";
      return false;
    }
    if (response == "zeroize") {
      it->second = TamperResponse::kZeroize;
    } else if (response == "lock") {
      it->second = TamperResponse::kLock;
    } else {
      why = "unknown response '" + std::string(response) + "' (zeroize or lock)";
      return false;
    }
  }
  if (seen.empty()) {
    why = "empty policy";
    return false;
  }
  config.responses = std::move(responses);
  return true;
}

void TamperPolicy::configure(const TamperConfig& config) { config_ = config; }

void TamperPolicy::report(std::string_view sensor, std::string_view detail) {
  const auto it = config_.responses.find(sensor);
  // A sensor without a configured response is treated as the hard case.
  const TamperResponse response =
      it == config_.responses.end() ? TamperResponse::kZeroize : it->second;
  const TamperEvent event{std::string(sensor), std::string(detail),
                          static_cast<uint64_t>(std::time(nullptr)), response};
  Recorder recorder;
  {
    std::lock_guard lock(mutex_);
    if (events_.size() >= protocol::kMaxTamperEvents) events_.erase(events_.begin());
    events_.push_back(event);
    recorder = recorder_;
  }
  // The event first, then the response.
  std::fprintf(stderr, "ihsmd: TAMPER: sensor %.*s: %.*s; response: %.*s\n",
               static_cast<int>(sensor.size()), sensor.data(), static_cast<int>(detail.size()),
               detail.data(), static_cast<int>(response_name(response).size()),
               response_name(response).data());
  // Recorded (durably, in the audit log) before the response destroys it.
  if (recorder) recorder(event);
  if (response == TamperResponse::kLock) {
    device_state().enter_tamper_locked(sensor);
    return;
  }
  // Nothing is served from this instant; the destruction itself runs on
  // the tamper monitor thread (a sensor may report from inside a command,
  // which zeroization must wait for).
  const std::string reason = "tamper: " + std::string(sensor);
  device_state().enter_zeroized(reason);
  std::lock_guard lock(mutex_);
  if (!pending_zeroize_) pending_zeroize_ = reason;
}

void TamperPolicy::set_recorder(Recorder recorder) {
  std::lock_guard lock(mutex_);
  recorder_ = std::move(recorder);
}

std::vector<TamperEvent> TamperPolicy::events() const {
  std::lock_guard lock(mutex_);
  return events_;
}

std::optional<std::string> TamperPolicy::take_pending_zeroize() {
  std::lock_guard lock(mutex_);
  std::optional<std::string> out;
  out.swap(pending_zeroize_);
  return out;
}

}  // namespace ihsm::device::fips
