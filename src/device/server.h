// Connections in, frames to the dispatcher, responses out. One thread per
// connection; sessions die with their connection.
#pragma once

#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>

#include "device/device.h"
#include "transport/unix_socket.h"

namespace ihsm::device {

class Server {
 public:
  explicit Server(Device& device) : device_(device) {}
  Status listen(const std::string& socket_path, unsigned mode);
  // Accepts until stop(); then waits for every connection to finish.
  void run();
  // Safe from any thread.
  void stop();

 private:
  void serve(std::shared_ptr<transport::FrameChannel> channel, ConnectionId id);

  Device& device_;
  transport::UnixSocketListener listener_;
  std::atomic<bool> stopping_{false};
  std::mutex mutex_;
  std::condition_variable idle_;
  std::map<ConnectionId, std::shared_ptr<transport::FrameChannel>> live_;
};

}  // namespace ihsm::device
