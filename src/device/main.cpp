// ihsmd: the device. Everything under src/device runs only in this process.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "device/device.h"
#include "device/server.h"
#include "transport/unix_socket.h"

using namespace ihsm;

int main(int argc, char** argv) {
  device::DeviceConfig config;
  config.state_dir = device::default_state_dir();
  config.socket_path = transport::daemon_default_socket_path();
  std::string socket_mode = "0666";

  CLI::App app{"ihsmd: the ihsm device daemon (runs in the foreground, logs to stderr)"};
  app.add_option("--state-dir", config.state_dir,
                 "Device state directory (provisioned on first start)")
      ->capture_default_str();
  app.add_option("--socket", config.socket_path, "Unix socket to serve")->capture_default_str();
  app.add_option("--socket-mode", socket_mode,
                 "Socket file mode (access is decided per peer uid by the device)")
      ->capture_default_str();
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
  CLI11_PARSE(app, argc, argv);

  unsigned mode = 0;
  {
    char* end = nullptr;
    const unsigned long parsed = std::strtoul(socket_mode.c_str(), &end, 8);
    if (socket_mode.empty() || *end != '\0' || parsed > 0777) {
      std::fprintf(stderr, "ihsmd: --socket-mode must be an octal mode like 0660\n");
      return 2;
    }
    mode = static_cast<unsigned>(parsed);
  }
  ::umask(077);
  // Signals are taken by one thread with sigwait, never by a handler.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  device::Device dev;
  Status s = dev.start(config);
  if (s == Status::kBusy) {
    std::fprintf(stderr, "ihsmd: state %s is in use by another ihsmd\n", config.state_dir.c_str());
    return 1;
  }
  if (!ok(s)) {
    std::fprintf(stderr, "ihsmd: cannot start device from %s: %s\n", config.state_dir.c_str(),
                 std::string(status_name(s)).c_str());
    return 1;
  }
  device::Server server(dev);
  s = server.listen(config.socket_path, mode);
  if (s == Status::kBusy) {
    std::fprintf(stderr, "ihsmd: another daemon is serving %s\n", config.socket_path.c_str());
    return 1;
  }
  if (!ok(s)) {
    std::fprintf(stderr, "ihsmd: cannot listen on %s\n", config.socket_path.c_str());
    return 1;
  }
  std::thread signal_thread([&server, signals] {
    int sig = 0;
    sigwait(&signals, &sig);
    std::fprintf(stderr, "ihsmd: signal %d: shutting down\n", sig);
    server.stop();
  });
  const size_t partitions = dev.partitions().size();
  std::fprintf(stderr, "ihsmd: ready: serving %s (state %s, %zu partition%s)\n",
               config.socket_path.c_str(), config.state_dir.c_str(), partitions,
               partitions == 1 ? "" : "s");
  server.run();
  // If run() ended for another reason, wake the signal thread.
  ::kill(::getpid(), SIGTERM);
  signal_thread.join();
  std::fprintf(stderr, "ihsmd: stopped\n");
  return 0;
}
