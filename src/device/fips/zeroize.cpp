#include "device/fips/zeroize.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <ctime>
#include <filesystem>
#include <string>
#include <vector>

#include "device/crypto/backend.h"
#include "device/state_dir.h"

namespace ihsm::device::fips {
namespace {

namespace fs = std::filesystem;

constexpr const char* kLockFile = "ihsmd.lock";

// Random bytes over the whole file (its length as it is now), fsync, unlink.
Status overwrite_and_unlink(const std::string& path) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return Status::kStorageFailure;
  struct stat st {};
  bool done = ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
  std::array<uint8_t, 64 * 1024> noise{};
  for (off_t left = done ? st.st_size : 0; done && left > 0;) {
    const size_t n = static_cast<size_t>(std::min<off_t>(left, noise.size()));
    done = ok(crypto::random_bytes(std::span(noise.data(), n))) &&
           write_fully(fd, std::span(noise.data(), n));
    left -= static_cast<off_t>(n);
  }
  done = done && ::fsync(fd) == 0;
  ::close(fd);
  // Unlinked even when the overwrite failed: the name at least goes.
  const bool unlinked = ::unlink(path.c_str()) == 0;
  return done && unlinked ? Status::kOk : Status::kStorageFailure;
}

bool keep(const fs::path& entry, bool top_level) {
  const std::string name = entry.filename().string();
  if (!top_level) return false;
  // The installed firmware (the `firmware` link and its folders) is a
  // public, signed image; the lock file and the marker hold nothing; the
  // audit archives (audit-<first>-<last>.cbor) hold events and signed
  // checkpoints, never a secret, and are the record of what happened.
  const bool audit_archive = name.rfind("audit-", 0) == 0 && name.size() > 5 &&
                             name.compare(name.size() - 5, 5, ".cbor") == 0;
  return name == kLockFile || name == kZeroizedMarker || name.rfind("firmware", 0) == 0 ||
         audit_archive;
}

Status destroy_in(const std::string& dir, bool top_level, size_t& destroyed) {
  Status first = Status::kOk;
  std::error_code ec;
  std::vector<fs::path> entries;
  for (const auto& e : fs::directory_iterator(dir, ec)) entries.push_back(e.path());
  if (ec) return Status::kStorageFailure;
  for (const fs::path& path : entries) {
    if (keep(path, top_level)) continue;
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) continue;
    Status s = Status::kOk;
    if (S_ISREG(st.st_mode)) {
      s = overwrite_and_unlink(path.string());
      if (ok(s)) ++destroyed;
    } else if (S_ISDIR(st.st_mode)) {
      s = destroy_in(path.string(), false, destroyed);
    }
    // FIFOs (the intrusion input), sockets and links hold no data.
    if (ok(first) && !ok(s)) first = s;
  }
  if (!fsync_directory(dir) && ok(first)) first = Status::kStorageFailure;
  return first;
}

}  // namespace

Status write_zeroized_marker(const std::string& state_dir, std::string_view reason) {
  const std::string path = state_dir + "/" + kZeroizedMarker;
  const std::string text = "zeroized at " + std::to_string(std::time(nullptr)) +
                           " (unix time)\nreason: " + std::string(reason) + "\n";
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return Status::kStorageFailure;
  const bool written =
      write_fully(fd, std::span(reinterpret_cast<const uint8_t*>(text.data()), text.size())) &&
      ::fsync(fd) == 0;
  ::close(fd);
  return written && fsync_directory(state_dir) ? Status::kOk : Status::kStorageFailure;
}

bool read_zeroized_marker(const std::string& state_dir, std::string& reason) {
  const std::string path = state_dir + "/" + kZeroizedMarker;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return errno != ENOENT;  // present but unreadable: still zeroized
  char buf[1024];
  const ssize_t n = ::read(fd, buf, sizeof buf);
  ::close(fd);
  const std::string text(buf, n > 0 ? static_cast<size_t>(n) : 0);
  const size_t at = text.find("reason: ");
  reason = at == std::string::npos ? "" : text.substr(at + 8);
  while (!reason.empty() && (reason.back() == '\n' || reason.back() == '\r')) reason.pop_back();
  return true;
}

Status remove_zeroized_marker(const std::string& state_dir) {
  const std::string path = state_dir + "/" + kZeroizedMarker;
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) return Status::kStorageFailure;
  return fsync_directory(state_dir) ? Status::kOk : Status::kStorageFailure;
}

Status destroy_state_files(const std::string& state_dir, size_t& destroyed) {
  destroyed = 0;
  return destroy_in(state_dir, true, destroyed);
}

}  // namespace ihsm::device::fips
