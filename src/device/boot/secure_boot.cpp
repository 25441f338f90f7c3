#include "device/boot/secure_boot.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include <openssl/pem.h>

#include "common/cose.h"
#include "device/boot/handoff.h"
#include "device/crypto/algorithms.h"
#include "device/crypto/backend.h"

namespace ihsm::device::boot {
namespace {

constexpr size_t kMaxImage = 64 * 1024 * 1024;
constexpr size_t kMaxManifest = 16 * 1024;

bool read_file(const std::string& path, size_t max, Bytes& out) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return false;
  f.seekg(0, std::ios::end);
  const std::streamoff size = f.tellg();
  if (size < 0 || static_cast<uint64_t>(size) > max) return false;
  f.seekg(0);
  out.resize(static_cast<size_t>(size));
  return static_cast<bool>(f.read(reinterpret_cast<char*>(out.data()), size));
}

std::string exe_dir() {
  char buf[PATH_MAX];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return {};
  return std::filesystem::path(std::string(buf, static_cast<size_t>(n))).parent_path().string();
}

bool has_firmware(const std::string& dir) {
  std::error_code ec;
  return std::filesystem::is_regular_file(dir + "/" + kImageFile, ec) &&
         std::filesystem::is_regular_file(dir + "/" + kManifestFile, ec);
}

}  // namespace

std::vector<std::string> firmware_dirs(const std::string& given, const std::string& state_dir) {
  if (!given.empty()) return {given};
  return {state_dir + "/" + kInstalledDir, exe_dir(), IHSM_FIRMWARE_INSTALL_DIR};
}

Status find_firmware(const std::vector<std::string>& dirs, std::string& out) {
  for (const auto& d : dirs) {
    if (!d.empty() && has_firmware(d)) {
      out = d;
      return Status::kOk;
    }
  }
  return Status::kFirmwareInvalid;
}

Status read_public_key_pem(const std::string& path, Bytes& spki_der) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return Status::kFirmwareInvalid;
  EVP_PKEY* key = PEM_read_PUBKEY(f, nullptr, nullptr, nullptr);
  std::fclose(f);
  if (key == nullptr) return Status::kFirmwareInvalid;
  const Status s = crypto::public_key_der(key, spki_der);
  EVP_PKEY_free(key);
  return s;
}

Status verify_manifest_and_image(const Bytes& manifest, const Bytes& image,
                                 const Bytes& trusted_key_spki, uint32_t min_security_version,
                                 VerifiedFirmware& out, std::string& why) {
  cose::Sign1 sign1;
  cose::Manifest m;
  if (!ok(cose::decode_sign1(manifest, sign1)) || !ok(cose::decode_manifest(sign1.payload, m)) ||
      m.svn > UINT32_MAX) {
    why = "the manifest is not a COSE_Sign1 firmware manifest";
    return Status::kFirmwareInvalid;
  }
  crypto::Pkey trusted;
  if (!ok(crypto::public_key_from_der(trusted_key_spki, trusted)) ||
      !ok(cose::es384_verify(trusted.get(),
                             cose::sig_structure(cose::protected_header(), sign1.payload),
                             sign1.signature))) {
    why = "the manifest is not signed by the trusted firmware key";
    return Status::kFirmwareSignatureInvalid;
  }
  Bytes measurement;
  Status s = crypto::digest(crypto::Hash::kSha384, image, measurement);
  if (!ok(s)) return s;
  if (!constant_time_equal(measurement, m.image_digest)) {
    why = "the image's SHA-384 is not the one its manifest signs";
    return Status::kFirmwareHashMismatch;
  }
  if (m.svn < min_security_version) {
    why = "security version " + std::to_string(m.svn) + " is below the minimum " +
          std::to_string(min_security_version);
    return Status::kFirmwareRolledBack;
  }
  out.image = image;
  out.measurement = std::move(measurement);
  out.version = m.firmware_version;
  out.name = m.image_name;
  out.security_version = static_cast<uint32_t>(m.svn);
  return Status::kOk;
}

Status read_firmware(const std::string& dir, Bytes& manifest, Bytes& image, std::string& why) {
  if (!read_file(dir + "/" + kManifestFile, kMaxManifest, manifest) ||
      !read_file(dir + "/" + kImageFile, kMaxImage, image)) {
    why = "cannot read the image or manifest in " + dir;
    return Status::kFirmwareInvalid;
  }
  return Status::kOk;
}

Status verify_firmware(const std::string& dir, const Bytes& trusted_key_spki,
                       uint32_t min_security_version, VerifiedFirmware& out, std::string& why) {
  Bytes manifest, image;
  const Status s = read_firmware(dir, manifest, image, why);
  if (!ok(s)) return s;
  out.dir = dir;
  return verify_manifest_and_image(manifest, image, trusted_key_spki, min_security_version, out,
                                   why);
}

int run_firmware(const VerifiedFirmware& firmware, BootHandoff& handoff) {
  // The checked bytes go into a sealed memfd and are loaded from there: the
  // file on disk may change after the check; this copy cannot.
  const int fd = ::memfd_create("ihsm-firmware", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) {
    std::perror("ihsmd: memfd_create");
    return 1;
  }
  size_t done = 0;
  while (done < firmware.image.size()) {
    const ssize_t n = ::write(fd, firmware.image.data() + done, firmware.image.size() - done);
    if (n <= 0) {
      std::perror("ihsmd: writing the firmware image");
      return 1;
    }
    done += static_cast<size_t>(n);
  }
  if (::fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL) != 0) {
    std::perror("ihsmd: sealing the firmware image");
    return 1;
  }
  const std::string path = "/proc/self/fd/" + std::to_string(fd);
  void* image = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (image == nullptr) {
    std::fprintf(stderr, "ihsmd: cannot load the firmware image: %s\n", ::dlerror());
    return 1;
  }
  using Entry = int (*)(BootHandoff*);
  auto entry = reinterpret_cast<Entry>(::dlsym(image, "ihsm_firmware_entry"));
  if (entry == nullptr) {
    std::fprintf(stderr, "ihsmd: the firmware image has no entry point\n");
    return 1;
  }
  // Never unloaded: the image's threads and statics live until exit.
  return entry(&handoff);
}

}  // namespace ihsm::device::boot
