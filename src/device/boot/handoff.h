// What the boot stage hands the firmware image once it has verified it
// (docs/attestation.md, "The boot stage and the firmware image"). The
// firmware never sees the device unique secret or the DeviceID private
// key: only what is derived from them for this measured image.
#pragma once

#include <functional>
#include <string>

#include "common/secret.h"
#include "device/device.h"
#include "device/hardening.h"
#include "device/state_dir.h"
#include "transport/unix_socket.h"

namespace ihsm::device {

struct BootHandoff {
  DeviceConfig config;
  unsigned socket_mode = 0666;
  StateDir state;  // opened and locked by the boot stage; outlives the firmware
  // Bound by the boot stage while it may still write the socket's folder;
  // the firmware starts listening once its system-call filter is on.
  transport::UnixSocketListener listener;
  // The measures in force (device/hardening.h); the firmware adds the filter.
  hardening::State hardening;

  // From the verified manifest.
  std::string firmware_version;
  uint32_t security_version = 0;
  uint32_t min_security_version = 0;  // the device's recorded minimum
  Bytes trusted_firmware_key;         // SPKI DER: what an update must be signed by
  Bytes measurement;                  // SHA-384 of the image bytes

  // DICE: the Alias key (PKCS#8 DER) for this measurement and the chain
  // that certifies it.
  SecretBytes alias_key_der;
  Bytes alias_cert_der;
  Bytes deviceid_cert_der;

  // The storage, masking and backup roots (docs/key-hierarchy.md).
  SecretBytes storage_key;
  SecretBytes masking_root;
  SecretBytes backup_root;

  // Raises the device's minimum security version to this image's. The
  // firmware calls it once it is up and its self-tests passed, so an
  // image that fails to start never locks out the one before it.
  std::function<Status()> commit_security_version;
};

}  // namespace ihsm::device

// The firmware image's one exported symbol. Returns the process exit code.
extern "C" int ihsm_firmware_entry(ihsm::device::BootHandoff* handoff);
