// libihsm-pkcs11: the PKCS#11 3.0 front end over libihsm. Everything here
// runs in the application's process and holds only what libihsm holds:
// handles, public values and, while a token is logged in, its PIN (to
// log in the device sessions the application opens later). docs/pkcs11.md.
//
// Mapping:
//   slot    = a partition the caller may open (slot id = partition id),
//             plus one free slot (kFreeSlot) whose C_InitToken creates one
//   session = a device session on the token's one connection, so that
//             session objects are shared by the application's sessions
//   object  = a device handle, passed through (0 is never a device handle)
//   CK_RV   = status_to_ckr(), the one mapping in include/ihsm/status.h
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "ihsm/client.h"
#include "pkcs11/pkcs11.h"

namespace ihsm::pkcs11 {

constexpr CK_SLOT_ID kFreeSlot = 0x7fff0000;

// The usage flags of keys that C_*Init looked up, so the next Init of the
// same key costs no device round trip: the device checks the key again at
// the operation itself, so a key changed or destroyed by another process
// is refused there (at C_Sign rather than C_SignInit). Entries go when this
// process changes or destroys the key, when the token gets a new
// connection, and all at once past kMaxKeys. Handles are never reused by a
// running device.
class KeyFlagsCache {
 public:
  static constexpr size_t kMaxKeys = 4096;
  std::optional<uint32_t> get(CK_OBJECT_HANDLE h) {
    std::lock_guard lock(mutex_);
    const auto it = flags_.find(h);
    if (it == flags_.end()) return std::nullopt;
    return it->second;
  }
  void put(CK_OBJECT_HANDLE h, uint32_t flags) {
    std::lock_guard lock(mutex_);
    if (flags_.size() >= kMaxKeys) flags_.clear();
    flags_[h] = flags;
  }
  void forget(CK_OBJECT_HANDLE h) {
    std::lock_guard lock(mutex_);
    flags_.erase(h);
  }
  void clear() {
    std::lock_guard lock(mutex_);
    flags_.clear();
  }

 private:
  std::mutex mutex_;
  std::unordered_map<CK_OBJECT_HANDLE, uint32_t> flags_;
};

// One token (partition) as this process uses it.
struct Token {
  CK_SLOT_ID slot = 0;
  PartitionId partition = 0;
  // Serializes C_Login, C_Logout and C_OpenSession on this token (taken
  // before `mutex` and the module's): a session opened while a login runs
  // is either logged in by it or sees its role and logs itself in, never
  // left behind as a public session of a logged-in token.
  std::mutex login_mutex;
  std::mutex mutex;  // everything below
  std::optional<Client> client;
  Role role = Role::kPublic;
  // The PIN of the logged-in role, to log in sessions opened after
  // C_Login (PKCS#11 login is per application, device login per session).
  std::optional<SecretPin> pin;
  std::set<CK_SESSION_HANDLE> sessions;
  KeyFlagsCache key_flags;
};

// An active operation of one kind (sign, verify, encrypt, decrypt, digest).
struct Operation {
  bool active = false;
  CK_MECHANISM_TYPE mechanism = 0;
  CK_OBJECT_HANDLE key = 0;
  MechanismParams params;
  CipherSpec spec;
  Bytes input;                  // multi-part sign/verify: the data so far
  std::optional<Bytes> result;  // computed, waiting for a big enough buffer
  bool device_multipart = false;
  size_t tag_length = 0;  // GCM decryption: the tag is the input's last bytes
  Bytes held;             // GCM decryption, multi-part: bytes that may be the tag
};

struct P11Session {
  CK_SESSION_HANDLE handle = 0;
  CK_SLOT_ID slot = 0;
  CK_FLAGS flags = 0;
  std::shared_ptr<Token> token;
  std::optional<Session> device;
  std::mutex mutex;  // one call at a time per session
  Operation sign, verify, encrypt, decrypt, digest;
  bool finding = false;
  std::vector<CK_OBJECT_HANDLE> found;
  size_t found_next = 0;
  // The FIPS indicator of the last cryptographic service that completed
  // on this session (C_GetSessionValidationFlags); unset before the first.
  std::optional<bool> last_service_approved;
};

// Records the device's approved-service indicator for the service call
// that just succeeded, before any later call (an attribute read) could
// replace the connection's last response.
inline void record_approval(P11Session& s) { s.last_service_approved = s.device->last_approved(); }

// Maps a libihsm status to a CK_RV.
inline CK_RV rv(Status s) { return static_cast<CK_RV>(status_to_ckr(s)); }
// With IHSM_PKCS11_DEBUG set, a failed device call is told on stderr
// (status name and the device's message; never data or PINs), since a
// CK_RV alone often cannot say which of several causes it was.
void report_failure(Status s, const std::string& detail);
template <typename T>
CK_RV rv(const Result<T>& r) {
  report_failure(r.status(), r.detail().message);
  return rv(r.status());
}

// The module's process-wide state.
class Module {
 public:
  static Module& get();

  CK_RV initialize(CK_VOID_PTR args);
  CK_RV finalize(CK_VOID_PTR reserved);
  // Holds the lifecycle lock for one entry point: C_Finalize waits for
  // calls in flight and later calls see CKR_CRYPTOKI_NOT_INITIALIZED.
  class Call {
   public:
    explicit Call(Module& m);
    CK_RV status() const { return status_; }

   private:
    std::shared_lock<std::shared_mutex> lock_;
    CK_RV status_ = CKR_OK;
  };

  CK_RV slot_list(bool token_present, CK_SLOT_ID_PTR list, CK_ULONG_PTR count);
  CK_RV slot_info(CK_SLOT_ID slot, CK_SLOT_INFO_PTR info);
  CK_RV token_info(CK_SLOT_ID slot, CK_TOKEN_INFO_PTR info);
  CK_RV init_token(CK_SLOT_ID slot, const SecretPin& so_pin, const std::string& label);

  CK_RV open_session(CK_SLOT_ID slot, CK_FLAGS flags, CK_SESSION_HANDLE_PTR out);
  CK_RV close_session(CK_SESSION_HANDLE h);
  CK_RV close_all_sessions(CK_SLOT_ID slot);
  std::shared_ptr<P11Session> session(CK_SESSION_HANDLE h);
  CK_RV login(P11Session& s, CK_USER_TYPE type, SecretPin pin);
  CK_RV logout(P11Session& s);

  // A control connection (device info, partition list, C_InitToken).
  Result<Client> control();
  // Connects to the daemon the configuration names (see socket_path()).
  Result<Client> connect();
  // IHSM_SOCKET; else `socket = PATH` in the file IHSM_PKCS11_CONF names,
  // or in /etc/ihsm/pkcs11.conf; else libihsm's defaults. Read once per
  // C_Initialize.
  const std::string& socket_path() const { return socket_; }

 private:
  std::shared_ptr<Token> token_for(CK_SLOT_ID slot, Status& status);
  Result<PartitionInfo> partition_info(CK_SLOT_ID slot);

  std::shared_mutex lifecycle_;
  // Set while C_Finalize waits for calls in flight: new calls turn back at
  // once instead of queueing (a stream of callers would otherwise starve
  // the finaliser of the exclusive lock).
  std::atomic<bool> finalizing_{false};
  bool initialized_ = false;
  std::string socket_;
  pid_t pid_ = 0;
  std::mutex mutex_;  // tokens_, sessions_, next_session_
  std::map<CK_SLOT_ID, std::shared_ptr<Token>> tokens_;
  std::map<CK_SESSION_HANDLE, std::shared_ptr<P11Session>> sessions_;
  CK_SESSION_HANDLE next_session_ = 1;
};

// objects.cpp
CK_RV find_init(P11Session& s, CK_ATTRIBUTE_PTR tmpl, CK_ULONG count);
CK_RV find(P11Session& s, CK_OBJECT_HANDLE_PTR out, CK_ULONG max, CK_ULONG_PTR count);
CK_RV find_final(P11Session& s);
CK_RV get_attributes(P11Session& s, CK_OBJECT_HANDLE h, CK_ATTRIBUTE_PTR tmpl, CK_ULONG count);
CK_RV set_attributes(P11Session& s, CK_OBJECT_HANDLE h, CK_ATTRIBUTE_PTR tmpl, CK_ULONG count);
CK_RV create_object(P11Session& s, CK_ATTRIBUTE_PTR tmpl, CK_ULONG count, CK_OBJECT_HANDLE_PTR out);
CK_RV copy_object(P11Session& s, CK_OBJECT_HANDLE h, CK_ATTRIBUTE_PTR tmpl, CK_ULONG count,
                  CK_OBJECT_HANDLE_PTR out);
CK_RV destroy_object(P11Session& s, CK_OBJECT_HANDLE h);
CK_RV generate_key(P11Session& s, CK_MECHANISM_PTR mech, CK_ATTRIBUTE_PTR tmpl, CK_ULONG count,
                   CK_OBJECT_HANDLE_PTR out);
CK_RV generate_key_pair(P11Session& s, CK_MECHANISM_PTR mech, CK_ATTRIBUTE_PTR pub,
                        CK_ULONG pub_count, CK_ATTRIBUTE_PTR priv, CK_ULONG priv_count,
                        CK_OBJECT_HANDLE_PTR pub_out, CK_OBJECT_HANDLE_PTR priv_out);

// wrap_derive.cpp
CK_RV wrap_key(P11Session& s, CK_MECHANISM_PTR mech, CK_OBJECT_HANDLE wrapping,
               CK_OBJECT_HANDLE key, CK_BYTE_PTR out, CK_ULONG_PTR out_len);
CK_RV unwrap_key(P11Session& s, CK_MECHANISM_PTR mech, CK_OBJECT_HANDLE unwrapping,
                 CK_BYTE_PTR wrapped, CK_ULONG wrapped_len, CK_ATTRIBUTE_PTR tmpl, CK_ULONG count,
                 CK_OBJECT_HANDLE_PTR out);
CK_RV derive_key(P11Session& s, CK_MECHANISM_PTR mech, CK_OBJECT_HANDLE base, CK_ATTRIBUTE_PTR tmpl,
                 CK_ULONG count, CK_OBJECT_HANDLE_PTR out);
// objects.cpp, shared with wrap_derive.cpp: a template for a new key.
struct KeyExtras {
  std::optional<CK_ULONG> value_len;
  std::optional<Curve> curve;
  std::optional<CK_ULONG> modulus_bits;
  std::optional<CK_ULONG> object_class, key_type;
};
CK_RV read_key_template(CK_ATTRIBUTE_PTR tmpl, CK_ULONG count, KeyTemplate& t, KeyExtras& x);
CK_RV require_logged_in(P11Session& s);
CK_RV check_writable(P11Session& s, bool token_object);

// mechanisms.cpp
// The struct behind a mechanism's pParameter, if it is exactly that size.
template <typename T>
const T* params_as(const CK_MECHANISM& m) {
  if (m.pParameter == nullptr || m.ulParameterLen != sizeof(T)) return nullptr;
  return static_cast<const T*>(m.pParameter);
}
// CKG_MGF1_SHA256/384/512 -> the hash; nullopt for any other MGF.
std::optional<Mechanism> mgf1_hash(CK_RSA_PKCS_MGF_TYPE mgf);
// CK_RSA_PKCS_OAEP_PARAMS -> hash, MGF1 hash and label.
CK_RV read_oaep(const CK_RSA_PKCS_OAEP_PARAMS* p, MechanismParams& out);
struct MechanismEntry {
  CK_MECHANISM_TYPE type;
  CK_ULONG min_key, max_key;
  CK_FLAGS flags;
};
const std::vector<MechanismEntry>& mechanism_table();

// operations.cpp
enum class OpKind { kSign, kVerify, kEncrypt, kDecrypt, kDigest };
CK_RV op_init(P11Session& s, OpKind kind, CK_MECHANISM_PTR mech, CK_OBJECT_HANDLE key);
CK_RV op_one_shot(P11Session& s, OpKind kind, CK_BYTE_PTR in, CK_ULONG in_len, CK_BYTE_PTR out,
                  CK_ULONG_PTR out_len);
CK_RV op_update(P11Session& s, OpKind kind, CK_BYTE_PTR in, CK_ULONG in_len, CK_BYTE_PTR out,
                CK_ULONG_PTR out_len);
CK_RV op_final(P11Session& s, OpKind kind, CK_BYTE_PTR out, CK_ULONG_PTR out_len);
CK_RV verify_one_shot(P11Session& s, CK_BYTE_PTR data, CK_ULONG len, CK_BYTE_PTR sig,
                      CK_ULONG sig_len);
CK_RV verify_final(P11Session& s, CK_BYTE_PTR sig, CK_ULONG sig_len);
CK_RV random(P11Session& s, CK_BYTE_PTR out, CK_ULONG len);

// Copies `value` out by the PKCS#11 buffer convention: a NULL buffer
// asks for the length; a short one gets CKR_BUFFER_TOO_SMALL.
CK_RV give(const Bytes& value, CK_BYTE_PTR out, CK_ULONG_PTR out_len);

}  // namespace ihsm::pkcs11
