#include "device/state_dir.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "device/crypto/algorithms.h"

namespace ihsm::device {
namespace {

bool is_tracked(const std::string& name) {
  return name == "boot.cbor" || name == "device.cbor" || name == "partitions.cbor";
}

}  // namespace

void StateDir::note(const std::string& name, std::span<const uint8_t> data, bool wrote) const {
  if (!is_tracked(name)) return;
  Bytes digest;
  if (!ok(crypto::digest(crypto::Hash::kSha256, data, digest))) return;
  const auto it = tracked_.find(name);
  // A read of a file the device knows must find what it last wrote or
  // read; one that differs is a change, not a new baseline.
  if (!wrote && it != tracked_.end() && it->second != digest) {
    changed_on_read_.insert(name);
    return;
  }
  tracked_[name] = std::move(digest);
}

std::vector<std::string> StateDir::changed_files() const {
  std::lock_guard lock(mutex_);
  std::vector<std::string> changed(changed_on_read_.begin(), changed_on_read_.end());
  for (const auto& [name, expected] : tracked_) {
    if (changed_on_read_.count(name) != 0) continue;
    Bytes now, digest;
    // A file that vanished or cannot be read has changed too.
    if (!ok(read_untracked(name, now)) || !ok(crypto::digest(crypto::Hash::kSha256, now, digest)) ||
        digest != expected) {
      changed.push_back(name);
    }
  }
  return changed;
}

void StateDir::forget_tracked() const {
  std::lock_guard lock(mutex_);
  tracked_.clear();
  changed_on_read_.clear();
}

StateDir::~StateDir() {
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

Status StateDir::open(const std::string& path) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) return Status::kStorageFailure;
  if (::chmod(path.c_str(), 0700) != 0) return Status::kStorageFailure;
  path_ = path;
  const std::string lock = path_ + "/ihsmd.lock";
  lock_fd_ = ::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lock_fd_ < 0) return Status::kStorageFailure;
  if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    ::close(lock_fd_);
    lock_fd_ = -1;
    return Status::kBusy;
  }
  return Status::kOk;
}

bool StateDir::exists(const std::string& name) const {
  struct stat st {};
  return ::stat((path_ + "/" + name).c_str(), &st) == 0;
}

Status StateDir::read(const std::string& name, Bytes& out, size_t max_size) const {
  std::lock_guard lock(mutex_);
  const Status s = read_untracked(name, out, max_size);
  if (ok(s)) note(name, out, false);
  return s;
}

Status StateDir::read_untracked(const std::string& name, Bytes& out, size_t max_size) const {
  const std::string file = path_ + "/" + name;
  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return Status::kStorageFailure;
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || static_cast<size_t>(st.st_size) > max_size) {
    ::close(fd);
    return Status::kStorageFailure;
  }
  out.resize(static_cast<size_t>(st.st_size));
  size_t done = 0;
  while (done < out.size()) {
    const ssize_t r = ::read(fd, out.data() + done, out.size() - done);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      ::close(fd);
      return Status::kStorageFailure;
    }
    done += static_cast<size_t>(r);
  }
  ::close(fd);
  return Status::kOk;
}

Status StateDir::write_atomic(const std::string& name, std::span<const uint8_t> data) const {
  std::lock_guard lock(mutex_);
  const std::string final_path = path_ + "/" + name;
  const std::string temp_path = final_path + ".tmp";
  const int fd =
      ::open(temp_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return Status::kStorageFailure;
  const bool written = write_fully(fd, data) && ::fsync(fd) == 0;
  if (::close(fd) != 0 || !written || ::rename(temp_path.c_str(), final_path.c_str()) != 0) {
    ::unlink(temp_path.c_str());
    return Status::kStorageFailure;
  }
  const bool synced = fsync_directory(path_);
  note(name, data, true);
  return synced ? Status::kOk : Status::kStorageFailure;
}

bool write_fully(int fd, std::span<const uint8_t> data) {
  const uint8_t* p = data.data();
  size_t n = data.size();
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

bool fsync_directory(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool synced = ::fsync(fd) == 0;
  ::close(fd);
  return synced;
}

std::string default_state_dir() {
  if (::getuid() == 0) return "/var/lib/ihsm";
  if (const char* s = std::getenv("XDG_STATE_HOME"); s != nullptr && s[0] == '/') {
    return std::string(s) + "/ihsm";
  }
  const char* home = std::getenv("HOME");
  return std::string(home != nullptr ? home : "/tmp") + "/.local/state/ihsm";
}

}  // namespace ihsm::device
