// Random numbers from the device's DRBG.
#include "device/commands/commands.h"

namespace ihsm::device::commands {

using namespace protocol;

Status GenerateRandom(CommandContext&, const cbor::MapReader& in, Reply& out) {
  uint64_t length = 0;
  Status s = in.get_uint(kLength, length);
  if (!ok(s)) return s;
  if (length > kMaxRandom) return Status::kDataLengthInvalid;
  Bytes data(length);
  s = crypto::random_bytes(data);
  if (!ok(s)) return s;
  out.body.set(kData, cbor::Value::bytes(std::move(data)));
  return Status::kOk;
}

}  // namespace ihsm::device::commands
