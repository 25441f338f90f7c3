// AES: CBC (with or without PKCS#7 padding), CTR, KW (RFC 3394), KWP
// (RFC 5649) one-shot, multi-part GCM/CBC/CTR, and GCM on prepared
// per-key contexts (prepared.h).
#include <openssl/err.h>

#include "device/crypto/algorithms.h"
#include "device/crypto/ossl_util.h"
#include "device/crypto/prepared.h"

namespace ihsm::device::crypto {
namespace {

using detail::CipherCtx;

constexpr size_t kBlock = 16;

const EVP_CIPHER* by_key_size(size_t key_len, const EVP_CIPHER* aes128, const EVP_CIPHER* aes192,
                              const EVP_CIPHER* aes256) {
  switch (key_len) {
    case 16:
      return aes128;
    case 24:
      return aes192;
    case 32:
      return aes256;
    default:
      return nullptr;
  }
}

const EVP_CIPHER* cbc_for(size_t n) {
  return by_key_size(n, EVP_aes_128_cbc(), EVP_aes_192_cbc(), EVP_aes_256_cbc());
}
const EVP_CIPHER* ctr_for(size_t n) {
  return by_key_size(n, EVP_aes_128_ctr(), EVP_aes_192_ctr(), EVP_aes_256_ctr());
}
const EVP_CIPHER* gcm_for(size_t n) { return detail::aes_gcm_cipher(n); }
const EVP_CIPHER* kw_for(size_t n) {
  return by_key_size(n, EVP_aes_128_wrap(), EVP_aes_192_wrap(), EVP_aes_256_wrap());
}
const EVP_CIPHER* kwp_for(size_t n) {
  return by_key_size(n, EVP_aes_128_wrap_pad(), EVP_aes_192_wrap_pad(), EVP_aes_256_wrap_pad());
}

struct OneShot {
  const EVP_CIPHER* cipher = nullptr;
  bool encrypt = true;
  int padding = -1;  // -1: leave the cipher's default alone (only CBC has a padding switch)
  bool wrap = false;
  const uint8_t* iv = nullptr;
  size_t out_capacity = 0;
  Status update_failure = Status::kCryptoFailure;
  Status final_failure = Status::kCryptoFailure;
};

// One init/update/final pass. The output is built in a fresh SecretBytes
// and only moved to `out` on success; on failure it is cleansed as it is
// freed and `out` is emptied.
Status run(const OneShot& op, std::span<const uint8_t> key, std::span<const uint8_t> in,
           SecretBytes& out) {
  out = SecretBytes();
  if (!detail::fits_int(in.size())) return Status::kDataLengthInvalid;
  CipherCtx ctx(EVP_CIPHER_CTX_new());
  if (!ctx) return Status::kCryptoFailure;
  if (op.wrap) EVP_CIPHER_CTX_set_flags(ctx.get(), EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
  if (EVP_CipherInit_ex2(ctx.get(), op.cipher, key.data(), op.iv, op.encrypt ? 1 : 0, nullptr) !=
          1 ||
      (op.padding >= 0 && EVP_CIPHER_CTX_set_padding(ctx.get(), op.padding) != 1)) {
    ERR_clear_error();
    return Status::kCryptoFailure;
  }
  SecretBytes result(op.out_capacity + 1);  // never empty, so data() is never null
  uint8_t* p = result.reveal_mutable().data();
  int n1 = 0;
  int n2 = 0;
  if (!in.empty() &&
      EVP_CipherUpdate(ctx.get(), p, &n1, in.data(), static_cast<int>(in.size())) != 1) {
    ERR_clear_error();
    return op.update_failure;
  }
  if (EVP_CipherFinal_ex(ctx.get(), p + n1, &n2) != 1) {
    ERR_clear_error();
    return op.final_failure;
  }
  const size_t total = static_cast<size_t>(n1) + static_cast<size_t>(n2);
  if (total > op.out_capacity) return Status::kCryptoFailure;
  result.resize(total);
  out = std::move(result);
  return Status::kOk;
}

Status to_bytes(Status s, SecretBytes& secret, Bytes& out) {
  if (!ok(s)) return s;
  out.assign(secret.reveal().begin(), secret.reveal().end());
  return Status::kOk;
}

// The fetched algorithm, or the legacy one when the fetch failed.
const EVP_CIPHER* fetched_or(EVP_CIPHER* fetched, const EVP_CIPHER* legacy) {
  if (fetched != nullptr) return fetched;
  ERR_clear_error();
  return legacy;
}

}  // namespace

Status aes_cbc(bool encrypt, bool pad, std::span<const uint8_t> key, std::span<const uint8_t> iv,
               std::span<const uint8_t> in, SecretBytes& out) {
  OneShot op;
  op.cipher = cbc_for(key.size());
  if (op.cipher == nullptr) return Status::kKeySizeInvalid;
  if (iv.size() != kBlock) return Status::kMechanismParamInvalid;
  if (!pad || !encrypt) {
    // Unpadded data, and any padded ciphertext, is whole blocks (a padded
    // ciphertext at least one).
    if (in.size() % kBlock != 0 || (pad && in.empty())) return Status::kDataLengthInvalid;
  }
  op.encrypt = encrypt;
  op.padding = pad ? 1 : 0;
  op.iv = iv.data();
  op.out_capacity = in.size() + kBlock;
  // Decrypting with padding, the final block's padding is the only thing
  // that can be wrong.
  op.final_failure = (pad && !encrypt) ? Status::kInvalidArgument : Status::kCryptoFailure;
  return run(op, key, in, out);
}

Status aes_ctr(std::span<const uint8_t> key, std::span<const uint8_t> counter_block,
               uint32_t counter_bits, std::span<const uint8_t> in, SecretBytes& out) {
  OneShot op;
  op.cipher = ctr_for(key.size());
  if (op.cipher == nullptr) return Status::kKeySizeInvalid;
  if (counter_block.size() != kBlock || counter_bits < 1 || counter_bits > 128) {
    return Status::kMechanismParamInvalid;
  }
  // The low `counter_bits` of the block are the counter. OpenSSL increments
  // the whole block, so the input must end before that field wraps (after
  // which the carry would leak into the nonce bits, or the keystream would
  // repeat): blocks needed - 1 <= field max - counter.
  __extension__ typedef unsigned __int128 u128;
  u128 block = 0;
  for (uint8_t b : counter_block) block = (block << 8) | b;
  const u128 field_max = counter_bits == 128 ? ~u128{0} : (u128{1} << counter_bits) - 1;
  const u128 counter = block & field_max;
  const u128 blocks = (static_cast<u128>(in.size()) + kBlock - 1) / kBlock;
  if (blocks > 0 && blocks - 1 > field_max - counter) return Status::kDataLengthInvalid;
  op.encrypt = true;
  op.iv = counter_block.data();
  op.out_capacity = in.size();
  return run(op, key, in, out);
}

Status aes_kw_wrap(std::span<const uint8_t> kek, std::span<const uint8_t> key, Bytes& out) {
  OneShot op;
  op.cipher = kw_for(kek.size());
  if (op.cipher == nullptr) return Status::kKeySizeInvalid;
  // RFC 3394: n >= 2 64-bit blocks.
  if (key.size() < 16 || key.size() % 8 != 0) return Status::kDataLengthInvalid;
  op.wrap = true;
  op.out_capacity = key.size() + 8;
  SecretBytes wrapped;
  return to_bytes(run(op, kek, key, wrapped), wrapped, out);
}

Status aes_kw_unwrap(std::span<const uint8_t> kek, std::span<const uint8_t> wrapped,
                     SecretBytes& out) {
  OneShot op;
  op.cipher = kw_for(kek.size());
  if (op.cipher == nullptr) return Status::kKeySizeInvalid;
  if (wrapped.size() < 24 || wrapped.size() % 8 != 0) return Status::kDataLengthInvalid;
  op.encrypt = false;
  op.wrap = true;
  op.out_capacity = wrapped.size() - 8;
  // The integrity check runs inside the (single) update.
  op.update_failure = Status::kTagMismatch;
  op.final_failure = Status::kTagMismatch;
  return run(op, kek, wrapped, out);
}

Status aes_kwp_wrap(std::span<const uint8_t> kek, std::span<const uint8_t> key, Bytes& out) {
  OneShot op;
  op.cipher = kwp_for(kek.size());
  if (op.cipher == nullptr) return Status::kKeySizeInvalid;
  // RFC 5649: 1 .. 2^32 - 1 octets.
  if (key.empty() || key.size() > 0xFFFFFFFFu) return Status::kDataLengthInvalid;
  op.wrap = true;
  op.out_capacity = (key.size() + 7) / 8 * 8 + 8;
  SecretBytes wrapped;
  return to_bytes(run(op, kek, key, wrapped), wrapped, out);
}

Status aes_kwp_unwrap(std::span<const uint8_t> kek, std::span<const uint8_t> wrapped,
                      SecretBytes& out) {
  OneShot op;
  op.cipher = kwp_for(kek.size());
  if (op.cipher == nullptr) return Status::kKeySizeInvalid;
  if (wrapped.size() < 16 || wrapped.size() % 8 != 0) return Status::kDataLengthInvalid;
  op.encrypt = false;
  op.wrap = true;
  op.out_capacity = wrapped.size() - 8;
  op.update_failure = Status::kTagMismatch;
  op.final_failure = Status::kTagMismatch;
  return run(op, kek, wrapped, out);
}

// ---- GCM shared by the one-shot functions (backend.cpp) and PreparedAead

namespace detail {

const EVP_CIPHER* aes_gcm_cipher(size_t key_len) {
  // Held until the process exits (never freed: a worker may still use
  // them while statics are destroyed). Should a fetch fail, the legacy
  // object still works, fetched per init as before.
  static const EVP_CIPHER* const k128 =
      fetched_or(EVP_CIPHER_fetch(nullptr, "AES-128-GCM", nullptr), EVP_aes_128_gcm());
  static const EVP_CIPHER* const k192 =
      fetched_or(EVP_CIPHER_fetch(nullptr, "AES-192-GCM", nullptr), EVP_aes_192_gcm());
  static const EVP_CIPHER* const k256 =
      fetched_or(EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr), EVP_aes_256_gcm());
  return by_key_size(key_len, k128, k192, k256);
}

Status gcm_seal(EVP_CIPHER_CTX* ctx, std::span<const uint8_t> aad,
                std::span<const uint8_t> plaintext, Bytes& ciphertext, Bytes& tag) {
  if (!fits_int(aad.size()) || !fits_int(plaintext.size())) return Status::kDataLengthInvalid;
  Bytes c(plaintext.size());
  Bytes t(16);
  int len = 0;
  int final_len = 0;
  if ((!aad.empty() &&
       EVP_EncryptUpdate(ctx, nullptr, &len, aad.data(), static_cast<int>(aad.size())) != 1) ||
      (!plaintext.empty() && EVP_EncryptUpdate(ctx, c.data(), &len, plaintext.data(),
                                               static_cast<int>(plaintext.size())) != 1) ||
      EVP_EncryptFinal_ex(ctx, c.data() + (plaintext.empty() ? 0 : len), &final_len) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, 16, t.data()) != 1) {
    ERR_clear_error();
    return Status::kCryptoFailure;
  }
  ciphertext = std::move(c);
  tag = std::move(t);
  return Status::kOk;
}

Status gcm_open(EVP_CIPHER_CTX* ctx, std::span<const uint8_t> aad,
                std::span<const uint8_t> ciphertext, std::span<const uint8_t> tag,
                SecretBytes& plaintext) {
  plaintext.clear();
  if (tag.size() != 16) return Status::kMechanismParamInvalid;
  if (!fits_int(aad.size()) || !fits_int(ciphertext.size())) return Status::kDataLengthInvalid;
  SecretBytes result(ciphertext.size() + 1);  // never empty, so data() is never null
  uint8_t* out = result.reveal_mutable().data();
  int len = 0;
  int final_len = 0;
  if ((!aad.empty() &&
       EVP_DecryptUpdate(ctx, nullptr, &len, aad.data(), static_cast<int>(aad.size())) != 1) ||
      (!ciphertext.empty() && EVP_DecryptUpdate(ctx, out, &len, ciphertext.data(),
                                                static_cast<int>(ciphertext.size())) != 1) ||
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, 16, const_cast<uint8_t*>(tag.data())) != 1) {
    ERR_clear_error();
    return Status::kCryptoFailure;
  }
  if (EVP_DecryptFinal_ex(ctx, out + (ciphertext.empty() ? 0 : len), &final_len) != 1) {
    ERR_clear_error();
    return Status::kTagMismatch;  // `result` is cleansed as it is freed
  }
  result.resize(ciphertext.size());
  plaintext = std::move(result);
  return Status::kOk;
}

}  // namespace detail

// ---- PreparedAead

namespace {

using GcmPool = detail::ContextPool<EVP_CIPHER_CTX, EVP_CIPHER_CTX_free>;

// A context keyed for `key` with its direction and IV set: a pooled one
// gets only the IV (the key schedule stays), a new one cipher and key too.
Status gcm_context(GcmPool::Lease& lease, std::span<const uint8_t> key, std::span<const uint8_t> iv,
                   bool encrypt) {
  const EVP_CIPHER* cipher = detail::aes_gcm_cipher(key.size());
  if (cipher == nullptr) return Status::kKeySizeInvalid;
  if (iv.size() != 12) return Status::kMechanismParamInvalid;
  if (lease.get() == nullptr) {
    EVP_CIPHER_CTX* fresh = EVP_CIPHER_CTX_new();
    if (fresh == nullptr) return Status::kCryptoFailure;
    lease.adopt(fresh);
    if (EVP_CipherInit_ex2(fresh, cipher, key.data(), nullptr, encrypt ? 1 : 0, nullptr) != 1) {
      ERR_clear_error();
      return Status::kCryptoFailure;
    }
  }
  if (EVP_CipherInit_ex2(lease.get(), nullptr, nullptr, iv.data(), encrypt ? 1 : 0, nullptr) != 1) {
    ERR_clear_error();
    return Status::kCryptoFailure;
  }
  return Status::kOk;
}

}  // namespace

Status PreparedAead::gcm_encrypt(std::span<const uint8_t> key, std::span<const uint8_t> iv,
                                 std::span<const uint8_t> aad, std::span<const uint8_t> plaintext,
                                 Bytes& ciphertext, Bytes& tag) {
  GcmPool::Lease lease(gcm_);
  Status s = gcm_context(lease, key, iv, true);
  if (ok(s)) s = detail::gcm_seal(lease.get(), aad, plaintext, ciphertext, tag);
  if (ok(s)) lease.finished_cleanly();
  return s;
}

Status PreparedAead::gcm_decrypt(std::span<const uint8_t> key, std::span<const uint8_t> iv,
                                 std::span<const uint8_t> aad, std::span<const uint8_t> ciphertext,
                                 std::span<const uint8_t> tag, SecretBytes& plaintext) {
  plaintext.clear();
  if (tag.size() != 16) return Status::kMechanismParamInvalid;
  GcmPool::Lease lease(gcm_);
  Status s = gcm_context(lease, key, iv, false);
  if (ok(s)) s = detail::gcm_open(lease.get(), aad, ciphertext, tag, plaintext);
  // A wrong tag ends here too: that context is freed, not reused.
  if (ok(s)) lease.finished_cleanly();
  return s;
}

// ---- AesStream

AesStream::AesStream() = default;

AesStream::~AesStream() { EVP_CIPHER_CTX_free(ctx_); }

AesStream::AesStream(AesStream&& other) noexcept
    : ctx_(other.ctx_), mode_(other.mode_), encrypt_(other.encrypt_), length_(other.length_) {
  other.ctx_ = nullptr;
  other.length_ = 0;
}

AesStream& AesStream::operator=(AesStream&& other) noexcept {
  if (this != &other) {
    EVP_CIPHER_CTX_free(ctx_);
    ctx_ = other.ctx_;
    mode_ = other.mode_;
    encrypt_ = other.encrypt_;
    length_ = other.length_;
    other.ctx_ = nullptr;
    other.length_ = 0;
  }
  return *this;
}

Status AesStream::init(AesMode mode, bool encrypt, std::span<const uint8_t> key,
                       std::span<const uint8_t> iv, std::span<const uint8_t> aad) {
  if (ctx_ != nullptr) EVP_CIPHER_CTX_reset(ctx_);  // any earlier operation ends here
  length_ = 0;
  const EVP_CIPHER* cipher = nullptr;
  size_t iv_size = kBlock;
  switch (mode) {
    case AesMode::kGcm:
      cipher = gcm_for(key.size());
      iv_size = 12;
      break;
    case AesMode::kCbc:
    case AesMode::kCbcPad:
      cipher = cbc_for(key.size());
      break;
    case AesMode::kCtr:
      cipher = ctr_for(key.size());
      break;
    default:
      return Status::kMechanismInvalid;
  }
  if (cipher == nullptr) return Status::kKeySizeInvalid;
  if (iv.size() != iv_size) return Status::kMechanismParamInvalid;
  if (mode != AesMode::kGcm && !aad.empty()) return Status::kMechanismParamInvalid;
  if (!detail::fits_int(aad.size())) return Status::kMechanismParamInvalid;
  if (ctx_ == nullptr) {
    ctx_ = EVP_CIPHER_CTX_new();
    if (ctx_ == nullptr) return Status::kCryptoFailure;
  }
  int len = 0;
  if (EVP_CipherInit_ex2(ctx_, cipher, key.data(), iv.data(), encrypt ? 1 : 0, nullptr) != 1 ||
      ((mode == AesMode::kCbc || mode == AesMode::kCbcPad) &&
       EVP_CIPHER_CTX_set_padding(ctx_, mode == AesMode::kCbcPad ? 1 : 0) != 1) ||
      (!aad.empty() &&
       EVP_CipherUpdate(ctx_, nullptr, &len, aad.data(), static_cast<int>(aad.size())) != 1)) {
    EVP_CIPHER_CTX_reset(ctx_);
    ERR_clear_error();
    return Status::kCryptoFailure;
  }
  mode_ = mode;
  encrypt_ = encrypt;
  return Status::kOk;
}

Status AesStream::update(std::span<const uint8_t> in, SecretBytes& out) {
  if (ctx_ == nullptr || EVP_CIPHER_CTX_get0_cipher(ctx_) == nullptr) {
    return Status::kOperationNotInitialized;
  }
  if (!detail::fits_int(in.size())) {
    EVP_CIPHER_CTX_reset(ctx_);
    return Status::kDataLengthInvalid;
  }
  // CBC may release up to one block more than it is given (the one held
  // back from the previous call).
  SecretBytes result(in.size() + kBlock);
  int len = 0;
  if (!in.empty() && EVP_CipherUpdate(ctx_, result.reveal_mutable().data(), &len, in.data(),
                                      static_cast<int>(in.size())) != 1) {
    EVP_CIPHER_CTX_reset(ctx_);
    ERR_clear_error();
    out = SecretBytes();
    return Status::kCryptoFailure;
  }
  length_ += in.size();
  result.resize(static_cast<size_t>(len));
  out = std::move(result);
  return Status::kOk;
}

Status AesStream::final(SecretBytes& out, Bytes& tag) {
  if (ctx_ == nullptr || EVP_CIPHER_CTX_get0_cipher(ctx_) == nullptr) {
    return Status::kOperationNotInitialized;
  }
  out = SecretBytes();
  SecretBytes result(kBlock + 1);
  int len = 0;
  Status s = Status::kOk;
  switch (mode_) {
    case AesMode::kGcm:
      if (encrypt_) {
        Bytes t(16);
        if (EVP_CipherFinal_ex(ctx_, result.reveal_mutable().data(), &len) != 1 ||
            EVP_CIPHER_CTX_ctrl(ctx_, EVP_CTRL_GCM_GET_TAG, 16, t.data()) != 1) {
          s = Status::kCryptoFailure;
        } else {
          tag = std::move(t);
        }
      } else if (tag.size() != 16) {
        s = Status::kMechanismParamInvalid;
      } else if (EVP_CIPHER_CTX_ctrl(ctx_, EVP_CTRL_GCM_SET_TAG, 16, tag.data()) != 1) {
        s = Status::kCryptoFailure;
      } else if (EVP_CipherFinal_ex(ctx_, result.reveal_mutable().data(), &len) != 1) {
        s = Status::kTagMismatch;
      }
      break;
    case AesMode::kCbc:
    case AesMode::kCbcPad: {
      const bool whole_blocks = length_ % kBlock == 0;
      const bool pad_decrypt = mode_ == AesMode::kCbcPad && !encrypt_;
      if ((mode_ == AesMode::kCbc || pad_decrypt) && !whole_blocks) {
        s = Status::kDataLengthInvalid;
      } else if (pad_decrypt && length_ == 0) {
        s = Status::kDataLengthInvalid;
      } else if (EVP_CipherFinal_ex(ctx_, result.reveal_mutable().data(), &len) != 1) {
        s = pad_decrypt ? Status::kInvalidArgument : Status::kCryptoFailure;
      }
      break;
    }
    case AesMode::kCtr:
      if (EVP_CipherFinal_ex(ctx_, result.reveal_mutable().data(), &len) != 1) {
        s = Status::kCryptoFailure;
      }
      break;
  }
  EVP_CIPHER_CTX_reset(ctx_);  // the stream must be init()ed again
  length_ = 0;
  if (!ok(s)) {
    ERR_clear_error();
    return s;
  }
  result.resize(static_cast<size_t>(len));
  out = std::move(result);
  return Status::kOk;
}

}  // namespace ihsm::device::crypto
