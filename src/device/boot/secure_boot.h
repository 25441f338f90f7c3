// Secure boot (docs/attestation.md): find the firmware image and its
// manifest, check the manifest's signature against the trusted firmware
// key, the image against the manifest and the security version against the
// device's minimum, then load exactly the bytes that were checked.
#pragma once

#include <string>
#include <vector>

#include "ihsm/status.h"
#include "ihsm/types.h"

namespace ihsm::device {
struct BootHandoff;
}

namespace ihsm::device::boot {

inline constexpr const char* kImageFile = "ihsm-firmware.so";
inline constexpr const char* kManifestFile = "ihsm-firmware.manifest";
inline constexpr const char* kTrustFile = "ihsm-firmware-trust.pem";
// An update installed by FirmwareUpdate: this folder of the state directory.
inline constexpr const char* kInstalledDir = "firmware";

struct VerifiedFirmware {
  std::string dir;    // where it was found
  Bytes image;        // the bytes checked, the only ones ever loaded
  Bytes measurement;  // SHA-384 of image
  std::string version;
  std::string name;
  uint32_t security_version = 0;
};

// Folders that may hold the firmware, most preferred first: the one given
// on the command line, else an installed update in the state directory,
// then the folder of the ihsmd executable, then the installed default.
std::vector<std::string> firmware_dirs(const std::string& given, const std::string& state_dir);
// The first of `dirs` holding an image and a manifest; kFirmwareInvalid.
Status find_firmware(const std::vector<std::string>& dirs, std::string& out);

// The SPKI DER of a PEM public key file.
Status read_public_key_pem(const std::string& path, Bytes& spki_der);

// Reads the manifest and image in `dir` (bounded sizes); kFirmwareInvalid.
Status read_firmware(const std::string& dir, Bytes& manifest, Bytes& image, std::string& why);

// Checks manifest and image; `why` says what failed. kFirmwareInvalid,
// kFirmwareSignatureInvalid, kFirmwareHashMismatch, kFirmwareRolledBack.
Status verify_firmware(const std::string& dir, const Bytes& trusted_key_spki,
                       uint32_t min_security_version, VerifiedFirmware& out, std::string& why);

// The same checks for an update handed to a running device, from memory.
Status verify_manifest_and_image(const Bytes& manifest, const Bytes& image,
                                 const Bytes& trusted_key_spki, uint32_t min_security_version,
                                 VerifiedFirmware& out, std::string& why);

// Maps the checked bytes from a sealed memfd and runs the image's entry
// with `handoff`; returns its exit code (or 1 when it cannot be loaded).
int run_firmware(const VerifiedFirmware& firmware, BootHandoff& handoff);

}  // namespace ihsm::device::boot
