// What the boot stage derives for a verified image and hands over
// (docs/attestation.md, "DICE identity"; docs/key-hierarchy.md, the roots).
#pragma once

#include "device/boot/boot_record.h"
#include "device/boot/handoff.h"
#include "device/boot/secure_boot.h"

namespace ihsm::device::boot {

// Fills `h` for `fw`: the firmware fields, the Alias key and certificate
// for its measurement (and, the first time, the DeviceID certificate in
// `record`), and the storage, masking and backup roots.
Status prepare_handoff(BootRecord& record, const VerifiedFirmware& fw, BootHandoff& h);

}  // namespace ihsm::device::boot
