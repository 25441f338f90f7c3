// The exported PKCS#11 entry points. Each checks its arguments, holds the
// module's lifecycle lock and the session's lock, and turns any C++
// exception into a return value: nothing unwinds into the application.
#include <cstring>
#include <new>

#include "pkcs11/module.h"

#define IHSM_EXPORT extern "C" __attribute__((visibility("default")))

namespace ihsm::pkcs11 {
namespace {

template <typename F>
CK_RV guarded(F&& f) noexcept {
  try {
    return f();
  } catch (const std::bad_alloc&) {
    return CKR_HOST_MEMORY;
  } catch (...) {
    return CKR_GENERAL_ERROR;
  }
}

// Runs `f(session)` with the module initialised and the session locked.
template <typename F>
CK_RV with_session(CK_SESSION_HANDLE h, F&& f) noexcept {
  return guarded([&]() -> CK_RV {
    Module& m = Module::get();
    Module::Call call(m);
    if (call.status() != CKR_OK) return call.status();
    auto s = m.session(h);
    if (!s) return CKR_SESSION_HANDLE_INVALID;
    std::lock_guard lock(s->mutex);
    if (!s->device) return CKR_SESSION_HANDLE_INVALID;
    return f(*s);
  });
}

template <typename F>
CK_RV with_module(F&& f) noexcept {
  return guarded([&]() -> CK_RV {
    Module& m = Module::get();
    Module::Call call(m);
    if (call.status() != CKR_OK) return call.status();
    return f(m);
  });
}

CK_RV pin_from(CK_UTF8CHAR_PTR pin, CK_ULONG len, SecretPin& out) {
  if (pin == nullptr && len != 0) return CKR_ARGUMENTS_BAD;
  if (len < 4 || len > 64) return CKR_PIN_LEN_RANGE;
  out = SecretPin(std::string_view(reinterpret_cast<const char*>(pin), len));
  return CKR_OK;
}

void pad(CK_UTF8CHAR* field, size_t size, std::string_view text) {
  std::memset(field, ' ', size);
  std::memcpy(field, text.data(), std::min(size, text.size()));
}

extern CK_FUNCTION_LIST function_list_2_40;
extern CK_FUNCTION_LIST_3_0 function_list_3_0;
extern CK_IHSM_FUNCTION_LIST function_list_vendor;

CK_INTERFACE interfaces[] = {
    {reinterpret_cast<CK_CHAR*>(const_cast<char*>("PKCS 11")), &function_list_3_0,
     CKF_INTERFACE_FORK_SAFE},
    {reinterpret_cast<CK_CHAR*>(const_cast<char*>("PKCS 11")), &function_list_2_40,
     CKF_INTERFACE_FORK_SAFE},
    {reinterpret_cast<CK_CHAR*>(const_cast<char*>(IHSM_PKCS11_VENDOR_INTERFACE)),
     &function_list_vendor, CKF_INTERFACE_FORK_SAFE},
};

}  // namespace
}  // namespace ihsm::pkcs11

using namespace ihsm;
using namespace ihsm::pkcs11;

IHSM_EXPORT CK_RV C_Initialize(CK_VOID_PTR args) {
  return guarded([&] { return Module::get().initialize(args); });
}

IHSM_EXPORT CK_RV C_Finalize(CK_VOID_PTR reserved) {
  return guarded([&] { return Module::get().finalize(reserved); });
}

IHSM_EXPORT CK_RV C_GetInfo(CK_INFO_PTR info) {
  return with_module([&](Module&) -> CK_RV {
    if (info == nullptr) return CKR_ARGUMENTS_BAD;
    std::memset(info, 0, sizeof *info);
    info->cryptokiVersion = {3, 0};
    pad(info->manufacturerID, sizeof info->manufacturerID, "ihsm");
    pad(info->libraryDescription, sizeof info->libraryDescription, "ihsm PKCS#11 module");
    info->libraryVersion = {0, 1};
    return CKR_OK;
  });
}

IHSM_EXPORT CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR list) {
  if (list == nullptr) return CKR_ARGUMENTS_BAD;
  *list = &function_list_2_40;
  return CKR_OK;
}

IHSM_EXPORT CK_RV C_GetInterfaceList(CK_INTERFACE_PTR list, CK_ULONG_PTR count) {
  if (count == nullptr) return CKR_ARGUMENTS_BAD;
  constexpr CK_ULONG n = sizeof interfaces / sizeof interfaces[0];
  if (list == nullptr) {
    *count = n;
    return CKR_OK;
  }
  if (*count < n) {
    *count = n;
    return CKR_BUFFER_TOO_SMALL;
  }
  std::memcpy(list, interfaces, sizeof interfaces);
  *count = n;
  return CKR_OK;
}

IHSM_EXPORT CK_RV C_GetInterface(CK_UTF8CHAR_PTR name, CK_VERSION_PTR version,
                                 CK_INTERFACE_PTR_PTR out, CK_FLAGS flags) {
  if (out == nullptr) return CKR_ARGUMENTS_BAD;
  // No name: the standard interface (PKCS#11 3.0, 5.4).
  const char* wanted = name != nullptr ? reinterpret_cast<const char*>(name) : "PKCS 11";
  for (CK_INTERFACE& i : interfaces) {
    if (std::strcmp(reinterpret_cast<const char*>(i.pInterfaceName), wanted) != 0) continue;
    const auto* v = static_cast<const CK_VERSION*>(i.pFunctionList);
    if (version != nullptr && (v->major != version->major || v->minor != version->minor)) {
      continue;
    }
    if ((i.flags & flags) != flags) continue;
    *out = &i;
    return CKR_OK;
  }
  return CKR_ARGUMENTS_BAD;
}

IHSM_EXPORT CK_RV C_GetSessionValidationFlags(CK_SESSION_HANDLE h, CK_ULONG type, CK_FLAGS* flags) {
  return with_session(h, [&](P11Session& s) -> CK_RV {
    if (flags == nullptr || type != CKS_LAST_VALIDATION_OK) return CKR_ARGUMENTS_BAD;
    *flags = s.last_service_approved.value_or(false) ? CKF_IHSM_VALIDATION_FIPS_140_3 : 0;
    return CKR_OK;
  });
}

IHSM_EXPORT CK_RV C_GetSlotList(CK_BBOOL present, CK_SLOT_ID_PTR list, CK_ULONG_PTR count) {
  return with_module([&](Module& m) { return m.slot_list(present != CK_FALSE, list, count); });
}

IHSM_EXPORT CK_RV C_GetSlotInfo(CK_SLOT_ID slot, CK_SLOT_INFO_PTR info) {
  return with_module([&](Module& m) { return m.slot_info(slot, info); });
}

IHSM_EXPORT CK_RV C_GetTokenInfo(CK_SLOT_ID slot, CK_TOKEN_INFO_PTR info) {
  return with_module([&](Module& m) { return m.token_info(slot, info); });
}

IHSM_EXPORT CK_RV C_GetMechanismList(CK_SLOT_ID, CK_MECHANISM_TYPE_PTR list, CK_ULONG_PTR count) {
  return with_module([&](Module&) -> CK_RV {
    if (count == nullptr) return CKR_ARGUMENTS_BAD;
    const auto& table = mechanism_table();
    if (list == nullptr) {
      *count = table.size();
      return CKR_OK;
    }
    if (*count < table.size()) {
      *count = table.size();
      return CKR_BUFFER_TOO_SMALL;
    }
    for (size_t i = 0; i < table.size(); ++i) list[i] = table[i].type;
    *count = table.size();
    return CKR_OK;
  });
}

IHSM_EXPORT CK_RV C_GetMechanismInfo(CK_SLOT_ID, CK_MECHANISM_TYPE type,
                                     CK_MECHANISM_INFO_PTR info) {
  return with_module([&](Module&) -> CK_RV {
    if (info == nullptr) return CKR_ARGUMENTS_BAD;
    for (const auto& e : mechanism_table()) {
      if (e.type != type) continue;
      info->ulMinKeySize = e.min_key;
      info->ulMaxKeySize = e.max_key;
      info->flags = e.flags;
      return CKR_OK;
    }
    return CKR_MECHANISM_INVALID;
  });
}

IHSM_EXPORT CK_RV C_InitToken(CK_SLOT_ID slot, CK_UTF8CHAR_PTR pin, CK_ULONG pin_len,
                              CK_UTF8CHAR_PTR label) {
  return with_module([&](Module& m) -> CK_RV {
    if (label == nullptr) return CKR_ARGUMENTS_BAD;
    SecretPin so;
    if (const CK_RV r = pin_from(pin, pin_len, so); r != CKR_OK) return r;
    std::string name(reinterpret_cast<const char*>(label), 32);
    while (!name.empty() && (name.back() == ' ' || name.back() == '\0')) name.pop_back();
    return m.init_token(slot, so, name);
  });
}

IHSM_EXPORT CK_RV C_InitPIN(CK_SESSION_HANDLE h, CK_UTF8CHAR_PTR pin, CK_ULONG len) {
  return with_session(h, [&](P11Session& s) -> CK_RV {
    SecretPin p;
    if (const CK_RV r = pin_from(pin, len, p); r != CKR_OK) return r;
    auto r = s.device->init_user_pin(p);
    return r ? CKR_OK : rv(r);
  });
}

IHSM_EXPORT CK_RV C_SetPIN(CK_SESSION_HANDLE h, CK_UTF8CHAR_PTR old_pin, CK_ULONG old_len,
                           CK_UTF8CHAR_PTR new_pin, CK_ULONG new_len) {
  return with_session(h, [&](P11Session& s) -> CK_RV {
    SecretPin o, n;
    if (const CK_RV r = pin_from(old_pin, old_len, o); r != CKR_OK) return r;
    if (const CK_RV r = pin_from(new_pin, new_len, n); r != CKR_OK) return r;
    if ((s.flags & CKF_RW_SESSION) == 0) return CKR_SESSION_READ_ONLY;
    auto r = s.device->set_pin(o, n);
    if (!r) return rv(r);
    // Sessions opened later log in with the new PIN.
    std::lock_guard lock(s.token->mutex);
    if (s.token->pin) s.token->pin.emplace(std::move(n));
    return CKR_OK;
  });
}

IHSM_EXPORT CK_RV C_OpenSession(CK_SLOT_ID slot, CK_FLAGS flags, CK_VOID_PTR, CK_NOTIFY,
                                CK_SESSION_HANDLE_PTR out) {
  return with_module([&](Module& m) { return m.open_session(slot, flags, out); });
}

IHSM_EXPORT CK_RV C_CloseSession(CK_SESSION_HANDLE h) {
  return with_module([&](Module& m) { return m.close_session(h); });
}

IHSM_EXPORT CK_RV C_CloseAllSessions(CK_SLOT_ID slot) {
  return with_module([&](Module& m) { return m.close_all_sessions(slot); });
}

IHSM_EXPORT CK_RV C_GetSessionInfo(CK_SESSION_HANDLE h, CK_SESSION_INFO_PTR info) {
  return with_session(h, [&](P11Session& s) -> CK_RV {
    if (info == nullptr) return CKR_ARGUMENTS_BAD;
    const bool rw = (s.flags & CKF_RW_SESSION) != 0;
    Role role;
    {
      std::lock_guard lock(s.token->mutex);
      role = s.token->role;
    }
    info->slotID = s.slot;
    info->flags = s.flags;
    info->ulDeviceError = 0;
    if (role == Role::kCryptoOfficer) {
      info->state = CKS_RW_SO_FUNCTIONS;
    } else if (role == Role::kCryptoUser) {
      info->state = rw ? CKS_RW_USER_FUNCTIONS : CKS_RO_USER_FUNCTIONS;
    } else {
      info->state = rw ? CKS_RW_PUBLIC_SESSION : CKS_RO_PUBLIC_SESSION;
    }
    return CKR_OK;
  });
}

IHSM_EXPORT CK_RV C_Login(CK_SESSION_HANDLE h, CK_USER_TYPE type, CK_UTF8CHAR_PTR pin,
                          CK_ULONG len) {
  return with_session(h, [&](P11Session& s) -> CK_RV {
    SecretPin p;
    if (const CK_RV r = pin_from(pin, len, p); r != CKR_OK) {
      return r == CKR_PIN_LEN_RANGE ? CKR_PIN_INCORRECT : r;
    }
    return Module::get().login(s, type, std::move(p));
  });
}

IHSM_EXPORT CK_RV C_LoginUser(CK_SESSION_HANDLE h, CK_USER_TYPE type, CK_UTF8CHAR_PTR pin,
                              CK_ULONG len, CK_UTF8CHAR_PTR user, CK_ULONG user_len) {
  // Partitions have one user each: no user names.
  if (user != nullptr && user_len != 0) return CKR_OPERATION_NOT_INITIALIZED;
  return C_Login(h, type, pin, len);
}

IHSM_EXPORT CK_RV C_Logout(CK_SESSION_HANDLE h) {
  return with_session(h, [&](P11Session& s) { return Module::get().logout(s); });
}

IHSM_EXPORT CK_RV C_CreateObject(CK_SESSION_HANDLE h, CK_ATTRIBUTE_PTR tmpl, CK_ULONG count,
                                 CK_OBJECT_HANDLE_PTR out) {
  return with_session(h, [&](P11Session& s) { return create_object(s, tmpl, count, out); });
}

IHSM_EXPORT CK_RV C_CopyObject(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_PTR tmpl,
                               CK_ULONG count, CK_OBJECT_HANDLE_PTR out) {
  return with_session(h, [&](P11Session& s) { return copy_object(s, o, tmpl, count, out); });
}

IHSM_EXPORT CK_RV C_DestroyObject(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE o) {
  return with_session(h, [&](P11Session& s) { return destroy_object(s, o); });
}

IHSM_EXPORT CK_RV C_GetObjectSize(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE, CK_ULONG_PTR size) {
  return with_session(h, [&](P11Session&) -> CK_RV {
    if (size == nullptr) return CKR_ARGUMENTS_BAD;
    *size = CK_UNAVAILABLE_INFORMATION;
    return CKR_OK;
  });
}

IHSM_EXPORT CK_RV C_GetAttributeValue(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE o,
                                      CK_ATTRIBUTE_PTR tmpl, CK_ULONG count) {
  return with_session(h, [&](P11Session& s) { return get_attributes(s, o, tmpl, count); });
}

IHSM_EXPORT CK_RV C_SetAttributeValue(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE o,
                                      CK_ATTRIBUTE_PTR tmpl, CK_ULONG count) {
  return with_session(h, [&](P11Session& s) { return set_attributes(s, o, tmpl, count); });
}

IHSM_EXPORT CK_RV C_FindObjectsInit(CK_SESSION_HANDLE h, CK_ATTRIBUTE_PTR tmpl, CK_ULONG count) {
  return with_session(h, [&](P11Session& s) { return find_init(s, tmpl, count); });
}

IHSM_EXPORT CK_RV C_FindObjects(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE_PTR out, CK_ULONG max,
                                CK_ULONG_PTR count) {
  return with_session(h, [&](P11Session& s) { return find(s, out, max, count); });
}

IHSM_EXPORT CK_RV C_FindObjectsFinal(CK_SESSION_HANDLE h) {
  return with_session(h, [&](P11Session& s) { return find_final(s); });
}

#define IHSM_CIPHER_ENTRIES(Name, Kind)                                                           \
  IHSM_EXPORT CK_RV C_##Name##Init(CK_SESSION_HANDLE h, CK_MECHANISM_PTR mech,                    \
                                   CK_OBJECT_HANDLE key) {                                        \
    return with_session(h, [&](P11Session& s) { return op_init(s, Kind, mech, key); });           \
  }                                                                                               \
  IHSM_EXPORT CK_RV C_##Name(CK_SESSION_HANDLE h, CK_BYTE_PTR in, CK_ULONG in_len,                \
                             CK_BYTE_PTR out, CK_ULONG_PTR out_len) {                             \
    return with_session(                                                                          \
        h, [&](P11Session& s) { return op_one_shot(s, Kind, in, in_len, out, out_len); });        \
  }                                                                                               \
  IHSM_EXPORT CK_RV C_##Name##Update(CK_SESSION_HANDLE h, CK_BYTE_PTR in, CK_ULONG in_len,        \
                                     CK_BYTE_PTR out, CK_ULONG_PTR out_len) {                     \
    return with_session(                                                                          \
        h, [&](P11Session& s) { return op_update(s, Kind, in, in_len, out, out_len); });          \
  }                                                                                               \
  IHSM_EXPORT CK_RV C_##Name##Final(CK_SESSION_HANDLE h, CK_BYTE_PTR out, CK_ULONG_PTR out_len) { \
    return with_session(h, [&](P11Session& s) { return op_final(s, Kind, out, out_len); });       \
  }

IHSM_CIPHER_ENTRIES(Encrypt, OpKind::kEncrypt)
IHSM_CIPHER_ENTRIES(Decrypt, OpKind::kDecrypt)

IHSM_EXPORT CK_RV C_DigestInit(CK_SESSION_HANDLE h, CK_MECHANISM_PTR mech) {
  return with_session(h, [&](P11Session& s) { return op_init(s, OpKind::kDigest, mech, 0); });
}
IHSM_EXPORT CK_RV C_Digest(CK_SESSION_HANDLE h, CK_BYTE_PTR in, CK_ULONG in_len, CK_BYTE_PTR out,
                           CK_ULONG_PTR out_len) {
  return with_session(
      h, [&](P11Session& s) { return op_one_shot(s, OpKind::kDigest, in, in_len, out, out_len); });
}
IHSM_EXPORT CK_RV C_DigestUpdate(CK_SESSION_HANDLE h, CK_BYTE_PTR in, CK_ULONG in_len) {
  return with_session(h, [&](P11Session& s) {
    return op_update(s, OpKind::kDigest, in, in_len, nullptr, nullptr);
  });
}
IHSM_EXPORT CK_RV C_DigestFinal(CK_SESSION_HANDLE h, CK_BYTE_PTR out, CK_ULONG_PTR out_len) {
  return with_session(h, [&](P11Session& s) { return op_final(s, OpKind::kDigest, out, out_len); });
}

IHSM_EXPORT CK_RV C_SignInit(CK_SESSION_HANDLE h, CK_MECHANISM_PTR mech, CK_OBJECT_HANDLE key) {
  return with_session(h, [&](P11Session& s) { return op_init(s, OpKind::kSign, mech, key); });
}
IHSM_EXPORT CK_RV C_Sign(CK_SESSION_HANDLE h, CK_BYTE_PTR in, CK_ULONG in_len, CK_BYTE_PTR out,
                         CK_ULONG_PTR out_len) {
  return with_session(
      h, [&](P11Session& s) { return op_one_shot(s, OpKind::kSign, in, in_len, out, out_len); });
}
IHSM_EXPORT CK_RV C_SignUpdate(CK_SESSION_HANDLE h, CK_BYTE_PTR in, CK_ULONG in_len) {
  return with_session(
      h, [&](P11Session& s) { return op_update(s, OpKind::kSign, in, in_len, nullptr, nullptr); });
}
IHSM_EXPORT CK_RV C_SignFinal(CK_SESSION_HANDLE h, CK_BYTE_PTR out, CK_ULONG_PTR out_len) {
  return with_session(h, [&](P11Session& s) { return op_final(s, OpKind::kSign, out, out_len); });
}

IHSM_EXPORT CK_RV C_VerifyInit(CK_SESSION_HANDLE h, CK_MECHANISM_PTR mech, CK_OBJECT_HANDLE key) {
  return with_session(h, [&](P11Session& s) { return op_init(s, OpKind::kVerify, mech, key); });
}
IHSM_EXPORT CK_RV C_Verify(CK_SESSION_HANDLE h, CK_BYTE_PTR in, CK_ULONG in_len, CK_BYTE_PTR sig,
                           CK_ULONG sig_len) {
  return with_session(h,
                      [&](P11Session& s) { return verify_one_shot(s, in, in_len, sig, sig_len); });
}
IHSM_EXPORT CK_RV C_VerifyUpdate(CK_SESSION_HANDLE h, CK_BYTE_PTR in, CK_ULONG in_len) {
  return with_session(h, [&](P11Session& s) {
    return op_update(s, OpKind::kVerify, in, in_len, nullptr, nullptr);
  });
}
IHSM_EXPORT CK_RV C_VerifyFinal(CK_SESSION_HANDLE h, CK_BYTE_PTR sig, CK_ULONG sig_len) {
  return with_session(h, [&](P11Session& s) { return verify_final(s, sig, sig_len); });
}

IHSM_EXPORT CK_RV C_GenerateKey(CK_SESSION_HANDLE h, CK_MECHANISM_PTR mech, CK_ATTRIBUTE_PTR tmpl,
                                CK_ULONG count, CK_OBJECT_HANDLE_PTR out) {
  return with_session(h, [&](P11Session& s) { return generate_key(s, mech, tmpl, count, out); });
}

IHSM_EXPORT CK_RV C_GenerateKeyPair(CK_SESSION_HANDLE h, CK_MECHANISM_PTR mech,
                                    CK_ATTRIBUTE_PTR pub, CK_ULONG pub_count, CK_ATTRIBUTE_PTR priv,
                                    CK_ULONG priv_count, CK_OBJECT_HANDLE_PTR pub_out,
                                    CK_OBJECT_HANDLE_PTR priv_out) {
  return with_session(h, [&](P11Session& s) {
    return generate_key_pair(s, mech, pub, pub_count, priv, priv_count, pub_out, priv_out);
  });
}

IHSM_EXPORT CK_RV C_WrapKey(CK_SESSION_HANDLE h, CK_MECHANISM_PTR mech, CK_OBJECT_HANDLE wrapping,
                            CK_OBJECT_HANDLE key, CK_BYTE_PTR out, CK_ULONG_PTR out_len) {
  return with_session(
      h, [&](P11Session& s) { return wrap_key(s, mech, wrapping, key, out, out_len); });
}

IHSM_EXPORT CK_RV C_UnwrapKey(CK_SESSION_HANDLE h, CK_MECHANISM_PTR mech,
                              CK_OBJECT_HANDLE unwrapping, CK_BYTE_PTR wrapped, CK_ULONG len,
                              CK_ATTRIBUTE_PTR tmpl, CK_ULONG count, CK_OBJECT_HANDLE_PTR out) {
  return with_session(h, [&](P11Session& s) {
    return unwrap_key(s, mech, unwrapping, wrapped, len, tmpl, count, out);
  });
}

IHSM_EXPORT CK_RV C_DeriveKey(CK_SESSION_HANDLE h, CK_MECHANISM_PTR mech, CK_OBJECT_HANDLE base,
                              CK_ATTRIBUTE_PTR tmpl, CK_ULONG count, CK_OBJECT_HANDLE_PTR out) {
  return with_session(h,
                      [&](P11Session& s) { return derive_key(s, mech, base, tmpl, count, out); });
}

IHSM_EXPORT CK_RV C_GenerateRandom(CK_SESSION_HANDLE h, CK_BYTE_PTR out, CK_ULONG len) {
  return with_session(h, [&](P11Session& s) { return random(s, out, len); });
}

IHSM_EXPORT CK_RV C_SeedRandom(CK_SESSION_HANDLE h, CK_BYTE_PTR, CK_ULONG) {
  // The device's DRBG takes no seed from outside the boundary.
  return with_session(h, [&](P11Session&) { return CKR_RANDOM_SEED_NOT_SUPPORTED; });
}

IHSM_EXPORT CK_RV C_GetFunctionStatus(CK_SESSION_HANDLE) { return CKR_FUNCTION_NOT_PARALLEL; }
IHSM_EXPORT CK_RV C_CancelFunction(CK_SESSION_HANDLE) { return CKR_FUNCTION_NOT_PARALLEL; }

// Not offered (yet): each answers CKR_FUNCTION_NOT_SUPPORTED.
#define IHSM_NOT_SUPPORTED(name, params) \
  IHSM_EXPORT CK_RV name params { return CKR_FUNCTION_NOT_SUPPORTED; }

IHSM_NOT_SUPPORTED(C_GetOperationState, (CK_SESSION_HANDLE, CK_BYTE_PTR, CK_ULONG_PTR))
IHSM_NOT_SUPPORTED(C_SetOperationState,
                   (CK_SESSION_HANDLE, CK_BYTE_PTR, CK_ULONG, CK_OBJECT_HANDLE, CK_OBJECT_HANDLE))
IHSM_NOT_SUPPORTED(C_DigestKey, (CK_SESSION_HANDLE, CK_OBJECT_HANDLE))
IHSM_NOT_SUPPORTED(C_SignRecoverInit, (CK_SESSION_HANDLE, CK_MECHANISM_PTR, CK_OBJECT_HANDLE))
IHSM_NOT_SUPPORTED(C_SignRecover,
                   (CK_SESSION_HANDLE, CK_BYTE_PTR, CK_ULONG, CK_BYTE_PTR, CK_ULONG_PTR))
IHSM_NOT_SUPPORTED(C_VerifyRecoverInit, (CK_SESSION_HANDLE, CK_MECHANISM_PTR, CK_OBJECT_HANDLE))
IHSM_NOT_SUPPORTED(C_VerifyRecover,
                   (CK_SESSION_HANDLE, CK_BYTE_PTR, CK_ULONG, CK_BYTE_PTR, CK_ULONG_PTR))
IHSM_NOT_SUPPORTED(C_DigestEncryptUpdate,
                   (CK_SESSION_HANDLE, CK_BYTE_PTR, CK_ULONG, CK_BYTE_PTR, CK_ULONG_PTR))
IHSM_NOT_SUPPORTED(C_DecryptDigestUpdate,
                   (CK_SESSION_HANDLE, CK_BYTE_PTR, CK_ULONG, CK_BYTE_PTR, CK_ULONG_PTR))
IHSM_NOT_SUPPORTED(C_SignEncryptUpdate,
                   (CK_SESSION_HANDLE, CK_BYTE_PTR, CK_ULONG, CK_BYTE_PTR, CK_ULONG_PTR))
IHSM_NOT_SUPPORTED(C_DecryptVerifyUpdate,
                   (CK_SESSION_HANDLE, CK_BYTE_PTR, CK_ULONG, CK_BYTE_PTR, CK_ULONG_PTR))
IHSM_NOT_SUPPORTED(C_WaitForSlotEvent, (CK_FLAGS, CK_SLOT_ID_PTR, CK_VOID_PTR))
IHSM_NOT_SUPPORTED(C_SessionCancel, (CK_SESSION_HANDLE, CK_FLAGS))
IHSM_NOT_SUPPORTED(C_MessageEncryptInit, (CK_SESSION_HANDLE, CK_MECHANISM_PTR, CK_OBJECT_HANDLE))
IHSM_NOT_SUPPORTED(C_EncryptMessage, (CK_SESSION_HANDLE, CK_VOID_PTR, CK_ULONG, CK_BYTE_PTR,
                                      CK_ULONG, CK_BYTE_PTR, CK_ULONG, CK_BYTE_PTR, CK_ULONG_PTR))
IHSM_NOT_SUPPORTED(C_EncryptMessageBegin,
                   (CK_SESSION_HANDLE, CK_VOID_PTR, CK_ULONG, CK_BYTE_PTR, CK_ULONG))
IHSM_NOT_SUPPORTED(C_EncryptMessageNext, (CK_SESSION_HANDLE, CK_VOID_PTR, CK_ULONG, CK_BYTE_PTR,
                                          CK_ULONG, CK_BYTE_PTR, CK_ULONG_PTR, CK_FLAGS))
IHSM_NOT_SUPPORTED(C_MessageEncryptFinal, (CK_SESSION_HANDLE))
IHSM_NOT_SUPPORTED(C_MessageDecryptInit, (CK_SESSION_HANDLE, CK_MECHANISM_PTR, CK_OBJECT_HANDLE))
IHSM_NOT_SUPPORTED(C_DecryptMessage, (CK_SESSION_HANDLE, CK_VOID_PTR, CK_ULONG, CK_BYTE_PTR,
                                      CK_ULONG, CK_BYTE_PTR, CK_ULONG, CK_BYTE_PTR, CK_ULONG_PTR))
IHSM_NOT_SUPPORTED(C_DecryptMessageBegin,
                   (CK_SESSION_HANDLE, CK_VOID_PTR, CK_ULONG, CK_BYTE_PTR, CK_ULONG))
IHSM_NOT_SUPPORTED(C_DecryptMessageNext, (CK_SESSION_HANDLE, CK_VOID_PTR, CK_ULONG, CK_BYTE_PTR,
                                          CK_ULONG, CK_BYTE_PTR, CK_ULONG_PTR, CK_FLAGS))
IHSM_NOT_SUPPORTED(C_MessageDecryptFinal, (CK_SESSION_HANDLE))
IHSM_NOT_SUPPORTED(C_MessageSignInit, (CK_SESSION_HANDLE, CK_MECHANISM_PTR, CK_OBJECT_HANDLE))
IHSM_NOT_SUPPORTED(C_SignMessage, (CK_SESSION_HANDLE, CK_VOID_PTR, CK_ULONG, CK_BYTE_PTR, CK_ULONG,
                                   CK_BYTE_PTR, CK_ULONG_PTR))
IHSM_NOT_SUPPORTED(C_SignMessageBegin, (CK_SESSION_HANDLE, CK_VOID_PTR, CK_ULONG))
IHSM_NOT_SUPPORTED(C_SignMessageNext, (CK_SESSION_HANDLE, CK_VOID_PTR, CK_ULONG, CK_BYTE_PTR,
                                       CK_ULONG, CK_BYTE_PTR, CK_ULONG_PTR))
IHSM_NOT_SUPPORTED(C_MessageSignFinal, (CK_SESSION_HANDLE))
IHSM_NOT_SUPPORTED(C_MessageVerifyInit, (CK_SESSION_HANDLE, CK_MECHANISM_PTR, CK_OBJECT_HANDLE))
IHSM_NOT_SUPPORTED(C_VerifyMessage, (CK_SESSION_HANDLE, CK_VOID_PTR, CK_ULONG, CK_BYTE_PTR,
                                     CK_ULONG, CK_BYTE_PTR, CK_ULONG))
IHSM_NOT_SUPPORTED(C_VerifyMessageBegin, (CK_SESSION_HANDLE, CK_VOID_PTR, CK_ULONG))
IHSM_NOT_SUPPORTED(C_VerifyMessageNext, (CK_SESSION_HANDLE, CK_VOID_PTR, CK_ULONG, CK_BYTE_PTR,
                                         CK_ULONG, CK_BYTE_PTR, CK_ULONG))
IHSM_NOT_SUPPORTED(C_MessageVerifyFinal, (CK_SESSION_HANDLE))

namespace ihsm::pkcs11 {
namespace {

#define IHSM_2_40_FUNCTIONS                                                                        \
  C_Initialize, C_Finalize, C_GetInfo, C_GetFunctionList, C_GetSlotList, C_GetSlotInfo,            \
      C_GetTokenInfo, C_GetMechanismList, C_GetMechanismInfo, C_InitToken, C_InitPIN, C_SetPIN,    \
      C_OpenSession, C_CloseSession, C_CloseAllSessions, C_GetSessionInfo, C_GetOperationState,    \
      C_SetOperationState, C_Login, C_Logout, C_CreateObject, C_CopyObject, C_DestroyObject,       \
      C_GetObjectSize, C_GetAttributeValue, C_SetAttributeValue, C_FindObjectsInit, C_FindObjects, \
      C_FindObjectsFinal, C_EncryptInit, C_Encrypt, C_EncryptUpdate, C_EncryptFinal,               \
      C_DecryptInit, C_Decrypt, C_DecryptUpdate, C_DecryptFinal, C_DigestInit, C_Digest,           \
      C_DigestUpdate, C_DigestKey, C_DigestFinal, C_SignInit, C_Sign, C_SignUpdate, C_SignFinal,   \
      C_SignRecoverInit, C_SignRecover, C_VerifyInit, C_Verify, C_VerifyUpdate, C_VerifyFinal,     \
      C_VerifyRecoverInit, C_VerifyRecover, C_DigestEncryptUpdate, C_DecryptDigestUpdate,          \
      C_SignEncryptUpdate, C_DecryptVerifyUpdate, C_GenerateKey, C_GenerateKeyPair, C_WrapKey,     \
      C_UnwrapKey, C_DeriveKey, C_SeedRandom, C_GenerateRandom, C_GetFunctionStatus,               \
      C_CancelFunction, C_WaitForSlotEvent

CK_FUNCTION_LIST function_list_2_40 = {{2, 40}, IHSM_2_40_FUNCTIONS};

CK_FUNCTION_LIST_3_0 function_list_3_0 = {{3, 0},
                                          IHSM_2_40_FUNCTIONS,
                                          C_GetInterfaceList,
                                          C_GetInterface,
                                          C_LoginUser,
                                          C_SessionCancel,
                                          C_MessageEncryptInit,
                                          C_EncryptMessage,
                                          C_EncryptMessageBegin,
                                          C_EncryptMessageNext,
                                          C_MessageEncryptFinal,
                                          C_MessageDecryptInit,
                                          C_DecryptMessage,
                                          C_DecryptMessageBegin,
                                          C_DecryptMessageNext,
                                          C_MessageDecryptFinal,
                                          C_MessageSignInit,
                                          C_SignMessage,
                                          C_SignMessageBegin,
                                          C_SignMessageNext,
                                          C_MessageSignFinal,
                                          C_MessageVerifyInit,
                                          C_VerifyMessage,
                                          C_VerifyMessageBegin,
                                          C_VerifyMessageNext,
                                          C_MessageVerifyFinal};

CK_IHSM_FUNCTION_LIST function_list_vendor = {{1, 0}, C_GetSessionValidationFlags};

}  // namespace
}  // namespace ihsm::pkcs11
