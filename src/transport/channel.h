// How frames travel between a client and the device. Command handlers never
// see a transport: the server reads frames from a FrameChannel and writes
// responses back to it, so a shared-memory queue can implement the same
// interface later without touching any handler.
#pragma once

#include <memory>
#include <optional>
#include <span>
#include <string>

#include "ihsm/status.h"
#include "protocol/frame.h"

namespace ihsm::transport {

struct PeerCredentials {
  uint32_t uid = 0;
  uint32_t gid = 0;
  int32_t pid = 0;
};

class FrameChannel {
 public:
  virtual ~FrameChannel() = default;
  virtual Status send(const protocol::FrameHeader& header, std::span<const uint8_t> body) = 0;
  // kTransportError on end of stream or I/O failure; a header status
  // (kMalformedFrame, kFrameTooLarge, kUnsupportedRevision) when the peer
  // sent a bad header, with `out.header` filled as far as it could be.
  // After a header error the stream cannot be resynchronised: close it.
  virtual Status receive(protocol::Frame& out) = 0;
  // Unblocks a receive() in another thread.
  virtual void shutdown() = 0;
  virtual PeerCredentials peer() const = 0;
  // The file descriptor that came with the last frame received, if the
  // channel accepts descriptors (the shared-memory queue); the caller owns
  // it. -1 when none came.
  virtual int take_received_fd() { return -1; }
  // True once the peer has closed its end; does not read from the channel.
  virtual bool peer_closed() const { return false; }
};

}  // namespace ihsm::transport
