// The PKCS#11 module as a C API, loaded with dlopen like any application
// does: argument checking, the 3.0 interfaces, many threads on one token,
// C_Finalize racing with calls, fork, and a daemon restart under open
// sessions. Real ihsmd per test (DaemonTest).
#include <dlfcn.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

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

  void* handle_ = nullptr;
  CK_FUNCTION_LIST_PTR f_ = nullptr;
};

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
  EXPECT_EQ(n, 2u);
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

}  // namespace
}  // namespace ihsm::test
