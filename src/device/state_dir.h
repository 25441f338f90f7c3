// The device's non-volatile storage: a directory only ihsmd may read
// (0700, files 0600), guarded by a lock file so two daemons never share it.
// Files are replaced atomically (temp file, fsync, rename, fsync of the
// directory): a state file is never half-written.
#pragma once

#include <map>
#include <mutex>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "ihsm/status.h"
#include "ihsm/types.h"

namespace ihsm::device {

class StateDir {
 public:
  StateDir() = default;
  ~StateDir();
  StateDir(const StateDir&) = delete;
  StateDir& operator=(const StateDir&) = delete;

  // Creates the directory if needed and takes the lock. kBusy when another
  // daemon holds it.
  Status open(const std::string& path);
  const std::string& path() const { return path_; }

  bool exists(const std::string& name) const;
  // kNoSuch... is not a thing for files: a missing file is kStorageFailure.
  Status read(const std::string& name, Bytes& out, size_t max_size = 16 * 1024 * 1024) const;
  Status write_atomic(const std::string& name, std::span<const uint8_t> data) const;

  // The integrity sensor's record (fips/sensors.h): for the device's own
  // state files (boot.cbor, device.cbor, partitions.cbor) a SHA-256 of
  // what the device last read or wrote. The tracked files whose content
  // (or existence) differs from that now.
  std::vector<std::string> changed_files() const;
  // Forgets every record (zeroization destroys the files on purpose).
  void forget_tracked() const;

 private:
  Status read_untracked(const std::string& name, Bytes& out,
                        size_t max_size = 16 * 1024 * 1024) const;
  // mutex_ held: records what the device read or wrote of a tracked file.
  void note(const std::string& name, std::span<const uint8_t> data, bool wrote) const;

  std::string path_;
  int lock_fd_ = -1;
  // Held across a tracked file's write and its new hash (and across a
  // check), so the sensor never sees a file between the two.
  mutable std::mutex mutex_;
  mutable std::map<std::string, Bytes> tracked_;
  mutable std::set<std::string> changed_on_read_;
};

// The two steps of every durable write in the state directory (state
// files, the firmware install, the zeroization's overwrite and marker):
// all of `data` written (short writes and EINTR retried), and a folder's
// fsync, which makes a name created, renamed or removed in it durable.
bool write_fully(int fd, std::span<const uint8_t> data);
bool fsync_directory(const std::string& path);

// The default state directory: /var/lib/ihsm for root,
// $XDG_STATE_HOME/ihsm (or ~/.local/state/ihsm) otherwise.
std::string default_state_dir();

}  // namespace ihsm::device
