// The on-disk half of zeroization (docs/security-policy.md, "Zeroization"):
// the device's non-volatile secrets are its state files (boot.cbor holds
// the device unique secret every key derives from; device.cbor, the
// partition records and objects.db hold keys sealed or masked under it).
// Each is overwritten in place with random bytes of its full length,
// fsync'ed and unlinked, then the directory is fsync'ed. A marker file
// says the device is zeroized, so that a restart serves that state instead
// of silently provisioning a new device.
#pragma once

#include <string>
#include <string_view>

#include "ihsm/status.h"

namespace ihsm::device::fips {

// In the state directory; holds the time and the reason, never a secret.
inline constexpr const char* kZeroizedMarker = "ZEROIZED";

// Writes (durably) the marker: first, so that a crash half-way through the
// destruction still comes back zeroized.
Status write_zeroized_marker(const std::string& state_dir, std::string_view reason);
// True when the marker exists (also when unreadable); `reason` is its reason.
bool read_zeroized_marker(const std::string& state_dir, std::string& reason);
// Removes the marker (ihsmd --provision), then fsyncs the directory.
Status remove_zeroized_marker(const std::string& state_dir);

// Overwrites, fsyncs and unlinks every regular file of the state directory
// (and of its subdirectories) except the lock file, the marker and the
// installed firmware (public, signed images). Continues past a failure and
// returns the first. `destroyed` counts the files.
Status destroy_state_files(const std::string& state_dir, size_t& destroyed);

}  // namespace ihsm::device::fips
