// Connections in, frames to the dispatcher, responses out. One thread per
// connection reads its socket; a connection that opened the shared-memory
// queue (OpenQueue) also has device workers serving the queue, which run
// its requests at the same time. Sessions die with their connection.
#pragma once

#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "device/device.h"
#include "transport/unix_socket.h"

namespace ihsm::device {

class Server {
 public:
  // `listener` is bound by the boot stage (before it drops privileges) and
  // outlives the server.
  Server(Device& device, transport::UnixSocketListener& listener)
      : device_(device), listener_(listener) {}
  // Accepts until stop(); then waits for every connection thread to end.
  void run();
  // Safe from any thread.
  void stop();

 private:
  void serve(std::shared_ptr<transport::UnixSocketChannel> channel, ConnectionId id);
  void turn_away(std::shared_ptr<transport::UnixSocketChannel> channel, ConnectionId id);
  // Starts `work` on a thread tracked under `id`; mutex_ held.
  template <typename F>
  void start_thread(ConnectionId id, F&& work);
  void finished(ConnectionId id);  // last call of every tracked thread
  void reap_finished();            // joins threads that have ended

  Device& device_;
  transport::UnixSocketListener& listener_;
  std::atomic<bool> stopping_{false};
  std::mutex mutex_;
  std::condition_variable idle_;
  std::map<ConnectionId, std::shared_ptr<transport::UnixSocketChannel>> live_;
  size_t turning_away_ = 0;
  // Threads are joined, never detached: ended ones by the accept loop, the
  // rest by run() before it returns, so nothing outlives the daemon's main.
  std::map<ConnectionId, std::thread> threads_;
  std::vector<ConnectionId> finished_;
};

}  // namespace ihsm::device
