// Offline verification of ihsm attestation reports (docs/attestation.md,
// "Verifying a report"). Needs no daemon: a report, the device's root
// certificate and what the caller expects.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "ihsm/types.h"

namespace ihsm {

struct VerifyOptions {
  // The device's DeviceID certificate, PEM (exactly one certificate): the
  // only trust anchor.
  std::string trusted_root_pem;
  // When set, the report's caller data must equal it.
  std::optional<Bytes> nonce;
  // Flag names of docs/attestation.md that must be set, or "not-<name>"
  // for ones that must be clear. Key reports only.
  std::vector<std::string> require;
};

// The outcome, and what the report says. The payload members are filled as
// soon as the payload decodes, also when a later step fails, to help find
// out why; they are only vouched for when `valid` is true.
struct Verdict {
  bool valid = false;
  // When invalid, the first failed step: "malformed", "chain", "signature",
  // "measurement", "partition", "nonce" or "requirement".
  std::string reason;
  std::string detail;  // human-readable, for either outcome
  int kind = 0;        // 1 key report, 2 device report, 0 not decoded

  // Both kinds.
  Bytes nonce;
  Bytes measurement;  // SHA-384 of the firmware image
  uint64_t time = 0;  // seconds since 1970, device clock
  uint64_t svn = 0;   // security version of the running firmware

  // Key reports.
  uint32_t partition = 0;
  Bytes uid;
  uint32_t object_class = 0;  // CKO_*
  uint32_t key_type = 0;      // CKK_*
  uint32_t bits = 0;
  uint32_t flags = 0;                   // bit numbers of docs/attestation.md
  std::vector<std::string> flag_names;  // the set flags, in bit order
  std::string public_key_pem;           // public and private keys
  Bytes value_digest;                   // secret keys

  // Device reports.
  std::string firmware_version;
  uint64_t min_svn = 0;
  std::string state;  // "operational", "error" or "zeroized"
};

// Runs the steps of docs/attestation.md in order and stops at the first
// that fails. `report` is a COSE_Sign1, tagged or not.
Verdict verify_report(std::span<const uint8_t> report, const VerifyOptions& options);

}  // namespace ihsm
