// The on-demand self-test (docs/security-policy.md, "Self-tests"): every
// power-on known-answer test again. A failure latches the error state; a
// device already in its error state stays there whatever the outcome.
#include "device/commands/commands.h"
#include "device/fips/self_tests.h"
#include "device/fips/state.h"

namespace ihsm::device::commands {

using cbor::Value;
using namespace protocol;

Status SelfTest(CommandContext&, const cbor::MapReader&, Reply& out) {
  const fips::SelfTestReport report = fips::run_power_on_self_tests();
  auto tests = Value::array();
  for (const auto& t : report.outcomes) {
    tests.push(Value::map().set(kName, Value::text(t.name)).set(kPassed, Value::boolean(t.passed)));
  }
  out.body.set(kSelfTests, std::move(tests));
  out.body.set(kPassed, Value::boolean(report.passed()));
  if (!report.passed()) out.body.set(kFailedTest, Value::text(report.first_failure));
  out.body.set(kElapsedUs, Value::uint(static_cast<uint64_t>(report.elapsed.count())));
  out.body.set(kState, Value::text(fips::device_state().name()));
  // The outcome is in the body: the command itself succeeded.
  return Status::kOk;
}

}  // namespace ihsm::device::commands
