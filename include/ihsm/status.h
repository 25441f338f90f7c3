// The one closed set of status codes. The wire, the host library, the CLI
// and (later) the PKCS#11 mapping all use this table; nothing else invents
// an error. Codes are grouped by subsystem (high byte) and never reused.
#pragma once

#include <cstdint>
#include <string_view>

namespace ihsm {

// X(name, code, pkcs11 CKR_* value, message)
// The CKR column is the numeric PKCS#11 return value this status maps to,
// kept here so the mapping has exactly one home.
#define IHSM_STATUS_LIST(X)                                                                        \
  X(kOk, 0x0000, 0x000, "success")                                                                 \
  /* 0x01xx: protocol and framing */                                                               \
  X(kMalformedFrame, 0x0101, 0x005, "frame header malformed")                                      \
  X(kFrameTooLarge, 0x0102, 0x005, "frame exceeds the maximum size")                               \
  X(kUnsupportedRevision, 0x0103, 0x005, "protocol revision not supported")                        \
  X(kUnknownOpcode, 0x0104, 0x054, "unknown opcode")                                               \
  X(kMalformedBody, 0x0105, 0x007, "request body is not valid CBOR of the expected shape")         \
  X(kMissingField, 0x0106, 0x007, "a required field is missing")                                   \
  X(kFieldTooLarge, 0x0107, 0x021, "a field exceeds its size limit")                               \
  X(kInvalidArgument, 0x0108, 0x007, "an argument has an invalid value")                           \
  X(kTransportError, 0x0109, 0x030, "transport failure (connection lost or I/O error)")            \
  X(kDeviceUnavailable, 0x010A, 0x030, "the device is not reachable")                              \
  /* 0x02xx: identity, roles, credentials, sessions */                                             \
  X(kNotOwner, 0x0201, 0x0A1, "caller is not the device owner")                                    \
  X(kPartitionAccessDenied, 0x0202, 0x0A1, "partition is bound to another user")                   \
  X(kNoSuchPartition, 0x0203, 0x0E0, "no such partition")                                          \
  X(kPartitionExists, 0x0204, 0x0E0, "a partition with that name exists")                          \
  X(kInvalidSession, 0x0205, 0x0B3, "invalid or closed session")                                   \
  X(kSessionLimit, 0x0206, 0x0B5, "too many sessions on this partition")                           \
  X(kNotLoggedIn, 0x0207, 0x101, "operation needs a logged-in role")                               \
  X(kRoleNotAllowed, 0x0208, 0x101, "the logged-in role may not do this")                          \
  X(kAlreadyLoggedIn, 0x0209, 0x100, "session is already logged in")                               \
  X(kPinIncorrect, 0x020A, 0x0A0, "PIN incorrect")                                                 \
  X(kPinLocked, 0x020B, 0x0A4, "PIN locked after too many failures")                               \
  X(kPinBackoff, 0x020C, 0x0A0, "too many recent failures: wait before retrying")                  \
  X(kPinInvalid, 0x020D, 0x0A1, "PIN has invalid length or characters")                            \
  X(kPinNotInitialized, 0x020E, 0x0E1, "PIN of that role is not set")                              \
  X(kPinEnvelopeInvalid, 0x020F, 0x0A0, "encrypted PIN envelope failed to open")                   \
  X(kStaleChallenge, 0x0210, 0x0A0, "PIN challenge missing, used or from another connection")      \
  /* 0x03xx: keys and policy */                                                                    \
  X(kNoSuchKey, 0x0301, 0x060, "no such key handle")                                               \
  X(kKeyUsageNotAllowed, 0x0302, 0x068, "key attributes do not allow this operation")              \
  X(kKeyTypeMismatch, 0x0303, 0x063, "key type does not fit this mechanism")                       \
  X(kKeySizeInvalid, 0x0304, 0x062, "key size not supported")                                      \
  X(kAttributeInvalid, 0x0305, 0x013, "attribute value invalid or inconsistent")                   \
  X(kKeyLimit, 0x0306, 0x031, "key table full")                                                    \
  X(kActionProhibited, 0x0307, 0x01B,                                                              \
    "key policy prohibits this action (not modifiable or not destroyable)")                        \
  X(kKeyNotExtractable, 0x0308, 0x06A, "key is not extractable: it cannot be wrapped")             \
  X(kKeyNotWrappable, 0x0309, 0x069, "key may only be wrapped by a trusted key")                   \
  X(kWrappingKeyTooWeak, 0x030A, 0x111, "wrapping key is weaker than the key it would wrap")       \
  X(kAttributeReadOnly, 0x030B, 0x010, "attribute cannot be changed this way")                     \
  X(kWrappedKeyInvalid, 0x030C, 0x110, "wrapped key does not unwrap to a valid key")               \
  X(kObjectExists, 0x030D, 0x005, "an object with that handle or unique id already exists")        \
  X(kMaskedKeyInvalid, 0x030E, 0x110, "masked key blob is malformed or fails authentication")      \
  X(kMaskedKeyWrongDevice, 0x030F, 0x110, "masked key blob was made by another device")            \
  X(kMaskedKeyWrongPartition, 0x0310, 0x110, "masked key blob belongs to another partition")       \
  X(kMaskedKeyRevoked, 0x0311, 0x110, "the key of this masked blob was destroyed")                 \
  X(kMaskedKeyTooNew, 0x0312, 0x110, "masked key blob needs a newer firmware security version")    \
  X(kObjectCorrupt, 0x0313, 0x030, "stored object fails authentication (store tampered)")          \
  X(kAttributeSensitive, 0x0314, 0x011, "attribute is sensitive and cannot be read")               \
  X(kBackupInvalid, 0x0315, 0x007, "backup is malformed or fails authentication")                  \
  X(kBackupWrongDevice, 0x0316, 0x007, "backup was made on another device")                        \
  X(kBackupSecretRequired, 0x0317, 0x007,                                                          \
    "backup is of another partition state: the owner backup secret is required")                   \
  /* 0x04xx: mechanisms and data */                                                                \
  X(kMechanismInvalid, 0x0401, 0x070, "mechanism not supported")                                   \
  X(kMechanismParamInvalid, 0x0402, 0x071, "mechanism parameter invalid")                          \
  X(kDataLengthInvalid, 0x0403, 0x021, "input data length invalid")                                \
  X(kSignatureInvalid, 0x0404, 0x0C0, "signature invalid")                                         \
  X(kTagMismatch, 0x0405, 0x040, "authentication tag does not match")                              \
  X(kIvExhausted, 0x0406, 0x068, "key reached its limit of device-generated IVs")                  \
  X(kCiphertextInvalid, 0x0407, 0x040, "ciphertext does not decrypt")                              \
  X(kMechanismRefused, 0x0408, 0x070,                                                              \
    "mechanism refused by device policy (see docs/mechanisms.md)")                                 \
  X(kOperationActive, 0x0409, 0x090, "another multi-part operation is active in this session")     \
  X(kOperationNotInitialized, 0x040A, 0x091, "no multi-part operation of this kind is active")     \
  /* 0x05xx: device state */                                                                       \
  X(kInternalError, 0x0501, 0x005, "internal device error")                                        \
  X(kCryptoFailure, 0x0502, 0x006, "cryptographic backend failure")                                \
  X(kResourceExhausted, 0x0503, 0x031, "device resource exhausted")                                \
  X(kBusy, 0x0504, 0x030, "device busy")                                                           \
  X(kStorageFailure, 0x0505, 0x030, "device storage failure")                                      \
  X(kDeviceError, 0x0506, 0x030, "device is in its error state")                                   \
  X(kBootFailed, 0x0507, 0x030, "secure boot refused the firmware: the device serves no keys")     \
  X(kSelfTestFailed, 0x0508, 0x030, "a self-test failed: the device entered its error state")      \
  X(kZeroized, 0x0509, 0x030, "the device is zeroized: it holds no keys until provisioned again")  \
  X(kTamperLocked, 0x050A, 0x030, "a tamper event locked the device until it restarts")            \
  /* 0x06xx: firmware and attestation */                                                           \
  X(kFirmwareSignatureInvalid, 0x0601, 0x0C0, "firmware manifest signature does not verify")       \
  X(kFirmwareHashMismatch, 0x0602, 0x0C0, "firmware image does not match its manifest")            \
  X(kFirmwareRolledBack, 0x0603, 0x0C0, "firmware security version is below the device's minimum") \
  X(kFirmwareInvalid, 0x0604, 0x007, "firmware image or manifest malformed or missing")

enum class Status : uint16_t {
#define IHSM_STATUS_ENUM(name, code, ckr, msg) name = code,
  IHSM_STATUS_LIST(IHSM_STATUS_ENUM)
#undef IHSM_STATUS_ENUM
};

// "kPinLocked" -> "PIN_LOCKED"; unknown codes give "UNKNOWN_STATUS".
std::string_view status_name(Status s);
std::string_view status_message(Status s);
// The PKCS#11 CK_RV for this status.
unsigned long status_to_ckr(Status s);
// True if the wire value is a member of the closed set.
bool status_is_known(uint16_t code);

inline bool ok(Status s) { return s == Status::kOk; }

}  // namespace ihsm
