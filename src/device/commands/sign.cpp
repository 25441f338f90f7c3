// Signatures: ECDSA on P-256/384/521.
#include "device/commands/commands.h"

namespace ihsm::device::commands {

using cbor::Value;
using namespace protocol;

Status Sign(CommandContext& ctx, const cbor::MapReader& in, Reply& out) {
  if (!ctx.key) return Status::kMissingField;
  uint64_t raw_mechanism = 0;
  Bytes data;
  Status s = in.get_uint(kMechanism, raw_mechanism, UINT32_MAX);
  if (ok(s)) s = in.get_bytes(kData, data, kMaxSignData);
  if (!ok(s)) return s;
  const auto mechanism = static_cast<Mechanism>(raw_mechanism);
  switch (mechanism) {
    case Mechanism::kEcdsa:
    case Mechanism::kEcdsaSha256:
    case Mechanism::kEcdsaSha384:
    case Mechanism::kEcdsaSha512:
      break;
    default:
      return Status::kMechanismInvalid;
  }
  const KeyObject& key = *ctx.key;
  if (key.object_class != ObjectClass::kPrivateKey || key.key_type != KeyType::kEc || !key.curve) {
    return Status::kKeyTypeMismatch;
  }
  Bytes signature;
  s = crypto::ecdsa_sign(key.pkey.get(), *key.curve, mechanism, data, signature);
  if (!ok(s)) return s;
  // A caller-supplied digest shorter than SHA-224 (e.g. SHA-1) is not an
  // approved signature generation.
  if (mechanism == Mechanism::kEcdsa && data.size() < 28) out.approved = false;
  out.body.set(kSignature, Value::bytes(signature));
  return Status::kOk;
}

}  // namespace ihsm::device::commands
