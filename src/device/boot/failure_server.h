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

#include "device/hardening.h"
#include "transport/unix_socket.h"

namespace ihsm::device::boot {

// Serve on `listener` (bound by the boot stage) until SIGTERM/SIGINT,
// under the same system-call filter as the firmware. Return the process
// exit code.
int serve_boot_failure(transport::UnixSocketListener& listener, const std::string& socket_path,
                       hardening::State& hardening, const std::string& reason);
int serve_zeroized(transport::UnixSocketListener& listener, const std::string& socket_path,
                   hardening::State& hardening, const std::string& reason);

}  // namespace ihsm::device::boot
