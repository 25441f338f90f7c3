// Internal to libihsm: the certificate-path check of src/host/attestation.cpp,
// shared with the audit verifier (src/host/audit.cpp).
#pragma once

#include <span>
#include <string>

#include "ihsm/types.h"

namespace ihsm::detail {

// Verifies a COSE_Sign1 whose x5chain is [Alias, DeviceID] against the
// trusted DeviceID certificate (PEM), and its ES384 signature by the Alias
// key. Returns an error text, empty on success; `payload` is set when the
// COSE_Sign1 decodes.
std::string verify_alias_signed(std::span<const uint8_t> sign1, const std::string& root_pem,
                                Bytes& payload);

}  // namespace ihsm::detail
