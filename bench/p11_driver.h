// Any PKCS#11 module, loaded by path with dlopen + C_GetFunctionList: its
// token set up through the module itself, sessions, keys, and the public
// halves read back as OpenSSL keys for verification.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "common.h"
#include "pkcs11/pkcs11.h"

namespace ihsm::bench {

// The PKCS#11 name of a return value ("CKR_PIN_INCORRECT"), or its number.
std::string rv_name(CK_RV rv);

// die("<what>: CKR_...") unless rv is CKR_OK.
void ck(CK_RV rv, const std::string& what);

class Module {
 public:
  // dlopen(path), C_GetFunctionList, C_Initialize with OS locking (client
  // threads call it at once).
  Module(std::string name, const std::string& path);
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;
  ~Module();  // C_Finalize, dlclose

  const std::string& name() const { return name_; }
  CK_FUNCTION_LIST* f() const { return f_; }
  // "<manufacturer> <description> <version>" from C_GetInfo.
  std::string description() const;

  // A new token labelled `label`, through the module: C_InitToken on ihsm's
  // free slot (0x7fff0000) when the module has one, else on the first slot
  // whose token is not initialised; then C_InitPIN as SO. Returns the slot
  // the token is in afterwards (found by label: modules renumber slots).
  CK_SLOT_ID init_token(const std::string& label, const std::string& so_pin,
                        const std::string& user_pin);

  // A read-write session on `slot`, logged in as user.
  CK_SESSION_HANDLE user_session(CK_SLOT_ID slot, const std::string& user_pin);

  bool has_mechanism(CK_SLOT_ID slot, CK_MECHANISM_TYPE m) const;

 private:
  std::string name_;
  void* handle_ = nullptr;
  CK_FUNCTION_LIST* f_ = nullptr;
};

// Key generation and attribute reads on one session.
struct P11Session {
  CK_FUNCTION_LIST* f;
  CK_SESSION_HANDLE h;

  struct Pair {
    CK_OBJECT_HANDLE pub = CK_INVALID_HANDLE;
    CK_OBJECT_HANDLE priv = CK_INVALID_HANDLE;
  };
  // `params`: DER of the curve OID (kOidP256, kOidP384, kOidEd25519).
  CK_RV try_generate_ec(const Bytes& params, bool ed25519, bool token, Pair& out) const;
  Pair generate_ec(const Bytes& params, bool ed25519, bool token) const;
  Pair generate_rsa(CK_ULONG bits) const;
  CK_OBJECT_HANDLE generate_aes256() const;
  CK_OBJECT_HANDLE generate_hmac_key() const;  // 256-bit generic secret

  Bytes attribute(CK_OBJECT_HANDLE object, CK_ATTRIBUTE_TYPE type) const;
  // The public half as an OpenSSL key: EC (CKA_EC_PARAMS + CKA_EC_POINT),
  // Ed25519 (CKA_EC_POINT) or RSA (CKA_MODULUS + CKA_PUBLIC_EXPONENT).
  Pkey public_key(CK_OBJECT_HANDLE pub) const;

  void destroy(CK_OBJECT_HANDLE object) const;
  void close() const;
};

extern const Bytes kOidP256;
extern const Bytes kOidP384;
extern const Bytes kOidEd25519;

// The raw bytes of a DER OCTET STRING, or `in` itself when it is not one
// (some modules give CKA_EC_POINT raw). `expected`: the raw length.
Bytes unwrap_octet_string(const Bytes& in, size_t expected);

}  // namespace ihsm::bench
