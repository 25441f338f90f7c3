// The PKCS#11 module as a C API, loaded with dlopen like any application
// does: argument checking, the 3.0 interfaces, many threads on one token,
// C_Finalize racing with calls, fork, and a daemon restart under open
// sessions; C_CopyObject under the key policy; SP 800-108 and HKDF
// parameters checked against results computed here with OpenSSL. Real
// ihsmd per test (DaemonTest).
#include <dlfcn.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <atomic>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "integration/daemon_fixture.h"
#include "pkcs11/pkcs11.h"

namespace ihsm::test {
namespace {

constexpr CK_SLOT_ID kFreeSlot = 0x7fff0000;
constexpr const char* kSoPin = "so-pin-1234";
constexpr const char* kUserPin = "user-pin-5678";

CK_UTF8CHAR_PTR pin(const char* p) {
  return reinterpret_cast<CK_UTF8CHAR_PTR>(const_cast<char*>(p));
}

class Pkcs11Module : public DaemonTest {
 protected:
  std::vector<std::string> daemon_args() const override {
    // A short back-off and three tries, for the PIN-count flags.
    return {"--pin-max-failures", "3", "--pin-backoff-ms", "20", "--pin-backoff-max-ms", "40"};
  }

  void SetUp() override {
    DaemonTest::SetUp();
    if (HasFatalFailure()) return;
    ::setenv("IHSM_SOCKET", socket_path().c_str(), 1);
    handle_ = ::dlopen(IHSM_PKCS11_MODULE, RTLD_NOW | RTLD_LOCAL);
    ASSERT_NE(handle_, nullptr) << ::dlerror();
    auto get = reinterpret_cast<CK_C_GetFunctionList>(::dlsym(handle_, "C_GetFunctionList"));
    ASSERT_NE(get, nullptr);
    ASSERT_EQ(get(&f_), CKR_OK);
    ASSERT_EQ(f_->C_Initialize(nullptr), CKR_OK);
  }
  void TearDown() override {
    if (f_ != nullptr) f_->C_Finalize(nullptr);
    if (handle_ != nullptr) ::dlclose(handle_);
    ::unsetenv("IHSM_SOCKET");
    DaemonTest::TearDown();
  }

  // A token made through the free slot, with both PINs; its slot id.
  CK_SLOT_ID make_token(const char* label = "threads") {
    CK_UTF8CHAR padded[32];
    std::memset(padded, ' ', sizeof padded);
    std::memcpy(padded, label, std::strlen(label));
    EXPECT_EQ(f_->C_InitToken(kFreeSlot, pin(kSoPin), std::strlen(kSoPin), padded), CKR_OK);
    CK_ULONG n = 0;
    EXPECT_EQ(f_->C_GetSlotList(CK_TRUE, nullptr, &n), CKR_OK);
    std::vector<CK_SLOT_ID> slots(n);
    EXPECT_EQ(f_->C_GetSlotList(CK_TRUE, slots.data(), &n), CKR_OK);
    CK_SLOT_ID slot = 0;
    for (const CK_SLOT_ID s : slots) {
      CK_TOKEN_INFO info;
      if (s != kFreeSlot && f_->C_GetTokenInfo(s, &info) == CKR_OK &&
          std::memcmp(info.label, padded, 32) == 0) {
        slot = s;
      }
    }
    EXPECT_NE(slot, 0u);
    CK_SESSION_HANDLE so = 0;
    EXPECT_EQ(f_->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, nullptr, nullptr, &so),
              CKR_OK);
    EXPECT_EQ(f_->C_Login(so, CKU_SO, pin(kSoPin), std::strlen(kSoPin)), CKR_OK);
    EXPECT_EQ(f_->C_InitPIN(so, pin(kUserPin), std::strlen(kUserPin)), CKR_OK);
    EXPECT_EQ(f_->C_CloseSession(so), CKR_OK);
    return slot;
  }

  CK_SESSION_HANDLE user_session(CK_SLOT_ID slot) {
    CK_SESSION_HANDLE h = 0;
    EXPECT_EQ(f_->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, nullptr, nullptr, &h),
              CKR_OK);
    const CK_RV r = f_->C_Login(h, CKU_USER, pin(kUserPin), std::strlen(kUserPin));
    EXPECT_TRUE(r == CKR_OK || r == CKR_USER_ALREADY_LOGGED_IN) << r;
    return h;
  }

  // A token EC P-256 key pair; {public, private}.
  std::pair<CK_OBJECT_HANDLE, CK_OBJECT_HANDLE> ec_pair(CK_SESSION_HANDLE h, bool token) {
    static const CK_BYTE kP256[] = {0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07};
    CK_BBOOL yes = CK_TRUE, tok = token ? CK_TRUE : CK_FALSE;
    CK_ATTRIBUTE pub[] = {{CKA_EC_PARAMS, const_cast<CK_BYTE*>(kP256), sizeof kP256},
                          {CKA_VERIFY, &yes, sizeof yes},
                          {CKA_TOKEN, &tok, sizeof tok}};
    CK_ATTRIBUTE priv[] = {{CKA_SIGN, &yes, sizeof yes}, {CKA_TOKEN, &tok, sizeof tok}};
    CK_MECHANISM m = {CKM_EC_KEY_PAIR_GEN, nullptr, 0};
    CK_OBJECT_HANDLE pu = 0, pr = 0;
    EXPECT_EQ(f_->C_GenerateKeyPair(h, &m, pub, 3, priv, 2, &pu, &pr), CKR_OK);
    return {pu, pr};
  }

  CK_RV sign_and_verify(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE pub, CK_OBJECT_HANDLE priv) {
    CK_MECHANISM m = {CKM_ECDSA_SHA256, nullptr, 0};
    CK_BYTE data[] = "many threads, one token";
    CK_BYTE sig[64];
    CK_ULONG sig_len = sizeof sig;
    CK_RV r = f_->C_SignInit(h, &m, priv);
    if (r == CKR_OK) r = f_->C_Sign(h, data, sizeof data, sig, &sig_len);
    if (r == CKR_OK) r = f_->C_VerifyInit(h, &m, pub);
    if (r == CKR_OK) r = f_->C_Verify(h, data, sizeof data, sig, sig_len);
    return r;
  }

  // A device RSA-2048 key pair that may unwrap; {private handle, public key}.
  std::pair<CK_OBJECT_HANDLE, EVP_PKEY*> unwrapping_rsa(CK_SESSION_HANDLE h) {
    CK_BBOOL yes = CK_TRUE;
    CK_ULONG bits = 2048;
    CK_ATTRIBUTE pub_tmpl[] = {{CKA_MODULUS_BITS, &bits, sizeof bits}, {CKA_WRAP, &yes, 1}};
    CK_ATTRIBUTE priv_tmpl[] = {{CKA_UNWRAP, &yes, 1}};
    CK_MECHANISM gen = {CKM_RSA_PKCS_KEY_PAIR_GEN, nullptr, 0};
    CK_OBJECT_HANDLE pub = 0, priv = 0;
    EXPECT_EQ(f_->C_GenerateKeyPair(h, &gen, pub_tmpl, 2, priv_tmpl, 1, &pub, &priv), CKR_OK);
    std::vector<uint8_t> spki(1024);
    CK_ATTRIBUTE info = {CKA_PUBLIC_KEY_INFO, spki.data(), spki.size()};
    EXPECT_EQ(f_->C_GetAttributeValue(h, pub, &info, 1), CKR_OK);
    const unsigned char* p = spki.data();
    EVP_PKEY* key = d2i_PUBKEY(nullptr, &p, static_cast<long>(info.ulValueLen));
    EXPECT_NE(key, nullptr);
    return {priv, key};
  }

  // RSA-OAEP(SHA-256) of `value` to `key`, done here.
  static std::vector<uint8_t> oaep_sha256(EVP_PKEY* key, const std::vector<uint8_t>& value) {
    EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new(key, nullptr);
    std::vector<uint8_t> out(256);
    size_t len = out.size();
    EXPECT_EQ(EVP_PKEY_encrypt_init(ctx), 1);
    EXPECT_EQ(EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING), 1);
    EXPECT_EQ(EVP_PKEY_CTX_set_rsa_oaep_md(ctx, EVP_sha256()), 1);
    EXPECT_EQ(EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, EVP_sha256()), 1);
    EXPECT_EQ(EVP_PKEY_encrypt(ctx, out.data(), &len, value.data(), value.size()), 1);
    EVP_PKEY_CTX_free(ctx);
    out.resize(len);
    return out;
  }

  // A known secret brought into the device: RSA-OAEP(SHA-256) encrypted
  // here to a device RSA key, then C_UnwrapKey into a generic secret that
  // may derive. The test knows the value; the device holds it.
  CK_OBJECT_HANDLE import_derive_base(CK_SESSION_HANDLE h, const std::vector<uint8_t>& value) {
    CK_BBOOL yes = CK_TRUE;
    auto [priv, key] = unwrapping_rsa(h);
    std::vector<uint8_t> wrapped = oaep_sha256(key, value);
    const size_t wrapped_len = wrapped.size();
    EVP_PKEY_free(key);
    CK_RSA_PKCS_OAEP_PARAMS oaep = {CKM_SHA256, CKG_MGF1_SHA256, CKZ_DATA_SPECIFIED, nullptr, 0};
    CK_MECHANISM unwrap = {CKM_RSA_PKCS_OAEP, &oaep, sizeof oaep};
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE type = CKK_GENERIC_SECRET;
    CK_ATTRIBUTE tmpl[] = {
        {CKA_CLASS, &cls, sizeof cls}, {CKA_KEY_TYPE, &type, sizeof type}, {CKA_DERIVE, &yes, 1}};
    CK_OBJECT_HANDLE base = 0;
    EXPECT_EQ(f_->C_UnwrapKey(h, &unwrap, priv, wrapped.data(), wrapped_len, tmpl, 3, &base),
              CKR_OK);
    return base;
  }

  // Derives a 32-byte HMAC key from `base` and returns its HMAC-SHA256 of
  // `message` (empty on failure, with the CK_RV in `rv`).
  std::vector<uint8_t> derive_and_mac(CK_SESSION_HANDLE h, CK_MECHANISM* m, CK_OBJECT_HANDLE base,
                                      const std::vector<uint8_t>& message, CK_RV& rv) {
    CK_BBOOL yes = CK_TRUE;
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE type = CKK_GENERIC_SECRET;
    CK_ULONG len = 32;
    CK_ATTRIBUTE tmpl[] = {{CKA_CLASS, &cls, sizeof cls},
                           {CKA_KEY_TYPE, &type, sizeof type},
                           {CKA_VALUE_LEN, &len, sizeof len},
                           {CKA_SIGN, &yes, 1}};
    CK_OBJECT_HANDLE derived = 0;
    rv = f_->C_DeriveKey(h, m, base, tmpl, 4, &derived);
    if (rv != CKR_OK) return {};
    CK_MECHANISM hmac = {CKM_SHA256_HMAC, nullptr, 0};
    std::vector<uint8_t> mac(32);
    CK_ULONG mac_len = mac.size();
    rv = f_->C_SignInit(h, &hmac, derived);
    if (rv == CKR_OK) {
      rv =
          f_->C_Sign(h, const_cast<uint8_t*>(message.data()), message.size(), mac.data(), &mac_len);
    }
    return rv == CKR_OK ? mac : std::vector<uint8_t>{};
  }

  void* handle_ = nullptr;
  CK_FUNCTION_LIST_PTR f_ = nullptr;
};

std::vector<uint8_t> hmac_sha256(const std::vector<uint8_t>& key,
                                 const std::vector<uint8_t>& data) {
  std::vector<uint8_t> out(32);
  size_t len = 0;
  EVP_Q_mac(nullptr, "HMAC", nullptr, "SHA256", nullptr, key.data(), key.size(), data.data(),
            data.size(), out.data(), out.size(), &len);
  return out;
}

std::vector<uint8_t> be32(uint32_t v) {
  return {static_cast<uint8_t>(v >> 24), static_cast<uint8_t>(v >> 16),
          static_cast<uint8_t>(v >> 8), static_cast<uint8_t>(v)};
}

// SP 800-108 counter mode from its formula: K(i) = HMAC(K, [i]_32 || fixed),
// where `fixed` already holds whatever [L] the caller asked for.
std::vector<uint8_t> kbkdf_reference(const std::vector<uint8_t>& key,
                                     const std::vector<uint8_t>& fixed, size_t length) {
  std::vector<uint8_t> out;
  for (uint32_t i = 1; out.size() < length; ++i) {
    std::vector<uint8_t> block = be32(i);
    block.insert(block.end(), fixed.begin(), fixed.end());
    const auto k = hmac_sha256(key, block);
    out.insert(out.end(), k.begin(), k.end());
  }
  out.resize(length);
  return out;
}

TEST_F(Pkcs11Module, EntryPointsCheckTheirArguments) {
  CK_SLOT_ID slot = make_token("args");
  EXPECT_EQ(f_->C_Initialize(nullptr), CKR_CRYPTOKI_ALREADY_INITIALIZED);
  EXPECT_EQ(f_->C_GetInfo(nullptr), CKR_ARGUMENTS_BAD);
  EXPECT_EQ(f_->C_GetSlotList(CK_TRUE, nullptr, nullptr), CKR_ARGUMENTS_BAD);
  EXPECT_EQ(f_->C_GetTokenInfo(slot, nullptr), CKR_ARGUMENTS_BAD);
  EXPECT_EQ(f_->C_OpenSession(slot, CKF_SERIAL_SESSION, nullptr, nullptr, nullptr),
            CKR_ARGUMENTS_BAD);
  EXPECT_EQ(f_->C_OpenSession(slot, 0, nullptr, nullptr, nullptr), CKR_ARGUMENTS_BAD);
  CK_SESSION_HANDLE h = 0;
  EXPECT_EQ(f_->C_OpenSession(slot, 0, nullptr, nullptr, &h), CKR_SESSION_PARALLEL_NOT_SUPPORTED);
  EXPECT_EQ(f_->C_OpenSession(0x12345, CKF_SERIAL_SESSION, nullptr, nullptr, &h),
            CKR_SLOT_ID_INVALID);
  h = user_session(slot);
  auto [pub, priv] = ec_pair(h, false);
  EXPECT_EQ(f_->C_FindObjectsInit(h, nullptr, 1), CKR_ARGUMENTS_BAD);
  EXPECT_EQ(f_->C_GetAttributeValue(h, priv, nullptr, 1), CKR_ARGUMENTS_BAD);
  EXPECT_EQ(f_->C_GenerateKeyPair(h, nullptr, nullptr, 0, nullptr, 0, nullptr, nullptr),
            CKR_ARGUMENTS_BAD);
  EXPECT_EQ(f_->C_SignInit(h, nullptr, priv), CKR_ARGUMENTS_BAD);
  EXPECT_EQ(f_->C_Sign(h, nullptr, 0, nullptr, nullptr), CKR_OPERATION_NOT_INITIALIZED);
  EXPECT_EQ(f_->C_GenerateRandom(h, nullptr, 16), CKR_ARGUMENTS_BAD);
  EXPECT_EQ(f_->C_GetAttributeValue(0xdead, priv, nullptr, 0), CKR_SESSION_HANDLE_INVALID);
  // A short buffer and the length query follow the convention.
  CK_BYTE point[4];
  CK_ATTRIBUTE a = {CKA_EC_POINT, point, sizeof point};
  EXPECT_EQ(f_->C_GetAttributeValue(h, pub, &a, 1), CKR_BUFFER_TOO_SMALL);
  EXPECT_EQ(a.ulValueLen, CK_UNAVAILABLE_INFORMATION);
  a = {CKA_EC_POINT, nullptr, 0};
  EXPECT_EQ(f_->C_GetAttributeValue(h, pub, &a, 1), CKR_OK);
  EXPECT_EQ(a.ulValueLen, 67u);  // DER OCTET STRING of 04 || X || Y
  CK_BYTE value[64];
  a = {CKA_VALUE, value, sizeof value};
  EXPECT_EQ(f_->C_GetAttributeValue(h, priv, &a, 1), CKR_ATTRIBUTE_SENSITIVE);
  // A signature length query, then a short buffer: the operation stays.
  CK_MECHANISM m = {CKM_ECDSA, nullptr, 0};
  CK_BYTE digest[32] = {1};
  CK_ULONG len = 0;
  ASSERT_EQ(f_->C_SignInit(h, &m, priv), CKR_OK);
  EXPECT_EQ(f_->C_Sign(h, digest, sizeof digest, nullptr, &len), CKR_OK);
  EXPECT_EQ(len, 64u);
  CK_BYTE small[10];
  len = sizeof small;
  EXPECT_EQ(f_->C_Sign(h, digest, sizeof digest, small, &len), CKR_BUFFER_TOO_SMALL);
  CK_BYTE sig[64];
  len = sizeof sig;
  EXPECT_EQ(f_->C_Sign(h, digest, sizeof digest, sig, &len), CKR_OK);
  EXPECT_EQ(f_->C_Sign(h, digest, sizeof digest, sig, &len), CKR_OPERATION_NOT_INITIALIZED);
  // PIN lengths and user types.
  EXPECT_EQ(f_->C_Logout(h), CKR_OK);
  EXPECT_EQ(f_->C_Login(h, 7, pin(kUserPin), std::strlen(kUserPin)), CKR_USER_TYPE_INVALID);
  EXPECT_EQ(f_->C_Login(h, CKU_USER, pin("wrong-pin"), 9), CKR_PIN_INCORRECT);
  EXPECT_EQ(f_->C_CloseSession(h), CKR_OK);
  EXPECT_EQ(f_->C_CloseSession(h), CKR_SESSION_HANDLE_INVALID);
}

TEST_F(Pkcs11Module, TokenFlagsCountWrongPinsAndTheLock) {
  const CK_SLOT_ID slot = make_token("pins");
  CK_SESSION_HANDLE h = 0;
  ASSERT_EQ(f_->C_OpenSession(slot, CKF_SERIAL_SESSION, nullptr, nullptr, &h), CKR_OK);
  auto flags = [&] {
    CK_TOKEN_INFO info;
    EXPECT_EQ(f_->C_GetTokenInfo(slot, &info), CKR_OK);
    return info.flags;
  };
  auto wrong = [&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(60));  // past the back-off
    return f_->C_Login(h, CKU_USER, pin("not-the-pin"), 11);
  };
  EXPECT_EQ(flags() & (CKF_USER_PIN_COUNT_LOW | CKF_USER_PIN_FINAL_TRY), 0u);
  EXPECT_EQ(wrong(), CKR_PIN_INCORRECT);
  EXPECT_EQ(flags() & (CKF_USER_PIN_COUNT_LOW | CKF_USER_PIN_FINAL_TRY), CKF_USER_PIN_COUNT_LOW);
  EXPECT_EQ(wrong(), CKR_PIN_INCORRECT);
  EXPECT_TRUE(flags() & CKF_USER_PIN_FINAL_TRY);
  // A good PIN clears the count.
  std::this_thread::sleep_for(std::chrono::milliseconds(60));
  ASSERT_EQ(f_->C_Login(h, CKU_USER, pin(kUserPin), std::strlen(kUserPin)), CKR_OK);
  EXPECT_EQ(flags() & (CKF_USER_PIN_COUNT_LOW | CKF_USER_PIN_FINAL_TRY), 0u);
  ASSERT_EQ(f_->C_Logout(h), CKR_OK);
  EXPECT_EQ(wrong(), CKR_PIN_INCORRECT);
  EXPECT_EQ(wrong(), CKR_PIN_INCORRECT);
  EXPECT_EQ(wrong(), CKR_PIN_LOCKED);
  EXPECT_TRUE(flags() & CKF_USER_PIN_LOCKED);
  std::this_thread::sleep_for(std::chrono::milliseconds(60));
  EXPECT_EQ(f_->C_Login(h, CKU_USER, pin(kUserPin), std::strlen(kUserPin)), CKR_PIN_LOCKED);
}

TEST_F(Pkcs11Module, InterfacesAndInitializeArguments) {
  auto get_list = reinterpret_cast<CK_C_GetInterfaceList>(::dlsym(handle_, "C_GetInterfaceList"));
  auto get_one = reinterpret_cast<CK_C_GetInterface>(::dlsym(handle_, "C_GetInterface"));
  ASSERT_NE(get_list, nullptr);
  ASSERT_NE(get_one, nullptr);
  CK_ULONG n = 0;
  ASSERT_EQ(get_list(nullptr, &n), CKR_OK);
  EXPECT_EQ(n, 3u);  // PKCS 11 3.0 and 2.40, and the vendor interface
  CK_VERSION v30 = {3, 0};
  CK_INTERFACE_PTR i = nullptr;
  ASSERT_EQ(get_one(pin("PKCS 11"), &v30, &i, 0), CKR_OK);
  auto* f3 = static_cast<CK_FUNCTION_LIST_3_0*>(i->pFunctionList);
  EXPECT_EQ(f3->version.major, 3);
  EXPECT_EQ(f3->C_GetInterface, get_one);
  EXPECT_EQ(f3->C_MessageEncryptInit(0, nullptr, 0), CKR_FUNCTION_NOT_SUPPORTED);
  EXPECT_EQ(get_one(pin("other"), nullptr, &i, 0), CKR_ARGUMENTS_BAD);

  ASSERT_EQ(f_->C_Finalize(nullptr), CKR_OK);
  EXPECT_EQ(f_->C_GetSlotList(CK_TRUE, nullptr, &n), CKR_CRYPTOKI_NOT_INITIALIZED);
  EXPECT_EQ(f_->C_Finalize(nullptr), CKR_CRYPTOKI_NOT_INITIALIZED);
  // Application mutex callbacks: only with CKF_OS_LOCKING_OK (the module
  // locks with the OS's primitives).
  CK_C_INITIALIZE_ARGS args = {};
  args.CreateMutex = [](CK_VOID_PTR_PTR) -> CK_RV { return CKR_OK; };
  EXPECT_EQ(f_->C_Initialize(&args), CKR_ARGUMENTS_BAD);  // not all four
  args.DestroyMutex = [](CK_VOID_PTR) -> CK_RV { return CKR_OK; };
  args.LockMutex = [](CK_VOID_PTR) -> CK_RV { return CKR_OK; };
  args.UnlockMutex = [](CK_VOID_PTR) -> CK_RV { return CKR_OK; };
  EXPECT_EQ(f_->C_Initialize(&args), CKR_CANT_LOCK);
  args.flags = CKF_OS_LOCKING_OK;
  EXPECT_EQ(f_->C_Initialize(&args), CKR_OK);
}

// The approved-service indicator (include/ihsm/pkcs11_ihsm.h): the device's
// per-response FIPS flag, for the last cryptographic function of a session.
TEST_F(Pkcs11Module, ApprovedServiceIndicatorFollowsTheDevice) {
  auto get_one = reinterpret_cast<CK_C_GetInterface>(::dlsym(handle_, "C_GetInterface"));
  ASSERT_NE(get_one, nullptr);
  CK_INTERFACE_PTR i = nullptr;
  ASSERT_EQ(get_one(pin(IHSM_PKCS11_VENDOR_INTERFACE), nullptr, &i, 0), CKR_OK);
  const auto* vendor = static_cast<const CK_IHSM_FUNCTION_LIST*>(i->pFunctionList);
  EXPECT_EQ(vendor->version.major, 1);
  const CK_IHSM_C_GetSessionValidationFlags indicator = vendor->C_GetSessionValidationFlags;
  EXPECT_EQ(reinterpret_cast<void*>(indicator), ::dlsym(handle_, "C_GetSessionValidationFlags"));
  // Without a name, C_GetInterface still gives the standard interface.
  ASSERT_EQ(get_one(nullptr, nullptr, &i, 0), CKR_OK);
  EXPECT_STREQ(reinterpret_cast<const char*>(i->pInterfaceName), "PKCS 11");

  const CK_SLOT_ID slot = make_token("indicator");
  const CK_SESSION_HANDLE h = user_session(slot);
  CK_FLAGS flags = 99;
  ASSERT_EQ(indicator(h, CKS_LAST_VALIDATION_OK, &flags), CKR_OK);
  EXPECT_EQ(flags, 0u) << "nothing has run on the session yet";
  EXPECT_EQ(indicator(h, 2, &flags), CKR_ARGUMENTS_BAD);
  EXPECT_EQ(indicator(h, CKS_LAST_VALIDATION_OK, nullptr), CKR_ARGUMENTS_BAD);
  EXPECT_EQ(indicator(h + 1000, CKS_LAST_VALIDATION_OK, &flags), CKR_SESSION_HANDLE_INVALID);

  // ECDSA P-256 over SHA-256: approved.
  auto [pub, priv] = ec_pair(h, false);
  ASSERT_EQ(indicator(h, CKS_LAST_VALIDATION_OK, &flags), CKR_OK);
  EXPECT_EQ(flags, CKF_IHSM_VALIDATION_FIPS_140_3) << "P-256 key generation";
  ASSERT_EQ(sign_and_verify(h, pub, priv), CKR_OK);
  ASSERT_EQ(indicator(h, CKS_LAST_VALIDATION_OK, &flags), CKR_OK);
  EXPECT_EQ(flags, CKF_IHSM_VALIDATION_FIPS_140_3);

  // Raw ECDSA over 20 bytes (a SHA-1-sized digest): served, not approved.
  CK_MECHANISM raw = {CKM_ECDSA, nullptr, 0};
  CK_BYTE digest[20] = {1, 2, 3};
  CK_BYTE sig[64];
  CK_ULONG sig_len = sizeof sig;
  ASSERT_EQ(f_->C_SignInit(h, &raw, priv), CKR_OK);
  ASSERT_EQ(f_->C_Sign(h, digest, sizeof digest, sig, &sig_len), CKR_OK);
  ASSERT_EQ(indicator(h, CKS_LAST_VALIDATION_OK, &flags), CKR_OK);
  EXPECT_EQ(flags, 0u) << "ECDSA over a 160-bit digest";

  // AES-GCM: a device-drawn IV is approved, a caller-chosen one is not.
  CK_MECHANISM gen = {CKM_AES_KEY_GEN, nullptr, 0};
  CK_ULONG len = 32;
  CK_BBOOL yes = CK_TRUE;
  CK_ATTRIBUTE tmpl[] = {{CKA_VALUE_LEN, &len, sizeof len},
                         {CKA_ENCRYPT, &yes, sizeof yes},
                         {CKA_DECRYPT, &yes, sizeof yes}};
  CK_OBJECT_HANDLE aes = 0;
  ASSERT_EQ(f_->C_GenerateKey(h, &gen, tmpl, 3, &aes), CKR_OK);
  CK_BYTE iv[12] = {0};
  CK_GCM_PARAMS gcm = {iv, sizeof iv, sizeof iv * 8, nullptr, 0, 128};
  CK_MECHANISM mech = {CKM_AES_GCM, &gcm, sizeof gcm};
  CK_BYTE plain[32] = {7}, out[64];
  CK_ULONG out_len = sizeof out;
  ASSERT_EQ(f_->C_EncryptInit(h, &mech, aes), CKR_OK);
  ASSERT_EQ(f_->C_Encrypt(h, plain, sizeof plain, out, &out_len), CKR_OK);
  ASSERT_EQ(indicator(h, CKS_LAST_VALIDATION_OK, &flags), CKR_OK);
  EXPECT_EQ(flags, 0u) << "AES-GCM encryption under a caller-chosen IV";
  CK_BYTE back[64];
  CK_ULONG back_len = sizeof back;
  ASSERT_EQ(f_->C_DecryptInit(h, &mech, aes), CKR_OK);
  ASSERT_EQ(f_->C_Decrypt(h, out, out_len, back, &back_len), CKR_OK);
  ASSERT_EQ(indicator(h, CKS_LAST_VALIDATION_OK, &flags), CKR_OK);
  EXPECT_EQ(flags, CKF_IHSM_VALIDATION_FIPS_140_3) << "AES-GCM decryption";
  CK_BYTE random[16];
  ASSERT_EQ(f_->C_GenerateRandom(h, random, sizeof random), CKR_OK);
  ASSERT_EQ(indicator(h, CKS_LAST_VALIDATION_OK, &flags), CKR_OK);
  EXPECT_EQ(flags, CKF_IHSM_VALIDATION_FIPS_140_3);
}

TEST_F(Pkcs11Module, ManyThreadsOwnSessionsSameKeys) {
  const CK_SLOT_ID slot = make_token();
  const CK_SESSION_HANDLE first = user_session(slot);
  auto [pub, priv] = ec_pair(first, true);
  // A session object of one session is visible to the application's others.
  auto [spub, spriv] = ec_pair(first, false);
  constexpr int kThreads = 8, kRounds = 25;
  std::atomic<int> good{0}, bad{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const CK_SESSION_HANDLE h = user_session(slot);
      for (int i = 0; i < kRounds; ++i) {
        const bool use_session_key = (i + t) % 2 == 0;
        const CK_RV r =
            use_session_key ? sign_and_verify(h, spub, spriv) : sign_and_verify(h, pub, priv);
        (r == CKR_OK ? good : bad)++;
      }
      f_->C_CloseSession(h);
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(good.load(), kThreads * kRounds);
  EXPECT_EQ(bad.load(), 0);
  // The last session closing ends the session objects.
  EXPECT_EQ(f_->C_CloseAllSessions(slot), CKR_OK);
  const CK_SESSION_HANDLE again = user_session(slot);
  CK_ATTRIBUTE a = {CKA_CLASS, nullptr, 0};
  EXPECT_EQ(f_->C_GetAttributeValue(again, spriv, &a, 1), CKR_OBJECT_HANDLE_INVALID);
  EXPECT_EQ(f_->C_GetAttributeValue(again, priv, &a, 1), CKR_OK);
}

// PKCS#11 login is per application: sessions that threads open while
// others log in must all end up logged in (C_Login, C_Logout and
// C_OpenSession are serialized per token), and only one C_Login wins.
TEST_F(Pkcs11Module, SessionsOpenedDuringALoginAreLoggedIn) {
  const CK_SLOT_ID slot = make_token("login-race");
  const CK_SESSION_HANDLE keeper = user_session(slot);
  auto [pub, priv] = ec_pair(keeper, true);
  constexpr int kThreads = 6, kRounds = 4;
  for (int round = 0; round < kRounds; ++round) {
    ASSERT_EQ(f_->C_Logout(keeper), CKR_OK);
    std::atomic<int> logins_ok{0}, signed_ok{0}, failures{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&] {
        CK_SESSION_HANDLE h = 0;
        if (f_->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, nullptr, nullptr, &h) !=
            CKR_OK) {
          ++failures;
          return;
        }
        const CK_RV r = f_->C_Login(h, CKU_USER, pin(kUserPin), std::strlen(kUserPin));
        if (r == CKR_OK) {
          ++logins_ok;
        } else if (r != CKR_USER_ALREADY_LOGGED_IN) {
          ++failures;
        }
        (sign_and_verify(h, pub, priv) == CKR_OK ? signed_ok : failures)++;
        f_->C_CloseSession(h);
      });
    }
    for (auto& th : threads) th.join();
    EXPECT_EQ(logins_ok.load(), 1) << "round " << round;
    EXPECT_EQ(signed_ok.load(), kThreads) << "round " << round;
    EXPECT_EQ(failures.load(), 0) << "round " << round;
  }
}

TEST_F(Pkcs11Module, FinalizeWhileOtherThreadsAreInsideReturnsErrors) {
  const CK_SLOT_ID slot = make_token("finalize");
  const CK_SESSION_HANDLE h = user_session(slot);
  std::atomic<bool> stop{false};
  std::atomic<int> ok_calls{0}, error_calls{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      CK_BYTE buf[32];
      while (!stop) {
        const CK_RV r = f_->C_GenerateRandom(h, buf, sizeof buf);
        if (r == CKR_OK) {
          ok_calls++;
        } else {
          EXPECT_TRUE(r == CKR_CRYPTOKI_NOT_INITIALIZED || r == CKR_SESSION_HANDLE_INVALID) << r;
          error_calls++;
        }
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(f_->C_Finalize(nullptr), CKR_OK);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  stop = true;
  for (auto& th : threads) th.join();
  EXPECT_GT(ok_calls.load(), 0);
  EXPECT_GT(error_calls.load(), 0);
  // And the module comes back.
  EXPECT_EQ(f_->C_Initialize(nullptr), CKR_OK);
  const CK_SESSION_HANDLE again = user_session(slot);
  CK_BYTE buf[16];
  EXPECT_EQ(f_->C_GenerateRandom(again, buf, sizeof buf), CKR_OK);
}

TEST_F(Pkcs11Module, AForkedChildInitialisesAgain) {
  const CK_SLOT_ID slot = make_token("fork");
  const CK_SESSION_HANDLE h = user_session(slot);
  auto [pub, priv] = ec_pair(h, true);
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    // The parent's state is not the child's to use.
    CK_ULONG n = 0;
    if (f_->C_GetSlotList(CK_TRUE, nullptr, &n) != CKR_CRYPTOKI_NOT_INITIALIZED) ::_exit(1);
    if (f_->C_Initialize(nullptr) != CKR_OK) ::_exit(2);
    CK_SESSION_HANDLE c = 0;
    if (f_->C_OpenSession(slot, CKF_SERIAL_SESSION, nullptr, nullptr, &c) != CKR_OK) ::_exit(3);
    if (f_->C_Login(c, CKU_USER, pin(kUserPin), std::strlen(kUserPin)) != CKR_OK) ::_exit(4);
    if (sign_and_verify(c, pub, priv) != CKR_OK) ::_exit(5);
    f_->C_Finalize(nullptr);
    ::_exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "child step " << WEXITSTATUS(status) << " failed";
  // The parent's session is untouched by the child.
  EXPECT_EQ(sign_and_verify(h, pub, priv), CKR_OK);
}

// C_SignInit remembers a key's usage flags (no device round trip for the
// next Init); the device still decides at C_Sign. A change made by another
// process is refused there; this process's own changes and destruction
// take effect at Init at once.
TEST_F(Pkcs11Module, InitRemembersKeyFlagsAndTheDeviceStillDecides) {
  const CK_SLOT_ID slot = make_token("flags");
  const CK_SESSION_HANDLE h = user_session(slot);
  static const CK_BYTE kP256[] = {0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07};
  CK_BBOOL no = CK_FALSE, yes = CK_TRUE;
  CK_ATTRIBUTE pub_tmpl[] = {{CKA_EC_PARAMS, const_cast<CK_BYTE*>(kP256), sizeof kP256},
                             {CKA_VERIFY, &yes, sizeof yes},
                             {CKA_TOKEN, &yes, sizeof yes}};
  CK_ATTRIBUTE priv_tmpl[] = {{CKA_SIGN, &yes, sizeof yes},
                              {CKA_TOKEN, &yes, sizeof yes},
                              {CKA_MODIFIABLE, &yes, sizeof yes}};
  CK_MECHANISM gen = {CKM_EC_KEY_PAIR_GEN, nullptr, 0};
  CK_OBJECT_HANDLE pub = 0, priv = 0;
  ASSERT_EQ(f_->C_GenerateKeyPair(h, &gen, pub_tmpl, 3, priv_tmpl, 3, &pub, &priv), CKR_OK);
  ASSERT_EQ(sign_and_verify(h, pub, priv), CKR_OK);  // the flags are now known here
  CK_ATTRIBUTE off[] = {{CKA_SIGN, &no, sizeof no}};
  CK_ATTRIBUTE on[] = {{CKA_SIGN, &yes, sizeof yes}};
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    if (f_->C_Initialize(nullptr) != CKR_OK) ::_exit(2);
    CK_SESSION_HANDLE c = 0;
    if (f_->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, nullptr, nullptr, &c) !=
        CKR_OK) {
      ::_exit(3);
    }
    if (f_->C_Login(c, CKU_USER, pin(kUserPin), std::strlen(kUserPin)) != CKR_OK) ::_exit(4);
    if (f_->C_SetAttributeValue(c, priv, off, 1) != CKR_OK) ::_exit(5);
    f_->C_Finalize(nullptr);
    ::_exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 0) << "child step " << WEXITSTATUS(status) << " failed";

  CK_MECHANISM m = {CKM_ECDSA_SHA256, nullptr, 0};
  CK_BYTE data[] = "changed elsewhere";
  CK_BYTE sig[64];
  CK_ULONG sig_len = sizeof sig;
  ASSERT_EQ(f_->C_SignInit(h, &m, priv), CKR_OK) << "Init uses what this process knew";
  EXPECT_EQ(f_->C_Sign(h, data, sizeof data, sig, &sig_len), CKR_KEY_FUNCTION_NOT_PERMITTED);
  // Changed here: known here at once.
  ASSERT_EQ(f_->C_SetAttributeValue(h, priv, on, 1), CKR_OK);
  EXPECT_EQ(sign_and_verify(h, pub, priv), CKR_OK);
  ASSERT_EQ(f_->C_SetAttributeValue(h, priv, off, 1), CKR_OK);
  EXPECT_EQ(f_->C_SignInit(h, &m, priv), CKR_KEY_FUNCTION_NOT_PERMITTED);
  ASSERT_EQ(f_->C_DestroyObject(h, priv), CKR_OK);
  EXPECT_EQ(f_->C_SignInit(h, &m, priv), CKR_KEY_HANDLE_INVALID);
}

TEST_F(Pkcs11Module, ADaemonRestartFailsOldSessionsAndNewOnesWork) {
  const CK_SLOT_ID slot = make_token("restart");
  const CK_SESSION_HANDLE h = user_session(slot);
  auto [pub, priv] = ec_pair(h, true);
  daemon().kill_hard();
  ASSERT_TRUE(daemon().start());
  EXPECT_NE(sign_and_verify(h, pub, priv), CKR_OK);
  EXPECT_EQ(f_->C_CloseSession(h), CKR_OK);
  const CK_SESSION_HANDLE fresh = user_session(slot);
  EXPECT_EQ(sign_and_verify(fresh, pub, priv), CKR_OK);
}

TEST_F(Pkcs11Module, Sp800108CounterKdfFollowsTheDataParameters) {
  const CK_SLOT_ID slot = make_token("kbkdf");
  const CK_SESSION_HANDLE h = user_session(slot);
  const std::vector<uint8_t> base_value(32, 0x5a);
  const CK_OBJECT_HANDLE base = import_derive_base(h, base_value);
  const std::vector<uint8_t> message = {'k', 'b', 'k', 'd', 'f'};

  CK_SP800_108_COUNTER_FORMAT counter = {CK_FALSE, 32};
  CK_SP800_108_DKM_LENGTH_FORMAT dkm = {CK_SP800_108_DKM_LENGTH_SUM_OF_KEYS, CK_FALSE, 32};
  CK_BYTE label[] = {'l', 'a', 'b', 'e', 'l'}, separator[] = {0x00}, context[] = {'c', 't', 'x'};
  CK_PRF_DATA_PARAM data[] = {{CK_SP800_108_ITERATION_VARIABLE, &counter, sizeof counter},
                              {CK_SP800_108_BYTE_ARRAY, label, sizeof label},
                              {CK_SP800_108_BYTE_ARRAY, separator, sizeof separator},
                              {CK_SP800_108_BYTE_ARRAY, context, sizeof context},
                              {CK_SP800_108_DKM_LENGTH, &dkm, sizeof dkm}};
  CK_SP800_108_KDF_PARAMS params = {CKM_SHA256_HMAC, 5, data, 0, nullptr};
  CK_MECHANISM m = {CKM_SP800_108_COUNTER_KDF, &params, sizeof params};
  std::vector<uint8_t> fixed = {'l', 'a', 'b', 'e', 'l', 0x00, 'c', 't', 'x'};
  CK_RV rv = CKR_OK;
  for (const bool with_length : {true, false}) {
    SCOPED_TRACE(with_length ? "with [L]_32" : "without [L]");
    params.ulNumberOfDataParams = with_length ? 5 : 4;
    std::vector<uint8_t> expected_fixed = fixed;
    if (with_length) {
      const auto l = be32(256);
      expected_fixed.insert(expected_fixed.end(), l.begin(), l.end());
    }
    const auto mac = derive_and_mac(h, &m, base, message, rv);
    ASSERT_EQ(rv, CKR_OK);
    EXPECT_EQ(mac, hmac_sha256(kbkdf_reference(base_value, expected_fixed, 32), message));
  }

  // Layouts the device does not compute are refused, not computed otherwise.
  params.ulNumberOfDataParams = 5;
  auto refused = [&](const char* what) {
    SCOPED_TRACE(what);
    derive_and_mac(h, &m, base, message, rv);
    EXPECT_EQ(rv, CKR_MECHANISM_PARAM_INVALID);
  };
  counter.bLittleEndian = CK_TRUE;
  refused("little-endian counter");
  counter = {CK_FALSE, 16};
  refused("16-bit counter");
  counter = {CK_FALSE, 32};
  dkm.dkmLengthMethod = CK_SP800_108_DKM_LENGTH_SUM_OF_SEGMENTS;
  refused("DKM as sum of segments");
  dkm.dkmLengthMethod = CK_SP800_108_DKM_LENGTH_SUM_OF_KEYS;
  std::swap(data[3], data[4]);
  refused("DKM length before the last byte array");
  std::swap(data[3], data[4]);
  std::swap(data[0], data[1]);
  refused("counter after a byte array");
  std::swap(data[0], data[1]);
  CK_DERIVED_KEY extra = {nullptr, 0, nullptr};
  params.ulAdditionalDerivedKeys = 1;
  params.pAdditionalDerivedKeys = &extra;
  refused("additional derived keys");
  params.ulAdditionalDerivedKeys = 0;
  params.pAdditionalDerivedKeys = nullptr;
  params.prfType = CKM_SHA_1_HMAC;
  refused("HMAC-SHA-1 PRF");
  params.prfType = CKM_SHA256_HMAC;
  m.ulParameterLen = sizeof params - 1;
  refused("short parameter");
}

TEST_F(Pkcs11Module, HkdfMatchesOpenSsl) {
  const CK_SLOT_ID slot = make_token("hkdf");
  const CK_SESSION_HANDLE h = user_session(slot);
  const std::vector<uint8_t> base_value(32, 0x33);
  const CK_OBJECT_HANDLE base = import_derive_base(h, base_value);
  CK_BYTE salt[] = {'s', 'a', 'l', 't'}, info[] = {'i', 'n', 'f', 'o'};
  CK_HKDF_PARAMS params = {CK_TRUE,     CK_TRUE,           CKM_SHA256, CKF_HKDF_SALT_DATA, salt,
                           sizeof salt, CK_INVALID_HANDLE, info,       sizeof info};
  CK_MECHANISM m = {CKM_HKDF_DERIVE, &params, sizeof params};
  const std::vector<uint8_t> message = {'h', 'k', 'd', 'f'};
  CK_RV rv = CKR_OK;
  const auto mac = derive_and_mac(h, &m, base, message, rv);
  ASSERT_EQ(rv, CKR_OK);

  std::vector<uint8_t> okm(32);
  EVP_KDF* kdf = EVP_KDF_fetch(nullptr, "HKDF", nullptr);
  EVP_KDF_CTX* ctx = EVP_KDF_CTX_new(kdf);
  char md[] = "SHA256";
  OSSL_PARAM p[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, md, 0),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, const_cast<uint8_t*>(base_value.data()),
                                        base_value.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, salt, sizeof salt),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, sizeof info),
      OSSL_PARAM_construct_end()};
  ASSERT_EQ(EVP_KDF_derive(ctx, okm.data(), okm.size(), p), 1);
  EVP_KDF_CTX_free(ctx);
  EVP_KDF_free(kdf);
  EXPECT_EQ(mac, hmac_sha256(okm, message));

  // A salt held as a key would have to leave the device: refused.
  params.ulSaltType = CKF_HKDF_SALT_KEY;
  derive_and_mac(h, &m, base, message, rv);
  EXPECT_EQ(rv, CKR_MECHANISM_PARAM_INVALID);
}

// CKM_RSA_AES_KEY_WRAP (PKCS#11 2.40 2.1.21): OAEP of an ephemeral AES key,
// then AES-KWP of the target, both done here with OpenSSL; the key the
// device unwraps must MAC like the known value.
TEST_F(Pkcs11Module, RsaAesKeyWrapBringsInAKnownKey) {
  const CK_SLOT_ID slot = make_token("rsa-aes");
  const CK_SESSION_HANDLE h = user_session(slot);
  auto [priv, key] = unwrapping_rsa(h);
  const std::vector<uint8_t> ephemeral(32, 0x42), target(40, 0x17);
  std::vector<uint8_t> wrapped = oaep_sha256(key, ephemeral);
  EVP_PKEY_free(key);
  EVP_CIPHER_CTX* c = EVP_CIPHER_CTX_new();
  EVP_CIPHER_CTX_set_flags(c, EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
  ASSERT_EQ(EVP_EncryptInit_ex(c, EVP_aes_256_wrap_pad(), nullptr, ephemeral.data(), nullptr), 1);
  std::vector<uint8_t> kwp(target.size() + 16);
  int n = 0, m = 0;
  ASSERT_EQ(EVP_EncryptUpdate(c, kwp.data(), &n, target.data(), static_cast<int>(target.size())),
            1);
  ASSERT_EQ(EVP_EncryptFinal_ex(c, kwp.data() + n, &m), 1);
  EVP_CIPHER_CTX_free(c);
  wrapped.insert(wrapped.end(), kwp.begin(), kwp.begin() + n + m);

  CK_RSA_PKCS_OAEP_PARAMS oaep = {CKM_SHA256, CKG_MGF1_SHA256, CKZ_DATA_SPECIFIED, nullptr, 0};
  CK_RSA_AES_KEY_WRAP_PARAMS params = {256, &oaep};
  CK_MECHANISM mech = {CKM_RSA_AES_KEY_WRAP, &params, sizeof params};
  CK_BBOOL yes = CK_TRUE;
  CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
  CK_KEY_TYPE type = CKK_GENERIC_SECRET;
  CK_ATTRIBUTE tmpl[] = {
      {CKA_CLASS, &cls, sizeof cls}, {CKA_KEY_TYPE, &type, sizeof type}, {CKA_SIGN, &yes, 1}};
  CK_OBJECT_HANDLE imported = 0;
  ASSERT_EQ(f_->C_UnwrapKey(h, &mech, priv, wrapped.data(), wrapped.size(), tmpl, 3, &imported),
            CKR_OK);
  CK_MECHANISM hmac = {CKM_SHA256_HMAC, nullptr, 0};
  std::vector<uint8_t> message = {'r', 's', 'a', '-', 'a', 'e', 's'}, mac(32);
  CK_ULONG mac_len = mac.size();
  ASSERT_EQ(f_->C_SignInit(h, &hmac, imported), CKR_OK);
  ASSERT_EQ(f_->C_Sign(h, message.data(), message.size(), mac.data(), &mac_len), CKR_OK);
  EXPECT_EQ(mac, hmac_sha256(target, message));

  // A flipped byte in the AES-KWP part, and a missing OAEP parameter block.
  wrapped.back() ^= 1;
  EXPECT_NE(f_->C_UnwrapKey(h, &mech, priv, wrapped.data(), wrapped.size(), tmpl, 3, &imported),
            CKR_OK);
  params.pOAEPParams = nullptr;
  EXPECT_EQ(f_->C_UnwrapKey(h, &mech, priv, wrapped.data(), wrapped.size(), tmpl, 3, &imported),
            CKR_MECHANISM_PARAM_INVALID);
}

TEST_F(Pkcs11Module, CopyObjectKeepsTheKeyPolicy) {
  const CK_SLOT_ID slot = make_token("copy");
  const CK_SESSION_HANDLE h = user_session(slot);
  CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
  CK_ULONG len = 32;
  CK_MECHANISM gen = {CKM_AES_KEY_GEN, nullptr, 0};
  CK_ATTRIBUTE frozen_tmpl[] = {{CKA_VALUE_LEN, &len, sizeof len},
                                {CKA_ENCRYPT, &yes, 1},
                                {CKA_DECRYPT, &yes, 1},
                                {CKA_MODIFIABLE, &no, 1}};
  CK_OBJECT_HANDLE frozen = 0, open = 0;
  ASSERT_EQ(f_->C_GenerateKey(h, &gen, frozen_tmpl, 4, &frozen), CKR_OK);
  ASSERT_EQ(f_->C_GenerateKey(h, &gen, frozen_tmpl, 3, &open), CKR_OK);
  CK_BBOOL copyable = CK_FALSE;
  CK_ATTRIBUTE ask = {CKA_COPYABLE, &copyable, 1};
  ASSERT_EQ(f_->C_GetAttributeValue(h, frozen, &ask, 1), CKR_OK);
  EXPECT_EQ(copyable, CK_TRUE);
  ASSERT_EQ(f_->C_GetAttributeValue(h, open, &ask, 1), CKR_OK);
  EXPECT_EQ(copyable, CK_FALSE);

  CK_OBJECT_HANDLE copy = 0;
  CK_BYTE label[] = {'c', 'o', 'p', 'y'};
  CK_ATTRIBUTE to_token[] = {{CKA_TOKEN, &yes, 1}, {CKA_LABEL, label, sizeof label}};
  EXPECT_EQ(f_->C_CopyObject(h, open, to_token, 2, &copy), CKR_ACTION_PROHIBITED);
  ASSERT_EQ(f_->C_CopyObject(h, frozen, to_token, 2, &copy), CKR_OK);
  EXPECT_NE(copy, frozen);
  CK_BBOOL token = CK_FALSE;
  CK_ATTRIBUTE token_attr = {CKA_TOKEN, &token, 1};
  ASSERT_EQ(f_->C_GetAttributeValue(h, copy, &token_attr, 1), CKR_OK);
  EXPECT_EQ(token, CK_TRUE);

  // The copy holds the source's value: what one encrypts, the other decrypts.
  CK_BYTE iv[16] = {1, 2, 3};
  CK_MECHANISM cbc = {CKM_AES_CBC_PAD, iv, sizeof iv};
  CK_BYTE plain[] = "one key, two objects";
  CK_BYTE ct[64], back[64];
  CK_ULONG ct_len = sizeof ct, back_len = sizeof back;
  ASSERT_EQ(f_->C_EncryptInit(h, &cbc, frozen), CKR_OK);
  ASSERT_EQ(f_->C_Encrypt(h, plain, sizeof plain, ct, &ct_len), CKR_OK);
  ASSERT_EQ(f_->C_DecryptInit(h, &cbc, copy), CKR_OK);
  ASSERT_EQ(f_->C_Decrypt(h, ct, ct_len, back, &back_len), CKR_OK);
  ASSERT_EQ(back_len, sizeof plain);
  EXPECT_EQ(std::memcmp(back, plain, sizeof plain), 0);

  // A copy gains no usage, keeps its kind, and needs somewhere to put it.
  CK_ATTRIBUTE wrap[] = {{CKA_WRAP, &yes, 1}};
  EXPECT_EQ(f_->C_CopyObject(h, frozen, wrap, 1, &copy), CKR_ATTRIBUTE_READ_ONLY);
  CK_KEY_TYPE other = CKK_GENERIC_SECRET;
  CK_ATTRIBUTE type[] = {{CKA_KEY_TYPE, &other, sizeof other}};
  EXPECT_EQ(f_->C_CopyObject(h, frozen, type, 1, &copy), CKR_ATTRIBUTE_READ_ONLY);
  EXPECT_EQ(f_->C_CopyObject(h, frozen, nullptr, 0, nullptr), CKR_ARGUMENTS_BAD);
  EXPECT_EQ(f_->C_CopyObject(h, 0x7777, nullptr, 0, &copy), CKR_OBJECT_HANDLE_INVALID);

  // A data object copies with its value, under a new label.
  CK_OBJECT_CLASS data_class = CKO_DATA;
  CK_BYTE value[] = {'d', 'a', 't', 'a'};
  CK_ATTRIBUTE data_tmpl[] = {{CKA_CLASS, &data_class, sizeof data_class},
                              {CKA_VALUE, value, sizeof value}};
  CK_OBJECT_HANDLE data = 0, data_copy = 0;
  ASSERT_EQ(f_->C_CreateObject(h, data_tmpl, 2, &data), CKR_OK);
  CK_ATTRIBUTE relabel[] = {{CKA_LABEL, label, sizeof label}};
  ASSERT_EQ(f_->C_CopyObject(h, data, relabel, 1, &data_copy), CKR_OK);
  CK_BYTE read[8];
  CK_ATTRIBUTE get = {CKA_VALUE, read, sizeof read};
  ASSERT_EQ(f_->C_GetAttributeValue(h, data_copy, &get, 1), CKR_OK);
  ASSERT_EQ(get.ulValueLen, sizeof value);
  EXPECT_EQ(std::memcmp(read, value, sizeof value), 0);
}

// The vendor attestation mechanism: C_Sign over a nonce gives a report the
// offline verifier accepts against the device's DeviceID certificate.
TEST_F(Pkcs11Module, KeyAttestationThroughCSign) {
  const CK_SLOT_ID slot = make_token("attest");
  const CK_SESSION_HANDLE h = user_session(slot);
  auto [pub, priv] = ec_pair(h, true);
  (void)pub;
  CK_MECHANISM m = {CKM_IHSM_KEY_ATTESTATION, nullptr, 0};
  CK_BYTE nonce[] = {'p', 'k', 'c', 's', '1', '1', ' ', 'n', 'o', 'n', 'c', 'e'};
  ASSERT_EQ(f_->C_SignInit(h, &m, priv), CKR_OK);
  CK_ULONG len = 0;
  ASSERT_EQ(f_->C_Sign(h, nonce, sizeof nonce, nullptr, &len), CKR_OK);
  std::vector<uint8_t> report(len);
  ASSERT_EQ(f_->C_Sign(h, nonce, sizeof nonce, report.data(), &len), CKR_OK);
  report.resize(len);

  // Checked offline by the CLI's verifier against the device's root
  // certificate (a separate process: the module is this process's only
  // libihsm).
  const std::string chain = dir().file("chain"), report_file = dir().file("key.report");
  auto chain_run = run_process({IHSM_CLI, "attest", "chain", "--out-dir", chain},
                               {"IHSM_SOCKET=" + socket_path()});
  ASSERT_EQ(chain_run.exit_code, 0) << chain_run.describe();
  write_file(report_file, std::string(report.begin(), report.end()));
  std::string nonce_hex;
  for (const CK_BYTE b : nonce) {
    static const char* digits = "0123456789abcdef";
    nonce_hex += digits[b >> 4];
    nonce_hex += digits[b & 15];
  }
  auto verdict = run_process({IHSM_CLI, "attest", "verify", "--report", report_file, "--root",
                              chain + "/deviceid.pem", "--nonce", nonce_hex, "--require",
                              "generated,sign,not-session"});
  EXPECT_EQ(verdict.exit_code, 0) << verdict.describe();
  EXPECT_NE(verdict.out.find("\"valid\": true"), std::string::npos) << verdict.describe();

  CK_BYTE too_long[129] = {};
  ASSERT_EQ(f_->C_SignInit(h, &m, priv), CKR_OK);
  len = 4096;
  std::vector<uint8_t> out(len);
  EXPECT_NE(f_->C_Sign(h, too_long, sizeof too_long, out.data(), &len), CKR_OK);
}

}  // namespace
}  // namespace ihsm::test
