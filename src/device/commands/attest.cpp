// Attestation (docs/attestation.md): key reports signed by the partition
// identity key, device reports signed by the Alias key, and the
// certificates that chain both to the DeviceID.
#include <ctime>

#include "common/cose.h"
#include "device/commands/commands.h"
#include "device/fips/self_tests.h"
#include "device/fips/state.h"

namespace ihsm::device::commands {

using cbor::Value;
using namespace protocol;

namespace {

uint32_t report_flags(const KeyObject& k) {
  namespace f = cose::flag;
  uint32_t out = 0;
  switch (k.origin) {
    case KeyOrigin::kGenerated:
      out |= f::kGenerated;
      break;
    case KeyOrigin::kDerived:
      out |= f::kDerived;
      break;
    case KeyOrigin::kUnwrapped:
    case KeyOrigin::kCreated:
      out |= f::kImported;
      break;
  }
  if (!k.token) out |= f::kSession;
  const std::pair<uint32_t, uint32_t> map[] = {{usage::kSensitive, f::kSensitive},
                                               {usage::kAlwaysSensitive, f::kAlwaysSensitive},
                                               {usage::kExtractable, f::kExtractable},
                                               {usage::kNeverExtractable, f::kNeverExtractable},
                                               {usage::kSign, f::kSign},
                                               {usage::kVerify, f::kVerify},
                                               {usage::kEncrypt, f::kEncrypt},
                                               {usage::kDecrypt, f::kDecrypt},
                                               {usage::kDerive, f::kDerive},
                                               {usage::kWrap, f::kWrap},
                                               {usage::kUnwrap, f::kUnwrap},
                                               {usage::kModifiable, f::kModifiable}};
  for (const auto& [from, to] : map) {
    if (k.has(from)) out |= to;
  }
  return out;
}

// A secret key is named by a digest of its value, never the value: a
// verifier holding the key can check it is the one attested.
Status value_digest(const KeyObject& k, Bytes& out) {
  static constexpr std::string_view kLabel = "ihsm key digest v1";
  SecretBytes input(kLabel.size() + k.secret.size());
  auto in = input.reveal_mutable();
  std::copy(kLabel.begin(), kLabel.end(), in.begin());
  const auto value = k.secret.reveal();
  std::copy(value.begin(), value.end(), in.begin() + static_cast<std::ptrdiff_t>(kLabel.size()));
  return crypto::digest(crypto::Hash::kSha384, input.reveal(), out);
}

Status signed_report(EVP_PKEY* signer, std::vector<Bytes> chain, Bytes payload, Reply& out) {
  cose::Sign1 report;
  report.x5chain = std::move(chain);
  report.payload = std::move(payload);
  const Status s = cose::sign(report, [signer](std::span<const uint8_t> tbs, Bytes& sig) {
    return cose::es384_sign(signer, tbs, sig);
  });
  if (!ok(s)) return s;
  out.body.set(kReport, Value::bytes(cose::encode_sign1(report)));
  return Status::kOk;
}

Status read_nonce(const cbor::MapReader& in, Bytes& nonce) {
  return in.opt_bytes(kNonce, nonce, cose::kMaxNonce);
}

}  // namespace

Status AttestKey(CommandContext& ctx, const cbor::MapReader& in, Reply& out) {
  if (!ctx.key) return Status::kMissingField;
  const KeyObject& k = *ctx.key;
  if (!k.is_key()) return fail(out, Status::kKeyTypeMismatch, "only keys are attested");
  cose::KeyReport r;
  Status s = read_nonce(in, r.nonce);
  if (!ok(s)) return s;
  const Device& d = ctx.device;
  r.measurement = d.measurement();
  r.time = static_cast<uint64_t>(std::time(nullptr));
  r.svn = d.security_version();
  r.partition = ctx.partition->id;
  r.uid = k.uid;
  r.object_class = static_cast<uint32_t>(k.object_class);
  r.key_type = static_cast<uint32_t>(k.key_type);
  r.bits = k.key_bits;
  r.flags = report_flags(k);
  if (k.object_class == ObjectClass::kSecretKey) {
    r.value_digest.emplace();
    s = value_digest(k, *r.value_digest);
  } else {
    r.public_key.emplace();
    s = cose::key_to_cose(k.pkey.get(), *r.public_key);
  }
  if (!ok(s)) return s;
  const Partition& p = *ctx.partition;
  return signed_report(p.identity_key.get(),
                       {p.identity_cert_der, d.alias_cert_der(), d.deviceid_cert_der()},
                       cose::encode_key_report(r), out);
}

Status AttestDevice(CommandContext& ctx, const cbor::MapReader& in, Reply& out) {
  const Device& d = ctx.device;
  cose::DeviceReport r;
  const Status s = read_nonce(in, r.nonce);
  if (!ok(s)) return s;
  // A device in its error state still reports so, signed (state 1), so a
  // remote verifier learns it; unless what failed is what that signature
  // relies on (docs/security-policy.md, "Error state").
  const fips::State state = fips::device_state().state();
  if (state != fips::State::kOperational) {
    const std::string failed = fips::device_state().failed_test();
    if (fips::report_signature_relies_on(failed)) {
      return fail(out, Status::kDeviceError,
                  "self-test " + failed + " failed: the device report's signature relies on it");
    }
  }
  r.measurement = d.measurement();
  r.time = static_cast<uint64_t>(std::time(nullptr));
  r.svn = d.security_version();
  r.firmware_version = d.firmware_version();
  r.min_svn = d.min_security_version();
  r.state = static_cast<uint64_t>(state);
  return signed_report(d.alias_key(), {d.alias_cert_der(), d.deviceid_cert_der()},
                       cose::encode_device_report(r), out);
}

Status GetCertificates(CommandContext& ctx, const cbor::MapReader& in, Reply& out) {
  const Device& d = ctx.device;
  auto certs = Value::array();
  certs.push(Value::bytes(d.deviceid_cert_der()));
  certs.push(Value::bytes(d.alias_cert_der()));
  if (in.has(kPartition)) {
    // A partition's certificate is as public as its reports; any caller
    // that may see the partition may have it.
    Status s = Status::kOk;
    const auto p = partition_named(ctx, in, s);
    if (!p) return s;
    const auto& peer = ctx.connection.peer;
    if (!d.is_owner(peer.uid) && !p->admits(peer.uid, peer.gid)) return Status::kNoSuchPartition;
    certs.push(Value::bytes(p->identity_cert_der));
  }
  out.body.set(kCertificates, std::move(certs));
  return Status::kOk;
}

}  // namespace ihsm::device::commands
