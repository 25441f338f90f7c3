// What a command handler sees: the device, the caller's connection, and
// what the gate has already checked and resolved for it.
#pragma once

#include <array>
#include <memory>
#include <mutex>
#include <optional>

#include "common/cbor.h"
#include "device/device.h"
#include "protocol/fields.h"
#include "protocol/frame.h"
#include "protocol/opcodes.h"
#include "transport/channel.h"

namespace ihsm::device {

// Per-connection state inside the device.
struct ConnectionState {
  ConnectionId id = 0;
  transport::PeerCredentials peer;

  // The outstanding PIN-envelope challenge; consumed by the next command
  // that carries an envelope. Behind a lock: the socket thread and the
  // queue's workers run one connection's commands at the same time.
  using Challenge = std::array<uint8_t, protocol::kChallengeSize>;
  void set_challenge(const Challenge& c) {
    std::lock_guard lock(challenge_mutex_);
    challenge_ = c;
  }
  std::optional<Challenge> challenge() const {
    std::lock_guard lock(challenge_mutex_);
    return challenge_;
  }
  void clear_challenge() {
    std::lock_guard lock(challenge_mutex_);
    challenge_.reset();
  }

 private:
  mutable std::mutex challenge_mutex_;
  std::optional<Challenge> challenge_;
};

struct CommandContext {
  Device& device;
  ConnectionState& connection;
  const protocol::OpcodeInfo& op;
  const protocol::FrameHeader& header;
  // Set by the gate for commands that need a session.
  std::shared_ptr<SessionState> session;
  std::shared_ptr<Partition> partition;
  // Set by the gate when the request names a key (Field::kKey): visible to
  // this session, and carrying the usage the opcode requires.
  std::shared_ptr<const KeyObject> key;
};

struct Reply {
  cbor::Value body = cbor::Value::map();
  // FIPS indicator: true unless the handler used a non-approved service.
  bool approved = true;
  // OpenQueue: the server makes the queue and sends it with the response.
  bool open_queue = false;
};

using Handler = Status (*)(CommandContext& ctx, const cbor::MapReader& in, Reply& out);

}  // namespace ihsm::device
