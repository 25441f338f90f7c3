// An ihsmd of the benchmark's own on a temporary state directory, stopped
// (and the directory removed) when the object goes.
#pragma once

#include <sys/types.h>

#include <string>
#include <utility>

namespace ihsm::bench {

class Daemon {
 public:
  Daemon() = default;
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;
  ~Daemon() { stop(); }

  // Starts `binary` and waits until its socket accepts; returns the socket.
  std::string start(const std::string& binary);

  // The state directory of the daemon (its objects.db lives there).
  std::string state_dir() const { return dir_ + "/state"; }
  pid_t pid() const { return pid_; }

  // SIGTERM, wait for the exit, start again on the same state directory,
  // wait until the socket accepts. Returns {stop, start} in seconds.
  std::pair<double, double> restart(double deadline_seconds);

  void stop();

 private:
  void spawn();
  void wait_ready(double seconds);  // ready when it accepts a connection
  void terminate();
  std::string read_log() const;

  pid_t pid_ = -1;
  std::string dir_;
  std::string binary_;
  std::string socket_;
  std::string log_;
};

}  // namespace ihsm::bench
