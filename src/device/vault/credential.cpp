#include "device/vault/credential.h"

#include <algorithm>

#include "device/crypto/backend.h"

namespace ihsm::device {
namespace {

constexpr size_t kSaltSize = 16;
constexpr size_t kVerifierSize = 32;

enum CredentialField : uint64_t {
  kSalt = 1,
  kN = 2,
  kR = 3,
  kP = 4,
  kVerifier = 5,
  kFailures = 6,
  kLocked = 7,
};

}  // namespace

Status Credential::set_pin(std::span<const uint8_t> pin, const LoginPolicy& policy) {
  // Every new PIN passes here (create, reset, init, change): the one place
  // the device's minimum length for new PINs holds (security policy, 4).
  if (pin.size() < policy.min_new_pin_length) return Status::kPinInvalid;
  SecretBytes salt(kSaltSize);
  Status s = crypto::random_bytes(salt.reveal_mutable());
  if (!ok(s)) return s;
  SecretBytes verifier(kVerifierSize);
  s = crypto::scrypt(pin, salt.reveal(), policy.scrypt_n, policy.scrypt_r, policy.scrypt_p,
                     verifier);
  if (!ok(s)) return s;
  salt_ = std::move(salt);
  verifier_ = std::move(verifier);
  n_ = policy.scrypt_n;
  r_ = policy.scrypt_r;
  p_ = policy.scrypt_p;
  unlock();
  return Status::kOk;
}

Status Credential::begin_attempt(Clock::time_point now, uint64_t* retry_after_ms, Check& check) {
  if (!is_set()) return Status::kPinNotInitialized;
  if (locked_) return Status::kPinLocked;
  if (next_attempt_ && now < *next_attempt_) {
    if (retry_after_ms != nullptr) {
      *retry_after_ms = static_cast<uint64_t>(
          std::chrono::ceil<std::chrono::milliseconds>(*next_attempt_ - now).count());
    }
    return Status::kPinBackoff;
  }
  check.salt = salt_.clone();
  check.n = n_;
  check.r = r_;
  check.p = p_;
  check.expected = verifier_.clone();
  return Status::kOk;
}

bool Credential::matches(const Check& check, std::span<const uint8_t> pin) {
  SecretBytes computed(check.expected.size());
  if (!ok(crypto::scrypt(pin, check.salt.reveal(), check.n, check.r, check.p, computed))) {
    return false;
  }
  return constant_time_equal(computed.reveal(), check.expected.reveal());
}

Status Credential::record(bool success, const LoginPolicy& policy, Clock::time_point now) {
  if (success) {
    failures_ = 0;
    next_attempt_.reset();
    return Status::kOk;
  }
  ++failures_;
  if (failures_ >= policy.max_failures) {
    locked_ = true;
    return Status::kPinLocked;
  }
  if (failures_ > policy.free_failures) {
    const uint32_t doublings = std::min<uint32_t>(failures_ - policy.free_failures - 1, 30);
    const uint64_t wait = std::min(policy.backoff_max_ms, policy.backoff_base_ms << doublings);
    next_attempt_ = now + std::chrono::milliseconds(wait);
  }
  return Status::kPinIncorrect;
}

cbor::Value Credential::to_cbor() const {
  auto v = cbor::Value::map();
  if (is_set()) {
    v.set(kSalt, cbor::Value::bytes(salt_.reveal()));
    v.set(kN, cbor::Value::uint(n_));
    v.set(kR, cbor::Value::uint(r_));
    v.set(kP, cbor::Value::uint(p_));
    v.set(kVerifier, cbor::Value::bytes(verifier_.reveal()));
  }
  v.set(kFailures, cbor::Value::uint(failures_));
  v.set(kLocked, cbor::Value::boolean(locked_));
  return v;
}

Status Credential::from_cbor(const cbor::Value& v) {
  cbor::MapReader r(v);
  if (!r.is_map()) return Status::kStorageFailure;
  uint64_t failures = 0;
  bool locked = false;
  if (!ok(r.get_uint(kFailures, failures, UINT32_MAX)) || !ok(r.get_bool(kLocked, locked))) {
    return Status::kStorageFailure;
  }
  if (r.has(kVerifier)) {
    Bytes salt, verifier;
    uint64_t n = 0, rr = 0, p = 0;
    if (!ok(r.get_bytes(kSalt, salt, 64)) || !ok(r.get_uint(kN, n)) ||
        !ok(r.get_uint(kR, rr, UINT32_MAX)) || !ok(r.get_uint(kP, p, UINT32_MAX)) ||
        !ok(r.get_bytes(kVerifier, verifier, 64))) {
      return Status::kStorageFailure;
    }
    salt_ = SecretBytes(salt);
    verifier_ = SecretBytes(verifier);
    secure_cleanse(verifier.data(), verifier.size());
    n_ = n;
    r_ = static_cast<uint32_t>(rr);
    p_ = static_cast<uint32_t>(p);
  }
  failures_ = static_cast<uint32_t>(failures);
  locked_ = locked;
  return Status::kOk;
}

}  // namespace ihsm::device
