// What the device does when secure boot refuses the firmware: it runs no
// firmware and serves no keys, but still answers on its socket, so the
// host can see why (GetDeviceInfo: state "boot-failed" and the reason)
// instead of finding nothing there. Every other command is BOOT_FAILED.
#pragma once

#include <string>

#include "device/hardening.h"
#include "transport/unix_socket.h"

namespace ihsm::device::boot {

// Serves on `listener` (bound by the boot stage) until SIGTERM/SIGINT,
// under the same system-call filter as the firmware. Returns the process
// exit code.
int serve_boot_failure(transport::UnixSocketListener& listener, const std::string& socket_path,
                       hardening::State& hardening, const std::string& reason);

}  // namespace ihsm::device::boot
