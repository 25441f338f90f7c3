#include "device/fips/sensors.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

namespace ihsm::device::fips {

IntrusionSensor::~IntrusionSensor() {
  if (fd_ >= 0) ::close(fd_);
}

Status IntrusionSensor::open(const std::string& path) {
  if (::mkfifo(path.c_str(), 0600) != 0 && errno != EEXIST) return Status::kStorageFailure;
  const int fd = ::open(path.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return Status::kStorageFailure;
  struct stat st {};
  // Only a FIFO: a regular file of that name would read as a constant event.
  if (::fstat(fd, &st) != 0 || !S_ISFIFO(st.st_mode) || ::fchmod(fd, 0600) != 0) {
    ::close(fd);
    return Status::kStorageFailure;
  }
  fd_ = fd;
  return Status::kOk;
}

bool IntrusionSensor::triggered() {
  if (fd_ < 0) return false;
  bool any = false;
  char buf[256];
  for (;;) {
    const ssize_t n = ::read(fd_, buf, sizeof buf);
    if (n > 0) {
      any = true;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    return any;  // EAGAIN: drained
  }
}

bool DebuggerSensor::traced(std::string& detail) const {
  // Plain syscalls, no streams: this runs every 20 ms for every thread.
  DIR* tasks = ::opendir("/proc/self/task");
  if (tasks == nullptr) return false;
  bool found = false;
  while (const dirent* task = ::readdir(tasks)) {
    if (task->d_name[0] == '.') continue;
    const std::string path = std::string("/proc/self/task/") + task->d_name + "/status";
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;  // the thread ended meanwhile
    char buf[4096];
    const ssize_t n = ::read(fd, buf, sizeof buf - 1);
    ::close(fd);
    if (n <= 0) continue;
    buf[n] = '\0';
    const char* line = std::strstr(buf, "\nTracerPid:");
    if (line == nullptr) continue;
    const long tracer = std::strtol(line + 11, nullptr, 10);
    if (tracer != 0) {
      detail = std::string("thread ") + task->d_name + " traced by pid " + std::to_string(tracer);
      found = true;
      break;
    }
  }
  ::closedir(tasks);
  return found;
}

bool IntegritySensor::changed(std::string& detail) const {
  const std::vector<std::string> files = state_.changed_files();
  if (files.empty()) return false;
  detail = "state file changed outside the device:";
  for (const auto& f : files) detail += " " + f;
  return true;
}

void OfficerLoginSensor::failed(uint32_t partition) {
  if (threshold_ == 0) return;
  const uint32_t n = failures_.fetch_add(1) + 1;
  if (n != threshold_) return;  // one event per run of failures
  policy_.report(kSensorOfficerLogin, std::to_string(n) +
                                          " consecutive failed officer logins (last on partition " +
                                          std::to_string(partition) + ")");
}

}  // namespace ihsm::device::fips
