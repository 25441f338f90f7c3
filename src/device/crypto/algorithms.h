// Issue 3's algorithm set, behind the same backend boundary as backend.h:
// RSA, EdDSA, ECDH/X25519, AES modes, HMAC, digests, HKDF and KBKDF.
// Every function is a thin, checked call into OpenSSL 3; nothing here is a
// hand-written algorithm.
#pragma once

#include <openssl/evp.h>

#include <memory>
#include <span>

#include "common/secret.h"
#include "device/crypto/backend.h"
#include "ihsm/status.h"
#include "ihsm/types.h"

namespace ihsm::device::crypto {

enum class Hash : uint8_t { kSha1, kSha224, kSha256, kSha384, kSha512 };
size_t hash_size(Hash h);
const EVP_MD* hash_md(Hash h);

// ---- digests
Status digest(Hash h, std::span<const uint8_t> data, Bytes& out);
class DigestStream {
 public:
  DigestStream();
  ~DigestStream();
  DigestStream(DigestStream&&) noexcept;
  DigestStream& operator=(DigestStream&&) noexcept;
  Status init(Hash h);
  Status update(std::span<const uint8_t> data);
  Status final(Bytes& out);  // the stream must be init()ed again after this

 private:
  EVP_MD_CTX* ctx_ = nullptr;
};

// ---- RSA (2048, 3072, 4096; public exponent 65537)
Status generate_rsa_key(uint32_t bits, Pkey& out);  // with a pairwise-consistency test
uint32_t rsa_bits(EVP_PKEY* key);
enum class RsaPadding : uint8_t { kPkcs1, kPss };
struct RsaSignParams {
  RsaPadding padding = RsaPadding::kPkcs1;
  Hash hash = Hash::kSha256;
  // true: `data` is the message and is hashed here; false: `data` is
  // already the digest (its length must be hash_size(hash)).
  bool hash_input = true;
  Hash mgf1 = Hash::kSha256;  // PSS only
  uint32_t salt_length = 32;  // PSS only; at most modulus - hash - 2
  // PKCS#1 v1.5 only, with hash_input false: `data` is padded and signed
  // as given (1 .. modulus - 11 bytes), no DigestInfo (CKM_RSA_PKCS over
  // caller-built input; not an approved service).
  bool raw = false;
};
Status rsa_sign(EVP_PKEY* key, const RsaSignParams& p, std::span<const uint8_t> data, Bytes& sig);
// kSignatureInvalid when the signature does not verify.
Status rsa_verify(EVP_PKEY* key, const RsaSignParams& p, std::span<const uint8_t> data,
                  std::span<const uint8_t> sig);
struct OaepParams {
  Hash hash = Hash::kSha256;
  Hash mgf1 = Hash::kSha256;
  Bytes label;
};
Status rsa_oaep_encrypt(EVP_PKEY* key, const OaepParams& p, std::span<const uint8_t> plaintext,
                        Bytes& out);
// Every decryption failure is the one status kCiphertextInvalid, whatever
// the cause, so the answer is no padding oracle.
Status rsa_oaep_decrypt(EVP_PKEY* key, const OaepParams& p, std::span<const uint8_t> ciphertext,
                        SecretBytes& out);

// ---- ECDSA verify (sign is in backend.h)
Status ecdsa_verify(EVP_PKEY* key, Curve curve, Mechanism mechanism, std::span<const uint8_t> data,
                    std::span<const uint8_t> raw_signature);  // r || s

// ---- Ed25519 and X25519 (Curve::kEd25519 / Curve::kX25519 in types.h)
Status generate_ed25519_key(Pkey& out);  // with a pairwise-consistency test
Status generate_x25519_key(Pkey& out);
Status ed25519_sign(EVP_PKEY* key, std::span<const uint8_t> message, Bytes& sig);
Status ed25519_verify(EVP_PKEY* key, std::span<const uint8_t> message,
                      std::span<const uint8_t> sig);
// Raw 32-byte public key (RFC 8032 / RFC 7748 encoding).
Status raw_public_key(EVP_PKEY* key, Bytes& out);

// ECDH on P-256/384/521 (peer = uncompressed or compressed point) or
// X25519 (peer = 32 raw bytes). Invalid or off-curve points, and an
// all-zero X25519 result, are kInvalidArgument.
Status ecdh_derive(EVP_PKEY* own, std::span<const uint8_t> peer_public, SecretBytes& z);

// ---- AES
// CBC: 16-byte IV; without padding the input must be a multiple of 16
// (kDataLengthInvalid); with PKCS#7 padding, bad padding on decrypt is
// kInvalidArgument.
Status aes_cbc(bool encrypt, bool pad, std::span<const uint8_t> key, std::span<const uint8_t> iv,
               std::span<const uint8_t> in, SecretBytes& out);
// CTR: 16-byte initial counter block; `counter_bits` (1..128) is how many
// low-order bits are the counter: input longer than the counter space
// allows is kDataLengthInvalid.
Status aes_ctr(std::span<const uint8_t> key, std::span<const uint8_t> counter_block,
               uint32_t counter_bits, std::span<const uint8_t> in, SecretBytes& out);
// RFC 3394 (KW) and RFC 5649 (KWP). Unwrap integrity failure: kTagMismatch.
Status aes_kw_wrap(std::span<const uint8_t> kek, std::span<const uint8_t> key, Bytes& out);
Status aes_kw_unwrap(std::span<const uint8_t> kek, std::span<const uint8_t> wrapped,
                     SecretBytes& out);
Status aes_kwp_wrap(std::span<const uint8_t> kek, std::span<const uint8_t> key, Bytes& out);
Status aes_kwp_unwrap(std::span<const uint8_t> kek, std::span<const uint8_t> wrapped,
                      SecretBytes& out);

// Multi-part AES (GCM, CBC with or without padding, CTR). Bounded state: one
// EVP_CIPHER_CTX and at most one block of held-back data.
enum class AesMode : uint8_t { kGcm, kCbc, kCbcPad, kCtr };
class AesStream {
 public:
  AesStream();
  ~AesStream();
  AesStream(AesStream&&) noexcept;
  AesStream& operator=(AesStream&&) noexcept;
  // GCM: iv 12 bytes, aad any length (given once at init), tag 16 bytes.
  Status init(AesMode mode, bool encrypt, std::span<const uint8_t> key, std::span<const uint8_t> iv,
              std::span<const uint8_t> aad = {});
  Status update(std::span<const uint8_t> in, SecretBytes& out);
  // Encrypt GCM: `tag` receives the tag. Decrypt GCM: `tag` is the
  // expected tag (kTagMismatch if wrong; output of earlier updates must
  // then be discarded by the caller). Other modes leave `tag` alone.
  // CBC without padding: total input not a multiple of 16 is
  // kDataLengthInvalid here; CBC-PAD decrypt: bad padding is
  // kInvalidArgument. After final (or any failure) the stream must be
  // init()ed again (kOperationNotInitialized otherwise).
  Status final(SecretBytes& out, Bytes& tag);

 private:
  EVP_CIPHER_CTX* ctx_ = nullptr;
  AesMode mode_ = AesMode::kGcm;
  bool encrypt_ = true;
  uint64_t length_ = 0;  // input bytes since init (CBC length checks at final)
};

// ---- HMAC (SHA-256/384/512), keys of any length >= 14 bytes (112 bits)
Status hmac(Hash h, std::span<const uint8_t> key, std::span<const uint8_t> data, Bytes& mac);
// Constant-time comparison; kSignatureInvalid on mismatch. `mac` may be
// truncated (PKCS#11 general-length HMAC): 16 bytes up to hash_size(h),
// compared with that prefix of the full MAC; any other length is
// kSignatureInvalid. SHA-1/224 are kMechanismInvalid here.
Status hmac_verify(Hash h, std::span<const uint8_t> key, std::span<const uint8_t> data,
                   std::span<const uint8_t> mac);

// ---- KDFs
enum class HkdfMode : uint8_t { kExtractAndExpand, kExtractOnly, kExpandOnly };
// Output length = out.size() (for kExtractOnly it must equal hash_size;
// otherwise 1 .. 255 * hash_size; kInvalidArgument if not). An empty salt
// is the RFC default (HashLen zeros); kExpandOnly takes the PRK as `ikm`
// and ignores `salt`. `info` is at most 32 KiB (OpenSSL's limit;
// kMechanismParamInvalid beyond).
Status hkdf(Hash h, HkdfMode mode, std::span<const uint8_t> ikm, std::span<const uint8_t> salt,
            std::span<const uint8_t> info, SecretBytes& out);
// SP 800-108 counter mode with HMAC (SHA-256/384/512) as PRF: out.size()
// bytes of PRF(key, [i]_r || label || 0x00 || context || [L]_32), i from 1,
// counter before the fixed data, L = 8 * out.size().
// Counter width r: only 32 bits. OpenSSL 3.0's KBKDF has no "r" parameter
// (it came in 3.1) and always uses a 32-bit counter, so 8, 16 and 24 are
// kMechanismParamInvalid.
// The layout can drop the separator and [L]_32, so that a caller's whole
// fixed input (PKCS#11's byte arrays, CAVP's "fixed data") goes in as label.
struct KbkdfLayout {
  bool separator = true;  // 0x00 between label and context
  bool length = true;     // [L]_32 after the context
};
Status kbkdf_counter_hmac(Hash prf, std::span<const uint8_t> key, std::span<const uint8_t> label,
                          std::span<const uint8_t> context, uint32_t counter_bits, SecretBytes& out,
                          KbkdfLayout layout = {});

}  // namespace ihsm::device::crypto
