// The device's crypto backend: the only code inside ihsmd that calls
// OpenSSL. Everything above it speaks in Status, spans and SecretBytes.
#pragma once

#include <openssl/evp.h>

#include <memory>
#include <span>

#include "common/secret.h"
#include "ihsm/status.h"
#include "ihsm/types.h"

namespace ihsm::device::crypto {

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;

// DRBG output (OpenSSL's approved CTR-DRBG seeded from the OS), under a
// continuous test: every 16-byte block drawn is compared with the one
// drawn before it in this thread (OpenSSL's private DRBG is one instance
// per thread), the last block of each call being drawn for the test only
// and never handed out. A repeated block latches the error state
// (fips::conditional_test_failed("rng-health")): kSelfTestFailed.
Status random_bytes(std::span<uint8_t> out);
// Zeroization: reseeds, with prediction resistance (fresh entropy), the
// primary DRBG and the calling thread's public and private DRBGs, so their
// earlier internal state (V, Key) is gone. Other threads' DRBGs (one per
// thread in OpenSSL) keep theirs until the thread ends (OpenSSL cleanses
// a DRBG as it frees it).
Status reseed_drbgs();

// The CAVP known-answer procedure of CTR_DRBG (AES-128, derivation
// function, prediction resistance), as SP 800-90A's health test asks: a
// test-only instance fed by OpenSSL's TEST-RAND entropy source, never the
// device's DRBG. Instantiate with entropy, nonce and personalization;
// generate out.size() bytes twice, each with prediction resistance (fresh
// test entropy) and additional input; `out` is the second output. Then
// uninstantiate and check the state was zeroized.
struct DrbgKnownAnswer {
  std::span<const uint8_t> entropy, nonce, personalization;
  std::span<const uint8_t> entropy_pr1, additional1;
  std::span<const uint8_t> entropy_pr2, additional2;
};
Status ctr_drbg_known_answer(const DrbgKnownAnswer& in, std::span<uint8_t> out);

// Key-pair generation with a pairwise-consistency test (sign + verify)
// before the key is handed out, as FIPS 140-3 requires.
Status generate_ec_key(Curve curve, Pkey& out);
uint32_t curve_bits(Curve curve);
size_t curve_scalar_size(Curve curve);  // bytes of r (and s)

Status public_key_der(EVP_PKEY* key, Bytes& out);  // SubjectPublicKeyInfo
Status public_key_from_der(std::span<const uint8_t> der, Pkey& out);
// A new key object holding only the public half of `key`, made from its
// parameters (EVP_PKEY_todata/fromdata): about 8x cheaper in OpenSSL 3.0
// than encoding and decoding a SubjectPublicKeyInfo.
Status public_half(EVP_PKEY* key, Pkey& out);
Status public_point(EVP_PKEY* key, Bytes& out);  // uncompressed X9.62 point

// PKCS#8 DER (PrivateKeyInfo) of a private key: the device's own state
// files and wrapped private keys. Never sent anywhere unwrapped.
Status private_key_der(EVP_PKEY* key, SecretBytes& out);
Status private_key_from_der(std::span<const uint8_t> der, Pkey& out);

// ECDSA. kEcdsa signs the given digest (20..64 bytes); kEcdsaSha* hash
// first. Output is r || s, each curve_scalar_size() bytes. With `prepared`
// (the key object's, prepared.h) the signing context is reused.
class PreparedSigner;
Status ecdsa_sign(EVP_PKEY* key, Curve curve, Mechanism mechanism, std::span<const uint8_t> data,
                  Bytes& signature, PreparedSigner* prepared = nullptr);
// DER-encoded ECDSA with SHA-384, for device-internal statements.
Status ecdsa_sign_sha384_der(EVP_PKEY* key, std::span<const uint8_t> data, Bytes& signature);
bool ecdsa_verify_sha384_der(EVP_PKEY* key, std::span<const uint8_t> data,
                             std::span<const uint8_t> signature);

// ECDH on P-384 with a peer's uncompressed point; the shared x coordinate.
Status ecdh(EVP_PKEY* own, Curve curve, std::span<const uint8_t> peer_point, SecretBytes& z);

Status hkdf_sha384(std::span<const uint8_t> ikm, std::span<const uint8_t> salt,
                   std::span<const uint8_t> info, SecretBytes& out);

// scrypt(PIN, salt); out.size() selects the output length.
Status scrypt(std::span<const uint8_t> secret, std::span<const uint8_t> salt, uint64_t n,
              uint32_t r, uint32_t p, SecretBytes& out);

// AES-GCM with a 12-byte IV and 16-byte tag, any AES key length.
Status aes_gcm_encrypt(std::span<const uint8_t> key, std::span<const uint8_t> iv,
                       std::span<const uint8_t> aad, std::span<const uint8_t> plaintext,
                       Bytes& ciphertext, Bytes& tag);
// kTagMismatch when authentication fails; `plaintext` is then empty.
Status aes_gcm_decrypt(std::span<const uint8_t> key, std::span<const uint8_t> iv,
                       std::span<const uint8_t> aad, std::span<const uint8_t> ciphertext,
                       std::span<const uint8_t> tag, SecretBytes& plaintext);

}  // namespace ihsm::device::crypto
