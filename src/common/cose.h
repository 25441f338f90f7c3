// COSE (RFC 9052) as ihsm uses it: COSE_Sign1 with ES384 for attestation
// reports and the firmware manifest, COSE_Key for the public keys reports
// carry, and the three payloads of docs/attestation.md. Shared by the
// device (which signs) and libihsm (which verifies).
//
// Decoding is for hostile input: every size is bounded, every type is
// checked, and any departure from docs/attestation.md is kMalformedBody,
// never a crash.
#pragma once

#include <openssl/evp.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/cbor.h"
#include "ihsm/status.h"
#include "ihsm/types.h"

namespace ihsm::cose {

// ---------------------------------------------------------------- COSE_Sign1

constexpr uint8_t kSign1Tag = 0xD2;  // CBOR tag 18 in its one-byte form
constexpr int64_t kAlgEs384 = -35;
constexpr uint64_t kLabelAlg = 1;
constexpr uint64_t kLabelX5Chain = 33;
constexpr size_t kEs384SignatureSize = 96;  // r || s, 48 bytes each
constexpr size_t kMaxChainCerts = 4;
constexpr size_t kMaxCertSize = 8 * 1024;
constexpr size_t kMaxPayloadSize = 16 * 1024;
constexpr size_t kMaxSign1Size = 64 * 1024;

struct Sign1 {
  std::vector<Bytes> x5chain;  // DER certificates, signer first; empty: no label 33
  Bytes payload;               // the CBOR-encoded payload
  Bytes signature;             // r || s, 96 bytes
};

// The protected header every ihsm COSE_Sign1 carries: the bytes of {1: -35}.
const Bytes& protected_header();
// CBOR of ["Signature1", protected, h'', payload]: the bytes ES384 signs.
Bytes sig_structure(const Bytes& protected_bstr_contents, const Bytes& payload);
// Tagged COSE_Sign1 (leading 0xD2) with the ES384 protected header.
Bytes encode_sign1(const Sign1& s);
// Tagged or untagged; see the .cpp for every rule enforced.
Status decode_sign1(std::span<const uint8_t> in, Sign1& out);

// Signs Sig_structure bytes and returns r || s (96 bytes).
using Signer = std::function<Status(std::span<const uint8_t> tbs, Bytes& raw_signature)>;
// Fills s.signature by calling `sign` over s's Sig_structure.
Status sign(Sign1& s, const Signer& signer);

// ES384 with an OpenSSL key (the boot stage's keys, tests).
Status es384_sign(EVP_PKEY* key, std::span<const uint8_t> tbs, Bytes& raw_signature);
// kOk when `raw_signature` is a valid ES384 signature of `tbs` by `key`
// (a P-384 public key); kSignatureInvalid otherwise.
Status es384_verify(EVP_PKEY* key, std::span<const uint8_t> tbs,
                    std::span<const uint8_t> raw_signature, OSSL_LIB_CTX* libctx = nullptr);

// P-384 ECDSA signatures: r || s (96 bytes) <-> DER ECDSA-Sig-Value.
// kInvalidArgument for anything that is not one of these.
Status ecdsa_raw_to_der(std::span<const uint8_t> raw, Bytes& der);
Status ecdsa_der_to_raw(std::span<const uint8_t> der, Bytes& raw);

// ---------------------------------------------------------------- COSE_Key

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;

// The public half of an EC (P-256/384/521), Ed25519, X25519 or RSA key as
// a COSE_Key map; kKeyTypeMismatch for any other key.
Status key_to_cose(EVP_PKEY* key, cbor::Value& out);
// A COSE_Key map with exactly the members docs/attestation.md lists, back
// to a public key that passed OpenSSL's public-key check.
Status key_from_cose(const cbor::Value& in, Pkey& out, OSSL_LIB_CTX* libctx = nullptr);

// ---------------------------------------------------------------- payloads

// Payloads reject map keys docs/attestation.md does not list: a verifier
// that skipped an unknown member could miss one that changes the meaning of
// the others (say, a future restriction on a key). The format version
// (key 1) is how the format grows; a new member comes with a new version.

enum class Kind : uint64_t { kKeyReport = 1, kDeviceReport = 2, kManifest = 3 };
constexpr uint64_t kFormatVersion = 1;
constexpr size_t kMaxNonce = 128;
constexpr size_t kMeasurementSize = 48;  // SHA-384
constexpr size_t kUidSize = 16;
constexpr size_t kMaxVersionText = 64;
constexpr size_t kMaxImageName = 255;

// Flags of a key report, bit numbers as in docs/attestation.md.
namespace flag {
constexpr uint32_t kGenerated = 1u << 0;
constexpr uint32_t kImported = 1u << 1;
constexpr uint32_t kDerived = 1u << 2;
constexpr uint32_t kSession = 1u << 3;
constexpr uint32_t kSensitive = 1u << 4;
constexpr uint32_t kAlwaysSensitive = 1u << 5;
constexpr uint32_t kExtractable = 1u << 6;
constexpr uint32_t kNeverExtractable = 1u << 7;
constexpr uint32_t kSign = 1u << 8;
constexpr uint32_t kVerify = 1u << 9;
constexpr uint32_t kEncrypt = 1u << 10;
constexpr uint32_t kDecrypt = 1u << 11;
constexpr uint32_t kDerive = 1u << 12;
constexpr uint32_t kWrap = 1u << 13;
constexpr uint32_t kUnwrap = 1u << 14;
constexpr uint32_t kModifiable = 1u << 15;
constexpr uint32_t kAll = (1u << 16) - 1;
}  // namespace flag

std::optional<uint32_t> flag_from_name(std::string_view name);  // "generated" -> kGenerated
std::vector<std::string> flag_names(uint32_t flags);            // in bit order

struct KeyReport {
  Bytes nonce;        // 0..128 bytes
  Bytes measurement;  // 48 bytes
  uint64_t time = 0;
  uint64_t svn = 0;
  uint32_t partition = 0;
  Bytes uid;  // 16 bytes
  uint32_t object_class = 0;
  uint32_t key_type = 0;
  uint32_t bits = 0;
  uint32_t flags = 0;
  std::optional<cbor::Value> public_key;  // COSE_Key map
  std::optional<Bytes> value_digest;      // secret keys: 48 bytes
};

struct DeviceReport {
  Bytes nonce;
  Bytes measurement;
  uint64_t time = 0;
  uint64_t svn = 0;
  std::string firmware_version;
  uint64_t min_svn = 0;
  uint64_t state = 0;  // 0 operational, 1 error, 2 zeroized
};
std::string_view device_state_name(uint64_t state);

struct Manifest {
  std::string firmware_version;
  uint64_t svn = 0;
  Bytes image_digest;  // 48 bytes
  std::string image_name;
};

Bytes encode_key_report(const KeyReport& r);
Bytes encode_device_report(const DeviceReport& r);
Bytes encode_manifest(const Manifest& m);
// Which payload this is: the common members only (format version 1).
Status payload_kind(std::span<const uint8_t> payload, Kind& out);
Status decode_key_report(std::span<const uint8_t> payload, KeyReport& out);
Status decode_device_report(std::span<const uint8_t> payload, DeviceReport& out);
Status decode_manifest(std::span<const uint8_t> payload, Manifest& out);

}  // namespace ihsm::cose
