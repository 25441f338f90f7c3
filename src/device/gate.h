// The one gate every command passes before its handler runs: caller
// identity (owner), session ownership and role, partition, and the key's
// visibility and usage flags.
#pragma once

#include "device/command.h"

namespace ihsm::device {

Status gate(CommandContext& ctx, const cbor::MapReader& in);

// A second key named by a command (the target of a wrap): found in the
// session's partition and visible to this connection, or kNoSuchKey.
Status resolve_key(const CommandContext& ctx, uint64_t handle,
                   std::shared_ptr<const KeyObject>& out);

}  // namespace ihsm::device
