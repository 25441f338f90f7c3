// The control path: frames over a Unix domain stream socket, with the
// peer's identity from SO_PEERCRED.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <string>

#include "transport/channel.h"

namespace ihsm::transport {

class UnixSocketChannel final : public FrameChannel {
 public:
  explicit UnixSocketChannel(int fd);
  ~UnixSocketChannel() override;
  UnixSocketChannel(const UnixSocketChannel&) = delete;
  UnixSocketChannel& operator=(const UnixSocketChannel&) = delete;

  Status send(const protocol::FrameHeader& header, std::span<const uint8_t> body) override;
  Status receive(protocol::Frame& out) override;
  void shutdown() override;
  PeerCredentials peer() const override { return peer_; }
  int take_received_fd() override;
  bool peer_closed() const override;
  // Sends a frame with a descriptor attached (SCM_RIGHTS).
  Status send_with_fd(const protocol::FrameHeader& header, std::span<const uint8_t> body, int fd);
  // Lets receive() take a descriptor sent with a frame. Off by default: the
  // device never accepts descriptors, so a client cannot fill its table.
  void accept_fds() { accept_fds_ = true; }
  // A receive that waits longer than this fails with kTransportError.
  void set_receive_timeout_ms(unsigned ms);
  // How long the rest of a frame may take once its first byte arrived.
  void set_frame_deadline(std::chrono::milliseconds d) { frame_deadline_ = d; }

 private:
  Status send_frame(const protocol::FrameHeader& header, std::span<const uint8_t> body, int fd);

  int fd_;
  bool accept_fds_ = false;
  int received_fd_ = -1;
  std::chrono::milliseconds frame_deadline_{10000};
  PeerCredentials peer_;
};

class UnixSocketListener {
 public:
  UnixSocketListener() = default;
  ~UnixSocketListener();
  // Creates the socket file (removing a stale one) with the given mode and
  // the folder it is in (0755) when missing. kBusy when a live daemon
  // answers on it. Connections are refused until start_listening().
  Status bind(const std::string& path, unsigned mode);
  // Starts accepting connections on the bound socket.
  Status start_listening();
  bool bound() const { return fd_.load() >= 0; }
  // Blocks; nullptr when the listener was closed or accept failed.
  std::unique_ptr<UnixSocketChannel> accept();
  // Safe to call from another thread while accept() blocks, and twice.
  void close();

 private:
  std::atomic<int> fd_{-1};
  std::string path_;
};

Status connect_unix(const std::string& path, std::unique_ptr<FrameChannel>& out);

// IHSM_SOCKET if set; otherwise the default the daemon uses for this user
// (falling back to the system socket when the per-user one does not exist).
std::string default_socket_path();
// What the daemon binds by default: /run/ihsm/ihsmd.sock for root,
// $XDG_RUNTIME_DIR/ihsm/ihsmd.sock (or /tmp/ihsm-UID/ihsmd.sock) otherwise.
std::string daemon_default_socket_path();

}  // namespace ihsm::transport
