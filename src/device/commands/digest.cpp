// Message digests: SHA-256/384/512, one-shot and multi-part.
#include "device/commands/commands.h"

namespace ihsm::device::commands {

using cbor::Value;
using namespace protocol;

namespace {

Status read_hash(const cbor::MapReader& in, crypto::Hash& hash) {
  uint64_t mechanism = 0;
  const Status s = in.get_uint(kMechanism, mechanism);
  if (!ok(s)) return s;
  return ok(hash_from_mechanism(mechanism, hash)) ? Status::kOk : Status::kMechanismInvalid;
}

}  // namespace

Status Digest(CommandContext&, const cbor::MapReader& in, Reply& out) {
  crypto::Hash hash{};
  Bytes data, digest;
  Status s = read_hash(in, hash);
  if (ok(s)) s = in.get_bytes(kData, data, kMaxSignData);
  if (ok(s)) s = crypto::digest(hash, data, digest);
  if (!ok(s)) return s;
  out.body.set(kData, Value::bytes(digest));
  return Status::kOk;
}

Status DigestInit(CommandContext& ctx, const cbor::MapReader& in, Reply&) {
  crypto::Hash hash{};
  Status s = read_hash(in, hash);
  if (!ok(s)) return s;
  std::lock_guard lock(ctx.session->operation_mutex);
  if (ctx.session->digest_operation) return Status::kOperationActive;
  DigestOperation op;
  s = op.stream.init(hash);
  if (!ok(s)) return s;
  ctx.session->digest_operation = std::move(op);
  return Status::kOk;
}

Status DigestUpdate(CommandContext& ctx, const cbor::MapReader& in, Reply&) {
  Bytes data;
  Status s = in.get_bytes(kData, data, kMaxSignData);
  if (!ok(s)) return s;
  std::lock_guard lock(ctx.session->operation_mutex);
  auto& op = ctx.session->digest_operation;
  if (!op) return Status::kOperationNotInitialized;
  s = op->stream.update(data);
  if (!ok(s)) op.reset();
  return s;
}

Status DigestFinal(CommandContext& ctx, const cbor::MapReader&, Reply& out) {
  std::lock_guard lock(ctx.session->operation_mutex);
  auto& op = ctx.session->digest_operation;
  if (!op) return Status::kOperationNotInitialized;
  Bytes digest;
  const Status s = op->stream.final(digest);
  op.reset();
  if (!ok(s)) return s;
  out.body.set(kData, Value::bytes(digest));
  return Status::kOk;
}

}  // namespace ihsm::device::commands
