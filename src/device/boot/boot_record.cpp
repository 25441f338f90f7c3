#include "device/boot/boot_record.h"

#include <ctime>

#include "common/cbor.h"
#include "device/crypto/algorithms.h"

namespace ihsm::device::boot {
namespace {

constexpr const char* kBootFile = "boot.cbor";
constexpr const char* kLegacyDeviceFile = "device.cbor";
constexpr uint64_t kVersion = 1;
constexpr size_t kSecretSize = 32;

enum Field : uint64_t {
  kRecVersion = 1,
  kRecDeviceSecret = 2,
  kRecTrustedKey = 3,
  kRecMinSecurityVersion = 4,
  kRecDeviceIdCert = 5,
  kRecCreated = 6,
};

// device.cbor kept the device unique secret (field 2) before the boot
// stage existed; the firmware drops it from that file once it runs.
Status legacy_secret(const StateDir& state, SecretBytes& out) {
  Bytes raw;
  if (!ok(state.read(kLegacyDeviceFile, raw, 64 * 1024))) return Status::kStorageFailure;
  cbor::Value v;
  const Status s = cbor::decode(raw, v);
  secure_cleanse(raw.data(), raw.size());
  Bytes secret;
  if (!ok(s) || !ok(cbor::MapReader(v).get_bytes(2, secret, kSecretSize)) ||
      secret.size() != kSecretSize) {
    v.wipe();
    return Status::kStorageFailure;
  }
  out = SecretBytes(secret);
  secure_cleanse(secret.data(), secret.size());
  v.wipe();
  return Status::kOk;
}

}  // namespace

Status save(const StateDir& state, const BootRecord& record) {
  auto m = cbor::Value::map();
  m.set(kRecVersion, cbor::Value::uint(kVersion));
  m.set(kRecDeviceSecret, cbor::Value::bytes(record.device_unique_secret.reveal()));
  m.set(kRecTrustedKey, cbor::Value::bytes(record.trusted_firmware_key));
  m.set(kRecMinSecurityVersion, cbor::Value::uint(record.min_security_version));
  m.set(kRecDeviceIdCert, cbor::Value::bytes(record.deviceid_cert));
  m.set(kRecCreated, cbor::Value::uint(static_cast<uint64_t>(std::time(nullptr))));
  Bytes encoded = cbor::encode(m);
  const Status s = state.write_atomic(kBootFile, encoded);
  secure_cleanse(encoded.data(), encoded.size());
  m.wipe();
  return s;
}

Status load_or_provision(const StateDir& state, const Bytes& trusted_key, BootRecord& out,
                         bool& provisioned) {
  provisioned = !state.exists(kBootFile);
  if (provisioned) {
    if (state.exists(kLegacyDeviceFile)) {
      Status s = legacy_secret(state, out.device_unique_secret);
      if (!ok(s)) return s;
    } else {
      out.device_unique_secret = SecretBytes(kSecretSize);
      Status s = crypto::random_bytes(out.device_unique_secret.reveal_mutable());
      if (!ok(s)) return s;
    }
    out.trusted_firmware_key = trusted_key;
    out.min_security_version = 0;
    return Status::kOk;  // saved once the DeviceID certificate exists
  }
  Bytes raw;
  Status s = state.read(kBootFile, raw, 64 * 1024);
  if (!ok(s)) return s;
  cbor::Value v;
  s = cbor::decode(raw, v);
  secure_cleanse(raw.data(), raw.size());
  cbor::MapReader r(v);
  uint64_t version = 0, min_svn = 0;
  Bytes secret;
  if (!ok(s) || !ok(r.get_uint(kRecVersion, version)) || version != kVersion ||
      !ok(r.get_bytes(kRecDeviceSecret, secret, kSecretSize)) || secret.size() != kSecretSize ||
      !ok(r.get_bytes(kRecTrustedKey, out.trusted_firmware_key, 4096)) ||
      !ok(r.get_uint(kRecMinSecurityVersion, min_svn, UINT32_MAX)) ||
      !ok(r.get_bytes(kRecDeviceIdCert, out.deviceid_cert, 8192))) {
    secure_cleanse(secret.data(), secret.size());
    v.wipe();
    return Status::kStorageFailure;
  }
  out.device_unique_secret = SecretBytes(secret);
  secure_cleanse(secret.data(), secret.size());
  v.wipe();
  out.min_security_version = static_cast<uint32_t>(min_svn);
  return Status::kOk;
}

Status raise_min_security_version(const StateDir& state, uint32_t svn) {
  BootRecord record;
  bool provisioned = false;
  Status s = load_or_provision(state, Bytes{}, record, provisioned);
  if (!ok(s) || provisioned) return ok(s) ? Status::kStorageFailure : s;
  if (svn <= record.min_security_version) return Status::kOk;
  record.min_security_version = svn;
  return save(state, record);
}

}  // namespace ihsm::device::boot
