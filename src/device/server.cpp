#include "device/server.h"

#include <sys/stat.h>

#include <cstdio>
#include <filesystem>
#include <thread>

#include "device/dispatch.h"

namespace ihsm::device {

Status Server::listen(const std::string& socket_path, unsigned mode) {
  std::error_code ec;
  const auto dir = std::filesystem::path(socket_path).parent_path();
  if (!dir.empty() && !std::filesystem::exists(dir, ec)) {
    std::filesystem::create_directories(dir, ec);
    if (ec) return Status::kTransportError;
    ::chmod(dir.c_str(), 0755);
  }
  return listener_.listen(socket_path, mode);
}

void Server::run() {
  while (!stopping_) {
    std::unique_ptr<transport::UnixSocketChannel> accepted = listener_.accept();
    if (!accepted) break;
    std::shared_ptr<transport::FrameChannel> channel = std::move(accepted);
    const ConnectionId id = device_.next_connection_id();
    {
      std::lock_guard lock(mutex_);
      if (stopping_) break;
      if (live_.size() >= device_.config().max_connections) {
        // Tell the client why, then drop it; existing clients keep working.
        protocol::FrameHeader h;
        h.flags = protocol::frame_flag::kResponse;
        h.status = static_cast<uint16_t>(Status::kBusy);
        channel->send(h, cbor::encode(cbor::Value::map()));
        continue;
      }
      live_.emplace(id, channel);
    }
    std::thread([this, channel, id] { serve(channel, id); }).detach();
  }
  stop();
  std::unique_lock lock(mutex_);
  idle_.wait(lock, [this] { return live_.empty(); });
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
  if (live_.empty()) idle_.notify_all();
}

}  // namespace ihsm::device
