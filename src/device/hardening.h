// Hardening of the ihsmd process (docs/security-policy.md, section 12):
// every measure the daemon takes against the rest of the host, in the order
// it takes them. The boot stage (boot/boot_main.cpp) runs all but the last
// before it loads the firmware image; the image installs the system-call
// filter once it is ready to serve (firmware_main.cpp).
//
//   1. close_inherited_fds       no descriptor of the starter leaks in
//   2. disable_core_dumps        PR_SET_DUMPABLE 0, RLIMIT_CORE 0
//   3. resolve_service_user      --user (default ihsm), as root only
//   4. give_state_dir_to         the state directory and its files become the user's
//   5. lock_memory               RLIMIT_MEMLOCK raised, mlockall: nothing is swapped
//   6. drop_privileges           setgroups, setresgid, setresuid; checked irreversible
//   7. forbid_new_privileges     PR_SET_NO_NEW_PRIVS 1
//   8. install_syscall_filter    the seccomp allow-list (hardening_syscalls.cpp)
//
// umask 077 and the socket's mode are set by boot_main.cpp itself.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <string>

#include "ihsm/status.h"

namespace ihsm::device::hardening {

// What is in force, for GetDeviceInfo (fields 120-124) and the log.
struct State {
  uint32_t uid = 0;  // the daemon's uid once hardened
  bool privileges_dropped = false;
  bool memory_locked = false;
  // Root that cannot raise RLIMIT_MEMLOCK keeps CAP_IPC_LOCK (and only it)
  // after the drop, so that every later mapping is locked too.
  bool keeps_ipc_lock = false;
  bool core_dumps_off = false;  // not dumpable and RLIMIT_CORE 0
  bool no_new_privs = false;
  std::atomic<bool> syscall_filter{false};  // set by the firmware once serving
};

// True in ASan/UBSan builds (the asan preset and the fuzz build): memory is
// not locked (the sanitizer's shadow maps terabytes) and the system-call
// filter only logs (the sanitizer's runtime needs ptrace and more at exit).
bool sanitizer_build();

// 1. Closes every descriptor above 2 the daemon was started with.
void close_inherited_fds();

// 2. No core file and no ptrace by same-uid processes: the process is
// marked not dumpable and its core size limit is 0. false when either fails.
bool disable_core_dumps();

struct ServiceUser {
  std::string name;
  uid_t uid = 0;
  gid_t gid = 0;
};

// 3. Looks `name` up; kInvalidArgument when the user does not exist (then
// `why` says how to create it) or has uid or gid 0.
Status resolve_service_user(const std::string& name, ServiceUser& out, std::string& why);

// Creates the missing parent folders of `path` 0755, so the service user can
// reach a state directory ihsmd itself creates (umask 077 would make them
// 0700 root).
void create_reachable_parents(const std::string& path);

// 4. Chowns `dir` and everything below it to `user` (without following
// symbolic links); modes stay as they are (0700 / 0600).
Status give_state_dir_to(const std::string& dir, const ServiceUser& user, std::string& why);

// 5. Raises RLIMIT_MEMLOCK to unlimited, then mlockall(MCL_CURRENT |
// MCL_FUTURE | MCL_ONFAULT). Root that may not raise the limit locks anyway
// and keeps CAP_IPC_LOCK alone across the drop (state.keeps_ipc_lock).
// Without root it locks only when the limit can be made unlimited (a small
// limit would make later allocations fail). Logs once when memory stays
// unlocked; never fails the start.
void lock_memory(State& state);

// 6. setgroups(0), setresgid, setresuid to `user` (which clears every
// capability, but CAP_IPC_LOCK when state.keeps_ipc_lock); then checks that
// setuid(0) fails and that every id is the user's. The parent-death signal a
// starter set survives the change (the kernel clears it).
Status drop_privileges(const ServiceUser& user, State& state, std::string& why);

// 7. PR_SET_NO_NEW_PRIVS: no exec can ever gain privileges again (and
// seccomp may be installed without CAP_SYS_ADMIN).
bool forbid_new_privileges();

// 8. The seccomp allow-list, on every thread of the process (TSYNC). A
// system call outside it is refused and the daemon stops at once with exit
// status kSyscallRefusedExit after logging its number. Sanitizer builds:
// the same filter with a logging default (the call proceeds).
inline constexpr int kSyscallRefusedExit = 159;  // 128 + SIGSYS
Status install_syscall_filter(State& state);

// Reads what the kernel says about this process (/proc/self/status,
// prctl, getrlimit) into `state`, so the report is the truth, not intent.
void refresh_from_kernel(State& state);

}  // namespace ihsm::device::hardening
