// What the device does when secure boot refuses the firmware: it runs no
// firmware and serves no keys, but still answers on its socket, so the
// host can see why (GetDeviceInfo: state "boot-failed" and the reason)
// instead of finding nothing there. Every other command is BOOT_FAILED.
#pragma once

#include <string>

namespace ihsm::device::boot {

// Serves until SIGTERM/SIGINT. Returns the process exit code.
int serve_boot_failure(const std::string& socket_path, unsigned mode, const std::string& reason);

}  // namespace ihsm::device::boot
