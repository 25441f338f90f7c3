// ihsmd: the boot stage. It alone holds the device unique secret: it
// verifies the firmware image (secure boot), derives the DICE identity for
// the image's measurement and hands the image only what that image may
// have (docs/attestation.md). Everything else the device does runs in the
// image, src/device outside boot/.
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>

#include "device/boot/boot_record.h"
#include "device/boot/failure_server.h"
#include "device/boot/handoff.h"
#include "device/boot/prepare.h"
#include "device/boot/secure_boot.h"
#include "device/fips/tamper.h"
#include "device/fips/zeroize.h"
#include "transport/unix_socket.h"

using namespace ihsm;
using namespace ihsm::device;

namespace {

int fail_boot(const BootHandoff& h, const std::string& why) {
  return boot::serve_boot_failure(h.config.socket_path, h.socket_mode, why);
}

}  // namespace

int main(int argc, char** argv) {
  BootHandoff h;
  DeviceConfig& config = h.config;
  config.state_dir = default_state_dir();
  config.socket_path = transport::daemon_default_socket_path();
  std::string socket_mode = "0666", firmware_dir, firmware_trust;
  std::string tamper_response;
  bool provision = false;

  CLI::App app{"ihsmd: the ihsm device daemon (runs in the foreground, logs to stderr)"};
  app.add_option("--state-dir", config.state_dir,
                 "Device state directory (provisioned on first start)")
      ->capture_default_str();
  app.add_option("--socket", config.socket_path, "Unix socket to serve")->capture_default_str();
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
  app.add_flag("--allow-wrap-and-cipher-keys", config.policy.allow_wrap_with_cipher_usage,
               "Let one key both wrap/unwrap and encrypt/decrypt (off: that combination lets a "
               "caller decrypt wrapped keys)");
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

  Status s = h.state.open(config.state_dir);
  if (s == Status::kBusy) {
    std::fprintf(stderr, "ihsmd: state %s is in use by another ihsmd\n", config.state_dir.c_str());
    return 1;
  }
  if (!ok(s)) {
    std::fprintf(stderr, "ihsmd: cannot open state %s\n", config.state_dir.c_str());
    return 1;
  }

  // A zeroized device stays zeroized across restarts: it reports that
  // state and serves nothing until the operator provisions a new device.
  if (std::string reason; fips::read_zeroized_marker(config.state_dir, reason)) {
    if (!provision) return boot::serve_zeroized(config.socket_path, h.socket_mode, reason);
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
    return fail_boot(h, "no firmware image with a manifest was found");
  }
  Bytes trust;
  const std::string trust_file =
      firmware_trust.empty() ? dir + "/" + boot::kTrustFile : firmware_trust;
  const bool trust_readable = ok(boot::read_public_key_pem(trust_file, trust));
  boot::BootRecord record;
  bool provisioned = false;
  s = boot::load_or_provision(h.state, trust, record, provisioned);
  if (!ok(s)) return fail_boot(h, "the boot record cannot be read");
  if (provisioned && !trust_readable) {
    return fail_boot(h, "no trusted firmware key to provision with (" + trust_file + ")");
  }
  if (!firmware_trust.empty() && trust_readable && trust != record.trusted_firmware_key) {
    return fail_boot(h, "--firmware-trust differs from the key fixed at provisioning");
  }

  boot::VerifiedFirmware fw;
  std::string why;
  s = boot::verify_firmware(dir, record.trusted_firmware_key, record.min_security_version, fw, why);
  if (!ok(s)) return fail_boot(h, std::string(status_name(s)) + ": " + why);
  if (provisioned) {
    std::fprintf(stderr, "ihsmd: empty state in %s: provisioning a new device\n",
                 config.state_dir.c_str());
  }
  s = boot::prepare_handoff(record, fw, h);
  if (ok(s) && provisioned) s = boot::save(h.state, record);
  if (!ok(s)) return fail_boot(h, "deriving the device identity failed");
  const uint32_t svn = fw.security_version;
  h.commit_security_version = [svn, &h]() -> Status {
    return boot::raise_min_security_version(h.state, svn);
  };
  // The image gets only what prepare_handoff derived: no copy of the
  // device unique secret stays in memory once it runs.
  record.device_unique_secret = SecretBytes();
  return boot::run_firmware(fw, h);
}
