// A real ihsmd for integration tests: started on its own temporary state
// directory and socket, waited for until its socket accepts, stopped with
// SIGTERM at teardown (which must end in exit status 0).
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "support/util.h"

namespace ihsm::test {

inline const char* ihsmd_path() { return IHSMD_PATH; }

// True when something accepts connections on the socket.
inline bool socket_accepts(const std::string& path) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), std::min(path.size() + 1, sizeof(addr.sun_path) - 1));
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  ::close(fd);
  return ok;
}

class Daemon {
 public:
  Daemon(std::string state_dir, std::string socket, std::vector<std::string> args,
         std::string log_path)
      : state_dir_(std::move(state_dir)),
        socket_(std::move(socket)),
        args_(std::move(args)),
        log_path_(std::move(log_path)) {}
  ~Daemon() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      int status = 0;
      ::waitpid(pid_, &status, 0);
    }
  }
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  const std::string& socket() const { return socket_; }
  const std::string& state_dir() const { return state_dir_; }
  pid_t pid() const { return pid_; }
  std::vector<std::string>& args() { return args_; }
  std::string log() const { return read_file(log_path_); }

  // Spawns ihsmd and waits (up to 20 s) until its socket accepts.
  ::testing::AssertionResult start() {
    if (pid_ > 0) return ::testing::AssertionFailure() << "already running";
    std::vector<std::string> argv = {ihsmd_path(), "--state-dir", state_dir_, "--socket", socket_};
    argv.insert(argv.end(), args_.begin(), args_.end());
    std::vector<char*> cargs;
    for (auto& a : argv) cargs.push_back(a.data());
    cargs.push_back(nullptr);
    const int log_fd = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (log_fd < 0) return ::testing::AssertionFailure() << "cannot open " << log_path_;
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid < 0) {
      ::close(log_fd);
      return ::testing::AssertionFailure() << "fork: " << std::strerror(errno);
    }
    if (pid == 0) {
      // Only async-signal-safe calls until exec. If the test process dies
      // (a crash, a timeout kill), the daemon goes with it.
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(125);
      const int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
      ::dup2(null_fd, 0);
      ::dup2(log_fd, 1);
      ::dup2(log_fd, 2);
      ::execv(cargs[0], cargs.data());
      ::_exit(127);
    }
    ::close(log_fd);
    pid_ = pid;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return ::testing::AssertionFailure()
               << "ihsmd exited during start-up (status " << status << ")\n"
               << log();
      }
      if (socket_accepts(socket_)) return ::testing::AssertionSuccess();
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return ::testing::AssertionFailure() << "ihsmd did not accept on " << socket_ << "\n" << log();
  }

  // True while the process has not exited.
  bool running() {
    if (pid_ <= 0) return false;
    int status = 0;
    const pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      pid_ = -1;
      last_status_ = status;
      return false;
    }
    return true;
  }

  // SIGTERM; the daemon must exit with status 0 within 20 s.
  ::testing::AssertionResult stop() {
    if (pid_ <= 0) {
      return ::testing::AssertionFailure()
             << "ihsmd is not running (last wait status " << last_status_ << ")\n"
             << log();
    }
    ::kill(pid_, SIGTERM);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    int status = 0;
    while (std::chrono::steady_clock::now() < deadline) {
      const pid_t r = ::waitpid(pid_, &status, WNOHANG);
      if (r == pid_) {
        pid_ = -1;
        last_status_ = status;
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return ::testing::AssertionSuccess();
        return ::testing::AssertionFailure()
               << "ihsmd did not exit cleanly on SIGTERM: "
               << (WIFEXITED(status) ? "exit " + std::to_string(WEXITSTATUS(status))
                                     : "signal " + std::to_string(WTERMSIG(status)))
               << "\n"
               << log();
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    return ::testing::AssertionFailure() << "ihsmd ignored SIGTERM for 20 s\n" << log();
  }

  // SIGKILL: a crash, for tests of what survives one.
  void kill_hard() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }

 private:
  std::string state_dir_;
  std::string socket_;
  std::vector<std::string> args_;
  std::string log_path_;
  pid_t pid_ = -1;
  int last_status_ = 0;
};

// Fixture: one daemon per test. Derived fixtures change the flags by
// overriding daemon_args().
class DaemonTest : public ::testing::Test {
 protected:
  virtual std::vector<std::string> daemon_args() const { return {}; }

  void SetUp() override {
    dir_ = std::make_unique<TempDir>();
    // The socket directory must be searchable by other uids (tests that
    // drop privileges); the state directory is the daemon's own (0700).
    ::chmod(dir_->path().c_str(), 0755);
    daemon_ = std::make_unique<Daemon>(dir_->file("state"), dir_->file("sock"), daemon_args(),
                                       dir_->file("ihsmd.log"));
    ASSERT_TRUE(daemon_->start());
  }

  void TearDown() override {
    if (daemon_ && daemon_->pid() > 0) {
      EXPECT_TRUE(daemon_->stop());
    }
    if (HasFailure() && daemon_) {
      std::fprintf(stderr, "---- ihsmd log ----\n%s-------------------\n", daemon_->log().c_str());
    }
    daemon_.reset();
    dir_.reset();
  }

  // SIGTERM (checked) and start again on the same state and socket.
  ::testing::AssertionResult restart_daemon() {
    auto stopped = daemon_->stop();
    if (!stopped) return stopped;
    return daemon_->start();
  }

  const std::string& socket_path() const { return daemon_->socket(); }
  const std::string& state_dir() const { return daemon_->state_dir(); }
  Daemon& daemon() { return *daemon_; }
  const TempDir& dir() const { return *dir_; }

  std::unique_ptr<TempDir> dir_;
  std::unique_ptr<Daemon> daemon_;
};

}  // namespace ihsm::test
