// Every command the device understands, in one list. A new command adds a
// row here, a handler in one src/device/commands/ file, and a client call.
//
// Columns: name, wire code, who may call it (Access), the key usage the
// command needs from the key named in Field::kKey (0: the command names no
// key or needs no usage flag).
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "ihsm/types.h"

namespace ihsm::protocol {

enum class Access : uint8_t {
  kAnyone,   // no session: device info, challenges, listing
  kOwner,    // the device owner (SO_PEERCRED uid is root or the daemon's uid)
  kSession,  // an open session of this connection, any role
  kUser,     // a session logged in as Crypto User
  kOfficer,  // a session logged in as Crypto Officer
  kUserOrOfficer,
};

// SelfTest is kAnyone, like GetDeviceInfo: FIPS 140-3 wants the self-tests
// available on demand, and an operator must be able to run them on a
// device in its error state, where no session can be opened. It takes no
// key and answers only test names and pass/fail; its cost (about 10 ms of
// CPU, docs/security-policy.md) is below a Login's scrypt, which anyone may
// already trigger; the connection limit bounds how many run at once.
#define IHSM_OPCODE_LIST(X)                              \
  X(GetDeviceInfo, 0x0001, kAnyone, 0)                   \
  X(GetChallenge, 0x0002, kAnyone, 0)                    \
  X(SelfTest, 0x0003, kAnyone, 0)                        \
  X(OpenQueue, 0x0004, kAnyone, 0)                       \
  X(PartitionCreate, 0x0010, kOwner, 0)                  \
  X(PartitionList, 0x0011, kAnyone, 0)                   \
  X(PartitionDelete, 0x0012, kOwner, 0)                  \
  X(PartitionUnlockOfficer, 0x0013, kOwner, 0)           \
  X(PartitionReset, 0x0014, kOwner, 0)                   \
  X(PartitionBackup, 0x0015, kOwner, 0)                  \
  X(PartitionRestore, 0x0016, kOwner, 0)                 \
  X(FirmwareUpdate, 0x0017, kOwner, 0)                   \
  X(Zeroize, 0x0018, kOwner, 0)                          \
  X(AuditRead, 0x0019, kOwner, 0)                        \
  X(AuditCheckpoint, 0x001A, kOwner, 0)                  \
  X(TamperStatus, 0x001B, kOwner, 0)                     \
  X(SessionOpen, 0x0020, kAnyone, 0)                     \
  X(SessionClose, 0x0021, kSession, 0)                   \
  X(Login, 0x0022, kSession, 0)                          \
  X(Logout, 0x0023, kSession, 0)                         \
  X(InitUserPin, 0x0024, kOfficer, 0)                    \
  X(SetPin, 0x0025, kUserOrOfficer, 0)                   \
  X(UnlockUser, 0x0026, kOfficer, 0)                     \
  X(SessionInfo, 0x0027, kSession, 0)                    \
  X(GenerateKey, 0x0030, kUser, 0)                       \
  X(GenerateKeyPair, 0x0031, kUser, 0)                   \
  X(GetKeyInfo, 0x0032, kUser, 0)                        \
  X(FindKeys, 0x0033, kUser, 0)                          \
  X(DestroyKey, 0x0034, kUser, 0)                        \
  X(GetPublicKey, 0x0035, kUser, 0)                      \
  X(SetKeyAttributes, 0x0036, kUserOrOfficer, 0)         \
  X(CreateObject, 0x0037, kUser, 0)                      \
  X(GetObjectValue, 0x0038, kUser, 0)                    \
  X(ExportMaskedKey, 0x0039, kUser, 0)                   \
  X(LoadMaskedKey, 0x003A, kUser, 0)                     \
  X(CopyObject, 0x003B, kUser, 0)                        \
  X(AttestKey, 0x003C, kUser, 0)                         \
  X(AttestDevice, 0x003D, kAnyone, 0)                    \
  X(GetCertificates, 0x003E, kAnyone, 0)                 \
  X(Sign, 0x0040, kUser, ::ihsm::usage::kSign)           \
  X(Encrypt, 0x0041, kUser, ::ihsm::usage::kEncrypt)     \
  X(Decrypt, 0x0042, kUser, ::ihsm::usage::kDecrypt)     \
  X(Verify, 0x0043, kUser, ::ihsm::usage::kVerify)       \
  X(EncryptInit, 0x0044, kUser, ::ihsm::usage::kEncrypt) \
  X(EncryptUpdate, 0x0045, kUser, 0)                     \
  X(EncryptFinal, 0x0046, kUser, 0)                      \
  X(DecryptInit, 0x0047, kUser, ::ihsm::usage::kDecrypt) \
  X(DecryptUpdate, 0x0048, kUser, 0)                     \
  X(DecryptFinal, 0x0049, kUser, 0)                      \
  X(GenerateRandom, 0x0050, kSession, 0)                 \
  X(Digest, 0x0060, kSession, 0)                         \
  X(DigestInit, 0x0061, kSession, 0)                     \
  X(DigestUpdate, 0x0062, kSession, 0)                   \
  X(DigestFinal, 0x0063, kSession, 0)                    \
  X(DeriveKey, 0x0070, kUser, ::ihsm::usage::kDerive)    \
  X(WrapKey, 0x0071, kUser, ::ihsm::usage::kWrap)        \
  X(UnwrapKey, 0x0072, kUser, ::ihsm::usage::kUnwrap)

enum class Opcode : uint16_t {
#define IHSM_OPCODE_ENUM(name, code, access, usage) k##name = code,
  IHSM_OPCODE_LIST(IHSM_OPCODE_ENUM)
#undef IHSM_OPCODE_ENUM
};

struct OpcodeInfo {
  Opcode opcode;
  std::string_view name;
  Access access;
  uint32_t key_usage;  // usage flag the key in Field::kKey must carry
};

// nullptr for a code that is not in the list.
const OpcodeInfo* find_opcode(uint16_t code);
std::string_view opcode_name(Opcode op);

}  // namespace ihsm::protocol
