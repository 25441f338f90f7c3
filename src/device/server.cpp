#include "device/server.h"

#include <cstdio>

#include "device/dispatch.h"

namespace ihsm::device {

namespace {
constexpr size_t kMaxTurningAway = 8;
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

void Server::serve(std::shared_ptr<transport::FrameChannel> channel, ConnectionId id) {
  ConnectionState connection;
  connection.id = id;
  connection.peer = channel->peer();
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
    const DispatchResult r = dispatch(device_, connection, frame.header, frame.body);
    if (!ok(channel->send(r.header, r.body))) break;
  }
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
