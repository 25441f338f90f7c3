// Firmware update (docs/attestation.md): the owner names a folder holding
// a signed image; the device checks it exactly as secure boot will and
// installs it for the next start. The running image keeps running.
#include <fcntl.h>
#include <unistd.h>

#include <filesystem>

#include "device/boot/secure_boot.h"
#include "device/commands/commands.h"

namespace ihsm::device::commands {

using cbor::Value;
using namespace protocol;

namespace {

bool write_synced(const std::string& path, const Bytes& data) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return false;
  const bool synced = write_fully(fd, data) && ::fsync(fd) == 0;
  return ::close(fd) == 0 && synced;
}

std::string hex(const Bytes& b, size_t n) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < n && i < b.size(); ++i) {
    out.push_back(digits[b[i] >> 4]);
    out.push_back(digits[b[i] & 15]);
  }
  return out;
}

// The image and manifest go into a folder of their own; then the
// `firmware` link in the state directory is swapped to it in one rename,
// so boot sees the old pair or the new pair, never half of each.
Status install(const std::string& state_dir, const boot::VerifiedFirmware& fw,
               const Bytes& manifest) {
  namespace fs = std::filesystem;
  const std::string name =
      "firmware-" + std::to_string(fw.security_version) + "-" + hex(fw.measurement, 8);
  const std::string dir = state_dir + "/" + name;
  std::error_code ec;
  fs::remove_all(dir, ec);
  if (!fs::create_directory(dir, ec) || ec) return Status::kStorageFailure;
  if (!write_synced(dir + "/" + boot::kImageFile, fw.image) ||
      !write_synced(dir + "/" + boot::kManifestFile, manifest) || !fsync_directory(dir)) {
    return Status::kStorageFailure;
  }
  const std::string link = state_dir + "/" + boot::kInstalledDir;
  const std::string tmp = link + ".new";
  fs::remove(tmp, ec);
  std::string previous;
  if (fs::is_symlink(link, ec)) previous = fs::read_symlink(link, ec).string();
  fs::create_directory_symlink(name, tmp, ec);
  if (ec || ::rename(tmp.c_str(), link.c_str()) != 0 || !fsync_directory(state_dir)) {
    return Status::kStorageFailure;
  }
  if (!previous.empty() && previous != name) fs::remove_all(state_dir + "/" + previous, ec);
  return Status::kOk;
}

}  // namespace

Status FirmwareUpdate(CommandContext& ctx, const cbor::MapReader& in, Reply& out) {
  std::string dir;
  Status s = in.get_text(kPath, dir, 4096);
  if (!ok(s)) return s;
  Bytes manifest, image;
  std::string why;
  s = boot::read_firmware(dir, manifest, image, why);
  if (!ok(s)) return fail(out, s, why);
  const Device& d = ctx.device;
  boot::VerifiedFirmware fw;
  // An image older than the running one is refused now, not at the next
  // start: installing it would leave a device that does not boot.
  const uint32_t floor = std::max(d.min_security_version(), d.security_version());
  s = boot::verify_manifest_and_image(manifest, image, d.trusted_firmware_key(), floor, fw, why);
  if (!ok(s)) return fail(out, s, why);
  s = install(d.config().state_dir, fw, manifest);
  if (!ok(s)) return fail(out, s, "cannot install the image in the state directory");
  out.body.set(kMeasurement, Value::bytes(fw.measurement));
  out.body.set(kSecurityVersion, Value::uint(fw.security_version));
  out.body.set(kFirmwareVersion, Value::text(fw.version));
  return Status::kOk;
}

}  // namespace ihsm::device::commands
