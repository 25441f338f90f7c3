// Frame in, frame out: decode the body, pass the gate, run the handler.
#pragma once

#include "device/command.h"

namespace ihsm::device {

struct DispatchResult {
  protocol::FrameHeader header;
  Bytes body;
  // OpenQueue succeeded: the transport attaches the queue (server.cpp).
  bool open_queue = false;
};

// Handles one request whose header has already been validated.
DispatchResult dispatch(Device& device, ConnectionState& connection,
                        const protocol::FrameHeader& header, std::span<const uint8_t> body);
// The response to a request that could not be handled at all.
DispatchResult error_response(const protocol::FrameHeader& request, Status status,
                              std::string_view message = {});

}  // namespace ihsm::device
