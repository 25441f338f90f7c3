// The DRBG: the device's random output under its continuous test, and the
// CTR_DRBG known-answer procedure on a test-only instance (backend.h).
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <array>
#include <cstring>
#include <memory>
#include <mutex>

#include "device/crypto/algorithms.h"
#include "device/crypto/ossl_util.h"
#include "device/fips/fault.h"
#include "device/fips/state.h"

namespace ihsm::device::crypto {
namespace {

constexpr size_t kBlock = 16;

// The continuous test's memory: a block drawn for the test and never
// output. One for the device, as the DRBG is one: every output block is
// compared with the block drawn just before it, whichever thread drew it.
// (Not thread_local: a thread-local object with a destructor in the
// dlopen'ed image upset LeakSanitizer's stop-the-world at exit.)
struct LastBlock {
  std::mutex mutex;
  std::array<uint8_t, kBlock> bytes{};
  bool drawn = false;
  ~LastBlock() { secure_cleanse(bytes.data(), bytes.size()); }
};
LastBlock g_last;

struct RandCtxFree {
  void operator()(EVP_RAND_CTX* p) const { EVP_RAND_CTX_free(p); }
};
using RandCtx = std::unique_ptr<EVP_RAND_CTX, RandCtxFree>;

RandCtx new_rand(const char* name, EVP_RAND_CTX* parent) {
  EVP_RAND* rand = EVP_RAND_fetch(nullptr, name, nullptr);
  if (rand == nullptr) return nullptr;
  RandCtx ctx(EVP_RAND_CTX_new(rand, parent));
  EVP_RAND_free(rand);
  return ctx;
}

bool set_test_entropy(EVP_RAND_CTX* test, std::span<const uint8_t> entropy) {
  const OSSL_PARAM params[] = {detail::octet_param(OSSL_RAND_PARAM_TEST_ENTROPY, entropy),
                               OSSL_PARAM_construct_end()};
  return EVP_RAND_CTX_set_params(test, params) == 1;
}

}  // namespace

Status random_bytes(std::span<uint8_t> out) {
  if (out.empty()) return Status::kOk;
  std::lock_guard lock(g_last.mutex);
  LastBlock& last = g_last;
  // [a first block, only in the first call] [the output blocks] [the
  // block kept for the next comparison]; each is compared with the one
  // before it, the first with the block kept by the previous call.
  const size_t lead = last.drawn ? 0 : 1;
  const size_t blocks = lead + (out.size() + kBlock - 1) / kBlock + 1;
  if (blocks > static_cast<size_t>(INT32_MAX) / kBlock) return Status::kInvalidArgument;
  SecretBytes drawn(blocks * kBlock);
  uint8_t* p = drawn.reveal_mutable().data();
  if (RAND_priv_bytes(p, static_cast<int>(drawn.size())) != 1) {
    ERR_clear_error();
    return Status::kCryptoFailure;
  }
  if (fips::fault_injected("rng-health")) std::memcpy(p + kBlock, p, kBlock);
  if (last.drawn && std::memcmp(last.bytes.data(), p, kBlock) == 0) {
    return fips::conditional_test_failed("rng-health");
  }
  for (size_t i = 1; i < blocks; ++i) {
    if (std::memcmp(p + (i - 1) * kBlock, p + i * kBlock, kBlock) == 0) {
      return fips::conditional_test_failed("rng-health");
    }
  }
  std::memcpy(out.data(), p + lead * kBlock, out.size());
  std::memcpy(last.bytes.data(), p + (blocks - 1) * kBlock, kBlock);
  last.drawn = true;
  return Status::kOk;
}

Status reseed_drbgs() {
  bool good = true;
  for (EVP_RAND_CTX* drbg :
       {RAND_get0_primary(nullptr), RAND_get0_public(nullptr), RAND_get0_private(nullptr)}) {
    good = drbg != nullptr && EVP_RAND_reseed(drbg, 1, nullptr, 0, nullptr, 0) == 1 && good;
  }
  ERR_clear_error();
  return good ? Status::kOk : Status::kCryptoFailure;
}

Status ctr_drbg_known_answer(const DrbgKnownAnswer& in, std::span<uint8_t> out) {
  if (out.empty()) return Status::kInvalidArgument;
  RandCtx test = new_rand("TEST-RAND", nullptr);
  if (!test) return Status::kCryptoFailure;
  unsigned int strength = 256;
  const OSSL_PARAM test_params[] = {OSSL_PARAM_construct_uint(OSSL_RAND_PARAM_STRENGTH, &strength),
                                    OSSL_PARAM_construct_end()};
  RandCtx drbg;
  char cipher[] = "AES-128-CTR";
  const OSSL_PARAM drbg_params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_DRBG_PARAM_CIPHER, cipher, 0),
      OSSL_PARAM_construct_end()};
  bool good = EVP_RAND_CTX_set_params(test.get(), test_params) == 1 &&
              (drbg = new_rand("CTR-DRBG", test.get())) &&
              EVP_RAND_CTX_set_params(drbg.get(), drbg_params) == 1;
  if (good) {
    // The derivation function is CTR-DRBG's default ("use_df" 1).
    strength = EVP_RAND_get_strength(drbg.get());
    const OSSL_PARAM seed[] = {detail::octet_param(OSSL_RAND_PARAM_TEST_ENTROPY, in.entropy),
                               detail::octet_param(OSSL_RAND_PARAM_TEST_NONCE, in.nonce),
                               OSSL_PARAM_construct_end()};
    good = EVP_RAND_instantiate(test.get(), strength, 0, nullptr, 0, seed) == 1 &&
           EVP_RAND_instantiate(drbg.get(), strength, 0, in.personalization.data(),
                                in.personalization.size(), nullptr) == 1 &&
           set_test_entropy(test.get(), in.entropy_pr1) &&
           EVP_RAND_generate(drbg.get(), out.data(), out.size(), strength, 1, in.additional1.data(),
                             in.additional1.size()) == 1 &&
           set_test_entropy(test.get(), in.entropy_pr2) &&
           EVP_RAND_generate(drbg.get(), out.data(), out.size(), strength, 1, in.additional2.data(),
                             in.additional2.size()) == 1 &&
           EVP_RAND_uninstantiate(drbg.get()) == 1 && EVP_RAND_verify_zeroization(drbg.get()) == 1;
  }
  if (!good) {
    ERR_clear_error();
    return Status::kCryptoFailure;
  }
  return Status::kOk;
}

}  // namespace ihsm::device::crypto
