#include "device/hardening.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <vector>

namespace ihsm::device::hardening {

bool sanitizer_build() {
#if defined(__SANITIZE_ADDRESS__)
  return true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
  return true;
#else
  return false;
#endif
#else
  return false;
#endif
}

void close_inherited_fds() {
  // close_range needs Linux 5.9; the loop is the fallback.
  if (::close_range(3, ~0U, 0) == 0) return;
  const long max_fd = ::sysconf(_SC_OPEN_MAX);
  for (long fd = 3; fd < (max_fd > 0 ? max_fd : 1024); ++fd) ::close(static_cast<int>(fd));
}

bool disable_core_dumps() {
  const rlimit none{0, 0};
  const bool no_core = ::setrlimit(RLIMIT_CORE, &none) == 0;
  const bool not_dumpable = ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == 0;
  return no_core && not_dumpable;
}

Status resolve_service_user(const std::string& name, ServiceUser& out, std::string& why) {
  std::vector<char> buffer(16384);
  passwd entry{};
  passwd* found = nullptr;
  const int rc = ::getpwnam_r(name.c_str(), &entry, buffer.data(), buffer.size(), &found);
  if (rc != 0 || found == nullptr) {
    why = "user '" + name +
          "' does not exist; create it with: useradd --system --no-create-home --shell "
          "/usr/sbin/nologin " +
          name + " (scripts/install-deps.sh does)";
    return Status::kInvalidArgument;
  }
  if (found->pw_uid == 0 || found->pw_gid == 0) {
    why = "user '" + name + "' has uid or gid 0: ihsmd drops to an unprivileged user";
    return Status::kInvalidArgument;
  }
  out.name = name;
  out.uid = found->pw_uid;
  out.gid = found->pw_gid;
  return Status::kOk;
}

void create_reachable_parents(const std::string& path) {
  namespace fs = std::filesystem;
  std::vector<fs::path> missing;
  std::error_code ec;
  for (fs::path p = fs::path(path).parent_path(); !p.empty() && p != p.root_path();
       p = p.parent_path()) {
    if (fs::exists(p, ec)) break;
    missing.push_back(p);
  }
  for (auto it = missing.rbegin(); it != missing.rend(); ++it) {
    // mkdir is subject to umask 077; chmod sets the mode meant.
    if (::mkdir(it->c_str(), 0755) == 0) ::chmod(it->c_str(), 0755);
  }
}

Status give_state_dir_to(const std::string& dir, const ServiceUser& user, std::string& why) {
  namespace fs = std::filesystem;
  std::error_code ec;
  auto chown_one = [&](const fs::path& p) {
    if (::lchown(p.c_str(), user.uid, user.gid) == 0) return true;
    why = "cannot give " + p.string() + " to user " + user.name + ": " + std::strerror(errno);
    return false;
  };
  if (!chown_one(dir)) return Status::kStorageFailure;
  for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (!chown_one(it->path())) return Status::kStorageFailure;
  }
  if (ec) {
    why = "cannot walk " + dir + ": " + ec.message();
    return Status::kStorageFailure;
  }
  return Status::kOk;
}

void lock_memory(State& state) {
  if (sanitizer_build()) {
    std::fprintf(stderr, "ihsmd: memory not locked: sanitizer build (its shadow memory)\n");
    return;
  }
  const bool root = ::geteuid() == 0;
  rlimit limit{};
  ::getrlimit(RLIMIT_MEMLOCK, &limit);
  if (limit.rlim_cur != RLIM_INFINITY) {
    // Raising the hard limit needs CAP_SYS_RESOURCE; the soft one may go up
    // to the hard one.
    const rlimit unlimited{RLIM_INFINITY, RLIM_INFINITY};
    if (::setrlimit(RLIMIT_MEMLOCK, &unlimited) != 0 && limit.rlim_max == RLIM_INFINITY) {
      limit.rlim_cur = RLIM_INFINITY;
      ::setrlimit(RLIMIT_MEMLOCK, &limit);
    }
    ::getrlimit(RLIMIT_MEMLOCK, &limit);
  }
  if (limit.rlim_cur != RLIM_INFINITY) {
    if (!root) {
      // With MCL_FUTURE every later mapping counts against a finite limit
      // and thread stacks or heap growth would start to fail.
      std::fprintf(stderr,
                   "ihsmd: memory NOT locked: RLIMIT_MEMLOCK is %llu bytes (raise it, e.g. "
                   "LimitMEMLOCK=infinity, or start as root)\n",
                   static_cast<unsigned long long>(limit.rlim_cur));
      return;
    }
    // Root that may not raise the limit (no CAP_SYS_RESOURCE, as in some
    // containers): CAP_IPC_LOCK lifts it instead and is kept, alone, across
    // the drop (drop_privileges).
    state.keeps_ipc_lock = true;
  }
  if (::mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) != 0) {
    std::fprintf(stderr, "ihsmd: memory NOT locked: mlockall: %s\n", std::strerror(errno));
    state.keeps_ipc_lock = false;
    return;
  }
  state.memory_locked = true;
}

namespace {

// Keeps only CAP_IPC_LOCK, permitted and effective, after the uid change
// (PR_SET_KEEPCAPS kept the permitted set through it).
bool keep_only_ipc_lock() {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2]{};
  data[CAP_TO_INDEX(CAP_IPC_LOCK)].permitted = CAP_TO_MASK(CAP_IPC_LOCK);
  data[CAP_TO_INDEX(CAP_IPC_LOCK)].effective = CAP_TO_MASK(CAP_IPC_LOCK);
  return ::syscall(SYS_capset, &header, data) == 0;
}

}  // namespace

Status drop_privileges(const ServiceUser& user, State& state, std::string& why) {
  int parent_death_signal = 0;
  ::prctl(PR_GET_PDEATHSIG, &parent_death_signal, 0, 0, 0);
  if (state.keeps_ipc_lock) {
    // Nothing but CAP_IPC_LOCK may ever come back, even through an exec.
    for (int cap = 0; cap <= CAP_LAST_CAP; ++cap) {
      if (cap != CAP_IPC_LOCK) ::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0);
    }
    ::prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0);
  }
  if (::setgroups(0, nullptr) != 0 || ::setresgid(user.gid, user.gid, user.gid) != 0 ||
      ::setresuid(user.uid, user.uid, user.uid) != 0) {
    why = std::string("cannot switch to user ") + user.name + ": " + std::strerror(errno);
    return Status::kInternalError;
  }
  if (state.keeps_ipc_lock) {
    ::prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0);
    if (!keep_only_ipc_lock()) {
      why = std::string("cannot keep CAP_IPC_LOCK alone: ") + std::strerror(errno);
      return Status::kInternalError;
    }
  }
  // The switch must be for good: no id of root is left to go back to.
  uid_t ruid = 0, euid = 0, suid = 0;
  gid_t rgid = 0, egid = 0, sgid = 0;
  ::getresuid(&ruid, &euid, &suid);
  ::getresgid(&rgid, &egid, &sgid);
  const bool all_user = ruid == user.uid && euid == user.uid && suid == user.uid &&
                        rgid == user.gid && egid == user.gid && sgid == user.gid &&
                        ::getgroups(0, nullptr) == 0;
  if (!all_user || ::setuid(0) == 0 || ::setgid(0) == 0) {
    why = "the switch to user " + user.name + " can be undone";
    return Status::kInternalError;
  }
  // A change of credentials resets both; put back what the starter set.
  ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  if (parent_death_signal != 0) ::prctl(PR_SET_PDEATHSIG, parent_death_signal, 0, 0, 0);
  state.privileges_dropped = true;
  return Status::kOk;
}

bool forbid_new_privileges() { return ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0; }

void refresh_from_kernel(State& state) {
  state.uid = static_cast<uint32_t>(::geteuid());
  rlimit core{};
  state.core_dumps_off = ::prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) == 0 &&
                         ::getrlimit(RLIMIT_CORE, &core) == 0 && core.rlim_max == 0;
  state.no_new_privs = ::prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1;
  // "Seccomp: 2" is filter mode.
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("Seccomp:", 0) == 0) {
      state.syscall_filter = line.find('2') != std::string::npos;
    }
  }
}

}  // namespace ihsm::device::hardening
