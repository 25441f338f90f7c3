// Signatures and MACs: ECDSA, RSA PKCS#1 v1.5 and PSS, Ed25519, HMAC;
// sign and verify.
#include <array>
#include <span>

#include "device/commands/commands.h"

namespace ihsm::device::commands {

using cbor::Value;
using namespace protocol;

namespace {

// DER DigestInfo prefixes (RFC 8017 9.2 note 1): CKM_RSA_PKCS over a
// SHA-2 DigestInfo the caller built is an approved signature of that
// digest; other input is padded and signed as given, not approved.
struct DigestInfoPrefix {
  crypto::Hash hash;
  std::array<uint8_t, 19> prefix;
};
constexpr DigestInfoPrefix kDigestInfo[] = {
    {crypto::Hash::kSha256,
     {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01,
      0x05, 0x00, 0x04, 0x20}},
    {crypto::Hash::kSha384,
     {0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02,
      0x05, 0x00, 0x04, 0x30}},
    {crypto::Hash::kSha512,
     {0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03,
      0x05, 0x00, 0x04, 0x40}},
};

struct SignPlan {
  enum class Kind { kEcdsa, kRsa, kEddsa, kHmac } kind;
  crypto::RsaSignParams rsa;
  crypto::Hash hmac_hash = crypto::Hash::kSha256;
  // A view into the request (it outlives the command), possibly without a
  // DigestInfo prefix.
  std::span<const uint8_t> data;
};

Status read_pss_params(const cbor::MapReader& params, crypto::Hash expected_hash, bool check_hash,
                       crypto::RsaSignParams& rsa) {
  uint64_t hash = 0, mgf = 0, salt = 0;
  Status s = params.get_uint(kHash, hash);
  if (ok(s)) s = params.get_uint(kMgfHash, mgf);
  if (ok(s)) s = params.get_uint(kSaltLength, salt, 1024);
  if (!ok(s)) return s == Status::kMissingField ? Status::kMechanismParamInvalid : s;
  if (!ok(hash_from_mechanism(hash, rsa.hash)) || !ok(hash_from_mechanism(mgf, rsa.mgf1))) {
    return Status::kMechanismParamInvalid;
  }
  // PKCS#11: for SHAx-RSA-PSS the params' hash must be the mechanism's.
  if (check_hash && rsa.hash != expected_hash) return Status::kMechanismParamInvalid;
  rsa.salt_length = static_cast<uint32_t>(salt);
  rsa.padding = crypto::RsaPadding::kPss;
  return Status::kOk;
}

// Which algorithm, key kind and parameters a sign/verify request needs.
Status plan(const CommandContext& ctx, const cbor::MapReader& in, Mechanism mechanism,
            ObjectClass expected_class, SignPlan& p, Reply& out) {
  const KeyObject& key = *ctx.key;
  const cbor::MapReader params(params_of(in));
  if (!params.is_map()) return Status::kMalformedBody;
  KeyType want_type = KeyType::kEc;
  switch (mechanism) {
    case Mechanism::kEcdsa:
    case Mechanism::kEcdsaSha256:
    case Mechanism::kEcdsaSha384:
    case Mechanism::kEcdsaSha512:
      p.kind = SignPlan::Kind::kEcdsa;
      // A caller-supplied digest shorter than SHA-224 (e.g. SHA-1) is not
      // an approved signature generation.
      if (mechanism == Mechanism::kEcdsa && p.data.size() < 28) out.approved = false;
      break;
    case Mechanism::kRsaPkcs: {
      p.kind = SignPlan::Kind::kRsa;
      want_type = KeyType::kRsa;
      bool matched = false;
      for (const auto& d : kDigestInfo) {
        if (p.data.size() == d.prefix.size() + crypto::hash_size(d.hash) &&
            std::equal(d.prefix.begin(), d.prefix.end(), p.data.begin())) {
          p.rsa.hash = d.hash;
          p.data = p.data.subspan(d.prefix.size());
          matched = true;
          break;
        }
      }
      // Anything else is signed as given (TLS 1.1's MD5+SHA-1, or a
      // DigestInfo of another hash): allowed, but not an approved service.
      if (!matched) {
        p.rsa.raw = true;
        out.approved = false;
      }
      p.rsa.padding = crypto::RsaPadding::kPkcs1;
      p.rsa.hash_input = false;
      break;
    }
    case Mechanism::kSha256RsaPkcs:
    case Mechanism::kSha384RsaPkcs:
    case Mechanism::kSha512RsaPkcs:
      p.kind = SignPlan::Kind::kRsa;
      want_type = KeyType::kRsa;
      p.rsa.padding = crypto::RsaPadding::kPkcs1;
      p.rsa.hash = mechanism == Mechanism::kSha256RsaPkcs   ? crypto::Hash::kSha256
                   : mechanism == Mechanism::kSha384RsaPkcs ? crypto::Hash::kSha384
                                                            : crypto::Hash::kSha512;
      p.rsa.hash_input = true;
      break;
    case Mechanism::kRsaPkcsPss: {
      p.kind = SignPlan::Kind::kRsa;
      want_type = KeyType::kRsa;
      const Status s = read_pss_params(params, crypto::Hash::kSha256, false, p.rsa);
      if (!ok(s)) return s;
      p.rsa.hash_input = false;
      break;
    }
    case Mechanism::kSha256RsaPkcsPss:
    case Mechanism::kSha384RsaPkcsPss:
    case Mechanism::kSha512RsaPkcsPss: {
      p.kind = SignPlan::Kind::kRsa;
      want_type = KeyType::kRsa;
      const crypto::Hash h = mechanism == Mechanism::kSha256RsaPkcsPss   ? crypto::Hash::kSha256
                             : mechanism == Mechanism::kSha384RsaPkcsPss ? crypto::Hash::kSha384
                                                                         : crypto::Hash::kSha512;
      const Status s = read_pss_params(params, h, true, p.rsa);
      if (!ok(s)) return s;
      p.rsa.hash_input = true;
      break;
    }
    case Mechanism::kEddsa:
      p.kind = SignPlan::Kind::kEddsa;
      want_type = KeyType::kEcEdwards;
      break;
    case Mechanism::kSha256Hmac:
    case Mechanism::kSha384Hmac:
    case Mechanism::kSha512Hmac:
      p.kind = SignPlan::Kind::kHmac;
      want_type = KeyType::kGenericSecret;
      p.hmac_hash = mechanism == Mechanism::kSha256Hmac   ? crypto::Hash::kSha256
                    : mechanism == Mechanism::kSha384Hmac ? crypto::Hash::kSha384
                                                          : crypto::Hash::kSha512;
      break;
    default:
      return Status::kMechanismInvalid;
  }
  const ObjectClass want_class =
      p.kind == SignPlan::Kind::kHmac ? ObjectClass::kSecretKey : expected_class;
  if (key.key_type != want_type || key.object_class != want_class) {
    return Status::kKeyTypeMismatch;
  }
  if (p.kind == SignPlan::Kind::kRsa && !p.rsa.hash_input && !p.rsa.raw &&
      p.data.size() != crypto::hash_size(p.rsa.hash)) {
    return Status::kDataLengthInvalid;
  }
  return Status::kOk;
}

Status read_common(const cbor::MapReader& in, Mechanism& mechanism,
                   std::span<const uint8_t>& data) {
  uint64_t raw = 0;
  Status s = in.get_uint(kMechanism, raw, UINT32_MAX);
  if (ok(s)) s = in.get_bytes_view(kData, data, kMaxSignData);
  mechanism = static_cast<Mechanism>(raw);
  return s;
}

}  // namespace

Status Sign(CommandContext& ctx, const cbor::MapReader& in, Reply& out) {
  if (!ctx.key) return Status::kMissingField;
  Mechanism mechanism{};
  SignPlan p{};
  Status s = read_common(in, mechanism, p.data);
  if (ok(s)) s = plan(ctx, in, mechanism, ObjectClass::kPrivateKey, p, out);
  if (!ok(s)) return s;
  const KeyObject& key = *ctx.key;
  Bytes signature;
  switch (p.kind) {
    case SignPlan::Kind::kEcdsa:
      s = crypto::ecdsa_sign(key.pkey.get(), *key.curve, mechanism, p.data, signature,
                             &key.prepared_signer);
      break;
    case SignPlan::Kind::kRsa:
      s = crypto::rsa_sign(key.pkey.get(), p.rsa, p.data, signature);
      break;
    case SignPlan::Kind::kEddsa:
      s = crypto::ed25519_sign(key.pkey.get(), p.data, signature);
      break;
    case SignPlan::Kind::kHmac:
      s = key.prepared_mac.hmac(p.hmac_hash, key.secret.reveal(), p.data, signature);
      break;
  }
  if (!ok(s)) return s;
  out.body.set(kSignature, Value::bytes(std::move(signature)));
  return Status::kOk;
}

Status Verify(CommandContext& ctx, const cbor::MapReader& in, Reply& out) {
  if (!ctx.key) return Status::kMissingField;
  Mechanism mechanism{};
  SignPlan p{};
  std::span<const uint8_t> signature;
  Status s = read_common(in, mechanism, p.data);
  if (ok(s)) s = in.get_bytes_view(kSignature, signature, 1024);
  if (ok(s)) s = plan(ctx, in, mechanism, ObjectClass::kPublicKey, p, out);
  if (!ok(s)) return s;
  const KeyObject& key = *ctx.key;
  switch (p.kind) {
    case SignPlan::Kind::kEcdsa:
      return crypto::ecdsa_verify(key.pkey.get(), *key.curve, mechanism, p.data, signature);
    case SignPlan::Kind::kRsa:
      return crypto::rsa_verify(key.pkey.get(), p.rsa, p.data, signature);
    case SignPlan::Kind::kEddsa:
      return crypto::ed25519_verify(key.pkey.get(), p.data, signature);
    case SignPlan::Kind::kHmac:
      // Constant-time comparison inside.
      return key.prepared_mac.hmac_verify(p.hmac_hash, key.secret.reveal(), p.data, signature);
  }
  return Status::kInternalError;
}

}  // namespace ihsm::device::commands
