// Fault injection for the self-test tests, compiled only into the test
// image ihsm_firmware_faulty (CMake: IHSM_FAULT_INJECTION, never installed).
// There, IHSM_FAULT_INJECT=<name> makes the self-test or conditional test
// of that name fail: a known-answer test's expected value is corrupted, a
// pairwise-consistency test's signature or public key is corrupted
// ("pct-ec", "pct-rsa", "pct-ed25519", "pct-x25519"), or the DRBG output
// repeats a block ("rng-health").
#pragma once

#include <string_view>

namespace ihsm::device::fips {

#ifdef IHSM_FAULT_INJECTION
bool fault_injected(std::string_view name);
#else
// The production image has no hook: a constant, so every use compiles away
// (and the variable's name is not even in the image; tests check that).
constexpr bool fault_injected(std::string_view) { return false; }
#endif

}  // namespace ihsm::device::fips
