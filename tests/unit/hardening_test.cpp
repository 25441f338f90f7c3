// The production system-call filter (src/device/hardening_syscalls.cpp),
// installed in a forked child of the test: a refused call stops the process
// with exit status 159 and names the call on stderr; what the daemon needs
// (files, threads) still works. ihsmd installs this same filter once it
// serves (tests/integration/hardening_test.cpp checks it is on there).
#include <fcntl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdio>
#include <functional>
#include <thread>

#include "device/hardening.h"

namespace ihsm::device::hardening {
namespace {

// Runs `body` in a child under the filter; the child's wait status, and its
// stderr in `err`.
int under_filter(const std::function<int()>& body, std::string& err) {
  int pipe_fds[2];
  if (::pipe(pipe_fds) != 0) return -1;
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(pipe_fds[1], 2);
    ::close(pipe_fds[0]);
    State state;
    if (!forbid_new_privileges() || !ok(install_syscall_filter(state))) ::_exit(120);
    ::_exit(body());
  }
  ::close(pipe_fds[1]);
  char buffer[512];
  for (ssize_t n; (n = ::read(pipe_fds[0], buffer, sizeof(buffer))) > 0;) err.append(buffer, n);
  ::close(pipe_fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return status;
}

class SyscallFilter : public ::testing::Test {
 protected:
  void SetUp() override {
    if (sanitizer_build()) GTEST_SKIP() << "the filter only logs in sanitizer builds";
  }
  // The child must end with exit status 159 and name `number` in its log.
  void expect_refused(const std::function<int()>& body, long number) {
    std::string err;
    const int status = under_filter(body, err);
    ASSERT_TRUE(WIFEXITED(status)) << status;
    EXPECT_EQ(WEXITSTATUS(status), kSyscallRefusedExit) << err;
    EXPECT_NE(err.find("system call " + std::to_string(number) + " refused"), std::string::npos)
        << err;
  }
};

TEST_F(SyscallFilter, WhatTheDaemonDoesStillWorks) {
  std::string err;
  const int status = under_filter(
      [] {
        char path[] = "/tmp/ihsm-filter-XXXXXX";
        const int fd = ::mkstemp(path);  // openat
        if (fd < 0 || ::write(fd, "x", 1) != 1 || ::fsync(fd) != 0) return 1;
        ::close(fd);
        if (::rename(path, (std::string(path) + ".b").c_str()) != 0) return 2;
        if (::unlink((std::string(path) + ".b").c_str()) != 0) return 3;
        int value = 0;
        std::thread worker([&value] { value = 7; });  // clone with CLONE_THREAD
        worker.join();
        return value == 7 ? 0 : 4;
      },
      err);
  ASSERT_TRUE(WIFEXITED(status)) << status << err;
  EXPECT_EQ(WEXITSTATUS(status), 0) << err;
}

TEST_F(SyscallFilter, ExecIsRefused) {
  expect_refused(
      [] {
        char* argv[] = {const_cast<char*>("/bin/true"), nullptr};
        ::execv(argv[0], argv);
        return 0;
      },
      SYS_execve);
}

TEST_F(SyscallFilter, NewSocketsAreRefused) {
  expect_refused([] { return ::socket(AF_INET, SOCK_STREAM, 0) >= 0 ? 0 : 1; }, SYS_socket);
}

TEST_F(SyscallFilter, PtraceIsRefused) {
  expect_refused([] { return static_cast<int>(::ptrace(PTRACE_TRACEME, 0, nullptr, nullptr)); },
                 SYS_ptrace);
}

TEST_F(SyscallFilter, AForkIsRefused) {
  // glibc's fork is clone without CLONE_THREAD.
  expect_refused([] { return ::fork() >= 0 ? 0 : 1; }, SYS_clone);
}

TEST_F(SyscallFilter, GainingPrivilegesIsRefused) {
  expect_refused([] { return ::setuid(0); }, SYS_setuid);
}

}  // namespace
}  // namespace ihsm::device::hardening
