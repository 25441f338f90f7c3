// Symmetric encryption: AES-GCM.
#include "device/commands/commands.h"

namespace ihsm::device::commands {

using cbor::Value;
using namespace protocol;

namespace {

Status check_gcm_key(const CommandContext& ctx, const cbor::MapReader& in) {
  if (!ctx.key) return Status::kMissingField;
  uint64_t mechanism = 0;
  const Status s = in.get_uint(kMechanism, mechanism);
  if (!ok(s)) return s;
  if (mechanism != static_cast<uint64_t>(Mechanism::kAesGcm)) return Status::kMechanismInvalid;
  if (ctx.key->key_type != KeyType::kAes || ctx.key->secret.empty()) {
    return Status::kKeyTypeMismatch;
  }
  return Status::kOk;
}

}  // namespace

Status Encrypt(CommandContext& ctx, const cbor::MapReader& in, Reply& out) {
  Status s = check_gcm_key(ctx, in);
  Bytes plaintext, aad, iv;
  if (ok(s)) s = in.get_bytes(kPlaintext, plaintext, kMaxCipherData);
  if (ok(s)) s = in.opt_bytes(kAad, aad, kMaxAad);
  if (ok(s)) s = in.opt_bytes(kIv, iv, kGcmIvSize);
  if (!ok(s)) return s;
  const KeyObject& key = *ctx.key;
  if (in.has(kIv)) {
    if (iv.size() != kGcmIvSize) return Status::kMechanismParamInvalid;
    // SP 800-38D: with an IV from outside the module, uniqueness is not
    // the module's to guarantee, so the service is not approved.
    out.approved = false;
  } else {
    // Random 96-bit IVs, bounded to 2^32 invocations per key (SP 800-38D 8.3).
    if (key.gcm_invocations.fetch_add(1) >= (1ull << 32)) return Status::kIvExhausted;
    iv.resize(kGcmIvSize);
    s = crypto::random_bytes(iv);
    if (!ok(s)) return s;
  }
  Bytes ciphertext, tag;
  s = crypto::aes_gcm_encrypt(key.secret.reveal(), iv, aad, plaintext, ciphertext, tag);
  if (!ok(s)) return s;
  out.body.set(kIv, Value::bytes(iv));
  out.body.set(kCiphertext, Value::bytes(ciphertext));
  out.body.set(kTag, Value::bytes(tag));
  return Status::kOk;
}

Status Decrypt(CommandContext& ctx, const cbor::MapReader& in, Reply& out) {
  Status s = check_gcm_key(ctx, in);
  Bytes ciphertext, aad, iv, tag;
  if (ok(s)) s = in.get_bytes(kCiphertext, ciphertext, kMaxCipherData);
  if (ok(s)) s = in.opt_bytes(kAad, aad, kMaxAad);
  if (ok(s)) s = in.get_bytes(kIv, iv, kGcmIvSize);
  if (ok(s)) s = in.get_bytes(kTag, tag, kGcmTagSize);
  if (!ok(s)) return s;
  if (iv.size() != kGcmIvSize || tag.size() != kGcmTagSize) return Status::kMechanismParamInvalid;
  SecretBytes plaintext;
  s = crypto::aes_gcm_decrypt(ctx.key->secret.reveal(), iv, aad, ciphertext, tag, plaintext);
  if (!ok(s)) return s;
  out.body.set(kPlaintext, Value::bytes(plaintext.reveal()));
  return Status::kOk;
}

}  // namespace ihsm::device::commands
