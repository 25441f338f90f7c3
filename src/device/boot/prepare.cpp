#include "device/boot/prepare.h"

#include "device/boot/dice.h"
#include "device/crypto/algorithms.h"
#include "device/crypto/backend.h"

namespace ihsm::device::boot {
namespace {

std::span<const uint8_t> as_bytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

// docs/key-hierarchy.md: the labels are part of the derivation.
Status derive_roots(const SecretBytes& dus, BootHandoff& h) {
  h.storage_key = SecretBytes(32);
  h.masking_root = SecretBytes(48);
  h.backup_root = SecretBytes(48);
  const auto secret = dus.reveal();
  Status s = crypto::hkdf_sha384(secret, {}, as_bytes("ihsm-partition-storage-v1"), h.storage_key);
  if (ok(s)) s = crypto::hkdf_sha384(secret, {}, as_bytes("ihsm-masking-root-v1"), h.masking_root);
  if (ok(s)) s = crypto::hkdf_sha384(secret, {}, as_bytes("ihsm-backup-root-v1"), h.backup_root);
  return s;
}

// DeviceID (and on first start its certificate), then the Alias key and
// certificate for this measurement.
Status derive_identity(BootRecord& record, const VerifiedFirmware& fw, BootHandoff& h) {
  crypto::Pkey deviceid, alias;
  Status s = derive_deviceid_key(record.device_unique_secret.reveal(), deviceid);
  if (ok(s) && record.deviceid_cert.empty()) {
    // Named by its own key: the first 8 bytes of SHA-256 of its SPKI.
    Bytes spki, digest;
    s = crypto::public_key_der(deviceid.get(), spki);
    if (ok(s)) s = crypto::digest(crypto::Hash::kSha256, spki, digest);
    if (ok(s)) {
      s = make_deviceid_cert(deviceid.get(), Bytes(digest.begin(), digest.begin() + 8),
                             record.deviceid_cert);
    }
  }
  SecretBytes cdi;
  if (ok(s)) s = derive_cdi(record.device_unique_secret.reveal(), fw.measurement, cdi);
  if (ok(s)) s = derive_alias_key(cdi.reveal(), alias);
  if (!ok(s)) return s;
  dice::TcbInfo tcb;
  tcb.vendor = "ihsm";
  tcb.model = "ihsm-firmware";
  tcb.version = fw.version;
  tcb.svn = fw.security_version;
  tcb.fwid_sha384 = fw.measurement;
  s = make_alias_cert(deviceid.get(), record.deviceid_cert, alias.get(), tcb, h.alias_cert_der);
  if (ok(s)) s = crypto::private_key_der(alias.get(), h.alias_key_der);
  h.deviceid_cert_der = record.deviceid_cert;
  return s;
}

}  // namespace

Status prepare_handoff(BootRecord& record, const VerifiedFirmware& fw, BootHandoff& h) {
  Status s = derive_identity(record, fw, h);
  if (ok(s)) s = derive_roots(record.device_unique_secret, h);
  if (!ok(s)) return s;
  h.firmware_version = fw.version;
  h.security_version = fw.security_version;
  h.min_security_version = record.min_security_version;
  h.trusted_firmware_key = record.trusted_firmware_key;
  h.measurement = fw.measurement;
  return Status::kOk;
}

}  // namespace ihsm::device::boot
