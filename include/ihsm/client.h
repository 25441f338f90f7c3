// libihsm: the host API. The CLI, the PKCS#11 module and the OpenSSL
// provider reach the device only through this header.
//
// Every call returns Result<T>: a value or a Status from the one closed set
// (include/ihsm/status.h). Nothing here holds or receives key material;
// PINs are taken as SecretPin and leave the process only encrypted to the
// device (ECDH P-384 + HKDF-SHA384 + AES-256-GCM, see docs/protocol.md).
#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "ihsm/status.h"
#include "ihsm/types.h"

namespace ihsm {

// Thrown only by Result<T>::value() on an error result.
class Error : public std::runtime_error {
 public:
  Error(Status status, std::string detail);
  Status status() const { return status_; }
  const std::string& detail() const { return detail_; }

 private:
  Status status_;
  std::string detail_;
};

// Extra facts the device sent with an error.
struct ErrorDetail {
  std::string message;
  std::optional<uint64_t> retry_after_ms;  // kPinBackoff
  std::optional<uint64_t> retries_left;    // kPinIncorrect
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}
  Result(Status status, ErrorDetail detail = {}) : status_(status), detail_(std::move(detail)) {}
  bool ok() const { return status_ == Status::kOk; }
  explicit operator bool() const { return ok(); }
  Status status() const { return status_; }
  const ErrorDetail& detail() const { return detail_; }
  // Throws ihsm::Error when !ok().
  T& value() & {
    check();
    return *value_;
  }
  T&& value() && {
    check();
    return std::move(*value_);
  }
  T* operator->() { return &value(); }
  T& operator*() { return value(); }

 private:
  void check() const {
    if (!ok()) throw Error(status_, detail_.message);
  }
  Status status_ = Status::kOk;
  ErrorDetail detail_;
  std::optional<T> value_;
};

struct Unit {};
using Done = Result<Unit>;

// A PIN held in memory that is cleansed on destruction.
class SecretPin {
 public:
  SecretPin() = default;
  explicit SecretPin(std::string_view pin);
  SecretPin(SecretPin&&) noexcept;
  SecretPin& operator=(SecretPin&&) noexcept;
  SecretPin(const SecretPin&) = delete;
  SecretPin& operator=(const SecretPin&) = delete;
  ~SecretPin();
  std::string_view reveal() const { return {data_.data(), data_.size()}; }
  bool empty() const { return data_.empty(); }

 private:
  void wipe();
  std::vector<char> data_;
};

struct PartitionOptions {
  std::string name;
  std::optional<uint32_t> bound_uid;
  std::optional<uint32_t> bound_gid;
  uint32_t max_sessions = 0;  // 0: the device default (64)
};

struct KeyPair {
  KeyHandle public_handle = 0;
  KeyHandle private_handle = 0;
};

struct GcmCiphertext {
  Bytes iv;  // 12 bytes
  Bytes ciphertext;
  Bytes tag;  // 16 bytes
};

// Search template for FindKeys; unset members match anything.
struct KeyQuery {
  std::optional<std::string> label;
  std::optional<Bytes> id;
  std::optional<ObjectClass> object_class;
};

// Whether the last response said the service was FIPS-approved.
struct Approval {
  bool approved = false;
};

class Connection;

class Session {
 public:
  Session(std::shared_ptr<Connection> connection, SessionId id, PartitionId partition);
  ~Session();  // closes the session if still open (errors ignored)
  Session(Session&&) noexcept;
  Session& operator=(Session&&) noexcept;
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  SessionId id() const { return id_; }
  PartitionId partition() const { return partition_; }

  Done login(Role role, const SecretPin& pin);
  Done logout();
  Done init_user_pin(const SecretPin& pin);  // officer: set or reset the user PIN, clears its lock
  Done set_pin(const SecretPin& old_pin, const SecretPin& new_pin);  // the logged-in role's own PIN
  Done unlock_user();                        // officer
  Result<Role> role();
  Done close();

  Result<KeyHandle> generate_aes_key(uint32_t bits, const KeyTemplate& tmpl);
  Result<KeyPair> generate_ec_key_pair(Curve curve, const KeyTemplate& public_tmpl,
                                       const KeyTemplate& private_tmpl);
  Result<KeyInfo> key_info(KeyHandle key);
  Result<std::vector<KeyInfo>> find_keys(const KeyQuery& query);
  Done destroy_key(KeyHandle key);
  Result<Bytes> public_key(KeyHandle key);  // DER SubjectPublicKeyInfo

  // ECDSA: kEcdsa takes a digest (20..64 bytes); kEcdsaSha* hash `data`
  // inside the device. The signature is r || s, each the curve's size.
  Result<Bytes> sign(KeyHandle key, Mechanism mechanism, const Bytes& data);

  // AES-GCM. Without `iv` the device draws a fresh one (approved); a
  // caller-chosen IV is accepted but not an approved service.
  Result<GcmCiphertext> encrypt_gcm(KeyHandle key, const Bytes& plaintext, const Bytes& aad,
                                    std::optional<Bytes> iv = std::nullopt);
  Result<Bytes> decrypt_gcm(KeyHandle key, const GcmCiphertext& in, const Bytes& aad);

  Result<Bytes> random(size_t length);

  // FIPS indicator of this session's most recent response.
  bool last_approved() const;

 private:
  std::shared_ptr<Connection> connection_;
  SessionId id_ = 0;
  PartitionId partition_ = 0;
};

class Client {
 public:
  // Connects to `socket_path`, or to transport::default_socket_path()
  // (IHSM_SOCKET, then the per-user and system defaults) when empty.
  static Result<Client> connect(const std::string& socket_path = "");

  Result<DeviceInfo> device_info();
  Result<PartitionInfo> create_partition(const PartitionOptions& options, const SecretPin& officer_pin,
                                         const SecretPin* user_pin = nullptr);
  Result<std::vector<PartitionInfo>> list_partitions();
  Result<PartitionInfo> find_partition(const std::string& name);  // by name via list
  Done delete_partition(PartitionId id);
  Done unlock_officer(PartitionId id);  // owner
  Result<Session> open_session(PartitionId partition);

  // FIPS indicator of the most recent response on this connection.
  bool last_approved() const;

  std::shared_ptr<Connection> connection() const { return connection_; }

 private:
  explicit Client(std::shared_ptr<Connection> c) : connection_(std::move(c)) {}
  std::shared_ptr<Connection> connection_;
};

// Verify an ECDSA r||s signature over `data` (hashed with the mechanism's
// digest, or taken as the digest for kEcdsa) against a DER SPKI, locally
// with OpenSSL. Used by `ihsm verify` and tests; needs no device.
Result<bool> verify_ecdsa(const Bytes& spki_der, Mechanism mechanism, const Bytes& data,
                          const Bytes& signature);
// r||s -> DER ECDSA-Sig-Value, for tools that want X9.62 form.
Result<Bytes> ecdsa_raw_to_der(const Bytes& raw);
// DER ECDSA-Sig-Value -> r||s, each half `component_size` bytes (the
// curve's size: 32, 48 or 66). kSignatureInvalid for anything but a
// canonical DER signature whose r and s fit.
Result<Bytes> ecdsa_der_to_raw(const Bytes& der, size_t component_size);

}  // namespace ihsm
