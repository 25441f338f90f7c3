// The FIPS 140-3 self-tests of the firmware (docs/security-policy.md,
// "Self-tests"): one known-answer test (cryptographic algorithm self-test)
// per approved algorithm the device uses, each through the device's own
// crypto layer (src/device/crypto) with a vector from a published source.
// They run before the device serves anything (firmware_main.cpp) and on
// demand (the SelfTest command); a failure latches the error state.
#pragma once

#include <chrono>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace ihsm::device::fips {

struct SelfTest {
  std::string_view name;       // stable: logs, GetDeviceInfo, SelfTest, IHSM_FAULT_INJECT
  std::string_view algorithm;  // what it exercises
  std::string_view source;     // where its vector is published
  // Runs the test (given its own name); true when the known answer came out.
  bool (*run)(std::string_view name);
};

// Every self-test, in the order they run.
std::span<const SelfTest> self_tests();

struct SelfTestOutcome {
  std::string_view name;
  bool passed = false;
};

struct SelfTestReport {
  std::vector<SelfTestOutcome> outcomes;  // every test, in order
  std::string first_failure;              // empty when all passed
  std::chrono::microseconds elapsed{0};
  bool passed() const { return first_failure.empty(); }
};

// Runs every self-test (also after a failure, so the report is complete);
// the first failure latches the error state (device_state()) in its name.
// Used at power-on and by the SelfTest command alike.
SelfTestReport run_power_on_self_tests();

// The conditional tests that can latch the error state at run time, by the
// name they latch it with: pairwise-consistency tests of key-pair
// generation, and the continuous test of the DRBG output.
std::span<const std::string_view> conditional_tests();

// True when the device report's signature (ECDSA P-384 over SHA-384 with
// the Alias key, its nonce from the DRBG) relies on what `failed_test`
// tests: a device failed that way does not sign reports.
bool report_signature_relies_on(std::string_view failed_test);

}  // namespace ihsm::device::fips
