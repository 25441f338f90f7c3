// The one gate every command passes before its handler runs: caller
// identity (owner), session ownership and role, partition, and the key's
// visibility and usage flags.
#pragma once

#include "device/command.h"

namespace ihsm::device {

Status gate(CommandContext& ctx, const cbor::MapReader& in);

}  // namespace ihsm::device
