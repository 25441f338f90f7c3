#include "device/vault/masking.h"

#include <algorithm>

#include "common/cbor.h"
#include "device/crypto/backend.h"
#include "protocol/fields.h"

namespace ihsm::device {
namespace {

constexpr uint8_t kMagic[4] = {'I', 'H', 'M', 'K'};
constexpr uint8_t kFormatVersion = 1;
constexpr uint8_t kSuiteAes256Gcm = 1;
constexpr size_t kHeaderSize = 8;  // magic, version, suite, metadata length
constexpr size_t kIvSize = 12;
constexpr size_t kTagSize = 16;
constexpr size_t kMaxMetadata = 2048;

// Metadata map keys. Part of the record format: never renumber.
enum MetaField : uint64_t {
  kMetaDevice = 1,
  kMetaPartition = 2,
  kMetaSecurityVersion = 3,
  kMetaUid = 4,
  kMetaHandle = 5,
  kMetaClass = 6,
  kMetaKeyType = 7,
  kMetaKeyBits = 8,
  kMetaCurve = 9,
  kMetaLabel = 10,
  kMetaId = 11,
  kMetaFlags = 12,
  kMetaAllowedMechanisms = 13,
  kMetaOrigin = 14,
  kMetaLocal = 15,
  kMetaToken = 16,
  kMetaPairHandle = 17,
  kMetaCertificateType = 18,
  kMetaApplication = 19,
};

bool is_value_object(ObjectClass c) {
  return c == ObjectClass::kData || c == ObjectClass::kCertificate;
}

// The bytes that get encrypted: a key's material, or an object's value.
Status material_of(const KeyObject& o, SecretBytes& out) {
  switch (o.object_class) {
    case ObjectClass::kSecretKey:
      out = o.secret.clone();
      return Status::kOk;
    case ObjectClass::kPrivateKey:
      return crypto::private_key_der(o.pkey.get(), out);
    case ObjectClass::kPublicKey: {
      Bytes spki;
      const Status s = crypto::public_key_der(o.pkey.get(), spki);
      out = SecretBytes(spki);
      return s;
    }
    case ObjectClass::kData:
    case ObjectClass::kCertificate:
      out = SecretBytes(o.value);
      return Status::kOk;
  }
  return Status::kInternalError;
}

cbor::Value metadata_of(const KeyObject& o, const MaskingScope& scope) {
  using cbor::Value;
  auto m = Value::map();
  m.set(kMetaDevice, Value::bytes(scope.device_fingerprint));
  m.set(kMetaPartition, Value::uint(scope.partition));
  m.set(kMetaSecurityVersion, Value::uint(scope.security_version));
  m.set(kMetaUid, Value::bytes(o.uid));
  m.set(kMetaHandle, Value::uint(o.token ? o.handle : 0));
  m.set(kMetaClass, Value::uint(static_cast<uint64_t>(o.object_class)));
  m.set(kMetaKeyType, Value::uint(static_cast<uint64_t>(o.key_type)));
  m.set(kMetaKeyBits, Value::uint(o.key_bits));
  if (o.curve) m.set(kMetaCurve, Value::uint(static_cast<uint64_t>(*o.curve)));
  m.set(kMetaLabel, Value::text(o.label));
  m.set(kMetaId, Value::bytes(o.id));
  m.set(kMetaFlags, Value::uint(o.flags));
  auto mechanisms = Value::array();
  for (const Mechanism mech : o.allowed_mechanisms) {
    mechanisms.push(Value::uint(static_cast<uint64_t>(mech)));
  }
  m.set(kMetaAllowedMechanisms, std::move(mechanisms));
  m.set(kMetaOrigin, Value::uint(static_cast<uint64_t>(o.origin)));
  m.set(kMetaLocal, Value::boolean(o.local));
  m.set(kMetaToken, Value::boolean(o.token));
  m.set(kMetaPairHandle, Value::uint(o.token ? o.pair_handle : 0));
  m.set(kMetaCertificateType, Value::uint(o.certificate_type));
  m.set(kMetaApplication, Value::text(o.application));
  return m;
}

// Splits a record into header+metadata (the AAD), IV, ciphertext and tag,
// and decodes the metadata. Checks only the shape.
struct Parts {
  std::span<const uint8_t> aad, iv, ciphertext, tag;
  cbor::Value metadata;
};

Status split(std::span<const uint8_t> record, Parts& out) {
  if (record.size() > protocol::kMaxMaskedRecord ||
      record.size() < kHeaderSize + kIvSize + kTagSize ||
      !std::equal(std::begin(kMagic), std::end(kMagic), record.begin()) ||
      record[4] != kFormatVersion || record[5] != kSuiteAes256Gcm) {
    return Status::kMaskedKeyInvalid;
  }
  const size_t meta_len = (size_t{record[6]} << 8) | record[7];
  if (meta_len > kMaxMetadata || record.size() < kHeaderSize + meta_len + kIvSize + kTagSize) {
    return Status::kMaskedKeyInvalid;
  }
  out.aad = record.first(kHeaderSize + meta_len);
  out.iv = record.subspan(kHeaderSize + meta_len, kIvSize);
  out.ciphertext = record.subspan(kHeaderSize + meta_len + kIvSize,
                                  record.size() - kHeaderSize - meta_len - kIvSize - kTagSize);
  out.tag = record.last(kTagSize);
  if (!ok(cbor::decode(record.subspan(kHeaderSize, meta_len), out.metadata)) ||
      !out.metadata.is(cbor::Value::Type::kMap)) {
    return Status::kMaskedKeyInvalid;
  }
  return Status::kOk;
}

Status read_header(const cbor::Value& metadata, MaskedHeader& out) {
  const cbor::MapReader r(metadata);
  uint64_t partition = 0, svn = 0, object_class = 0, handle = 0;
  if (!ok(r.get_bytes(kMetaDevice, out.device_fingerprint, kDeviceFingerprintSize)) ||
      !ok(r.get_uint(kMetaPartition, partition, UINT32_MAX)) ||
      !ok(r.get_uint(kMetaSecurityVersion, svn, UINT32_MAX)) ||
      !ok(r.get_bytes(kMetaUid, out.uid, kObjectUidSize)) || !ok(r.get_uint(kMetaHandle, handle)) ||
      !ok(r.get_uint(kMetaClass, object_class, UINT32_MAX)) ||
      !ok(r.get_text(kMetaLabel, out.label, protocol::kMaxLabel)) ||
      !ok(r.get_bytes(kMetaId, out.id, protocol::kMaxId)) || out.uid.size() != kObjectUidSize) {
    return Status::kMaskedKeyInvalid;
  }
  out.partition = static_cast<PartitionId>(partition);
  out.security_version = static_cast<uint32_t>(svn);
  out.object_class = static_cast<uint32_t>(object_class);
  out.handle = handle;
  return Status::kOk;
}

}  // namespace

Status mask_object(const KeyObject& object, const MaskingScope& scope, Bytes& out) {
  if (object.uid.size() != kObjectUidSize || scope.masking_key.size() != kMaskingKeySize ||
      scope.device_fingerprint.size() != kDeviceFingerprintSize) {
    return Status::kInternalError;
  }
  SecretBytes material;
  Status s = material_of(object, material);
  if (!ok(s)) return s;
  const Bytes metadata = cbor::encode(metadata_of(object, scope));
  if (metadata.size() > kMaxMetadata) return Status::kInternalError;
  Bytes record(std::begin(kMagic), std::end(kMagic));
  record.push_back(kFormatVersion);
  record.push_back(kSuiteAes256Gcm);
  record.push_back(static_cast<uint8_t>(metadata.size() >> 8));
  record.push_back(static_cast<uint8_t>(metadata.size()));
  record.insert(record.end(), metadata.begin(), metadata.end());
  // Random IVs (SP 800-38D 8.2.2): a record is masked once per create or
  // change, far below 2^32 times under one partition masking key.
  uint8_t iv[kIvSize];
  s = crypto::random_bytes(iv);
  if (!ok(s)) return s;
  Bytes ciphertext, tag;
  s = crypto::aes_gcm_encrypt(scope.masking_key, iv, record, material.reveal(), ciphertext, tag);
  if (!ok(s)) return s;
  record.insert(record.end(), std::begin(iv), std::end(iv));
  record.insert(record.end(), ciphertext.begin(), ciphertext.end());
  record.insert(record.end(), tag.begin(), tag.end());
  const size_t limit =
      is_value_object(object.object_class) ? protocol::kMaxMaskedRecord : protocol::kMaxMaskedKey;
  if (record.size() > limit) return Status::kInternalError;
  out = std::move(record);
  return Status::kOk;
}

Status peek_masked(std::span<const uint8_t> record, MaskedHeader& out) {
  Parts parts;
  const Status s = split(record, parts);
  return ok(s) ? read_header(parts.metadata, out) : s;
}

Status unmask_object(std::span<const uint8_t> record, const MaskingScope& scope, bool with_material,
                     std::shared_ptr<KeyObject>& out) {
  Parts parts;
  Status s = split(record, parts);
  MaskedHeader header;
  if (ok(s)) s = read_header(parts.metadata, header);
  if (!ok(s)) return s;
  // The header is not yet authenticated; it only picks the error. A forged
  // header that claims to match still has to pass the tag below.
  if (!std::ranges::equal(header.device_fingerprint, scope.device_fingerprint)) {
    return Status::kMaskedKeyWrongDevice;
  }
  if (header.partition != scope.partition) return Status::kMaskedKeyWrongPartition;
  SecretBytes material;
  if (!ok(crypto::aes_gcm_decrypt(scope.masking_key, parts.iv, parts.aad, parts.ciphertext,
                                  parts.tag, material))) {
    return Status::kMaskedKeyInvalid;
  }
  // Authenticated from here on; a record from newer firmware is refused
  // (its format or policy may be one this firmware does not know).
  if (header.security_version > scope.security_version) return Status::kMaskedKeyTooNew;

  const cbor::MapReader r(parts.metadata);
  auto o = std::make_shared<KeyObject>();
  uint64_t key_type = 0, key_bits = 0, flags = 0, origin = 0, pair = 0, cert_type = 0;
  std::optional<uint64_t> curve;
  s = r.get_uint(kMetaKeyType, key_type, UINT32_MAX);
  if (ok(s)) s = r.get_uint(kMetaKeyBits, key_bits, UINT32_MAX);
  if (ok(s)) s = r.opt_uint(kMetaCurve, curve, UINT32_MAX);
  if (ok(s)) s = r.get_uint(kMetaFlags, flags, UINT32_MAX);
  if (ok(s)) s = r.get_uint(kMetaOrigin, origin, 255);
  if (ok(s)) s = r.get_bool(kMetaLocal, o->local);
  if (ok(s)) s = r.get_bool(kMetaToken, o->token);
  if (ok(s)) s = r.get_uint(kMetaPairHandle, pair);
  if (ok(s)) s = r.get_uint(kMetaCertificateType, cert_type, UINT32_MAX);
  if (ok(s)) s = r.get_text(kMetaApplication, o->application, protocol::kMaxLabel);
  const cbor::Value* mechanisms = r.get(kMetaAllowedMechanisms);
  if (!ok(s) || mechanisms == nullptr || !mechanisms->is(cbor::Value::Type::kArray) ||
      mechanisms->items().size() > protocol::kMaxAllowedMechanisms) {
    return Status::kMaskedKeyInvalid;
  }
  for (const auto& m : mechanisms->items()) {
    if (!m.is(cbor::Value::Type::kUint)) return Status::kMaskedKeyInvalid;
    o->allowed_mechanisms.push_back(static_cast<Mechanism>(m.as_uint()));
  }
  o->handle = header.handle;
  o->uid = header.uid;
  o->object_class = static_cast<ObjectClass>(header.object_class);
  o->key_type = static_cast<KeyType>(key_type);
  o->key_bits = static_cast<uint32_t>(key_bits);
  if (curve) o->curve = static_cast<Curve>(*curve);
  o->label = header.label;
  o->id = header.id;
  o->flags = static_cast<uint32_t>(flags);
  o->origin = static_cast<KeyOrigin>(origin);
  o->pair_handle = pair;
  o->certificate_type = static_cast<uint32_t>(cert_type);

  switch (o->object_class) {
    case ObjectClass::kData:
    case ObjectClass::kCertificate:
      o->value.assign(material.reveal().begin(), material.reveal().end());
      break;
    case ObjectClass::kSecretKey:
      if (with_material) o->secret = std::move(material);
      break;
    case ObjectClass::kPrivateKey:
      if (with_material) s = crypto::private_key_from_der(material.reveal(), o->pkey);
      break;
    case ObjectClass::kPublicKey:
      if (with_material) s = crypto::public_key_from_der(material.reveal(), o->pkey);
      break;
    default:
      return Status::kMaskedKeyInvalid;
  }
  // Authentic but unparseable material means a bug in the firmware that
  // made it, not tampering; still nothing usable.
  if (!ok(s)) return Status::kMaskedKeyInvalid;
  out = std::move(o);
  return Status::kOk;
}

}  // namespace ihsm::device
