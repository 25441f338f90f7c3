// What the device does when it will not run its firmware: it serves no
// keys, but still answers on its socket, so the host can see why instead
// of finding nothing there.
//   - secure boot refused the firmware: GetDeviceInfo says state
//     "boot-failed" and the reason; every other command is BOOT_FAILED;
//   - the device is zeroized (the ZEROIZED marker, fips/zeroize.h):
//     GetDeviceInfo says "zeroized" and the reason; every other command
//     is ZEROIZED, until `ihsmd --provision` makes a new device.
#pragma once

#include <string>

namespace ihsm::device::boot {

// Serve until SIGTERM/SIGINT. Return the process exit code.
int serve_boot_failure(const std::string& socket_path, unsigned mode, const std::string& reason);
int serve_zeroized(const std::string& socket_path, unsigned mode, const std::string& reason);

}  // namespace ihsm::device::boot
