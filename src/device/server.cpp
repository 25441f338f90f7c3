#include "device/server.h"

#include <algorithm>
#include <cstdio>
#include <functional>

#include "device/dispatch.h"
#include "transport/shm_queue.h"

namespace ihsm::device {

namespace {
constexpr size_t kMaxTurningAway = 8;

// One connection's shared-memory queue and the device workers serving it,
// all started with the queue (an idle one sleeps on a futex and costs only
// its stack), so a second request in flight never waits for a thread to be
// made. Destruction stops and joins them.
class QueueService {
 public:
  QueueService(Device& device, ConnectionState& connection,
               std::unique_ptr<transport::QueueServer> queue, uint32_t workers,
               std::function<void()> on_broken)
      : device_(device),
        connection_(connection),
        queue_(std::move(queue)),
        on_broken_(std::move(on_broken)) {
    const uint32_t n = std::clamp<uint32_t>(workers, 1, queue_->depth());
    for (uint32_t i = 0; i < n; ++i) workers_.emplace_back([this] { work(); });
  }
  ~QueueService() {
    queue_->stop();
    for (auto& t : workers_) t.join();
  }
  QueueService(const QueueService&) = delete;
  QueueService& operator=(const QueueService&) = delete;
  // The client has the memfd: the device keeps only its mapping.
  void memfd_sent() { queue_->close_fd(); }

 private:
  void work() {
    protocol::Frame frame;  // its body keeps its capacity from request to request
    for (;;) {
      Status header_status = Status::kOk;
      const uint32_t slot = queue_->take(frame, header_status);
      if (slot == UINT32_MAX) break;
      DispatchResult r;
      if (!ok(header_status)) {
        r = error_response(frame.header, header_status);
      } else if (frame.header.opcode == static_cast<uint16_t>(protocol::Opcode::kOpenQueue)) {
        r = error_response(frame.header, Status::kInvalidArgument,
                           "OpenQueue is answered on the socket only");
      } else {
        r = dispatch(device_, connection_, frame.header, frame.body);
      }
      queue_->complete(slot, r.header, r.body);
    }
    // The client wrote an impossible ring position: nothing more it puts
    // in the queue can be trusted, so the connection ends.
    if (!queue_->stopped()) on_broken_();
  }

  Device& device_;
  ConnectionState& connection_;
  std::unique_ptr<transport::QueueServer> queue_;
  std::function<void()> on_broken_;
  std::vector<std::thread> workers_;  // written only by the constructor
};

}  // namespace

template <typename F>
void Server::start_thread(ConnectionId id, F&& work) {
  threads_.emplace(id, std::thread([this, id, work = std::forward<F>(work)]() mutable {
                     work();
                     finished(id);
                   }));
}

void Server::finished(ConnectionId id) {
  std::lock_guard lock(mutex_);
  finished_.push_back(id);
  idle_.notify_all();
}

void Server::reap_finished() {
  std::vector<std::thread> done;
  {
    std::lock_guard lock(mutex_);
    for (const ConnectionId id : finished_) {
      const auto it = threads_.find(id);
      if (it == threads_.end()) continue;
      done.push_back(std::move(it->second));
      threads_.erase(it);
    }
    finished_.clear();
  }
  for (auto& t : done) t.join();  // they have returned from their work: quick
}

void Server::run() {
  while (!stopping_) {
    std::unique_ptr<transport::UnixSocketChannel> accepted = listener_.accept();
    if (!accepted) break;
    reap_finished();
    accepted->set_frame_deadline(std::chrono::milliseconds(device_.config().frame_timeout_ms));
    std::shared_ptr<transport::UnixSocketChannel> channel = std::move(accepted);
    const ConnectionId id = device_.next_connection_id();
    std::lock_guard lock(mutex_);
    if (stopping_) break;
    if (live_.size() < device_.config().max_connections) {
      live_.emplace(id, channel);
      start_thread(id, [this, channel, id] { serve(channel, id); });
    } else if (turning_away_ < kMaxTurningAway) {
      ++turning_away_;
      start_thread(id, [this, channel, id] { turn_away(channel, id); });
    }
    // Beyond that the connection is simply closed.
  }
  stop();
  std::map<ConnectionId, std::thread> remaining;
  {
    std::unique_lock lock(mutex_);
    idle_.wait(lock, [this] { return finished_.size() == threads_.size(); });
    remaining.swap(threads_);
    finished_.clear();
  }
  for (auto& [id, t] : remaining) t.join();
}

void Server::stop() {
  stopping_ = true;
  listener_.close();
  std::lock_guard lock(mutex_);
  for (auto& [id, channel] : live_) channel->shutdown();
}

void Server::serve(std::shared_ptr<transport::UnixSocketChannel> channel, ConnectionId id) {
  ConnectionState connection;
  connection.id = id;
  connection.peer = channel->peer();
  std::unique_ptr<QueueService> queue;  // ends before the connection's sessions
  protocol::Frame frame;
  while (!stopping_) {
    const Status s = channel->receive(frame);
    if (s == Status::kTransportError) break;
    if (!ok(s)) {
      // The header cannot be trusted, so neither can the stream after it.
      const DispatchResult r = error_response(frame.header, s);
      channel->send(r.header, r.body);
      break;
    }
    DispatchResult r = dispatch(device_, connection, frame.header, frame.body);
    if (r.open_queue) {
      std::unique_ptr<transport::QueueServer> memory;
      const Status made =
          queue ? Status::kInvalidArgument
                : transport::QueueServer::create(device_.config().queue_depth, memory);
      if (!ok(made)) {
        r = error_response(frame.header, made,
                           queue ? "this connection has its queue already"
                                 : "cannot make the shared-memory queue");
      } else {
        const int fd = memory->fd();
        queue = std::make_unique<QueueService>(device_, connection, std::move(memory),
                                               device_.config().queue_workers,
                                               [channel] { channel->shutdown(); });
        if (!ok(channel->send_with_fd(r.header, r.body, fd))) break;
        queue->memfd_sent();
        continue;
      }
    }
    if (!ok(channel->send(r.header, r.body))) break;
  }
  queue.reset();
  device_.close_connection_sessions(id);
  std::lock_guard lock(mutex_);
  live_.erase(id);
}

// Over the connection limit: answer the client's first request with BUSY
// (so it learns why, with its own request id), then close. A few such
// answers run at once, each with a short read deadline.
void Server::turn_away(std::shared_ptr<transport::UnixSocketChannel> channel, ConnectionId) {
  channel->set_receive_timeout_ms(1000);
  protocol::Frame frame;
  const Status s = channel->receive(frame);
  if (s != Status::kTransportError) {
    const DispatchResult r = error_response(frame.header, ok(s) ? Status::kBusy : s);
    channel->send(r.header, r.body);
  }
  std::lock_guard lock(mutex_);
  --turning_away_;
}

}  // namespace ihsm::device
