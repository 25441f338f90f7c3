// libihsm: Client, Session, Error and SecretPin. Every response field is
// read through cbor::MapReader with a type and size check; a response that
// does not have the promised shape becomes kTransportError, never a crash.
#include "ihsm/client.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <initializer_list>
#include <limits>
#include <utility>

#include "common/audit.h"
#include "common/secret.h"
#include "host/connection.h"
#include "protocol/fields.h"
#include "transport/unix_socket.h"

namespace ihsm {

using protocol::Opcode;
namespace field = protocol;

namespace {

constexpr size_t kMaxSpki = 1024;
constexpr size_t kMaxText = 256;
constexpr size_t kMaxSignature = 1024;  // RSA-4096 is 512, HMAC-SHA512 64

ErrorDetail detail(std::string message) {
  ErrorDetail d;
  d.message = std::move(message);
  return d;
}

std::string format_error(Status status, const std::string& detail_text) {
  std::string out(status_name(status));
  out += " (";
  out += status_message(status);
  out += ")";
  if (!detail_text.empty()) {
    out += ": ";
    out += detail_text;
  }
  return out;
}

// Reads a response map, remembering the first field that is missing or
// malformed.
class Reader {
 public:
  explicit Reader(const cbor::Value& v) : m_(v) {
    if (!m_.is_map()) fail(Status::kMalformedBody, 0);
  }

  template <typename T>
  void uint(uint64_t key, T& out) {
    uint64_t v = 0;
    if (record(m_.get_uint(key, v, std::numeric_limits<T>::max()), key)) out = static_cast<T>(v);
  }
  template <typename T>
  void opt_uint(uint64_t key, std::optional<T>& out) {
    std::optional<uint64_t> v;
    if (record(m_.opt_uint(key, v, std::numeric_limits<T>::max()), key) && v) {
      out = static_cast<T>(*v);
    }
  }
  template <typename T>
  void opt_uint(uint64_t key, T& out) {
    std::optional<T> v;
    opt_uint(key, v);
    if (v) out = *v;
  }
  void boolean(uint64_t key, bool& out) { record(m_.get_bool(key, out), key); }
  void opt_boolean(uint64_t key, bool& out) { record(m_.opt_bool(key, out), key); }
  void bytes(uint64_t key, Bytes& out, size_t max) { record(m_.get_bytes(key, out, max), key); }
  void opt_bytes(uint64_t key, Bytes& out, size_t max) { record(m_.opt_bytes(key, out, max), key); }
  void text(uint64_t key, std::string& out, size_t max) { record(m_.get_text(key, out, max), key); }
  void opt_text(uint64_t key, std::string& out, size_t max) {
    record(m_.opt_text(key, out, max), key);
  }
  // An array field; nullptr (and a recorded failure) when absent or not an array.
  const std::vector<cbor::Value>* array(uint64_t key) {
    const cbor::Value* v = m_.get(key);
    if (v == nullptr) {
      fail(Status::kMissingField, key);
      return nullptr;
    }
    if (!v->is(cbor::Value::Type::kArray)) {
      fail(Status::kMalformedBody, key);
      return nullptr;
    }
    return &v->items();
  }
  // A value the caller validated itself.
  void invalid(uint64_t key, const std::string& why) {
    if (ok(status_)) {
      status_ = Status::kTransportError;
      detail_ = bad_response("field " + std::to_string(key) + " " + why);
    }
  }

  bool good() const { return ok(status_); }
  Status status() const { return status_; }
  const ErrorDetail& detail() const { return detail_; }

 private:
  bool record(Status s, uint64_t key) {
    if (ok(s)) return true;
    fail(s, key);
    return false;
  }
  void fail(Status s, uint64_t key) {
    if (!ok(status_)) return;
    if (key == 0) {
      status_ = Status::kTransportError;
      detail_ = bad_response("not a map");
      return;
    }
    status_ = check_field(s, key, detail_);
  }

  cbor::MapReader m_;
  Status status_ = Status::kOk;
  ErrorDetail detail_;
};

template <typename T>
Result<T> failure(const Reader& r) {
  return {r.status(), r.detail()};
}

template <typename T, typename U>
Result<T> failure(const Result<U>& r) {
  return {r.status(), r.detail()};
}

Status parse_partition(const cbor::Value& v, PartitionInfo& out, ErrorDetail& d) {
  Reader r(v);
  r.uint(field::kPartition, out.id);
  r.text(field::kName, out.name, protocol::kMaxPartitionName);
  r.opt_uint(field::kBoundUid, out.bound_uid);
  r.opt_uint(field::kBoundGid, out.bound_gid);
  r.opt_uint(field::kMaxSessions, out.max_sessions);
  r.opt_uint(field::kOpenSessions, out.open_sessions);
  r.opt_boolean(field::kUserPinSet, out.user_pin_set);
  r.opt_boolean(field::kUserLocked, out.user_pin_locked);
  r.opt_boolean(field::kOfficerLocked, out.officer_pin_locked);
  r.opt_uint(field::kUserFailures, out.user_pin_failures);
  r.opt_uint(field::kUserRetriesLeft, out.user_pin_retries_left);
  r.opt_uint(field::kOfficerFailures, out.officer_pin_failures);
  r.opt_uint(field::kOfficerRetriesLeft, out.officer_pin_retries_left);
  r.opt_bytes(field::kIdentityKey, out.identity_public_key, kMaxSpki);
  d = r.detail();
  return r.status();
}

bool valid_class(uint32_t c) {
  return c == static_cast<uint32_t>(ObjectClass::kData) ||
         c == static_cast<uint32_t>(ObjectClass::kCertificate) ||
         c == static_cast<uint32_t>(ObjectClass::kPublicKey) ||
         c == static_cast<uint32_t>(ObjectClass::kPrivateKey) ||
         c == static_cast<uint32_t>(ObjectClass::kSecretKey);
}

bool valid_key_type(uint32_t t) {
  switch (static_cast<KeyType>(t)) {
    case KeyType::kRsa:
    case KeyType::kEc:
    case KeyType::kGenericSecret:
    case KeyType::kAes:
    case KeyType::kEcEdwards:
    case KeyType::kEcMontgomery:
      return true;
  }
  return false;
}

bool valid_curve(uint32_t c) {
  return c >= static_cast<uint32_t>(Curve::kP256) && c <= static_cast<uint32_t>(Curve::kX25519);
}

Status parse_key_info(const cbor::Value& v, KeyInfo& out, ErrorDetail& d) {
  Reader r(v);
  uint32_t object_class = 0;
  uint32_t key_type = 0;
  std::optional<uint32_t> curve;
  r.uint(field::kKey, out.handle);
  r.uint(field::kClass, object_class);
  r.uint(field::kKeyType, key_type);
  r.uint(field::kKeyBits, out.key_bits);
  r.opt_uint(field::kCurve, curve);
  r.opt_text(field::kLabel, out.label, protocol::kMaxLabel);
  r.opt_bytes(field::kId, out.id, protocol::kMaxId);
  r.uint(field::kFlags, out.flags);
  r.opt_boolean(field::kLocal, out.local);
  r.opt_uint(field::kPairHandle, out.pair_handle);
  r.opt_boolean(field::kToken, out.token);
  r.opt_uint(field::kValueSize, out.value_size);
  r.opt_uint(field::kCertificateType, out.certificate_type);
  r.opt_text(field::kApplication, out.application, protocol::kMaxLabel);
  if (const cbor::Value* list = cbor::MapReader(v).get(field::kAllowedMechanisms)) {
    if (!list->is(cbor::Value::Type::kArray)) {
      r.invalid(field::kAllowedMechanisms, "is not an array");
    } else {
      for (const cbor::Value& m : list->items()) {
        if (!m.is(cbor::Value::Type::kUint) || m.as_uint() > UINT32_MAX) {
          r.invalid(field::kAllowedMechanisms, "holds a non-mechanism");
          break;
        }
        out.allowed_mechanisms.push_back(static_cast<Mechanism>(m.as_uint()));
      }
    }
  }
  if (r.good() && !valid_class(object_class)) r.invalid(field::kClass, "unknown object class");
  if (r.good() && !valid_key_type(key_type)) r.invalid(field::kKeyType, "unknown key type");
  if (r.good() && curve && !valid_curve(*curve)) r.invalid(field::kCurve, "unknown curve");
  if (r.good()) {
    out.object_class = static_cast<ObjectClass>(object_class);
    out.key_type = static_cast<KeyType>(key_type);
    if (curve) out.curve = static_cast<Curve>(*curve);
  }
  d = r.detail();
  return r.status();
}

cbor::Value template_map(const KeyTemplate& t) {
  cbor::Value m = cbor::Value::map();
  if (!t.label.empty()) m.set(field::kLabel, cbor::Value::text(t.label));
  if (!t.id.empty()) m.set(field::kId, cbor::Value::bytes(t.id));
  if (t.token) m.set(field::kToken, cbor::Value::boolean(true));
  if (t.flags) m.set(field::kFlags, cbor::Value::uint(*t.flags));
  if (t.flags && t.flags_mask != 0) m.set(field::kFlagsMask, cbor::Value::uint(t.flags_mask));
  if (!t.allowed_mechanisms.empty()) {
    cbor::Value list = cbor::Value::array();
    for (const Mechanism mech : t.allowed_mechanisms) {
      list.push(cbor::Value::uint(static_cast<uint32_t>(mech)));
    }
    m.set(field::kAllowedMechanisms, std::move(list));
  }
  return m;
}

Status check_template(const KeyTemplate& t, ErrorDetail& d) {
  if (t.label.size() > protocol::kMaxLabel) {
    d = detail("label longer than 128 bytes");
    return Status::kFieldTooLarge;
  }
  if (t.id.size() > protocol::kMaxId) {
    d = detail("id longer than 64 bytes");
    return Status::kFieldTooLarge;
  }
  if (t.allowed_mechanisms.size() > protocol::kMaxAllowedMechanisms) {
    d = detail("at most 64 allowed mechanisms");
    return Status::kFieldTooLarge;
  }
  return Status::kOk;
}

Result<cbor::Value> session_call(const std::shared_ptr<Connection>& c, SessionId id, Opcode op,
                                 const cbor::Value& body) {
  if (!c || id == 0) return {Status::kInvalidSession, detail("the session is closed")};
  return c->call(op, id, body);
}

Done done(const Result<cbor::Value>& r) {
  if (!r) return {r.status(), r.detail()};
  return Unit{};
}

struct PinSpec {
  uint64_t field;
  Role role;
  const SecretPin* pin;
};

// GetChallenge, seal every PIN under it, send the command. The envelope
// mutex keeps another thread on this connection from spending the
// challenge in between.
Result<cbor::Value> call_with_pins(Connection& c, Opcode op, SessionId session,
                                   PartitionId partition, cbor::Value body,
                                   std::initializer_list<PinSpec> pins) {
  for (const PinSpec& p : pins) {
    if (!ok(check_pin(*p.pin))) {
      return {Status::kPinInvalid, detail("a PIN must be 4 to 64 bytes")};
    }
  }
  auto key = c.pin_transport_key();
  if (!key) return failure<cbor::Value>(key);

  std::lock_guard lock(c.envelope_mutex());
  auto ch = c.call(Opcode::kGetChallenge, 0, cbor::Value::map());
  if (!ch) return ch;
  Bytes challenge;
  Reader r(ch.value());
  r.bytes(field::kChallenge, challenge, protocol::kChallengeSize);
  if (r.good() && challenge.size() != protocol::kChallengeSize) {
    r.invalid(field::kChallenge, "is not 32 bytes");
  }
  if (!r.good()) return failure<cbor::Value>(r);

  for (const PinSpec& p : pins) {
    auto envelope = seal_pin(*key.value(), challenge, op, p.field, partition, p.role, *p.pin);
    if (!envelope) return envelope;
    body.set(p.field, std::move(envelope).value());
  }
  return c.call(op, session, body);
}

cbor::Value params_map(const MechanismParams& p) {
  cbor::Value m = cbor::Value::map();
  auto mech = [&](uint64_t key, const std::optional<Mechanism>& v) {
    if (v) m.set(key, cbor::Value::uint(static_cast<uint32_t>(*v)));
  };
  auto num = [&](uint64_t key, const std::optional<uint32_t>& v) {
    if (v) m.set(key, cbor::Value::uint(*v));
  };
  auto bytes = [&](uint64_t key, const Bytes& v) {
    if (!v.empty()) m.set(key, cbor::Value::bytes(v));
  };
  mech(field::kHash, p.hash);
  mech(field::kMgfHash, p.mgf_hash);
  num(field::kSaltLength, p.salt_length);
  bytes(field::kSourceData, p.source_data);
  num(field::kCounterBits, p.counter_bits);
  bytes(field::kSalt, p.salt);
  bytes(field::kInfo, p.info);
  num(field::kHkdfMode, p.hkdf_mode);
  bytes(field::kPeerPublic, p.peer_public);
  mech(field::kPrfHash, p.prf_hash);
  bytes(field::kKdfLabel, p.kdf_label);
  bytes(field::kKdfContext, p.kdf_context);
  // SP 800-108's counter width shares the wire field with AES-CTR's.
  num(field::kCounterBits, p.kdf_counter_bits);
  if (p.kdf_separator) m.set(field::kKdfSeparator, cbor::Value::boolean(*p.kdf_separator));
  if (p.kdf_length) m.set(field::kKdfLength, cbor::Value::boolean(*p.kdf_length));
  num(field::kKeyBits, p.aes_key_bits);
  return m;
}

cbor::Value new_key_map(const NewKeySpec& spec) {
  cbor::Value m = template_map(spec.tmpl);
  m.set(field::kClass, cbor::Value::uint(static_cast<uint32_t>(spec.object_class)));
  m.set(field::kKeyType, cbor::Value::uint(static_cast<uint32_t>(spec.key_type)));
  m.set(field::kValueLength, cbor::Value::uint(spec.value_length));
  return m;
}

cbor::Value keyed_request(KeyHandle key, Mechanism mechanism) {
  cbor::Value body = cbor::Value::map();
  body.set(field::kKey, cbor::Value::uint(key));
  body.set(field::kMechanism, cbor::Value::uint(static_cast<uint32_t>(mechanism)));
  return body;
}

// Reads one bytes field of a successful response.
Result<Bytes> bytes_field(const Result<cbor::Value>& r, uint64_t key, size_t max) {
  if (!r) return failure<Bytes>(r);
  Reader m(r.value());
  Bytes out;
  m.bytes(key, out, max);
  if (!m.good()) return failure<Bytes>(m);
  return out;
}

Result<KeyHandle> handle_field(const Result<cbor::Value>& r) {
  if (!r) return failure<KeyHandle>(r);
  Reader m(r.value());
  KeyHandle handle = 0;
  m.uint(field::kKey, handle);
  if (!m.good()) return failure<KeyHandle>(m);
  return handle;
}

}  // namespace

// ---------------------------------------------------------------- Error, SecretPin

Error::Error(Status status, std::string detail)
    : std::runtime_error(format_error(status, detail)),
      status_(status),
      detail_(std::move(detail)) {}

SecretPin::SecretPin(std::string_view pin) : data_(pin.begin(), pin.end()) {}

SecretPin::SecretPin(SecretPin&& other) noexcept : data_(std::move(other.data_)) {
  other.data_.clear();
}

SecretPin& SecretPin::operator=(SecretPin&& other) noexcept {
  if (this != &other) {
    wipe();
    data_ = std::move(other.data_);
    other.data_.clear();
  }
  return *this;
}

SecretPin::~SecretPin() { wipe(); }

void SecretPin::wipe() {
  if (!data_.empty()) secure_cleanse(data_.data(), data_.size());
  data_.clear();
  data_.shrink_to_fit();
}

// ---------------------------------------------------------------- Client

Result<Client> Client::connect(const std::string& socket_path) {
  const std::string path = socket_path.empty() ? transport::default_socket_path() : socket_path;
  std::unique_ptr<transport::FrameChannel> channel;
  errno = 0;
  const Status s = transport::connect_unix(path, channel);
  if (!ok(s)) {
    std::string why = "cannot connect to " + path;
    if (errno != 0) why += std::string(" (") + std::strerror(errno) + ")";
    return {s, detail(std::move(why))};
  }
  auto connection = std::make_shared<Connection>(std::move(channel));
  const char* transport = std::getenv("IHSM_TRANSPORT");
  if (transport == nullptr || std::string_view(transport) != "socket") {
    // Refused or unavailable: the socket serves alone. But BUSY means the
    // device turned this connection away (and closed it).
    if (connection->open_queue() == Status::kBusy) {
      return {Status::kBusy,
              detail("the device serves its maximum of connections (ihsmd --max-connections)")};
    }
  }
  return Client(std::move(connection));
}

namespace {

Status read_tamper_events(Reader& m, bool with_detail, std::vector<TamperEventInfo>& out) {
  const auto* events = m.array(field::kTamperEvents);
  if (events == nullptr) return m.status();
  if (events->size() > protocol::kMaxTamperEvents) {
    m.invalid(field::kTamperEvents, "has too many entries");
    return m.status();
  }
  for (const auto& e : *events) {
    Reader r(e);
    TamperEventInfo one;
    r.text(field::kSensor, one.sensor, kMaxText);
    r.uint(field::kTime, one.time);
    r.text(field::kResponse, one.response, kMaxText);
    if (with_detail) r.opt_text(field::kMessage, one.detail, kMaxText);
    if (!r.good()) {
      m.invalid(field::kTamperEvents, "holds a malformed event");
      return m.status();
    }
    out.push_back(std::move(one));
  }
  return Status::kOk;
}

}  // namespace

Result<DeviceInfo> Client::device_info() {
  auto r = connection_->call(Opcode::kGetDeviceInfo, 0, cbor::Value::map());
  if (!r) return failure<DeviceInfo>(r);
  DeviceInfo info;
  Reader m(r.value());
  m.uint(field::kProtocolRevision, info.protocol_revision);
  m.text(field::kFirmwareVersion, info.firmware_version, kMaxText);
  m.text(field::kState, info.state, kMaxText);
  m.opt_text(field::kMessage, info.reason, kMaxText);
  m.opt_bytes(field::kMeasurement, info.measurement, 64);
  m.opt_uint(field::kSecurityVersion, info.security_version);
  m.opt_uint(field::kMinSecurityVersion, info.min_security_version);
  m.bytes(field::kIdentityKey, info.identity_public_key, kMaxSpki);
  m.bytes(field::kPinTransportKey, info.pin_transport_public_key, kMaxSpki);
  m.boolean(field::kIsOwner, info.caller_is_owner);
  m.uint(field::kCount, info.partition_count);
  std::optional<uint32_t> uid;
  m.opt_uint(field::kProcessUid, uid);
  if (uid) {
    DeviceInfo::Hardening h;
    h.uid = *uid;
    m.boolean(field::kMemoryLocked, h.memory_locked);
    m.boolean(field::kCoreDumpsOff, h.core_dumps_off);
    m.boolean(field::kNoNewPrivs, h.no_new_privs);
    m.boolean(field::kSyscallFilter, h.syscall_filter);
    info.hardening = h;
  }
  if (r.value().find(field::kTamperEvents) != nullptr) {
    const Status s = read_tamper_events(m, false, info.tamper_events);
    if (!ok(s)) return failure<DeviceInfo>(m);
  }
  if (!m.good()) return failure<DeviceInfo>(m);
  return info;
}

Result<PartitionInfo> Client::create_partition(const PartitionOptions& options,
                                               const SecretPin& officer_pin,
                                               const SecretPin* user_pin) {
  if (options.name.empty() || options.name.size() > protocol::kMaxPartitionName) {
    return {Status::kInvalidArgument, detail("a partition name is 1 to 64 bytes")};
  }
  cbor::Value body = cbor::Value::map();
  body.set(field::kName, cbor::Value::text(options.name));
  if (options.bound_uid) body.set(field::kBoundUid, cbor::Value::uint(*options.bound_uid));
  if (options.bound_gid) body.set(field::kBoundGid, cbor::Value::uint(*options.bound_gid));
  if (options.max_sessions != 0) {
    body.set(field::kMaxSessions, cbor::Value::uint(options.max_sessions));
  }
  Result<cbor::Value> r =
      user_pin != nullptr
          ? call_with_pins(*connection_, Opcode::kPartitionCreate, 0, 0, std::move(body),
                           {{field::kPinEnvelope, Role::kCryptoOfficer, &officer_pin},
                            {field::kUserPinEnvelope, Role::kCryptoUser, user_pin}})
          : call_with_pins(*connection_, Opcode::kPartitionCreate, 0, 0, std::move(body),
                           {{field::kPinEnvelope, Role::kCryptoOfficer, &officer_pin}});
  if (!r) return failure<PartitionInfo>(r);
  PartitionInfo info;
  ErrorDetail d;
  const Status s = parse_partition(r.value(), info, d);
  if (!ok(s)) return {s, std::move(d)};
  return info;
}

Result<std::vector<PartitionInfo>> Client::list_partitions() {
  auto r = connection_->call(Opcode::kPartitionList, 0, cbor::Value::map());
  if (!r) return failure<std::vector<PartitionInfo>>(r);
  Reader m(r.value());
  const auto* items = m.array(field::kPartitions);
  if (items == nullptr) return failure<std::vector<PartitionInfo>>(m);
  std::vector<PartitionInfo> out;
  out.reserve(items->size());
  for (const cbor::Value& item : *items) {
    PartitionInfo info;
    ErrorDetail d;
    const Status s = parse_partition(item, info, d);
    if (!ok(s)) return {s, std::move(d)};
    out.push_back(std::move(info));
  }
  return out;
}

Result<PartitionInfo> Client::find_partition(const std::string& name) {
  auto list = list_partitions();
  if (!list) return failure<PartitionInfo>(list);
  for (PartitionInfo& p : list.value()) {
    if (p.name == name) return std::move(p);
  }
  return {Status::kNoSuchPartition, detail("no partition named '" + name + "'")};
}

Done Client::delete_partition(PartitionId id) {
  return done(connection_->call(Opcode::kPartitionDelete, 0,
                                cbor::Value::map().set(field::kPartition, cbor::Value::uint(id))));
}

Done Client::unlock_officer(PartitionId id) {
  return done(connection_->call(Opcode::kPartitionUnlockOfficer, 0,
                                cbor::Value::map().set(field::kPartition, cbor::Value::uint(id))));
}

Result<PartitionInfo> Client::reset_partition(PartitionId id, const SecretPin& officer_pin,
                                              const SecretPin* user_pin) {
  cbor::Value body = cbor::Value::map().set(field::kPartition, cbor::Value::uint(id));
  Result<cbor::Value> r =
      user_pin != nullptr
          ? call_with_pins(*connection_, Opcode::kPartitionReset, 0, id, std::move(body),
                           {{field::kPinEnvelope, Role::kCryptoOfficer, &officer_pin},
                            {field::kUserPinEnvelope, Role::kCryptoUser, user_pin}})
          : call_with_pins(*connection_, Opcode::kPartitionReset, 0, id, std::move(body),
                           {{field::kPinEnvelope, Role::kCryptoOfficer, &officer_pin}});
  if (!r) return failure<PartitionInfo>(r);
  PartitionInfo info;
  ErrorDetail d;
  const Status s = parse_partition(r.value(), info, d);
  if (!ok(s)) return {s, std::move(d)};
  return info;
}

namespace {

Status read_records(Reader& m, std::vector<Bytes>& out) {
  const auto* items = m.array(field::kRecords);
  if (items == nullptr) return m.status();
  for (const cbor::Value& item : *items) {
    if (!item.is(cbor::Value::Type::kBytes) ||
        item.as_bytes().size() > protocol::kMaxMaskedRecord) {
      m.invalid(field::kRecords, "holds a malformed record");
      return m.status();
    }
    out.push_back(item.as_bytes());
  }
  return Status::kOk;
}

}  // namespace

Result<std::vector<Bytes>> Client::certificates(std::optional<PartitionId> partition) {
  cbor::Value body = cbor::Value::map();
  if (partition) body.set(field::kPartition, cbor::Value::uint(*partition));
  auto r = connection_->call(Opcode::kGetCertificates, 0, body);
  if (!r) return failure<std::vector<Bytes>>(r);
  const cbor::Value* list = r.value().find(field::kCertificates);
  if (list == nullptr || !list->is(cbor::Value::Type::kArray) || list->items().size() > 3) {
    return {Status::kMalformedBody, detail("certificates missing or malformed")};
  }
  std::vector<Bytes> out;
  for (const auto& c : list->items()) {
    if (!c.is(cbor::Value::Type::kBytes) || c.as_bytes().size() > 8192) {
      return {Status::kMalformedBody, detail("a certificate is malformed")};
    }
    out.push_back(c.as_bytes());
  }
  return out;
}

Result<Bytes> Client::attest_device(const Bytes& nonce) {
  if (nonce.size() > 128) return {Status::kFieldTooLarge, detail("a nonce is at most 128 bytes")};
  return bytes_field(
      connection_->call(Opcode::kAttestDevice, 0,
                        cbor::Value::map().set(field::kNonce, cbor::Value::bytes(nonce))),
      field::kReport, 64 * 1024);
}

Result<SelfTestReport> Client::self_test() {
  auto r = connection_->call(Opcode::kSelfTest, 0, cbor::Value::map());
  if (!r) return failure<SelfTestReport>(r);
  SelfTestReport out;
  Reader m(r.value());
  m.boolean(field::kPassed, out.passed);
  m.opt_text(field::kFailedTest, out.failed_test, kMaxText);
  m.uint(field::kElapsedUs, out.elapsed_us);
  m.text(field::kState, out.state, kMaxText);
  if (const auto* tests = m.array(field::kSelfTests)) {
    if (tests->size() > 256) m.invalid(field::kSelfTests, "has too many entries");
    for (const auto& t : *tests) {
      Reader e(t);
      SelfTestResult one;
      e.text(field::kName, one.name, kMaxText);
      e.boolean(field::kPassed, one.passed);
      if (!e.good()) return failure<SelfTestReport>(e);
      out.tests.push_back(std::move(one));
    }
  }
  if (!m.good()) return failure<SelfTestReport>(m);
  if (out.passed == !out.failed_test.empty()) {
    return {Status::kTransportError, bad_response("self-test result and failed test disagree")};
  }
  return out;
}

Result<std::string> Client::zeroize(const std::string& reason) {
  if (reason.size() > protocol::kMaxReason) {
    return {Status::kFieldTooLarge, detail("a reason is at most 128 bytes")};
  }
  cbor::Value body = cbor::Value::map();
  if (!reason.empty()) body.set(field::kReason, cbor::Value::text(reason));
  auto r = connection_->call(Opcode::kZeroize, 0, body);
  if (!r) return failure<std::string>(r);
  Reader m(r.value());
  std::string recorded, state;
  m.text(field::kState, state, kMaxText);
  m.text(field::kReason, recorded, kMaxText);
  if (!m.good()) return failure<std::string>(m);
  if (state != "zeroized") {
    return {Status::kTransportError, bad_response("zeroize answered state " + state)};
  }
  return recorded;
}

Result<TamperStatusReport> Client::tamper_status() {
  auto r = connection_->call(Opcode::kTamperStatus, 0, cbor::Value::map());
  if (!r) return failure<TamperStatusReport>(r);
  TamperStatusReport out;
  Reader m(r.value());
  m.text(field::kState, out.state, kMaxText);
  if (!ok(read_tamper_events(m, true, out.events))) return failure<TamperStatusReport>(m);
  if (const auto* policy = m.array(field::kTamperPolicy)) {
    if (policy->size() > 16) m.invalid(field::kTamperPolicy, "has too many entries");
    for (const auto& p : *policy) {
      Reader e(p);
      std::string sensor, response;
      e.text(field::kSensor, sensor, kMaxText);
      e.text(field::kResponse, response, kMaxText);
      if (!e.good()) return failure<TamperStatusReport>(e);
      out.policy.emplace_back(std::move(sensor), std::move(response));
    }
  }
  if (!m.good()) return failure<TamperStatusReport>(m);
  return out;
}

Result<FirmwareInfo> Client::update_firmware(const std::string& dir) {
  auto r = connection_->call(Opcode::kFirmwareUpdate, 0,
                             cbor::Value::map().set(field::kPath, cbor::Value::text(dir)));
  if (!r) return failure<FirmwareInfo>(r);
  FirmwareInfo info;
  Reader m(r.value());
  m.text(field::kFirmwareVersion, info.version, kMaxText);
  m.uint(field::kSecurityVersion, info.security_version);
  m.bytes(field::kMeasurement, info.measurement, 64);
  if (!m.good()) return failure<FirmwareInfo>(m);
  return info;
}

Result<AuditLog> Client::read_audit(uint64_t after) {
  AuditLog log;
  for (;;) {
    auto r = connection_->call(Opcode::kAuditRead, 0,
                               cbor::Value::map()
                                   .set(field::kAuditSeq, cbor::Value::uint(after))
                                   .set(field::kLimit, cbor::Value::uint(protocol::kMaxAuditPage)));
    if (!r) return failure<AuditLog>(r);
    Reader m(r.value());
    bool more = false;
    m.boolean(field::kMore, more);
    const auto* records = m.array(field::kAuditRecords);
    const auto* checkpoints = m.array(field::kAuditCheckpoints);
    if (!m.good()) return failure<AuditLog>(m);
    if (records->size() > protocol::kMaxAuditPage) {
      return {Status::kTransportError, bad_response("an audit page has too many records")};
    }
    for (const auto& v : *records) {
      AuditRecord rec;
      if (!ok(audit::record_from_cbor(v, rec))) {
        return {Status::kTransportError, bad_response("an audit record is malformed")};
      }
      log.records.push_back(std::move(rec));
    }
    for (const auto& c : *checkpoints) {
      if (!c.is(cbor::Value::Type::kBytes) || c.as_bytes().size() > audit::kMaxCheckpoint) {
        return {Status::kTransportError, bad_response("an audit checkpoint is malformed")};
      }
      // Pages overlap at their boundary seq: keep each checkpoint once.
      if (std::find(log.checkpoints.begin(), log.checkpoints.end(), c.as_bytes()) ==
          log.checkpoints.end()) {
        log.checkpoints.push_back(c.as_bytes());
      }
    }
    if (!more) return log;
    if (records->empty() || log.records.back().seq <= after) {
      return {Status::kTransportError, bad_response("audit paging does not advance")};
    }
    after = log.records.back().seq;
  }
}

Result<Bytes> Client::audit_checkpoint(bool rotate) {
  return bytes_field(
      connection_->call(Opcode::kAuditCheckpoint, 0,
                        cbor::Value::map().set(field::kAuditRotate, cbor::Value::boolean(rotate))),
      field::kAuditHead, audit::kMaxCheckpoint);
}

Done Client::backup_partition(PartitionId id, const SecretPin* backup_secret,
                              const std::function<Done(const BackupPage&)>& sink) {
  std::optional<KeyHandle> after;
  for (;;) {
    cbor::Value body = cbor::Value::map().set(field::kPartition, cbor::Value::uint(id));
    if (after) body.set(field::kAfter, cbor::Value::uint(*after));
    // The secret goes with the first page only: it seals the header.
    Result<cbor::Value> r =
        !after && backup_secret != nullptr
            ? call_with_pins(*connection_, Opcode::kPartitionBackup, 0, id, std::move(body),
                             {{field::kPinEnvelope, Role::kPublic, backup_secret}})
            : connection_->call(Opcode::kPartitionBackup, 0, body);
    if (!r) return failure<Unit>(r);
    Reader m(r.value());
    BackupPage page;
    bool more = false;
    KeyHandle last = 0;
    if (!after) m.bytes(field::kBackupHeader, page.header, 4096);
    m.boolean(field::kMore, more);
    m.uint(field::kAfter, last);
    if (m.good()) read_records(m, page.records);
    if (!m.good()) return failure<Unit>(m);
    if (more && after && last <= *after) {
      return {Status::kTransportError, bad_response("backup paging does not advance")};
    }
    if (auto d = sink(page); !d) return d;
    if (!more) return Unit{};
    after = last;
  }
}

Result<RestoreCount> Client::restore_partition(PartitionId id, const Bytes& header,
                                               const std::vector<Bytes>& records,
                                               const SecretPin* backup_secret) {
  cbor::Value list = cbor::Value::array();
  for (const Bytes& rec : records) list.push(cbor::Value::bytes(rec));
  cbor::Value body = cbor::Value::map();
  body.set(field::kPartition, cbor::Value::uint(id));
  body.set(field::kBackupHeader, cbor::Value::bytes(header));
  body.set(field::kRecords, std::move(list));
  Result<cbor::Value> r =
      backup_secret != nullptr
          ? call_with_pins(*connection_, Opcode::kPartitionRestore, 0, id, std::move(body),
                           {{field::kPinEnvelope, Role::kPublic, backup_secret}})
          : connection_->call(Opcode::kPartitionRestore, 0, body);
  if (!r) return failure<RestoreCount>(r);
  Reader m(r.value());
  RestoreCount count;
  m.uint(field::kCount, count.restored);
  m.uint(field::kSkipped, count.skipped);
  if (!m.good()) return failure<RestoreCount>(m);
  return count;
}

Result<Session> Client::open_session(PartitionId partition) {
  auto r =
      connection_->call(Opcode::kSessionOpen, 0,
                        cbor::Value::map().set(field::kPartition, cbor::Value::uint(partition)));
  if (!r) return failure<Session>(r);
  Reader m(r.value());
  SessionId id = 0;
  m.uint(field::kSession, id);
  if (m.good() && id == 0) m.invalid(field::kSession, "is zero");
  if (!m.good()) return failure<Session>(m);
  return Session(connection_, id, partition);
}

bool Client::last_approved() const { return connection_ && connection_->last_approved(); }

bool Client::uses_queue() const { return connection_ && connection_->uses_queue(); }

// ---------------------------------------------------------------- Session

Session::Session(std::shared_ptr<Connection> connection, SessionId id, PartitionId partition)
    : connection_(std::move(connection)), id_(id), partition_(partition) {}

Session::~Session() {
  try {
    if (connection_ && id_ != 0) (void)close();
  } catch (...) {
    // Closing is best effort; the device also drops sessions with the connection.
  }
}

void Session::release() {
  id_ = 0;
  connection_.reset();
}

Session::Session(Session&& other) noexcept
    : connection_(std::move(other.connection_)),
      id_(std::exchange(other.id_, 0)),
      partition_(other.partition_) {}

Session& Session::operator=(Session&& other) noexcept {
  if (this != &other) {
    try {
      if (connection_ && id_ != 0) (void)close();
    } catch (...) {
    }
    connection_ = std::move(other.connection_);
    id_ = std::exchange(other.id_, 0);
    partition_ = other.partition_;
  }
  return *this;
}

Done Session::login(Role role, const SecretPin& pin) {
  if (role != Role::kCryptoUser && role != Role::kCryptoOfficer) {
    return {Status::kInvalidArgument, detail("log in as user or officer")};
  }
  if (!connection_ || id_ == 0) return {Status::kInvalidSession, detail("the session is closed")};
  cbor::Value body = cbor::Value::map();
  body.set(field::kRole, cbor::Value::uint(static_cast<uint32_t>(role)));
  return done(call_with_pins(*connection_, Opcode::kLogin, id_, partition_, std::move(body),
                             {{field::kPinEnvelope, role, &pin}}));
}

Done Session::logout() {
  return done(session_call(connection_, id_, Opcode::kLogout, cbor::Value::map()));
}

Done Session::init_user_pin(const SecretPin& pin) {
  if (!connection_ || id_ == 0) return {Status::kInvalidSession, detail("the session is closed")};
  return done(call_with_pins(*connection_, Opcode::kInitUserPin, id_, partition_,
                             cbor::Value::map(), {{field::kPinEnvelope, Role::kCryptoUser, &pin}}));
}

Done Session::set_pin(const SecretPin& old_pin, const SecretPin& new_pin) {
  if (!ok(check_pin(old_pin)) || !ok(check_pin(new_pin))) {
    return {Status::kPinInvalid, detail("a PIN must be 4 to 64 bytes")};
  }
  auto current = role();
  if (!current) return failure<Unit>(current);
  const Role r = current.value();
  if (r == Role::kPublic) return {Status::kNotLoggedIn, detail("log in before changing a PIN")};
  return done(
      call_with_pins(*connection_, Opcode::kSetPin, id_, partition_, cbor::Value::map(),
                     {{field::kPinEnvelope, r, &old_pin}, {field::kNewPinEnvelope, r, &new_pin}}));
}

Done Session::unlock_user() {
  return done(session_call(connection_, id_, Opcode::kUnlockUser, cbor::Value::map()));
}

Result<Role> Session::role() {
  auto r = session_call(connection_, id_, Opcode::kSessionInfo, cbor::Value::map());
  if (!r) return failure<Role>(r);
  Reader m(r.value());
  uint32_t role_value = 0;
  m.uint(field::kRole, role_value);
  if (m.good() && role_value > static_cast<uint32_t>(Role::kCryptoOfficer)) {
    m.invalid(field::kRole, "is not a role");
  }
  if (!m.good()) return failure<Role>(m);
  return static_cast<Role>(role_value);
}

Done Session::close() {
  if (!connection_ || id_ == 0) return {Status::kInvalidSession, detail("the session is closed")};
  const SessionId id = std::exchange(id_, 0);
  auto r = connection_->call(Opcode::kSessionClose, id, cbor::Value::map());
  connection_->forget_session(id);
  return done(r);
}

Result<KeyHandle> Session::generate_aes_key(uint32_t bits, const KeyTemplate& tmpl) {
  return generate_secret_key(Mechanism::kAesKeyGen, bits, tmpl);
}

Result<KeyPair> Session::generate_ec_key_pair(Curve curve, const KeyTemplate& public_tmpl,
                                              const KeyTemplate& private_tmpl) {
  return generate_key_pair(Mechanism::kEcKeyPairGen, curve, 0, public_tmpl, private_tmpl);
}

Result<KeyInfo> Session::key_info(KeyHandle key) {
  auto r = session_call(connection_, id_, Opcode::kGetKeyInfo,
                        cbor::Value::map().set(field::kKey, cbor::Value::uint(key)));
  if (!r) return failure<KeyInfo>(r);
  KeyInfo info;
  ErrorDetail d;
  if (const Status s = parse_key_info(r.value(), info, d); !ok(s)) return {s, std::move(d)};
  return info;
}

Result<std::vector<KeyInfo>> Session::find_keys(const KeyQuery& query) {
  if ((query.label && query.label->size() > protocol::kMaxLabel) ||
      (query.id && query.id->size() > protocol::kMaxId)) {
    return {Status::kFieldTooLarge, detail("label or id too long")};
  }
  cbor::Value body = cbor::Value::map();
  if (query.label) body.set(field::kLabel, cbor::Value::text(*query.label));
  if (query.id) body.set(field::kId, cbor::Value::bytes(*query.id));
  if (query.object_class) {
    body.set(field::kClass, cbor::Value::uint(static_cast<uint32_t>(*query.object_class)));
  }
  std::vector<KeyInfo> out;
  // Page by page until the device says there is no more.
  for (KeyHandle after = 0;;) {
    if (after != 0) body.set(field::kAfter, cbor::Value::uint(after));
    auto r = session_call(connection_, id_, Opcode::kFindKeys, body);
    if (!r) return failure<std::vector<KeyInfo>>(r);
    Reader m(r.value());
    const auto* items = m.array(field::kKeys);
    bool more = false;
    m.opt_boolean(field::kMore, more);
    if (items == nullptr || !m.good()) return failure<std::vector<KeyInfo>>(m);
    for (const cbor::Value& item : *items) {
      KeyInfo info;
      ErrorDetail d;
      if (const Status s = parse_key_info(item, info, d); !ok(s)) return {s, std::move(d)};
      if (info.handle <= after) {
        return {Status::kTransportError, bad_response("find results out of order")};
      }
      after = info.handle;
      out.push_back(std::move(info));
    }
    if (!more) break;
    if (items->empty()) return {Status::kTransportError, bad_response("empty page with more")};
  }
  return out;
}

Result<KeyHandle> Session::create_object(const ObjectSpec& spec) {
  if (spec.label.size() > protocol::kMaxLabel || spec.id.size() > protocol::kMaxId ||
      spec.value.size() > protocol::kMaxObjectValue ||
      spec.application.size() > protocol::kMaxLabel) {
    return {Status::kFieldTooLarge, detail("label, id, application or value too long")};
  }
  cbor::Value body = cbor::Value::map();
  body.set(field::kClass, cbor::Value::uint(static_cast<uint32_t>(spec.object_class)));
  if (!spec.label.empty()) body.set(field::kLabel, cbor::Value::text(spec.label));
  if (!spec.id.empty()) body.set(field::kId, cbor::Value::bytes(spec.id));
  body.set(field::kValue, cbor::Value::bytes(spec.value));
  if (spec.object_class == ObjectClass::kCertificate) {
    body.set(field::kCertificateType, cbor::Value::uint(spec.certificate_type));
  }
  if (!spec.application.empty()) {
    body.set(field::kApplication, cbor::Value::text(spec.application));
  }
  if (spec.token) body.set(field::kToken, cbor::Value::boolean(true));
  return handle_field(session_call(connection_, id_, Opcode::kCreateObject, body));
}

Result<Bytes> Session::attest_key(KeyHandle key, const Bytes& nonce) {
  if (nonce.size() > 128) return {Status::kFieldTooLarge, detail("a nonce is at most 128 bytes")};
  cbor::Value body = cbor::Value::map();
  body.set(field::kKey, cbor::Value::uint(key));
  body.set(field::kNonce, cbor::Value::bytes(nonce));
  return bytes_field(session_call(connection_, id_, Opcode::kAttestKey, body), field::kReport,
                     64 * 1024);
}

Result<KeyHandle> Session::copy_object(KeyHandle source, const ObjectCopy& changes) {
  if ((changes.label && changes.label->size() > protocol::kMaxLabel) ||
      (changes.id && changes.id->size() > protocol::kMaxId)) {
    return {Status::kFieldTooLarge, detail("label or id too long")};
  }
  cbor::Value body = cbor::Value::map();
  body.set(field::kKey, cbor::Value::uint(source));
  if (changes.label) body.set(field::kLabel, cbor::Value::text(*changes.label));
  if (changes.id) body.set(field::kId, cbor::Value::bytes(*changes.id));
  if (changes.token) body.set(field::kToken, cbor::Value::boolean(*changes.token));
  if (changes.mask != 0) {
    body.set(field::kFlags, cbor::Value::uint(changes.flags));
    body.set(field::kFlagsMask, cbor::Value::uint(changes.mask));
  }
  return handle_field(session_call(connection_, id_, Opcode::kCopyObject, body));
}

Result<Bytes> Session::object_value(KeyHandle object) {
  return bytes_field(session_call(connection_, id_, Opcode::kGetObjectValue,
                                  cbor::Value::map().set(field::kKey, cbor::Value::uint(object))),
                     field::kValue, protocol::kMaxObjectValue);
}

Result<Bytes> Session::export_masked_key(KeyHandle key) {
  return bytes_field(session_call(connection_, id_, Opcode::kExportMaskedKey,
                                  cbor::Value::map().set(field::kKey, cbor::Value::uint(key))),
                     field::kMaskedKey, protocol::kMaxMaskedRecord);
}

Result<KeyHandle> Session::load_masked_key(const Bytes& blob) {
  if (blob.size() > protocol::kMaxMaskedRecord) {
    return {Status::kFieldTooLarge, detail("a masked blob is at most 36 KiB")};
  }
  return handle_field(
      session_call(connection_, id_, Opcode::kLoadMaskedKey,
                   cbor::Value::map().set(field::kMaskedKey, cbor::Value::bytes(blob))));
}

Done Session::destroy_key(KeyHandle key) {
  return done(session_call(connection_, id_, Opcode::kDestroyKey,
                           cbor::Value::map().set(field::kKey, cbor::Value::uint(key))));
}

Result<Bytes> Session::public_key(KeyHandle key) {
  auto r = session_call(connection_, id_, Opcode::kGetPublicKey,
                        cbor::Value::map().set(field::kKey, cbor::Value::uint(key)));
  if (!r) return failure<Bytes>(r);
  Reader m(r.value());
  Bytes spki;
  m.bytes(field::kPublicKey, spki, kMaxSpki);
  if (m.good() && spki.empty()) m.invalid(field::kPublicKey, "is empty");
  if (!m.good()) return failure<Bytes>(m);
  return spki;
}

Result<Bytes> Session::sign(KeyHandle key, Mechanism mechanism, const Bytes& data) {
  return sign(key, mechanism, data, MechanismParams{});
}

Result<GcmCiphertext> Session::encrypt_gcm(KeyHandle key, const Bytes& plaintext, const Bytes& aad,
                                           std::optional<Bytes> iv) {
  if (iv && iv->size() != protocol::kGcmIvSize) {
    return {Status::kMechanismParamInvalid, detail("a GCM IV is 12 bytes")};
  }
  auto r = encrypt(key, CipherSpec{Mechanism::kAesGcm, {}, std::move(iv), aad}, plaintext);
  if (!r) return failure<GcmCiphertext>(r);
  // A device that answers with the wrong shape is not believed.
  if (r->iv.size() != protocol::kGcmIvSize || r->tag.size() != protocol::kGcmTagSize ||
      r->data.size() != plaintext.size()) {
    return {Status::kTransportError, detail("malformed GCM response from the device")};
  }
  return GcmCiphertext{std::move(r->iv), std::move(r->data), std::move(r->tag)};
}

Result<Bytes> Session::decrypt_gcm(KeyHandle key, const GcmCiphertext& in, const Bytes& aad) {
  if (in.iv.size() != protocol::kGcmIvSize || in.tag.size() != protocol::kGcmTagSize) {
    return {Status::kMechanismParamInvalid, detail("a GCM IV is 12 bytes and a tag 16")};
  }
  auto r = decrypt(key, CipherSpec{Mechanism::kAesGcm, {}, in.iv, aad}, in.ciphertext, in.tag);
  if (r && r->size() != in.ciphertext.size()) {
    return {Status::kTransportError, detail("malformed GCM response from the device")};
  }
  return r;
}

Result<Bytes> Session::random(size_t length) {
  if (length > protocol::kMaxRandom) {
    return {Status::kDataLengthInvalid, detail("at most 64 KiB per call")};
  }
  auto r = session_call(connection_, id_, Opcode::kGenerateRandom,
                        cbor::Value::map().set(field::kLength, cbor::Value::uint(length)));
  if (!r) return failure<Bytes>(r);
  Reader m(r.value());
  Bytes data;
  m.bytes(field::kData, data, protocol::kMaxRandom);
  if (m.good() && data.size() != length) m.invalid(field::kData, "has the wrong length");
  if (!m.good()) return failure<Bytes>(m);
  return data;
}

// ---------------------------------------------------------------- the full mechanism set

Result<KeyHandle> Session::generate_secret_key(Mechanism mechanism, uint32_t bits,
                                               const KeyTemplate& tmpl) {
  ErrorDetail d;
  if (const Status s = check_template(tmpl, d); !ok(s)) return {s, std::move(d)};
  cbor::Value body = template_map(tmpl);
  body.set(field::kMechanism, cbor::Value::uint(static_cast<uint32_t>(mechanism)));
  body.set(field::kKeyBits, cbor::Value::uint(bits));
  return handle_field(session_call(connection_, id_, Opcode::kGenerateKey, body));
}

Result<KeyPair> Session::generate_key_pair(Mechanism mechanism, std::optional<Curve> curve,
                                           uint32_t rsa_bits, const KeyTemplate& public_tmpl,
                                           const KeyTemplate& private_tmpl) {
  ErrorDetail d;
  if (const Status s = check_template(public_tmpl, d); !ok(s)) return {s, std::move(d)};
  if (const Status s = check_template(private_tmpl, d); !ok(s)) return {s, std::move(d)};
  cbor::Value body = cbor::Value::map();
  body.set(field::kMechanism, cbor::Value::uint(static_cast<uint32_t>(mechanism)));
  if (curve) body.set(field::kCurve, cbor::Value::uint(static_cast<uint32_t>(*curve)));
  if (rsa_bits != 0) body.set(field::kKeyBits, cbor::Value::uint(rsa_bits));
  body.set(field::kPublicTemplate, template_map(public_tmpl));
  body.set(field::kPrivateTemplate, template_map(private_tmpl));
  auto r = session_call(connection_, id_, Opcode::kGenerateKeyPair, body);
  if (!r) return failure<KeyPair>(r);
  Reader m(r.value());
  KeyPair pair;
  m.uint(field::kPublicHandle, pair.public_handle);
  m.uint(field::kPrivateHandle, pair.private_handle);
  if (!m.good()) return failure<KeyPair>(m);
  return pair;
}

Result<Bytes> Session::sign(KeyHandle key, Mechanism mechanism, const Bytes& data,
                            const MechanismParams& params) {
  if (mechanism == Mechanism::kEcdsa && (data.size() < 20 || data.size() > 64)) {
    return {Status::kDataLengthInvalid, detail("ECDSA takes a digest of 20 to 64 bytes")};
  }
  if (data.size() > protocol::kMaxSignData) {
    return {Status::kDataLengthInvalid, detail("sign input is at most 512 KiB")};
  }
  cbor::Value body = keyed_request(key, mechanism);
  body.set(field::kData, cbor::Value::bytes(data));
  body.set(field::kParams, params_map(params));
  auto r = bytes_field(session_call(connection_, id_, Opcode::kSign, body), field::kSignature,
                       kMaxSignature);
  if (r && r->empty()) return {Status::kTransportError, detail("empty signature")};
  return r;
}

Done Session::verify(KeyHandle key, Mechanism mechanism, const Bytes& data, const Bytes& signature,
                     const MechanismParams& params) {
  if (data.size() > protocol::kMaxSignData || signature.size() > kMaxSignature) {
    return {Status::kDataLengthInvalid, detail("input too long")};
  }
  cbor::Value body = keyed_request(key, mechanism);
  body.set(field::kData, cbor::Value::bytes(data));
  body.set(field::kSignature, cbor::Value::bytes(signature));
  body.set(field::kParams, params_map(params));
  return done(session_call(connection_, id_, Opcode::kVerify, body));
}

namespace {

Status check_cipher_input(const CipherSpec& spec, size_t length, ErrorDetail& d) {
  if (length > protocol::kMaxCipherData) {
    d = detail("at most 512 KiB per call");
    return Status::kDataLengthInvalid;
  }
  if (spec.aad.size() > protocol::kMaxAad) {
    d = detail("AAD is at most 64 KiB");
    return Status::kDataLengthInvalid;
  }
  return Status::kOk;
}

cbor::Value cipher_request(KeyHandle key, const CipherSpec& spec) {
  cbor::Value body = keyed_request(key, spec.mechanism);
  if (spec.iv) body.set(field::kIv, cbor::Value::bytes(*spec.iv));
  if (!spec.aad.empty()) body.set(field::kAad, cbor::Value::bytes(spec.aad));
  body.set(field::kParams, params_map(spec.params));
  return body;
}

}  // namespace

Result<CipherOutput> Session::encrypt(KeyHandle key, const CipherSpec& spec,
                                      const Bytes& plaintext) {
  ErrorDetail d;
  if (const Status s = check_cipher_input(spec, plaintext.size(), d); !ok(s)) {
    return {s, std::move(d)};
  }
  cbor::Value body = cipher_request(key, spec);
  body.set(field::kPlaintext, cbor::Value::bytes(plaintext));
  auto r = session_call(connection_, id_, Opcode::kEncrypt, body);
  if (!r) return failure<CipherOutput>(r);
  Reader m(r.value());
  CipherOutput out;
  m.opt_bytes(field::kIv, out.iv, 16);
  m.bytes(field::kCiphertext, out.data, protocol::kMaxCipherData + 16);
  m.opt_bytes(field::kTag, out.tag, protocol::kGcmTagSize);
  if (!m.good()) return failure<CipherOutput>(m);
  return out;
}

Result<Bytes> Session::decrypt(KeyHandle key, const CipherSpec& spec, const Bytes& ciphertext,
                               const Bytes& tag) {
  ErrorDetail d;
  if (const Status s = check_cipher_input(spec, ciphertext.size(), d); !ok(s)) {
    return {s, std::move(d)};
  }
  cbor::Value body = cipher_request(key, spec);
  body.set(field::kCiphertext, cbor::Value::bytes(ciphertext));
  if (!tag.empty()) body.set(field::kTag, cbor::Value::bytes(tag));
  return bytes_field(session_call(connection_, id_, Opcode::kDecrypt, body), field::kPlaintext,
                     protocol::kMaxCipherData);
}

Result<Bytes> Session::encrypt_init(KeyHandle key, const CipherSpec& spec) {
  ErrorDetail d;
  if (const Status s = check_cipher_input(spec, 0, d); !ok(s)) return {s, std::move(d)};
  return bytes_field(
      session_call(connection_, id_, Opcode::kEncryptInit, cipher_request(key, spec)), field::kIv,
      16);
}

Result<Bytes> Session::encrypt_update(const Bytes& plaintext) {
  if (plaintext.size() > protocol::kMaxCipherData) {
    return {Status::kDataLengthInvalid, detail("at most 512 KiB per call")};
  }
  return bytes_field(
      session_call(connection_, id_, Opcode::kEncryptUpdate,
                   cbor::Value::map().set(field::kPlaintext, cbor::Value::bytes(plaintext))),
      field::kCiphertext, protocol::kMaxCipherData + 16);
}

Result<CipherOutput> Session::encrypt_final() {
  auto r = session_call(connection_, id_, Opcode::kEncryptFinal, cbor::Value::map());
  if (!r) return failure<CipherOutput>(r);
  Reader m(r.value());
  CipherOutput out;
  m.bytes(field::kCiphertext, out.data, 16);
  m.opt_bytes(field::kTag, out.tag, protocol::kGcmTagSize);
  if (!m.good()) return failure<CipherOutput>(m);
  return out;
}

Done Session::decrypt_init(KeyHandle key, const CipherSpec& spec) {
  ErrorDetail d;
  if (const Status s = check_cipher_input(spec, 0, d); !ok(s)) return {s, std::move(d)};
  return done(session_call(connection_, id_, Opcode::kDecryptInit, cipher_request(key, spec)));
}

Result<Bytes> Session::decrypt_update(const Bytes& ciphertext) {
  if (ciphertext.size() > protocol::kMaxCipherData) {
    return {Status::kDataLengthInvalid, detail("at most 512 KiB per call")};
  }
  return bytes_field(
      session_call(connection_, id_, Opcode::kDecryptUpdate,
                   cbor::Value::map().set(field::kCiphertext, cbor::Value::bytes(ciphertext))),
      field::kPlaintext, protocol::kMaxCipherData + 16);
}

Result<Bytes> Session::decrypt_final(const Bytes& tag) {
  cbor::Value body = cbor::Value::map();
  if (!tag.empty()) body.set(field::kTag, cbor::Value::bytes(tag));
  return bytes_field(session_call(connection_, id_, Opcode::kDecryptFinal, body), field::kPlaintext,
                     protocol::kMaxCipherData + 16);
}

Result<Bytes> Session::digest(Mechanism mechanism, const Bytes& data) {
  if (data.size() > protocol::kMaxSignData) {
    return {Status::kDataLengthInvalid, detail("at most 512 KiB per call")};
  }
  cbor::Value body = cbor::Value::map();
  body.set(field::kMechanism, cbor::Value::uint(static_cast<uint32_t>(mechanism)));
  body.set(field::kData, cbor::Value::bytes(data));
  return bytes_field(session_call(connection_, id_, Opcode::kDigest, body), field::kData, 64);
}

Done Session::digest_init(Mechanism mechanism) {
  return done(
      session_call(connection_, id_, Opcode::kDigestInit,
                   cbor::Value::map().set(field::kMechanism,
                                          cbor::Value::uint(static_cast<uint32_t>(mechanism)))));
}

Done Session::digest_update(const Bytes& data) {
  if (data.size() > protocol::kMaxSignData) {
    return {Status::kDataLengthInvalid, detail("at most 512 KiB per call")};
  }
  return done(session_call(connection_, id_, Opcode::kDigestUpdate,
                           cbor::Value::map().set(field::kData, cbor::Value::bytes(data))));
}

Result<Bytes> Session::digest_final() {
  return bytes_field(session_call(connection_, id_, Opcode::kDigestFinal, cbor::Value::map()),
                     field::kData, 64);
}

Result<KeyHandle> Session::derive_key(KeyHandle base, Mechanism mechanism,
                                      const MechanismParams& params, const NewKeySpec& spec) {
  ErrorDetail d;
  if (const Status s = check_template(spec.tmpl, d); !ok(s)) return {s, std::move(d)};
  cbor::Value body = keyed_request(base, mechanism);
  body.set(field::kParams, params_map(params));
  body.set(field::kTemplate, new_key_map(spec));
  return handle_field(session_call(connection_, id_, Opcode::kDeriveKey, body));
}

Result<Bytes> Session::wrap_key(KeyHandle wrapping_key, KeyHandle target, Mechanism mechanism,
                                const MechanismParams& params, const Bytes& aad) {
  cbor::Value body = keyed_request(wrapping_key, mechanism);
  body.set(field::kTarget, cbor::Value::uint(target));
  body.set(field::kParams, params_map(params));
  if (!aad.empty()) body.set(field::kAad, cbor::Value::bytes(aad));
  return bytes_field(session_call(connection_, id_, Opcode::kWrapKey, body), field::kWrapped,
                     protocol::kMaxWrapped);
}

Result<KeyHandle> Session::unwrap_key(KeyHandle unwrapping_key, Mechanism mechanism,
                                      const Bytes& wrapped, const NewKeySpec& spec,
                                      const MechanismParams& params, const Bytes& aad) {
  ErrorDetail d;
  if (const Status s = check_template(spec.tmpl, d); !ok(s)) return {s, std::move(d)};
  if (wrapped.size() > protocol::kMaxWrapped) {
    return {Status::kDataLengthInvalid, detail("wrapped key too long")};
  }
  cbor::Value body = keyed_request(unwrapping_key, mechanism);
  body.set(field::kWrapped, cbor::Value::bytes(wrapped));
  body.set(field::kParams, params_map(params));
  body.set(field::kTemplate, new_key_map(spec));
  if (!aad.empty()) body.set(field::kAad, cbor::Value::bytes(aad));
  return handle_field(session_call(connection_, id_, Opcode::kUnwrapKey, body));
}

Done Session::set_key_attributes(KeyHandle key, uint32_t flags, uint32_t mask,
                                 const std::optional<std::string>& label,
                                 const std::optional<Bytes>& id) {
  if ((label && label->size() > protocol::kMaxLabel) || (id && id->size() > protocol::kMaxId)) {
    return {Status::kFieldTooLarge, detail("label or id too long")};
  }
  cbor::Value body = cbor::Value::map();
  body.set(field::kKey, cbor::Value::uint(key));
  body.set(field::kFlags, cbor::Value::uint(flags));
  body.set(field::kFlagsMask, cbor::Value::uint(mask));
  if (label) body.set(field::kLabel, cbor::Value::text(*label));
  if (id) body.set(field::kId, cbor::Value::bytes(*id));
  return done(session_call(connection_, id_, Opcode::kSetKeyAttributes, body));
}

bool Session::last_approved() const {
  return connection_ && id_ != 0 && connection_->last_approved(id_);
}

}  // namespace ihsm
