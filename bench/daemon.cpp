#include "daemon.h"

#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <thread>

#include "common.h"
#include "ihsm/client.h"

namespace ihsm::bench {

std::string Daemon::start(const std::string& binary) {
  char templ[] = "/tmp/ihsm-bench-XXXXXX";
  if (::mkdtemp(templ) == nullptr) die("mkdtemp failed");
  // Searchable (not listable) by others: ihsmd started as root runs as its
  // own user and reaches its state directory inside by path.
  if (::chmod(templ, 0711) != 0) die("chmod of the temporary directory failed");
  dir_ = templ;
  binary_ = binary;
  socket_ = dir_ + "/ihsmd.sock";
  log_ = dir_ + "/ihsmd.log";
  spawn();
  wait_ready(20);
  return socket_;
}

std::pair<double, double> Daemon::restart(double deadline_seconds) {
  const auto t0 = Clock::now();
  terminate();
  const auto t1 = Clock::now();
  spawn();
  wait_ready(deadline_seconds);
  const auto t2 = Clock::now();
  return {std::chrono::duration<double>(t1 - t0).count(),
          std::chrono::duration<double>(t2 - t1).count()};
}

void Daemon::stop() {
  terminate();
  if (!dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
    dir_.clear();
  }
}

void Daemon::spawn() {
  const std::string state = state_dir();
  pid_ = ::fork();
  if (pid_ < 0) die("fork failed");
  if (pid_ == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);  // never outlive the benchmark
    std::FILE* log = std::freopen(log_.c_str(), "a", stderr);
    (void)log;
    ::execl(binary_.c_str(), binary_.c_str(), "--state-dir", state.c_str(), "--socket",
            socket_.c_str(), static_cast<char*>(nullptr));
    std::fprintf(stderr, "exec %s: %s\n", binary_.c_str(), std::strerror(errno));
    std::fflush(stderr);
    ::_exit(127);
  }
}

void Daemon::wait_ready(double seconds) {
  const auto deadline = Clock::now() + std::chrono::duration<double>(seconds);
  while (Clock::now() < deadline) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      die("ihsmd (" + binary_ + ") exited during start-up:\n" + read_log());
    }
    if (auto c = Client::connect(socket_); c) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  char what[64];
  std::snprintf(what, sizeof(what), "ihsmd did not start within %.0f s:\n", seconds);
  die(what + read_log());
}

void Daemon::terminate() {
  if (pid_ > 0) {
    ::kill(pid_, SIGTERM);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }
}

std::string Daemon::read_log() const {
  std::ifstream f(log_);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

}  // namespace ihsm::bench
