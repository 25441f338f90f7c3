// The seccomp allow-list of the serving daemon (hardening step 8): every
// system call ihsmd may make once it serves, grouped, each group with why.
// Anything else is refused and stops the daemon (exit 159, its number in the
// log): no execve, ptrace, process_vm_*, socket, connect, mount, setuid
// family, module or BPF loading, keyctl, ...
//
// To add a call: run the suite; a missing call shows as
// "ihsmd: seccomp: system call N refused" in the daemon's log.
#include <errno.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "device/hardening.h"

namespace ihsm::device::hardening {
namespace {

// Only async-signal-safe calls: log the number, then stop the process.
void on_refused_syscall(int, siginfo_t* info, void*) {
  char digits[12];
  size_t n = 0;
  unsigned number = static_cast<unsigned>(info->si_syscall);
  do {
    digits[sizeof(digits) - 1 - n++] = static_cast<char>('0' + number % 10);
    number /= 10;
  } while (number > 0 && n < sizeof(digits));
  constexpr char kHead[] = "ihsmd: seccomp: system call ";
  constexpr char kTail[] = " refused: stopping\n";
  [[maybe_unused]] ssize_t w = ::write(2, kHead, sizeof(kHead) - 1);
  w = ::write(2, digits + sizeof(digits) - n, n);
  w = ::write(2, kTail, sizeof(kTail) - 1);
  ::_exit(kSyscallRefusedExit);
}

// A condition on a call's first argument (SCMP_A0 leaves a field to
// implicit initialization, which clang warns about).
scmp_arg_cmp first_arg(scmp_compare op, scmp_datum_t a, scmp_datum_t b = 0) {
  return scmp_arg_cmp{0, op, a, b};
}

constexpr const char* kAllowed[] = {
    // Files: SQLite (objects.db and its -wal, -shm), the state files
    // (atomic replace: write temp, fsync, rename, fsync dir), FirmwareUpdate
    // (reads a folder, installs into the state directory), zeroization
    // (overwrite, fsync, unlink) and /proc/self reads of the tamper sensors.
    "openat",
    "open",
    "close",
    "read",
    "write",
    "readv",
    "writev",
    "pread64",
    "pwrite64",
    "lseek",
    "fsync",
    "fdatasync",
    "ftruncate",
    "fcntl",
    "flock",
    "fstat",
    "newfstatat",
    "stat",
    "lstat",
    "statx",
    "access",
    "faccessat",
    "faccessat2",
    "readlink",
    "readlinkat",
    "getdents64",
    "rename",
    "renameat",
    "renameat2",
    "unlink",
    "unlinkat",
    "mkdir",
    "mkdirat",
    "rmdir",
    "symlink",
    "symlinkat",
    "fchmod",
    "getcwd",
    // The accepted connections (the listener was bound before the filter):
    // accept, frames in and out, SO_PEERCRED, the receive timeout, shutdown.
    "listen",
    "accept4",
    "accept",
    "recvfrom",
    "recvmsg",
    "sendto",
    "sendmsg",
    "getsockopt",
    "setsockopt",
    "shutdown",
    "poll",
    "ppoll",
    "epoll_wait",
    "epoll_pwait",
    "epoll_ctl",
    // Memory: the allocator, thread stacks, SQLite's shared-memory index.
    "brk",
    "mmap",
    "munmap",
    "mremap",
    "mprotect",
    "madvise",
    // The shared-memory queue of a connection (OpenQueue): a sealed memfd.
    "memfd_create",
    // Threads (connection threads, the store's writer, the signal thread).
    // clone is allowed for new threads only (below); clone3 is answered
    // ENOSYS so glibc falls back to clone.
    "futex",
    "set_robust_list",
    "get_robust_list",
    "rseq",
    "set_tid_address",
    "sched_yield",
    "getcpu",  // sched_getcpu without rseq or the vDSO (the queue's spin hints)
    "sched_getaffinity",
    "getpid",
    "gettid",
    "exit",
    "exit_group",
    // Signals: the sigwait thread, SIGPIPE ignored, abort() and the
    // daemon's own SIGTERM to itself at the end of run(); glibc sets its
    // internal handlers when a first thread starts. (A new SIGSYS handler
    // cannot make a refused call run: the kernel refuses it first.)
    "rt_sigaction",
    "rt_sigprocmask",
    "rt_sigtimedwait",
    "rt_sigreturn",
    // A blocking call with a timeout (futex, poll, nanosleep) interrupted by
    // SIGSTOP and resumed by SIGCONT continues through restart_syscall.
    "restart_syscall",
    "kill",
    "tgkill",
    "tkill",
    // Time and randomness: clocks (vDSO fallback), back-off and SQLite's
    // sleeps, OpenSSL's DRBG seeding.
    "clock_gettime",
    "clock_getres",
    "gettimeofday",
    "time",
    "nanosleep",
    "clock_nanosleep",
    "getrandom",
    // Identity and limits that libc, SQLite and OpenSSL ask for.
    "getuid",
    "geteuid",
    "getgid",
    "getegid",
    "getrlimit",
    "prlimit64",
    "uname",
    "sysinfo",
};

}  // namespace

Status install_syscall_filter(State& state) {
  const bool log_only = sanitizer_build();
  if (!log_only) {
    struct sigaction action {};
    action.sa_sigaction = on_refused_syscall;
    action.sa_flags = SA_SIGINFO;
    sigemptyset(&action.sa_mask);
    if (::sigaction(SIGSYS, &action, nullptr) != 0) return Status::kInternalError;
  }
  scmp_filter_ctx ctx = ::seccomp_init(log_only ? SCMP_ACT_LOG : SCMP_ACT_TRAP);
  if (ctx == nullptr) return Status::kInternalError;
  bool good = ::seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1) == 0;
  for (const char* name : kAllowed) {
    const int number = ::seccomp_syscall_resolve_name(name);
    if (number == __NR_SCMP_ERROR) continue;  // not on this architecture
    good = good && ::seccomp_rule_add(ctx, SCMP_ACT_ALLOW, number, 0) == 0;
  }
  // Threads only: a clone without CLONE_THREAD (a fork) is refused.
  good = good && ::seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
                                    first_arg(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD)) == 0;
  good = good && ::seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0) == 0;
  // prctl only to read back what is in force (refresh_from_kernel): never
  // to make the process dumpable again or to name a ptracer.
  for (const int option : {PR_GET_DUMPABLE, PR_GET_NO_NEW_PRIVS}) {
    good =
        good && ::seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(prctl), 1,
                                   first_arg(SCMP_CMP_EQ, static_cast<scmp_datum_t>(option))) == 0;
  }
  good = good && ::seccomp_load(ctx) == 0;
  ::seccomp_release(ctx);
  if (!good) return Status::kInternalError;
  state.syscall_filter = true;
  return Status::kOk;
}

}  // namespace ihsm::device::hardening
