// The DICE identity of the boot stage (docs/attestation.md, "DICE
// identity"): keys derived from the device unique secret (DUS) and the
// firmware measurement, and the X.509 chain DeviceID -> Alias -> partition
// identity that lets anyone holding the DeviceID certificate check them.
//
// Everything here is deterministic in its secret inputs (the same DUS and
// measurement give the same keys on every start); only ECDSA signatures
// differ between runs.
#pragma once

#include <openssl/evp.h>

#include <cstdint>
#include <span>
#include <string_view>

#include "common/secret.h"
#include "common/tcb_info.h"
#include "device/crypto/backend.h"
#include "ihsm/status.h"
#include "ihsm/types.h"

namespace ihsm::device::boot {

using dice::TcbInfo;

inline constexpr size_t kDusMinSize = 32;
inline constexpr size_t kMeasurementSize = 48;  // SHA-384 of the image
inline constexpr size_t kCdiSize = 48;
inline constexpr size_t kFingerprintSize = 8;

inline constexpr std::string_view kDeviceIdInfo = "ihsm dice deviceid v1";
inline constexpr std::string_view kCdiInfo = "ihsm dice cdi v1";
inline constexpr std::string_view kAliasInfo = "ihsm dice alias v1";

// ---- keys and secrets

// A P-384 key pair from a secret: 56 bytes c = HKDF-SHA384(ikm = secret,
// salt = empty, info), private scalar d = (c mod (n - 1)) + 1 (FIPS 186-5
// A.2.1), public d*G. With a pairwise-consistency test. kInvalidArgument for
// an empty secret.
Status derive_p384(std::span<const uint8_t> secret, std::string_view info, crypto::Pkey& out);

// CDI = HKDF-SHA384(ikm = DUS, salt = measurement, info = kCdiInfo), 48
// bytes. kInvalidArgument unless the DUS has at least kDusMinSize bytes and
// the measurement exactly kMeasurementSize.
Status derive_cdi(std::span<const uint8_t> dus, std::span<const uint8_t> measurement,
                  SecretBytes& cdi);

// derive_p384(DUS, kDeviceIdInfo): the device's lifetime identity. The DUS
// must have at least kDusMinSize bytes (kInvalidArgument).
Status derive_deviceid_key(std::span<const uint8_t> dus, crypto::Pkey& out);
// derive_p384(CDI, kAliasInfo): changes with the firmware image. The CDI
// must have kCdiSize bytes (kInvalidArgument).
Status derive_alias_key(std::span<const uint8_t> cdi, crypto::Pkey& out);

// ---- certificates (DER), X.509 v3, ECDSA with SHA-384, all keys P-384
//
// Every key argument must be a P-384 EC key (kKeyTypeMismatch otherwise);
// the signing key must be the private key of the issuer certificate given
// with it (kInvalidArgument otherwise, so that no certificate is issued
// that would not verify).

// Self-signed root: CN=ihsm DeviceID <fingerprint, 16 hex digits>, O=ihsm;
// CA, pathlen 1. `fingerprint` is the 8-byte device fingerprint.
Status make_deviceid_cert(EVP_PKEY* deviceid, const Bytes& fingerprint, Bytes& der);

// CN=ihsm Alias <first 8 bytes of tcb.fwid_sha384, hex>, O=ihsm, issued by
// the DeviceID; CA, pathlen 0; carries `tcb` as the TcbInfo extension
// (kInvalidArgument when encode_tcb_info refuses it).
Status make_alias_cert(EVP_PKEY* deviceid, const Bytes& deviceid_cert_der, EVP_PKEY* alias_public,
                       const TcbInfo& tcb, Bytes& der);

// CN=ihsm partition <decimal id>, O=ihsm, issued by the Alias; not a CA.
Status make_partition_cert(EVP_PKEY* alias, const Bytes& alias_cert_der, EVP_PKEY* partition_public,
                           uint32_t partition_id, Bytes& der);

}  // namespace ihsm::device::boot
