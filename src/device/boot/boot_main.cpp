// ihsmd: the boot stage. It alone holds the device unique secret: it
// verifies the firmware image (secure boot), derives the DICE identity for
// the image's measurement and hands the image only what that image may
// have (docs/attestation.md). Everything else the device does runs in the
// image, src/device outside boot/.
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstdio>
#include <cstdlib>

#include "device/boot/boot_record.h"
#include "device/boot/failure_server.h"
#include "device/boot/handoff.h"
#include "device/boot/prepare.h"
#include "device/boot/secure_boot.h"
#include "device/fips/tamper.h"
#include "device/fips/zeroize.h"
#include "device/hardening.h"
#include "transport/unix_socket.h"

using namespace ihsm;
using namespace ihsm::device;

namespace {

// Who ihsmd runs as once it serves: the --user when started as root;
// otherwise whoever started it (developer mode).
struct RunAs {
  bool drop = false;
  hardening::ServiceUser user;
};

// Hardening steps 4-7 (device/hardening.h), once everything that needs root
// is done: the state directory is the user's, memory is locked, root is
// gone for good, and no exec may gain privileges. false: do not serve.
bool harden(BootHandoff& h, const RunAs& run_as) {
  std::string why;
  if (run_as.drop && !ok(hardening::give_state_dir_to(h.config.state_dir, run_as.user, why))) {
    std::fprintf(stderr, "ihsmd: %s\n", why.c_str());
    return false;
  }
  hardening::lock_memory(h.hardening);
  if (run_as.drop) {
    if (!ok(hardening::drop_privileges(run_as.user, h.hardening, why))) {
      std::fprintf(stderr, "ihsmd: %s\n", why.c_str());
      return false;
    }
    // Everything later opens state files by path, now as the user.
    if (::access(h.config.state_dir.c_str(), R_OK | W_OK | X_OK) != 0) {
      std::fprintf(stderr,
                   "ihsmd: user %s cannot reach the state directory %s: every folder above it "
                   "must be searchable by that user (chmod o+x)\n",
                   run_as.user.name.c_str(), h.config.state_dir.c_str());
      return false;
    }
  }
  if (!hardening::forbid_new_privileges()) {
    std::fprintf(stderr, "ihsmd: cannot set no-new-privileges\n");
    return false;
  }
  hardening::refresh_from_kernel(h.hardening);
  const hardening::State& hs = h.hardening;
  std::fprintf(
      stderr, "ihsmd: hardened: uid %u%s, memory %s, core dumps %s, no-new-privs %s\n", hs.uid,
      run_as.drop ? (" (user " + run_as.user.name + ")").c_str()
                  : " (not started as root: developer mode, privileges kept)",
      !hs.memory_locked   ? "NOT locked"
      : hs.keeps_ipc_lock ? "locked (RLIMIT_MEMLOCK cannot be raised: CAP_IPC_LOCK kept, alone)"
                          : "locked",
      hs.core_dumps_off ? "off" : "ON", hs.no_new_privs ? "on" : "OFF");
  return true;
}

int fail_boot(BootHandoff& h, const RunAs& run_as, const std::string& why) {
  if (!harden(h, run_as)) return 1;
  return boot::serve_boot_failure(h.listener, h.config.socket_path, h.hardening, why);
}

}  // namespace

int main(int argc, char** argv) {
  // Hardening steps 1-2 first, before any secret exists in this process.
  hardening::close_inherited_fds();
  const bool dumps_off = hardening::disable_core_dumps();
  BootHandoff h;
  DeviceConfig& config = h.config;
  config.state_dir = default_state_dir();
  config.socket_path = transport::daemon_default_socket_path();
  std::string socket_mode = "0666", firmware_dir, firmware_trust, user_name = "ihsm";

  std::string tamper_response;
  bool provision = false;

  CLI::App app{"ihsmd: the ihsm device daemon (runs in the foreground, logs to stderr)"};
  app.add_option("--state-dir", config.state_dir,
                 "Device state directory (provisioned on first start)")
      ->capture_default_str();
  app.add_option("--socket", config.socket_path, "Unix socket to serve")->capture_default_str();
  app.add_option("--user", user_name,
                 "Unprivileged user to run as when started as root (owns the state directory)")
      ->capture_default_str();
  app.add_option("--socket-mode", socket_mode,
                 "Socket file mode (access is decided per peer uid by the device)")
      ->capture_default_str();
  app.add_option("--firmware-dir", firmware_dir,
                 "Folder with ihsm-firmware.so and its manifest (default: an installed update, "
                 "else next to ihsmd, else " IHSM_FIRMWARE_INSTALL_DIR ")");
  app.add_option("--firmware-trust", firmware_trust,
                 "PEM public key whose manifests may boot; fixed at provisioning (default: "
                 "ihsm-firmware-trust.pem next to the image)");
  app.add_option("--max-sessions", config.default_max_sessions, "Default sessions per partition")
      ->capture_default_str()
      ->check(CLI::Range(1, 4096));
  app.add_option("--max-connections", config.max_connections, "Concurrent client connections")
      ->capture_default_str()
      ->check(CLI::Range(1, 65536));
  app.add_option("--queue-depth", config.queue_depth,
                 "Requests in flight on one connection's shared-memory queue (0: no queues, "
                 "every request on the socket)")
      ->capture_default_str()
      ->check(CLI::Range(0, 64));
  app.add_option("--queue-workers", config.queue_workers,
                 "Device threads that may serve one connection's queue at once")
      ->capture_default_str()
      ->check(CLI::Range(1, 64));
  app.add_option("--frame-timeout-ms", config.frame_timeout_ms,
                 "Once a frame starts, how long the rest of it may take")
      ->capture_default_str()
      ->check(CLI::Range(10, 600000));
  app.add_option("--pin-max-failures", config.login.max_failures,
                 "Consecutive wrong PINs that lock a role")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000));
  app.add_option("--pin-backoff-ms", config.login.backoff_base_ms,
                 "First back-off wait after the free failures; doubles per failure")
      ->capture_default_str();
  app.add_option("--pin-backoff-max-ms", config.login.backoff_max_ms, "Longest back-off wait")
      ->capture_default_str();
  app.add_option("--min-pin-length", config.login.min_new_pin_length,
                 "Shortest PIN a partition role may be given (FIPS 140-3 wants at least 7, so "
                 "guessing succeeds with less than 1 in 1,000,000 per try)")
      ->capture_default_str()
      ->check(CLI::Range(4, 64));
  app.add_flag("--allow-wrap-and-cipher-keys", config.policy.allow_wrap_with_cipher_usage,
               "Let one key both wrap/unwrap and encrypt/decrypt (off: that combination lets a "
               "caller decrypt wrapped keys)");
  app.add_option("--audit-checkpoint-every", config.audit_checkpoint_every,
                 "Sign a checkpoint of the audit log every this many records")
      ->capture_default_str()
      ->check(CLI::Range(uint64_t{1}, uint64_t{1} << 32));
  app.add_option("--audit-max-records", config.audit_max_records,
                 "Live audit records before they rotate into an archive file in the state dir")
      ->capture_default_str()
      ->check(CLI::Range(uint64_t{16}, uint64_t{1} << 32));
  app.add_flag("--provision", provision,
               "Provision a new device (new device unique secret) in a state directory whose "
               "device was zeroized; without it a zeroized device only reports that state");
  CLI::Option* tamper_response_option =
      app.add_option("--tamper-response", tamper_response,
                     "Tamper response per sensor, e.g. "
                     "intrusion=zeroize,debugger=zeroize,integrity=lock,officer-login=lock (the "
                     "defaults; each response is zeroize or lock)");
  app.add_option("--tamper-officer-failures", config.tamper.officer_failures,
                 "Consecutive failed officer logins, device-wide, that are a tamper event (0: off)")
      ->capture_default_str()
      ->check(CLI::Range(0, 1000000));
  app.add_option("--intrusion-input", config.tamper.intrusion_input,
                 "FIFO the platform writes a byte to when the chassis opens (default: "
                 "<state-dir>/intrusion)");
  app.add_option("--tamper-integrity-interval-ms", config.tamper.integrity_interval_ms,
                 "How often the state files are checked against what the device last wrote")
      ->capture_default_str()
      ->check(CLI::Range(50, 3600000));
  CLI11_PARSE(app, argc, argv);

  if (std::string why; tamper_response_option->count() > 0 &&
                       !fips::parse_tamper_responses(tamper_response, config.tamper, why)) {
    std::fprintf(stderr, "ihsmd: --tamper-response: %s\n", why.c_str());
    return 2;
  }

  {
    char* end = nullptr;
    const unsigned long parsed = std::strtoul(socket_mode.c_str(), &end, 8);
    if (socket_mode.empty() || *end != '\0' || parsed > 0777) {
      std::fprintf(stderr, "ihsmd: --socket-mode must be an octal mode like 0660\n");
      return 2;
    }
    h.socket_mode = static_cast<unsigned>(parsed);
  }
  ::umask(077);
  if (!dumps_off) {
    std::fprintf(stderr, "ihsmd: cannot turn core dumps off\n");
    return 1;
  }

  RunAs run_as;
  if (::geteuid() == 0) {
    std::string why;
    if (!ok(hardening::resolve_service_user(user_name, run_as.user, why))) {
      std::fprintf(stderr, "ihsmd: %s\n", why.c_str());
      return 1;
    }
    run_as.drop = true;
    hardening::create_reachable_parents(config.state_dir);
  }

  Status s = h.state.open(config.state_dir);
  if (s == Status::kBusy) {
    std::fprintf(stderr, "ihsmd: state %s is in use by another ihsmd\n", config.state_dir.c_str());
    return 1;
  }
  if (!ok(s)) {
    std::fprintf(stderr, "ihsmd: cannot open state %s\n", config.state_dir.c_str());
    return 1;
  }
  // Bound now, while the socket's folder may still need root; clients are
  // let in only once the device serves under its system-call filter.
  s = h.listener.bind(config.socket_path, h.socket_mode);
  if (s == Status::kBusy) {
    std::fprintf(stderr, "ihsmd: another daemon is serving %s\n", config.socket_path.c_str());
    return 1;
  }
  if (!ok(s)) {
    std::fprintf(stderr, "ihsmd: cannot listen on %s\n", config.socket_path.c_str());
    return 1;
  }

  // An intrusion input outside the state directory is made now, while
  // its folder may still need root, and handed to the daemon's user (the
  // tamper monitor opens it once the image runs).
  if (const std::string& fifo = config.tamper.intrusion_input; run_as.drop && !fifo.empty()) {
    if ((::mkfifo(fifo.c_str(), 0600) != 0 && errno != EEXIST) ||
        ::lchown(fifo.c_str(), run_as.user.uid, run_as.user.gid) != 0) {
      std::fprintf(stderr, "ihsmd: cannot create the intrusion input %s\n", fifo.c_str());
      return 1;
    }
  }

  // A zeroized device stays zeroized across restarts: it reports that
  // state and serves nothing until the operator provisions a new device.
  if (std::string reason; fips::read_zeroized_marker(config.state_dir, reason)) {
    if (!provision) {
      if (!harden(h, run_as)) return 1;
      return boot::serve_zeroized(h.listener, config.socket_path, h.hardening, reason);
    }
    // Whatever a crash during the zeroization left is destroyed now.
    size_t leftovers = 0;
    if (!ok(fips::destroy_state_files(config.state_dir, leftovers)) ||
        !ok(fips::remove_zeroized_marker(config.state_dir))) {
      std::fprintf(stderr, "ihsmd: cannot clear the zeroized state in %s\n",
                   config.state_dir.c_str());
      return 1;
    }
    std::fprintf(stderr,
                 "ihsmd: --provision: the zeroized device in %s is replaced by a new one (%zu "
                 "leftover file%s destroyed)\n",
                 config.state_dir.c_str(), leftovers, leftovers == 1 ? "" : "s");
  } else if (provision && h.state.exists("boot.cbor")) {
    std::fprintf(stderr,
                 "ihsmd: --provision: %s holds a provisioned device; zeroize it first (ihsm "
                 "zeroize --yes)\n",
                 config.state_dir.c_str());
    return 2;
  }

  std::string dir;
  if (!ok(boot::find_firmware(boot::firmware_dirs(firmware_dir, config.state_dir), dir))) {
    return fail_boot(h, run_as, "no firmware image with a manifest was found");
  }
  Bytes trust;
  const std::string trust_file =
      firmware_trust.empty() ? dir + "/" + boot::kTrustFile : firmware_trust;
  const bool trust_readable = ok(boot::read_public_key_pem(trust_file, trust));
  boot::BootRecord record;
  bool provisioned = false;
  s = boot::load_or_provision(h.state, trust, record, provisioned);
  if (!ok(s)) return fail_boot(h, run_as, "the boot record cannot be read");
  if (provisioned && !trust_readable) {
    return fail_boot(h, run_as, "no trusted firmware key to provision with (" + trust_file + ")");
  }
  if (!firmware_trust.empty() && trust_readable && trust != record.trusted_firmware_key) {
    return fail_boot(h, run_as, "--firmware-trust differs from the key fixed at provisioning");
  }

  boot::VerifiedFirmware fw;
  std::string why;
  s = boot::verify_firmware(dir, record.trusted_firmware_key, record.min_security_version, fw, why);
  if (!ok(s)) return fail_boot(h, run_as, std::string(status_name(s)) + ": " + why);
  if (provisioned) {
    std::fprintf(stderr, "ihsmd: empty state in %s: provisioning a new device\n",
                 config.state_dir.c_str());
  }
  s = boot::prepare_handoff(record, fw, h);
  if (ok(s) && provisioned) s = boot::save(h.state, record);
  if (!ok(s)) return fail_boot(h, run_as, "deriving the device identity failed");
  const uint32_t svn = fw.security_version;
  h.commit_security_version = [svn, &h]() -> Status {
    return boot::raise_min_security_version(h.state, svn);
  };
  // The image gets only what prepare_handoff derived: no copy of the
  // device unique secret stays in memory once it runs.
  record.device_unique_secret = SecretBytes();
  if (!harden(h, run_as)) return 1;
  return boot::run_firmware(fw, h);
}
