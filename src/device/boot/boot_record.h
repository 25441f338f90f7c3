// The boot stage's own state: boot.cbor in the state directory, read and
// written only before the firmware runs (docs/attestation.md).
#pragma once

#include <cstdint>

#include "common/secret.h"
#include "device/state_dir.h"
#include "ihsm/status.h"
#include "ihsm/types.h"

namespace ihsm::device::boot {

struct BootRecord {
  SecretBytes device_unique_secret;  // 32 bytes, the root of every device key
  Bytes trusted_firmware_key;        // SPKI DER: the only key whose manifests boot
  uint32_t min_security_version = 0;
  Bytes deviceid_cert;  // made once, at provisioning
};

// Reads boot.cbor. Without one the device is provisioned: a new device
// unique secret (or, for a state directory from before the boot stage,
// the one in device.cbor), `trusted_key` as the firmware trust anchor.
// `provisioned` tells which happened.
Status load_or_provision(const StateDir& state, const Bytes& trusted_key, BootRecord& out,
                         bool& provisioned);
Status save(const StateDir& state, const BootRecord& record);
// Raises the recorded minimum security version to `svn` (never lowers it):
// reads boot.cbor again, so the caller need not keep the secret in memory.
Status raise_min_security_version(const StateDir& state, uint32_t svn);

}  // namespace ihsm::device::boot
