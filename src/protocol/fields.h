// Keys of the CBOR maps in request and response bodies. One list for every
// message, so a field means the same thing in every command. Numbers are
// part of the wire format: never renumber, only add.
#pragma once

#include <cstddef>
#include <cstdint>

namespace ihsm::protocol {

enum Field : uint64_t {
  kPartition = 1,            // uint: partition id
  kName = 2,                 // text: partition name
  kBoundUid = 3,             // uint
  kBoundGid = 4,             // uint
  kMaxSessions = 5,          // uint
  kPinEnvelope = 6,          // map {kEphemeralKey, kCiphertext}: the PIN for this command
  kUserPinEnvelope = 7,      // map: a second PIN (user PIN at partition creation)
  kNewPinEnvelope = 8,       // map: the new PIN of SetPin
  kRole = 9,                 // uint: ihsm::Role
  kChallenge = 10,           // bytes(32)
  kSession = 11,             // uint: session id (also in the frame header)
  kKey = 12,                 // uint: key handle the command acts on
  kPublicHandle = 13,        // uint
  kPrivateHandle = 14,       // uint
  kMechanism = 15,           // uint: ihsm::Mechanism (CKM_* value)
  kKeyType = 16,             // uint: ihsm::KeyType (CKK_* value)
  kKeyBits = 17,             // uint
  kCurve = 18,               // uint: ihsm::Curve
  kLabel = 19,               // text <= kMaxLabel
  kId = 20,                  // bytes <= kMaxId
  kFlags = 21,               // uint: ihsm::usage bits
  kClass = 22,               // uint: ihsm::ObjectClass (CKO_* value)
  kData = 23,                // bytes: input data, digest, or random output
  kSignature = 24,           // bytes
  kIv = 25,                  // bytes(12)
  kAad = 26,                 // bytes
  kTag = 27,                 // bytes(16)
  kCiphertext = 28,          // bytes
  kPlaintext = 29,           // bytes
  kLength = 30,              // uint
  kKeys = 31,                // array of key-info maps / handles
  kPartitions = 32,          // array of partition-info maps
  kPublicKey = 33,           // bytes: DER SubjectPublicKeyInfo
  kIdentityKey = 34,         // bytes: DER SPKI of an identity key
  kPinTransportKey = 35,     // bytes: DER SPKI of the device PIN transport key
  kPinTransportSig = 36,     // bytes: DER ECDSA signature by the device identity key
  kProtocolRevision = 37,    // uint
  kFirmwareVersion = 38,     // text
  kState = 39,               // text
  kIsOwner = 40,             // bool
  kCount = 41,               // uint
  kOpenSessions = 42,        // uint
  kUserPinSet = 43,          // bool
  kUserLocked = 44,          // bool
  kOfficerLocked = 45,       // bool
  kRetryAfterMs = 46,        // uint: in error bodies of kPinBackoff
  kLocal = 47,               // bool
  kPairHandle = 48,          // uint
  kMessage = 49,             // text: human detail in error bodies
  kEphemeralKey = 50,        // bytes: uncompressed P-384 point inside a PIN envelope
  kEnvelopeCiphertext = 51,  // bytes: AES-256-GCM ciphertext || tag inside a PIN envelope
  kRetriesLeft = 52,         // uint: in error bodies of kPinIncorrect
  kPublicTemplate = 53,      // map {kLabel, kId, kFlags}: public half of a key pair
  kPrivateTemplate = 54,     // map {kLabel, kId, kFlags}: private half of a key pair
  kParams = 55,              // map: mechanism parameters (fields below)
  kHash = 56,                // uint: hash mechanism (CKM_SHA256, ...)
  kMgfHash = 57,             // uint: MGF1 hash mechanism (PSS, OAEP)
  kSaltLength = 58,          // uint: PSS salt length in bytes
  kSourceData = 59,          // bytes: OAEP label
  kCounterBits = 60,         // uint: AES-CTR counter width
  kSalt = 61,                // bytes: HKDF salt
  kInfo = 62,                // bytes: HKDF info
  kHkdfMode = 63,            // uint: 1 extract+expand, 2 extract only, 3 expand only
  kPeerPublic = 64,          // bytes: ECDH peer public key (point, or 32 bytes for X25519)
  kKdfLabel = 65,            // bytes: SP 800-108 label
  kKdfContext = 66,          // bytes: SP 800-108 context
  kTarget = 67,              // uint: the key a Wrap command wraps
  kWrapped = 68,             // bytes: a wrapped key
  kTemplate = 69,            // map: attributes of a new key (derive, unwrap)
  kAllowedMechanisms = 70,   // array of uint
  kFlagsMask = 71,           // uint: which bits of kFlags the caller sets
  kValueLength = 72,         // uint: length in bytes of a new secret key
  kPrfHash = 73,             // uint: HMAC hash of the SP 800-108 PRF
  kToken = 74,               // bool: a durable token object (CKA_TOKEN)
  kMaskedKey = 75,           // bytes: a masked key blob (docs/key-hierarchy.md)
  kAfter = 76,               // uint: paging, only handles above this
  kLimit = 77,               // uint: paging, at most this many items
  kMore = 78,                // bool: paging, more items follow
  kValue = 79,               // bytes: value of a certificate or data object
  kCertificateType = 80,     // uint: CKC_* of a certificate object
  kApplication = 81,         // text: CKA_APPLICATION of a data object
  kValueSize = 82,           // uint: size of an object's value
  kBackupHeader = 83,        // bytes: the header of a partition backup
  kRecords = 84,             // array of bytes: masked records of a backup
  kSkipped = 85,             // uint: records a restore left alone (already present)
  kUserFailures = 86,        // uint: failed user PIN attempts since the last good one
  kUserRetriesLeft = 87,     // uint: user PIN attempts left before the lock
  kOfficerFailures = 88,     // uint
  kOfficerRetriesLeft = 89,  // uint
  kKdfSeparator = 90,        // bool: SP 800-108, a 0x00 between label and context (default true)
  kKdfLength = 91,           // bool: SP 800-108, [L]_32 after the context (default true)
  kNonce = 92,               // bytes: caller data bound into a report (<= 128)
  kReport = 93,              // bytes: a COSE_Sign1 report (docs/attestation.md)
  kCertificates = 94,        // array of bytes: DER certificates, DeviceID first
  kMeasurement = 95,         // bytes: SHA-384 of the running firmware image
  kSecurityVersion = 96,     // uint: security version of the running firmware
  kMinSecurityVersion = 97,  // uint: the lowest security version the device boots
  kPath = 98,                // text: a folder the daemon reads (firmware update)
  kSelfTests = 99,           // array of maps {kName, kPassed}: the self-tests run, in order
  kPassed = 100,             // bool: a self-test (or all of them) passed
  kElapsedUs = 101,          // uint: how long the self-tests took, microseconds
  kFailedTest = 102,         // text: the first self-test that failed
  kReason = 103,             // text: why the device was zeroized (Zeroize; GetDeviceInfo)
  kTamperEvents = 104,       // array of maps {kSensor, kTime, kResponse, kMessage}: tamper events
  kSensor = 105,             // text: a tamper sensor ("intrusion", "debugger", ...)
  kTime = 106,               // uint: seconds since the Unix epoch
  kResponse = 107,           // text: a tamper response ("zeroize" or "lock")
  kTamperPolicy = 108,       // array of maps {kSensor, kResponse}: the configured policy
  kAuditRecords = 110,       // array of audit record maps (src/common/audit.h)
  kAuditCheckpoints = 111,   // array of bytes: signed checkpoints (COSE_Sign1)
  kAuditHead = 112,          // bytes: a checkpoint signed over the current head
  kAuditRotate = 113,        // bool: AuditCheckpoint also rotates the log
  kAuditSeq = 114,           // uint: a record's sequence number (paging: after this)
  kAuditFirst = 115,         // uint: first seq archived by a rotation (record detail)
  kAuditLast = 116,          // uint: last seq archived by a rotation (record detail)
  // Hardening of the daemon (GetDeviceInfo; docs/security-policy.md, 12):
  kProcessUid = 120,     // uint: the uid ihsmd runs as
  kMemoryLocked = 121,   // bool: mlockall in force (no page of the daemon is swapped)
  kCoreDumpsOff = 122,   // bool: not dumpable and RLIMIT_CORE 0
  kNoNewPrivs = 123,     // bool: PR_SET_NO_NEW_PRIVS
  kSyscallFilter = 124,  // bool: the seccomp allow-list is enforced on every thread
  // The shared-memory queue (OpenQueue; docs/wire-protocol.md):
  kQueueDepth = 125,  // uint: slots of the queue, i.e. requests in flight at once
};

// Size limits every side enforces.
constexpr size_t kMaxLabel = 128;
constexpr size_t kMaxId = 64;
constexpr size_t kMaxPartitionName = 64;
constexpr size_t kMinPin = 4;
constexpr size_t kMaxPin = 64;
constexpr size_t kMaxCipherData = 512 * 1024;  // one Encrypt/Decrypt call
constexpr size_t kMaxSignData = 512 * 1024;    // hash-then-sign input
constexpr size_t kMaxAad = 64 * 1024;
constexpr size_t kMaxRandom = 64 * 1024;
constexpr size_t kChallengeSize = 32;
constexpr size_t kGcmIvSize = 12;
constexpr size_t kGcmTagSize = 16;
constexpr size_t kMaxKdfInput = 1024;  // HKDF salt/info, KBKDF label/context
constexpr size_t kMaxOaepLabel = 1024;
constexpr size_t kMaxWrapped = 16 * 1024;  // a wrapped key (RSA-4096 PKCS#8 fits)
constexpr size_t kMaxAllowedMechanisms = 64;
constexpr size_t kMaxMaskedKey = 4096;                       // a masked key blob
constexpr size_t kMaxObjectValue = 32 * 1024;                // a certificate or data object's value
constexpr size_t kMaxMaskedRecord = kMaxObjectValue + 4096;  // any stored record
constexpr size_t kMaxFindLimit = 1024;                       // objects per FindKeys page
constexpr size_t kMaxBackupPage = 512;                       // records per backup or restore call
constexpr size_t kMaxBackupPageBytes = 768 * 1024;           // and their bytes (one frame)
constexpr size_t kMinBackupSecret = 8;
constexpr size_t kMaxAuditPage = 512;              // records per AuditRead page
constexpr size_t kMaxAuditPageBytes = 768 * 1024;  // and their bytes
constexpr size_t kMaxReason = 128;                 // the caller's reason of a Zeroize
constexpr size_t kMaxTamperEvents = 64;            // tamper events a device keeps and reports

}  // namespace ihsm::protocol
