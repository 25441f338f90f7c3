#include "ihsm/types.h"

#include <array>
#include <cctype>
#include <utility>

namespace ihsm {
namespace {

std::string lower(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '_' || c == '-') continue;
    out.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  }
  return out;
}

constexpr std::pair<Mechanism, std::string_view> kMechanismNames[] = {
    {Mechanism::kRsaKeyPairGen, "RSA-KEY-PAIR-GEN"},
    {Mechanism::kRsaPkcs, "RSA-PKCS"},
    {Mechanism::kRsaPkcsOaep, "RSA-OAEP"},
    {Mechanism::kRsaPkcsPss, "RSA-PSS"},
    {Mechanism::kSha256RsaPkcs, "SHA256-RSA-PKCS"},
    {Mechanism::kSha384RsaPkcs, "SHA384-RSA-PKCS"},
    {Mechanism::kSha512RsaPkcs, "SHA512-RSA-PKCS"},
    {Mechanism::kSha256RsaPkcsPss, "SHA256-RSA-PSS"},
    {Mechanism::kSha384RsaPkcsPss, "SHA384-RSA-PSS"},
    {Mechanism::kSha512RsaPkcsPss, "SHA512-RSA-PSS"},
    {Mechanism::kSha256, "SHA256"},
    {Mechanism::kSha384, "SHA384"},
    {Mechanism::kSha512, "SHA512"},
    {Mechanism::kSha256Hmac, "HMAC-SHA256"},
    {Mechanism::kSha384Hmac, "HMAC-SHA384"},
    {Mechanism::kSha512Hmac, "HMAC-SHA512"},
    {Mechanism::kGenericSecretKeyGen, "GENERIC-SECRET-KEY-GEN"},
    {Mechanism::kSp800108CounterKdf, "SP800-108-COUNTER-KDF"},
    {Mechanism::kEcKeyPairGen, "EC-KEY-PAIR-GEN"},
    {Mechanism::kEcdsa, "ECDSA"},
    {Mechanism::kEcdsaSha256, "ECDSA-SHA256"},
    {Mechanism::kEcdsaSha384, "ECDSA-SHA384"},
    {Mechanism::kEcdsaSha512, "ECDSA-SHA512"},
    {Mechanism::kEcdh1Derive, "ECDH1-DERIVE"},
    {Mechanism::kRsaAesKeyWrap, "RSA-AES-KEY-WRAP"},
    {Mechanism::kEcEdwardsKeyPairGen, "EC-EDWARDS-KEY-PAIR-GEN"},
    {Mechanism::kEcMontgomeryKeyPairGen, "EC-MONTGOMERY-KEY-PAIR-GEN"},
    {Mechanism::kEddsa, "EDDSA"},
    {Mechanism::kAesKeyGen, "AES-KEY-GEN"},
    {Mechanism::kAesCbc, "AES-CBC"},
    {Mechanism::kAesCbcPad, "AES-CBC-PAD"},
    {Mechanism::kAesCtr, "AES-CTR"},
    {Mechanism::kAesGcm, "AES-GCM"},
    {Mechanism::kAesKeyWrap, "AES-KEY-WRAP"},
    {Mechanism::kAesKeyWrapKwp, "AES-KEY-WRAP-KWP"},
    {Mechanism::kHkdfDerive, "HKDF-DERIVE"},
};

constexpr std::array<std::pair<uint32_t, std::string_view>, 15> kFlagNames = {{
    {usage::kSign, "sign"},
    {usage::kVerify, "verify"},
    {usage::kEncrypt, "encrypt"},
    {usage::kDecrypt, "decrypt"},
    {usage::kDerive, "derive"},
    {usage::kWrap, "wrap"},
    {usage::kUnwrap, "unwrap"},
    {usage::kSensitive, "sensitive"},
    {usage::kExtractable, "extractable"},
    {usage::kAlwaysSensitive, "always-sensitive"},
    {usage::kNeverExtractable, "never-extractable"},
    {usage::kWrapWithTrusted, "wrap-with-trusted"},
    {usage::kTrusted, "trusted"},
    {usage::kModifiable, "modifiable"},
    {usage::kDestroyable, "destroyable"},
}};

}  // namespace

std::string_view curve_name(Curve c) {
  switch (c) {
    case Curve::kP256:
      return "P-256";
    case Curve::kP384:
      return "P-384";
    case Curve::kP521:
      return "P-521";
    case Curve::kEd25519:
      return "Ed25519";
    case Curve::kX25519:
      return "X25519";
  }
  return "unknown";
}

std::optional<Curve> curve_from_name(std::string_view name) {
  const std::string n = lower(name);
  if (n == "p256" || n == "prime256v1" || n == "secp256r1") return Curve::kP256;
  if (n == "p384" || n == "secp384r1") return Curve::kP384;
  if (n == "p521" || n == "secp521r1") return Curve::kP521;
  if (n == "ed25519") return Curve::kEd25519;
  if (n == "x25519") return Curve::kX25519;
  return std::nullopt;
}

std::string_view mechanism_name(Mechanism m) {
  for (const auto& [mech, name] : kMechanismNames) {
    if (mech == m) return name;
  }
  return "unknown";
}

std::optional<Mechanism> mechanism_from_name(std::string_view name) {
  const std::string n = lower(name);
  for (const auto& [mech, mname] : kMechanismNames) {
    if (lower(mname) == n) return mech;
  }
  return std::nullopt;
}

std::string_view role_name(Role r) {
  switch (r) {
    case Role::kPublic:
      return "public";
    case Role::kCryptoUser:
      return "user";
    case Role::kCryptoOfficer:
      return "officer";
  }
  return "unknown";
}

std::string flags_to_string(uint32_t flags) {
  std::string out;
  for (const auto& [bit, name] : kFlagNames) {
    if (flags & bit) {
      if (!out.empty()) out.push_back(',');
      out.append(name);
    }
  }
  return out;
}

std::optional<uint32_t> flags_from_string(std::string_view csv) {
  uint32_t flags = 0;
  while (!csv.empty()) {
    const size_t comma = csv.find(',');
    const std::string_view item = csv.substr(0, comma);
    bool found = false;
    for (const auto& [bit, name] : kFlagNames) {
      if (item == name) {
        flags |= bit;
        found = true;
      }
    }
    if (!found && !item.empty()) return std::nullopt;
    if (comma == std::string_view::npos) break;
    csv.remove_prefix(comma + 1);
  }
  return flags;
}

}  // namespace ihsm
