// Masked records: the only form in which an object leaves the device's
// memory, whether to a client (ExportMaskedKey), to the store, or into a
// backup. docs/key-hierarchy.md describes the format and the keys.
//
//   "IHMK" | version (1) | suite (1: AES-256-GCM) | metadata length (u16 BE)
//   | metadata (CBOR map) | IV (12) | encrypted material | tag (16)
//
// Everything before the IV is the GCM additional data: every attribute,
// the partition, the device and the security version are authenticated,
// so no byte of a record can be changed outside the device.
#pragma once

#include <memory>
#include <span>

#include "device/vault/key_object.h"
#include "ihsm/status.h"

namespace ihsm::device {

constexpr size_t kMaskingKeySize = 32;
constexpr size_t kDeviceFingerprintSize = 8;
constexpr size_t kObjectUidSize = 16;

// What a masked record is bound to: one partition of one device.
struct MaskingScope {
  std::span<const uint8_t> device_fingerprint;  // kDeviceFingerprintSize bytes
  PartitionId partition = 0;
  std::span<const uint8_t> masking_key;  // the partition masking key
  uint32_t security_version = 0;         // of the running firmware
};

// The unauthenticated header fields of a record, read before it is
// opened so that a record of another device or partition gets its own
// status instead of a generic authentication failure.
struct MaskedHeader {
  Bytes device_fingerprint;
  PartitionId partition = 0;
  uint32_t security_version = 0;
  uint32_t object_class = 0;
  KeyHandle handle = 0;
  Bytes uid;
  std::string label;
  Bytes id;
};

// Masks `object` (its uid set). Token objects carry their handle and the
// handle of their pair; session objects carry neither. Keys fit in
// protocol::kMaxMaskedKey, certificates and data in kMaxMaskedRecord.
Status mask_object(const KeyObject& object, const MaskingScope& scope, Bytes& out);

// kMaskedKeyInvalid for anything that is not a well-formed record.
Status peek_masked(std::span<const uint8_t> record, MaskedHeader& out);

// Opens a record: kMaskedKeyWrongDevice, kMaskedKeyWrongPartition,
// kMaskedKeyTooNew, or kMaskedKeyInvalid (any changed byte). With
// `with_material` false, a key's material is authenticated but not
// parsed (listing); certificates and data always come with their value.
Status unmask_object(std::span<const uint8_t> record, const MaskingScope& scope, bool with_material,
                     std::shared_ptr<KeyObject>& out);

}  // namespace ihsm::device
