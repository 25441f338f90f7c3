#include "transport/unix_socket.h"

#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>

namespace ihsm::transport {
namespace {

// Reads exactly n bytes. With `deadline` set, gives up (false) when the
// bytes have not all arrived by then.
bool read_full(int fd, uint8_t* p, size_t n,
               const std::optional<std::chrono::steady_clock::time_point>& deadline) {
  while (n > 0) {
    if (deadline) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          *deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return false;
      pollfd pfd{fd, POLLIN, 0};
      const int ready = ::poll(&pfd, 1, static_cast<int>(left.count()));
      if (ready < 0 && errno == EINTR) continue;
      if (ready <= 0) return false;
    }
    const ssize_t r = ::recv(fd, p, n, 0);
    if (r == 0) return false;
    if (r < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    p += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}

// The first byte of a frame, and a descriptor sent with it (kept in `fd`,
// replacing one nobody took).
bool read_first_byte_and_fd(int sock, uint8_t* p, int& fd) {
  for (;;) {
    iovec iov{p, 1};
    alignas(cmsghdr) std::array<uint8_t, CMSG_SPACE(sizeof(int))> control{};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.data();
    msg.msg_controllen = control.size();
    const ssize_t r = ::recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
      const size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t i = 0; i < count; ++i) {
        int received = -1;
        std::memcpy(&received, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
        if (fd >= 0) ::close(fd);
        fd = received;
      }
    }
    return true;
  }
}

bool fill_address(const std::string& path, sockaddr_un& addr) {
  std::memset(&addr, 0, sizeof(addr));
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(addr.sun_path)) return false;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  return true;
}

}  // namespace

UnixSocketChannel::UnixSocketChannel(int fd) : fd_(fd) {
  ucred cred{};
  socklen_t len = sizeof(cred);
  if (::getsockopt(fd_, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
    peer_ = PeerCredentials{cred.uid, cred.gid, cred.pid};
  } else {
    // Unknown peer: an identity no check will ever accept.
    peer_ = PeerCredentials{UINT32_MAX, UINT32_MAX, -1};
  }
}

UnixSocketChannel::~UnixSocketChannel() {
  if (received_fd_ >= 0) ::close(received_fd_);
  if (fd_ >= 0) ::close(fd_);
}

Status UnixSocketChannel::send(const protocol::FrameHeader& header, std::span<const uint8_t> body) {
  return send_frame(header, body, -1);
}

Status UnixSocketChannel::send_with_fd(const protocol::FrameHeader& header,
                                       std::span<const uint8_t> body, int fd) {
  if (fd < 0) return Status::kInvalidArgument;
  return send_frame(header, body, fd);
}

Status UnixSocketChannel::send_frame(const protocol::FrameHeader& header,
                                     std::span<const uint8_t> body, int fd) {
  if (body.size() > protocol::kMaxBody) return Status::kFrameTooLarge;
  std::array<uint8_t, protocol::kHeaderSize> head{};
  protocol::FrameHeader h = header;
  h.body_length = static_cast<uint32_t>(body.size());
  protocol::encode_header(h, head);
  iovec iov[2] = {{head.data(), head.size()}, {const_cast<uint8_t*>(body.data()), body.size()}};
  size_t index = 0;
  while (index < 2) {
    msghdr msg{};
    msg.msg_iov = &iov[index];
    msg.msg_iovlen = 2 - index;
    // The descriptor rides with the first bytes of the frame.
    alignas(cmsghdr) std::array<uint8_t, CMSG_SPACE(sizeof(int))> control{};
    if (fd >= 0) {
      msg.msg_control = control.data();
      msg.msg_controllen = control.size();
      cmsghdr* c = CMSG_FIRSTHDR(&msg);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN(sizeof(int));
      std::memcpy(CMSG_DATA(c), &fd, sizeof(int));
    }
    const ssize_t w = ::sendmsg(fd_, &msg, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR) continue;
      return Status::kTransportError;
    }
    fd = -1;  // sent with the bytes just written
    size_t written = static_cast<size_t>(w);
    while (index < 2 && written >= iov[index].iov_len) {
      written -= iov[index].iov_len;
      ++index;
    }
    if (index < 2) {
      iov[index].iov_base = static_cast<uint8_t*>(iov[index].iov_base) + written;
      iov[index].iov_len -= written;
    }
  }
  return Status::kOk;
}

Status UnixSocketChannel::receive(protocol::Frame& out) {
  std::array<uint8_t, protocol::kHeaderSize> head{};
  // Waiting for a frame to start may take forever (an idle client); once
  // its first byte is here, the whole frame must follow within the frame
  // deadline, so a peer cannot hold a connection with half a frame.
  if (accept_fds_ ? !read_first_byte_and_fd(fd_, head.data(), received_fd_)
                  : !read_full(fd_, head.data(), 1, std::nullopt)) {
    return Status::kTransportError;
  }
  const auto deadline = std::chrono::steady_clock::now() + frame_deadline_;
  if (!read_full(fd_, head.data() + 1, head.size() - 1, deadline)) {
    return Status::kTransportError;
  }
  const Status s = protocol::decode_header(head, out.header);
  if (!ok(s)) return s;
  out.body.resize(out.header.body_length);
  if (!read_full(fd_, out.body.data(), out.body.size(), deadline)) return Status::kTransportError;
  return Status::kOk;
}

void UnixSocketChannel::shutdown() { ::shutdown(fd_, SHUT_RDWR); }

int UnixSocketChannel::take_received_fd() {
  const int fd = received_fd_;
  received_fd_ = -1;
  return fd;
}

bool UnixSocketChannel::peer_closed() const {
  pollfd pfd{fd_, POLLRDHUP, 0};
  return ::poll(&pfd, 1, 0) > 0 && (pfd.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
}

void UnixSocketChannel::set_receive_timeout_ms(unsigned ms) {
  timeval tv{};
  tv.tv_sec = ms / 1000;
  tv.tv_usec = static_cast<suseconds_t>((ms % 1000) * 1000);
  ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
}

UnixSocketListener::~UnixSocketListener() { close(); }

Status UnixSocketListener::bind(const std::string& path, unsigned mode) {
  sockaddr_un addr{};
  if (!fill_address(path, addr)) return Status::kInvalidArgument;
  std::error_code ec;
  const auto dir = std::filesystem::path(path).parent_path();
  if (!dir.empty() && !std::filesystem::exists(dir, ec)) {
    std::filesystem::create_directories(dir, ec);
    if (ec) return Status::kTransportError;
    ::chmod(dir.c_str(), 0755);
  }
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::kTransportError;
  // A socket file nobody answers on is left over from a crashed daemon and
  // may go; one that answers belongs to a live daemon and must not.
  if (std::unique_ptr<FrameChannel> probe; ok(connect_unix(path, probe))) {
    ::close(fd);
    return Status::kBusy;
  }
  ::unlink(path.c_str());
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::chmod(path.c_str(), mode) != 0) {
    ::close(fd);
    return Status::kTransportError;
  }
  path_ = path;
  fd_ = fd;
  return Status::kOk;
}

Status UnixSocketListener::start_listening() {
  const int fd = fd_.load();
  if (fd < 0 || ::listen(fd, 128) != 0) return Status::kTransportError;
  return Status::kOk;
}

std::unique_ptr<UnixSocketChannel> UnixSocketListener::accept() {
  for (;;) {
    const int listen_fd = fd_.load();
    if (listen_fd < 0) return nullptr;
    const int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd >= 0) return std::make_unique<UnixSocketChannel>(fd);
    if (errno == EINTR || errno == ECONNABORTED) continue;
    if (errno == EMFILE || errno == ENFILE) {
      ::usleep(10000);  // out of descriptors: back off rather than spin
      continue;
    }
    return nullptr;
  }
}

void UnixSocketListener::close() {
  const int fd = fd_.exchange(-1);
  if (fd < 0) return;
  // shutdown() wakes a thread blocked in accept() on this socket.
  ::shutdown(fd, SHUT_RDWR);
  ::close(fd);
  if (!path_.empty()) ::unlink(path_.c_str());
}

Status connect_unix(const std::string& path, std::unique_ptr<FrameChannel>& out) {
  sockaddr_un addr{};
  if (!fill_address(path, addr)) return Status::kInvalidArgument;
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::kDeviceUnavailable;
  while (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    if (errno == EINTR) continue;
    ::close(fd);
    return Status::kDeviceUnavailable;
  }
  auto channel = std::make_unique<UnixSocketChannel>(fd);
  channel->accept_fds();  // the device's OpenQueue answer carries a memfd
  out = std::move(channel);
  return Status::kOk;
}

std::string daemon_default_socket_path() {
  const uid_t uid = ::getuid();
  if (uid == 0) return "/run/ihsm/ihsmd.sock";
  if (const char* run = std::getenv("XDG_RUNTIME_DIR"); run != nullptr && run[0] == '/') {
    return std::string(run) + "/ihsm/ihsmd.sock";
  }
  return "/tmp/ihsm-" + std::to_string(uid) + "/ihsmd.sock";
}

std::string default_socket_path() {
  if (const char* env = std::getenv("IHSM_SOCKET"); env != nullptr && env[0] != '\0') return env;
  const std::string own = daemon_default_socket_path();
  struct stat st {};
  if (::stat(own.c_str(), &st) == 0) return own;
  return "/run/ihsm/ihsmd.sock";
}

}  // namespace ihsm::transport
