// TCG DICE TcbInfo (OID 2.23.133.5.4.1), the extension of the Alias
// certificate that names the firmware the device booted
// (docs/attestation.md, "DICE identity"). Shared by the device, which
// writes it, and the host-side verifier, which reads it from certificates
// it does not trust yet: the decoder is strict DER and bounded.
#pragma once

#include <openssl/x509.h>

#include <cstdint>
#include <span>
#include <string>

#include "ihsm/status.h"
#include "ihsm/types.h"

namespace ihsm::dice {

inline constexpr const char* kTcbInfoOid = "2.23.133.5.4.1";
inline constexpr size_t kFwidSize = 48;          // SHA-384
inline constexpr size_t kMaxTcbString = 256;     // vendor, model, version (bytes)
inline constexpr size_t kMaxTcbInfoSize = 4096;  // the whole DER

struct TcbInfo {
  std::string vendor;   // UTF-8, at most kMaxTcbString bytes
  std::string model;    // UTF-8, at most kMaxTcbString bytes
  std::string version;  // UTF-8, at most kMaxTcbString bytes
  uint64_t svn = 0;
  Bytes fwid_sha384;  // the measurement, kFwidSize bytes
};

// The DER of DiceTcbInfo with vendor [0], model [1], version [2], svn [3]
// and one FWID (sha384) in fwids [6]. Empty when `info` is outside what
// decode_tcb_info accepts (a string too long or not UTF-8, a FWID that is
// not 48 bytes), so every encoding decodes again.
Bytes encode_tcb_info(const TcbInfo& info);

// Parses DER DiceTcbInfo. vendor, model, version, svn and fwids must all be
// present, and fwids must hold exactly one sha384 FWID of 48 bytes (FWIDs of
// other hashes are skipped); the TCG fields layer [4], index [5], flags [7],
// vendorInfo [8], type [9] and flagsMask [10] are skipped. Anything else
// (BER, trailing bytes, fields out of order or repeated, a negative or
// over-long svn, more than kMaxTcbInfoSize bytes) is kMalformedBody.
Status decode_tcb_info(std::span<const uint8_t> der, TcbInfo& out);

// The TcbInfo extension of `cert`: kMissingField when it has none,
// kMalformedBody when it has two or one that does not decode.
Status tcb_info_of(X509* cert, TcbInfo& out);

}  // namespace ihsm::dice
