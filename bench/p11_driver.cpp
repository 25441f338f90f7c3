#include "p11_driver.h"

#include <dlfcn.h>
#include <openssl/core_names.h>
#include <openssl/param_build.h>

#include <cstring>

namespace ihsm::bench {

const Bytes kOidP256 = {0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07};
const Bytes kOidP384 = {0x06, 0x05, 0x2B, 0x81, 0x04, 0x00, 0x22};
const Bytes kOidEd25519 = {0x06, 0x03, 0x2B, 0x65, 0x70};

namespace {

constexpr CK_SLOT_ID kIhsmFreeSlot = 0x7fff0000;

CK_UTF8CHAR_PTR utf8(const std::string& s) {
  return reinterpret_cast<CK_UTF8CHAR_PTR>(const_cast<char*>(s.data()));
}

// A token label as PKCS#11 keeps it: 32 bytes, blank padded.
std::string padded_label(const std::string& label) {
  std::string p = label.substr(0, 32);
  p.resize(32, ' ');
  return p;
}

std::vector<CK_SLOT_ID> slots(CK_FUNCTION_LIST* f, bool with_token) {
  CK_ULONG n = 0;
  ck(f->C_GetSlotList(with_token ? CK_TRUE : CK_FALSE, nullptr, &n), "C_GetSlotList");
  std::vector<CK_SLOT_ID> list(n);
  ck(f->C_GetSlotList(with_token ? CK_TRUE : CK_FALSE, list.data(), &n), "C_GetSlotList");
  list.resize(n);
  return list;
}

std::string trimmed(const unsigned char* s, size_t n) {
  std::string out(reinterpret_cast<const char*>(s), n);
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

}  // namespace

std::string rv_name(CK_RV rv) {
  switch (rv) {
#define IHSM_BENCH_RV(x) \
  case x:                \
    return #x;
    IHSM_BENCH_RV(CKR_OK)
    IHSM_BENCH_RV(CKR_GENERAL_ERROR)
    IHSM_BENCH_RV(CKR_FUNCTION_FAILED)
    IHSM_BENCH_RV(CKR_ARGUMENTS_BAD)
    IHSM_BENCH_RV(CKR_ATTRIBUTE_TYPE_INVALID)
    IHSM_BENCH_RV(CKR_ATTRIBUTE_VALUE_INVALID)
    IHSM_BENCH_RV(CKR_ATTRIBUTE_SENSITIVE)
    IHSM_BENCH_RV(CKR_DATA_INVALID)
    IHSM_BENCH_RV(CKR_DATA_LEN_RANGE)
    IHSM_BENCH_RV(CKR_DEVICE_ERROR)
    IHSM_BENCH_RV(CKR_DEVICE_MEMORY)
    IHSM_BENCH_RV(CKR_ENCRYPTED_DATA_INVALID)
    IHSM_BENCH_RV(CKR_ENCRYPTED_DATA_LEN_RANGE)
    IHSM_BENCH_RV(CKR_FUNCTION_NOT_SUPPORTED)
    IHSM_BENCH_RV(CKR_KEY_HANDLE_INVALID)
    IHSM_BENCH_RV(CKR_KEY_TYPE_INCONSISTENT)
    IHSM_BENCH_RV(CKR_KEY_FUNCTION_NOT_PERMITTED)
    IHSM_BENCH_RV(CKR_MECHANISM_INVALID)
    IHSM_BENCH_RV(CKR_MECHANISM_PARAM_INVALID)
    IHSM_BENCH_RV(CKR_OBJECT_HANDLE_INVALID)
    IHSM_BENCH_RV(CKR_OPERATION_ACTIVE)
    IHSM_BENCH_RV(CKR_OPERATION_NOT_INITIALIZED)
    IHSM_BENCH_RV(CKR_PIN_INCORRECT)
    IHSM_BENCH_RV(CKR_PIN_LEN_RANGE)
    IHSM_BENCH_RV(CKR_SESSION_HANDLE_INVALID)
    IHSM_BENCH_RV(CKR_SIGNATURE_INVALID)
    IHSM_BENCH_RV(CKR_SIGNATURE_LEN_RANGE)
    IHSM_BENCH_RV(CKR_SLOT_ID_INVALID)
    IHSM_BENCH_RV(CKR_TEMPLATE_INCOMPLETE)
    IHSM_BENCH_RV(CKR_TEMPLATE_INCONSISTENT)
    IHSM_BENCH_RV(CKR_TOKEN_NOT_PRESENT)
    IHSM_BENCH_RV(CKR_TOKEN_NOT_RECOGNIZED)
    IHSM_BENCH_RV(CKR_USER_NOT_LOGGED_IN)
    IHSM_BENCH_RV(CKR_USER_ALREADY_LOGGED_IN)
    IHSM_BENCH_RV(CKR_USER_TYPE_INVALID)
    IHSM_BENCH_RV(CKR_BUFFER_TOO_SMALL)
    IHSM_BENCH_RV(CKR_CRYPTOKI_NOT_INITIALIZED)
    IHSM_BENCH_RV(CKR_CRYPTOKI_ALREADY_INITIALIZED)
    IHSM_BENCH_RV(CKR_DOMAIN_PARAMS_INVALID)
    IHSM_BENCH_RV(CKR_CURVE_NOT_SUPPORTED)
#undef IHSM_BENCH_RV
    default: {
      char buf[32];
      std::snprintf(buf, sizeof buf, "CK_RV 0x%lx", static_cast<unsigned long>(rv));
      return buf;
    }
  }
}

void ck(CK_RV rv, const std::string& what) {
  if (rv != CKR_OK) die(what + ": " + rv_name(rv));
}

Module::Module(std::string name, const std::string& path) : name_(std::move(name)) {
  handle_ = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle_ == nullptr) die("module " + name_ + ": dlopen " + path + ": " + ::dlerror());
  auto get = reinterpret_cast<CK_C_GetFunctionList>(::dlsym(handle_, "C_GetFunctionList"));
  if (get == nullptr) die("module " + name_ + ": no C_GetFunctionList in " + path);
  ck(get(&f_), name_ + ": C_GetFunctionList");
  CK_C_INITIALIZE_ARGS args;
  std::memset(&args, 0, sizeof args);
  args.flags = CKF_OS_LOCKING_OK;
  ck(f_->C_Initialize(&args), name_ + ": C_Initialize");
}

Module::~Module() {
  if (f_ != nullptr) f_->C_Finalize(nullptr);
  if (handle_ != nullptr) ::dlclose(handle_);
}

std::string Module::description() const {
  CK_INFO info;
  ck(f_->C_GetInfo(&info), name_ + ": C_GetInfo");
  char version[32];
  std::snprintf(version, sizeof version, "%u.%u", info.libraryVersion.major,
                info.libraryVersion.minor);
  return trimmed(info.manufacturerID, sizeof info.manufacturerID) + " " +
         trimmed(info.libraryDescription, sizeof info.libraryDescription) + " " + version;
}

CK_SLOT_ID Module::init_token(const std::string& label, const std::string& so_pin,
                              const std::string& user_pin) {
  const std::string padded = padded_label(label);
  CK_SLOT_ID target = kIhsmFreeSlot;
  bool has_free_slot = false;
  for (const CK_SLOT_ID s : slots(f_, false)) has_free_slot |= s == kIhsmFreeSlot;
  if (!has_free_slot) {
    bool found = false;
    for (const CK_SLOT_ID s : slots(f_, true)) {
      CK_TOKEN_INFO info;
      if (f_->C_GetTokenInfo(s, &info) == CKR_OK && (info.flags & CKF_TOKEN_INITIALIZED) == 0) {
        target = s;
        found = true;
        break;
      }
    }
    if (!found) die(name_ + ": no slot with an uninitialised token");
  }
  ck(f_->C_InitToken(target, utf8(so_pin), so_pin.size(),
                     reinterpret_cast<CK_UTF8CHAR_PTR>(const_cast<char*>(padded.data()))),
     name_ + ": C_InitToken");
  CK_SLOT_ID slot = 0;
  bool found = false;
  for (const CK_SLOT_ID s : slots(f_, true)) {
    CK_TOKEN_INFO info;
    if (s != kIhsmFreeSlot && f_->C_GetTokenInfo(s, &info) == CKR_OK &&
        std::memcmp(info.label, padded.data(), 32) == 0) {
      slot = s;
      found = true;
    }
  }
  if (!found) die(name_ + ": the new token '" + label + "' is in no slot");
  CK_SESSION_HANDLE so = 0;
  ck(f_->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, nullptr, nullptr, &so),
     name_ + ": C_OpenSession (SO)");
  ck(f_->C_Login(so, CKU_SO, utf8(so_pin), so_pin.size()), name_ + ": C_Login (SO)");
  ck(f_->C_InitPIN(so, utf8(user_pin), user_pin.size()), name_ + ": C_InitPIN");
  ck(f_->C_CloseSession(so), name_ + ": C_CloseSession (SO)");
  return slot;
}

CK_SESSION_HANDLE Module::user_session(CK_SLOT_ID slot, const std::string& user_pin) {
  CK_SESSION_HANDLE h = 0;
  ck(f_->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, nullptr, nullptr, &h),
     name_ + ": C_OpenSession");
  const CK_RV r = f_->C_Login(h, CKU_USER, utf8(user_pin), user_pin.size());
  if (r != CKR_USER_ALREADY_LOGGED_IN) ck(r, name_ + ": C_Login");
  return h;
}

bool Module::has_mechanism(CK_SLOT_ID slot, CK_MECHANISM_TYPE m) const {
  CK_MECHANISM_INFO info;
  return f_->C_GetMechanismInfo(slot, m, &info) == CKR_OK;
}

// ------------------------------------------------------------------ keys

CK_RV P11Session::try_generate_ec(const Bytes& params, bool ed25519, bool token, Pair& out) const {
  CK_BBOOL yes = CK_TRUE, tok = token ? CK_TRUE : CK_FALSE;
  CK_ATTRIBUTE pub[] = {{CKA_EC_PARAMS, const_cast<uint8_t*>(params.data()), params.size()},
                        {CKA_VERIFY, &yes, sizeof yes},
                        {CKA_TOKEN, &tok, sizeof tok}};
  CK_ATTRIBUTE priv[] = {{CKA_SIGN, &yes, sizeof yes},
                         {CKA_TOKEN, &tok, sizeof tok},
                         {CKA_PRIVATE, &yes, sizeof yes},
                         {CKA_SENSITIVE, &yes, sizeof yes}};
  CK_MECHANISM m = {ed25519 ? CKM_EC_EDWARDS_KEY_PAIR_GEN : CKM_EC_KEY_PAIR_GEN, nullptr, 0};
  return f->C_GenerateKeyPair(h, &m, pub, 3, priv, 4, &out.pub, &out.priv);
}

P11Session::Pair P11Session::generate_ec(const Bytes& params, bool ed25519, bool token) const {
  Pair p;
  ck(try_generate_ec(params, ed25519, token, p),
     ed25519 ? "C_GenerateKeyPair (Ed25519)" : "C_GenerateKeyPair (EC)");
  return p;
}

P11Session::Pair P11Session::generate_rsa(CK_ULONG bits) const {
  CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
  CK_BYTE exponent[] = {0x01, 0x00, 0x01};
  CK_ATTRIBUTE pub[] = {{CKA_MODULUS_BITS, &bits, sizeof bits},
                        {CKA_PUBLIC_EXPONENT, exponent, sizeof exponent},
                        {CKA_VERIFY, &yes, sizeof yes},
                        {CKA_ENCRYPT, &yes, sizeof yes},
                        {CKA_TOKEN, &no, sizeof no}};
  CK_ATTRIBUTE priv[] = {{CKA_SIGN, &yes, sizeof yes},
                         {CKA_DECRYPT, &yes, sizeof yes},
                         {CKA_TOKEN, &no, sizeof no},
                         {CKA_PRIVATE, &yes, sizeof yes},
                         {CKA_SENSITIVE, &yes, sizeof yes}};
  CK_MECHANISM m = {CKM_RSA_PKCS_KEY_PAIR_GEN, nullptr, 0};
  Pair p;
  ck(f->C_GenerateKeyPair(h, &m, pub, 5, priv, 5, &p.pub, &p.priv), "C_GenerateKeyPair (RSA)");
  return p;
}

CK_OBJECT_HANDLE P11Session::generate_aes256() const {
  CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
  CK_ULONG len = 32;
  CK_ATTRIBUTE t[] = {{CKA_VALUE_LEN, &len, sizeof len},
                      {CKA_ENCRYPT, &yes, sizeof yes},
                      {CKA_DECRYPT, &yes, sizeof yes},
                      {CKA_TOKEN, &no, sizeof no},
                      {CKA_SENSITIVE, &yes, sizeof yes}};
  CK_MECHANISM m = {CKM_AES_KEY_GEN, nullptr, 0};
  CK_OBJECT_HANDLE k = CK_INVALID_HANDLE;
  ck(f->C_GenerateKey(h, &m, t, 5, &k), "C_GenerateKey (AES-256)");
  return k;
}

CK_OBJECT_HANDLE P11Session::generate_hmac_key() const {
  CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
  CK_ULONG len = 32;
  CK_KEY_TYPE type = CKK_GENERIC_SECRET;
  CK_ATTRIBUTE t[] = {{CKA_KEY_TYPE, &type, sizeof type}, {CKA_VALUE_LEN, &len, sizeof len},
                      {CKA_SIGN, &yes, sizeof yes},       {CKA_VERIFY, &yes, sizeof yes},
                      {CKA_TOKEN, &no, sizeof no},        {CKA_SENSITIVE, &yes, sizeof yes}};
  CK_MECHANISM m = {CKM_GENERIC_SECRET_KEY_GEN, nullptr, 0};
  CK_OBJECT_HANDLE k = CK_INVALID_HANDLE;
  ck(f->C_GenerateKey(h, &m, t, 6, &k), "C_GenerateKey (generic secret)");
  return k;
}

Bytes P11Session::attribute(CK_OBJECT_HANDLE object, CK_ATTRIBUTE_TYPE type) const {
  CK_ATTRIBUTE a = {type, nullptr, 0};
  ck(f->C_GetAttributeValue(h, object, &a, 1), "C_GetAttributeValue (length)");
  if (a.ulValueLen == CK_UNAVAILABLE_INFORMATION || a.ulValueLen > (1u << 20)) {
    die("C_GetAttributeValue: unusable length");
  }
  Bytes value(a.ulValueLen);
  a.pValue = value.data();
  ck(f->C_GetAttributeValue(h, object, &a, 1), "C_GetAttributeValue");
  value.resize(a.ulValueLen);
  return value;
}

Bytes unwrap_octet_string(const Bytes& in, size_t expected) {
  if (in.size() == expected + 2 && in[0] == 0x04 && in[1] == expected && expected < 0x80) {
    return Bytes(in.begin() + 2, in.end());
  }
  if (in.size() == expected + 3 && in[0] == 0x04 && in[1] == 0x81 && in[2] == expected) {
    return Bytes(in.begin() + 3, in.end());
  }
  return in;
}

Pkey P11Session::public_key(CK_OBJECT_HANDLE pub) const {
  const Bytes type_bytes = attribute(pub, CKA_KEY_TYPE);
  CK_KEY_TYPE type = 0;
  if (type_bytes.size() != sizeof type) die("CKA_KEY_TYPE: wrong length");
  std::memcpy(&type, type_bytes.data(), sizeof type);
  std::unique_ptr<OSSL_PARAM_BLD, decltype(&OSSL_PARAM_BLD_free)> bld(OSSL_PARAM_BLD_new(),
                                                                      OSSL_PARAM_BLD_free);
  const char* algorithm = nullptr;
  Bytes point;
  std::unique_ptr<BIGNUM, decltype(&BN_free)> n(nullptr, BN_free), e(nullptr, BN_free);
  if (type == CKK_EC_EDWARDS) {
    point = unwrap_octet_string(attribute(pub, CKA_EC_POINT), 32);
    if (point.size() != 32) die("Ed25519 CKA_EC_POINT: not 32 bytes");
    Pkey key(EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, point.data(), point.size()));
    check_openssl(key != nullptr, "Ed25519 public key");
    return key;
  } else if (type == CKK_EC) {
    const Bytes params = attribute(pub, CKA_EC_PARAMS);
    const char* group = params == kOidP256 ? "P-256" : params == kOidP384 ? "P-384" : nullptr;
    if (group == nullptr) die("CKA_EC_PARAMS: not P-256 or P-384");
    point = unwrap_octet_string(attribute(pub, CKA_EC_POINT), params == kOidP256 ? 65 : 97);
    algorithm = "EC";
    check_openssl(OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, group, 0),
                  "group parameter");
    check_openssl(OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(),
                                                   point.size()),
                  "point parameter");
  } else if (type == CKK_RSA) {
    const Bytes modulus = attribute(pub, CKA_MODULUS);
    const Bytes exponent = attribute(pub, CKA_PUBLIC_EXPONENT);
    n.reset(BN_bin2bn(modulus.data(), static_cast<int>(modulus.size()), nullptr));
    e.reset(BN_bin2bn(exponent.data(), static_cast<int>(exponent.size()), nullptr));
    algorithm = "RSA";
    check_openssl(n && e && OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, n.get()) &&
                      OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, e.get()),
                  "RSA parameters");
  } else {
    die("public key of an unexpected CKA_KEY_TYPE");
  }
  std::unique_ptr<OSSL_PARAM, decltype(&OSSL_PARAM_free)> params(OSSL_PARAM_BLD_to_param(bld.get()),
                                                                 OSSL_PARAM_free);
  PkeyCtx ctx(EVP_PKEY_CTX_new_from_name(nullptr, algorithm, nullptr));
  EVP_PKEY* key = nullptr;
  check_openssl(params && ctx && EVP_PKEY_fromdata_init(ctx.get()) == 1 &&
                    EVP_PKEY_fromdata(ctx.get(), &key, EVP_PKEY_PUBLIC_KEY, params.get()) == 1,
                "public key from the module's attributes");
  return Pkey(key);
}

void P11Session::destroy(CK_OBJECT_HANDLE object) const {
  ck(f->C_DestroyObject(h, object), "C_DestroyObject");
}

void P11Session::close() const { (void)f->C_CloseSession(h); }

}  // namespace ihsm::bench
