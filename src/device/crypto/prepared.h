// Per-key OpenSSL contexts kept ready between operations (issue 8): the
// algorithm fetched and the key expanded once, so an AES-GCM or HMAC
// operation only sets its IV (or restarts the MAC) and runs.
//
// A key object owns one PreparedAead and one PreparedMac (device/vault/
// key_object.h). Each holds a small pool of contexts: an operation checks
// one out under a short mutex and gives it back after a clean finish, so
// two threads never share a context; a context that saw any failure is
// freed instead of going back. The contexts hold the key schedule, so they
// are CSPs like the key bytes: freed (OpenSSL cleanses them) with the pool,
// that is when the key object dies.
#pragma once

#include <openssl/evp.h>

#include <array>
#include <cstddef>
#include <mutex>
#include <span>

#include "common/secret.h"
#include "device/crypto/algorithms.h"
#include "ihsm/status.h"
#include "ihsm/types.h"

namespace ihsm::device::crypto {

namespace detail {

// Idle contexts of one kind, at most kMaxIdle of them; more threads than
// that at once on one key get contexts that are freed after their use.
template <typename Ctx, void (*Free)(Ctx*)>
class ContextPool {
 public:
  static constexpr size_t kMaxIdle = 8;

  ContextPool() = default;
  ~ContextPool() {
    for (size_t i = 0; i < count_; ++i) Free(idle_[i]);
  }
  ContextPool(const ContextPool&) = delete;
  ContextPool& operator=(const ContextPool&) = delete;

  // An idle context, or nullptr when there is none (the caller makes one).
  Ctx* take() {
    std::lock_guard lock(mutex_);
    return count_ > 0 ? idle_[--count_] : nullptr;
  }
  // Back to the pool after a clean operation; freed when the pool is full.
  void give(Ctx* ctx) {
    {
      std::lock_guard lock(mutex_);
      if (count_ < kMaxIdle) {
        idle_[count_++] = ctx;
        return;
      }
    }
    Free(ctx);
  }

  // One operation's context: an idle one, or one the caller makes and
  // adopt()s. Goes back to the pool only if the operation marks it
  // finished_cleanly(); otherwise (a failure, a wrong tag) it is freed, so
  // no state of a failed operation can reach the next one.
  class Lease {
   public:
    explicit Lease(ContextPool& pool) : pool_(pool), ctx_(pool.take()), reused_(ctx_ != nullptr) {}
    ~Lease() {
      if (ctx_ == nullptr) return;
      if (clean_) {
        pool_.give(ctx_);
      } else {
        Free(ctx_);
      }
    }
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;

    Ctx* get() const { return ctx_; }
    bool reused() const { return reused_; }
    void adopt(Ctx* ctx) {
      ctx_ = ctx;
      reused_ = false;
    }
    void finished_cleanly() { clean_ = true; }

   private:
    ContextPool& pool_;
    Ctx* ctx_;
    bool reused_;
    bool clean_ = false;
  };

 private:
  std::mutex mutex_;
  std::array<Ctx*, kMaxIdle> idle_{};
  size_t count_ = 0;
};

}  // namespace detail

// AES-GCM under one key, with the contract of aes_gcm_encrypt and
// aes_gcm_decrypt (backend.h). `key` must be the key this object belongs
// to, on every call: it keys new contexts only.
class PreparedAead {
 public:
  Status gcm_encrypt(std::span<const uint8_t> key, std::span<const uint8_t> iv,
                     std::span<const uint8_t> aad, std::span<const uint8_t> plaintext,
                     Bytes& ciphertext, Bytes& tag);
  // kTagMismatch when authentication fails; `plaintext` is then empty.
  Status gcm_decrypt(std::span<const uint8_t> key, std::span<const uint8_t> iv,
                     std::span<const uint8_t> aad, std::span<const uint8_t> ciphertext,
                     std::span<const uint8_t> tag, SecretBytes& plaintext);

 private:
  detail::ContextPool<EVP_CIPHER_CTX, EVP_CIPHER_CTX_free> gcm_;
};

// HMAC (SHA-256/384/512) under one key, with the contract of hmac and
// hmac_verify (algorithms.h): one pool per hash.
class PreparedMac {
 public:
  Status hmac(Hash h, std::span<const uint8_t> key, std::span<const uint8_t> data, Bytes& mac);
  Status hmac_verify(Hash h, std::span<const uint8_t> key, std::span<const uint8_t> data,
                     std::span<const uint8_t> mac);

 private:
  std::array<detail::ContextPool<EVP_MAC_CTX, EVP_MAC_CTX_free>, 3> by_hash_;  // 256, 384, 512
};

// ECDSA under one key: contexts made once with EVP_PKEY_sign_init, then
// used for signature after signature (EVP_PKEY_sign keeps no state from
// one call to the next). Saves making the context and fetching the
// signature algorithm per operation: 23.1 against 19.8 us per P-256
// signature on the benchmark machine (docs/performance.md).
class PreparedSigner {
 public:
  // A DER ECDSA-Sig-Value over `digest`. `key` must be the key this object
  // belongs to, on every call: it makes new contexts only.
  Status ecdsa_sign_digest_der(EVP_PKEY* key, std::span<const uint8_t> digest, Bytes& der);

 private:
  detail::ContextPool<EVP_PKEY_CTX, EVP_PKEY_CTX_free> sign_;
};

}  // namespace ihsm::device::crypto
