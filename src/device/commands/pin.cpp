// PIN envelopes and PIN verification with back-off and lockout.
#include "device/commands/commands.h"

namespace ihsm::device::commands {

using namespace protocol;

namespace {

constexpr std::string_view kEnvelopeInfo = "ihsm-pin-envelope-v1";
constexpr size_t kPointSize = 97;  // uncompressed P-384

void put_be(Bytes& out, uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

}  // namespace

Status open_pin_envelope(CommandContext& ctx, const cbor::MapReader& in, uint64_t field,
                         PartitionId partition, Role role, SecretBytes& pin) {
  const cbor::Value* env = in.get(field);
  if (env == nullptr) return Status::kMissingField;
  const cbor::MapReader er(*env);
  if (!er.is_map()) return Status::kMalformedBody;
  Bytes ephemeral, sealed;
  Status s = er.get_bytes(kEphemeralKey, ephemeral, kPointSize);
  // Room for a too-long PIN, so that it is reported as PIN_INVALID once opened.
  if (ok(s)) s = er.get_bytes(kEnvelopeCiphertext, sealed, 4 * kMaxPin + kGcmTagSize);
  if (!ok(s)) return s;
  if (ephemeral.size() != kPointSize || sealed.size() < kGcmTagSize) {
    return Status::kPinEnvelopeInvalid;
  }
  const auto challenge = ctx.connection.challenge();
  if (!challenge) return Status::kStaleChallenge;

  SecretBytes z;
  s = crypto::ecdh(ctx.device.pin_transport_key(), Curve::kP384, ephemeral, z);
  if (!ok(s)) return Status::kPinEnvelopeInvalid;
  Bytes transport_point;
  s = crypto::public_point(ctx.device.pin_transport_key(), transport_point);
  if (!ok(s)) return s;

  Bytes info(kEnvelopeInfo.begin(), kEnvelopeInfo.end());
  info.insert(info.end(), ephemeral.begin(), ephemeral.end());
  info.insert(info.end(), transport_point.begin(), transport_point.end());
  put_be(info, ctx.header.opcode, 2);
  put_be(info, field, 8);
  SecretBytes okm(44);
  s = crypto::hkdf_sha384(z.reveal(), *challenge, info, okm);
  if (!ok(s)) return s;

  Bytes aad;
  put_be(aad, partition, 4);
  put_be(aad, static_cast<uint32_t>(role), 4);
  const auto key = okm.reveal().first(32);
  const auto iv = okm.reveal().subspan(32, 12);
  const auto body = std::span<const uint8_t>(sealed).first(sealed.size() - kGcmTagSize);
  const auto tag = std::span<const uint8_t>(sealed).last(kGcmTagSize);
  SecretBytes plain;
  if (!ok(crypto::aes_gcm_decrypt(key, iv, aad, body, tag, plain))) {
    return Status::kPinEnvelopeInvalid;
  }
  if (plain.size() < kMinPin || plain.size() > kMaxPin) return Status::kPinInvalid;
  pin = std::move(plain);
  return Status::kOk;
}

Status verify_pin(CommandContext& ctx, Partition& partition, Role role, const SecretBytes& pin,
                  Reply& out) {
  const auto& policy = ctx.device.config().login;
  std::lock_guard attempt(partition.attempt_mutex(role));
  Credential::Check check;
  {
    std::lock_guard lock(partition.mutex);
    uint64_t retry_after = 0;
    const Status s =
        partition.credential(role).begin_attempt(Credential::Clock::now(), &retry_after, check);
    if (s == Status::kPinBackoff) out.body.set(kRetryAfterMs, cbor::Value::uint(retry_after));
    if (!ok(s)) return s;
  }
  const bool match = Credential::matches(check, pin.reveal());
  Status result;
  uint32_t retries_left = 0;
  bool counters_changed = !match;
  {
    std::lock_guard lock(partition.mutex);
    Credential& cred = partition.credential(role);
    counters_changed = counters_changed || cred.failures() != 0;
    result = cred.record(match, policy, Credential::Clock::now());
    retries_left = cred.retries_left(policy);
  }
  // The counters outlive a restart: killing the daemon does not reset them.
  if (counters_changed) {
    const Status saved = ctx.device.save_partitions();
    if (!ok(saved)) return saved;
  }
  if (result == Status::kPinIncorrect) {
    out.body.set(kRetriesLeft, cbor::Value::uint(retries_left));
  }
  return result;
}

}  // namespace ihsm::device::commands
