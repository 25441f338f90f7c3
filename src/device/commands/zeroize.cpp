// Zeroization and tamper status (docs/security-policy.md, "Zeroization",
// "Tamper response"). Both are the device owner's: the owner is the
// device's Crypto Officer; a partition's Officer has PartitionReset for its
// own partition only.
#include "device/commands/commands.h"
#include "device/fips/state.h"

namespace ihsm::device::commands {

using cbor::Value;
using namespace protocol;

cbor::Value tamper_events_to_cbor(const Device& device, bool with_detail) {
  auto events = Value::array();
  for (const auto& e : device.tamper().events()) {
    auto m = Value::map()
                 .set(kSensor, Value::text(e.sensor))
                 .set(kTime, Value::uint(e.time))
                 .set(kResponse, Value::text(fips::response_name(e.response)));
    if (with_detail) m.set(kMessage, Value::text(e.detail));
    events.push(std::move(m));
  }
  return events;
}

Status Zeroize(CommandContext& ctx, const cbor::MapReader& in, Reply& out) {
  std::string reason;
  if (in.has(kReason)) {
    const Status s = in.get_text(kReason, reason, kMaxReason);
    if (!ok(s)) return s;
  }
  reason = "zeroize command from uid " + std::to_string(ctx.connection.peer.uid) +
           (reason.empty() ? "" : ": " + reason);
  const Status s = ctx.device.zeroize(reason);
  if (!ok(s)) return fail(out, s, "a state file could not be destroyed (see the daemon log)");
  out.body.set(kState, Value::text(fips::device_state().name()));
  out.body.set(kReason, Value::text(fips::device_state().reason()));
  return Status::kOk;
}

Status TamperStatus(CommandContext& ctx, const cbor::MapReader&, Reply& out) {
  const fips::TamperConfig& config = ctx.device.tamper().config();
  out.body.set(kState, Value::text(fips::device_state().name()));
  out.body.set(kTamperEvents, tamper_events_to_cbor(ctx.device, true));
  auto responses = Value::array();
  for (const auto& [sensor, response] : config.responses) {
    responses.push(Value::map()
                       .set(kSensor, Value::text(sensor))
                       .set(kResponse, Value::text(fips::response_name(response))));
  }
  out.body.set(kTamperPolicy, std::move(responses));
  return Status::kOk;
}

}  // namespace ihsm::device::commands
