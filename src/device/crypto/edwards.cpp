// Ed25519 (RFC 8032, pure EdDSA) and X25519 (RFC 7748) keys.
#include <openssl/err.h>

#include "device/crypto/algorithms.h"
#include "device/crypto/ossl_util.h"
#include "device/fips/fault.h"
#include "device/fips/state.h"

namespace ihsm::device::crypto {
namespace {

using detail::MdCtx;

bool is_ed25519(EVP_PKEY* key) { return key != nullptr && EVP_PKEY_is_a(key, "ED25519") == 1; }
bool is_x25519(EVP_PKEY* key) { return key != nullptr && EVP_PKEY_is_a(key, "X25519") == 1; }

}  // namespace

Status generate_ed25519_key(Pkey& out) {
  Pkey key(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
  if (!key) {
    ERR_clear_error();
    return Status::kCryptoFailure;
  }
  // Pairwise-consistency test: sign and verify a fixed message. A failure
  // latches the error state.
  static const uint8_t kPctMessage[] = {'p', 'c', 't', '-', 'e', 'd', '2', '5', '5', '1', '9'};
  Bytes sig;
  if (!ok(ed25519_sign(key.get(), kPctMessage, sig))) {
    return fips::conditional_test_failed("pct-ed25519");
  }
  if (fips::fault_injected("pct-ed25519")) sig.back() ^= 0x01;
  if (!ok(ed25519_verify(key.get(), kPctMessage, sig))) {
    return fips::conditional_test_failed("pct-ed25519");
  }
  out = std::move(key);
  return Status::kOk;
}

Status generate_x25519_key(Pkey& out) {
  Pkey key(EVP_PKEY_Q_keygen(nullptr, nullptr, "X25519"));
  if (!key) {
    ERR_clear_error();
    return Status::kCryptoFailure;
  }
  // Pairwise-consistency test (SP 800-56A 5.6.2.1.4 (a)): the public key
  // must be the one the private key recomputes. A failure latches the
  // error state.
  SecretBytes priv(32);
  size_t priv_len = priv.size();
  Bytes pub;
  if (EVP_PKEY_get_raw_private_key(key.get(), priv.reveal_mutable().data(), &priv_len) != 1 ||
      priv_len != 32 || !ok(raw_public_key(key.get(), pub))) {
    ERR_clear_error();
    return Status::kCryptoFailure;
  }
  Pkey again(EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, nullptr, priv.reveal().data(), 32));
  Bytes pub_again;
  if (!again || !ok(raw_public_key(again.get(), pub_again))) {
    ERR_clear_error();
    return Status::kCryptoFailure;
  }
  if (fips::fault_injected("pct-x25519")) pub_again.back() ^= 0x01;
  if (pub_again != pub) return fips::conditional_test_failed("pct-x25519");
  out = std::move(key);
  return Status::kOk;
}

Status ed25519_sign(EVP_PKEY* key, std::span<const uint8_t> message, Bytes& sig) {
  if (!is_ed25519(key)) return Status::kKeyTypeMismatch;
  MdCtx ctx(EVP_MD_CTX_new());
  Bytes result(64);
  size_t len = result.size();
  // Pure Ed25519: no pre-hash, so no digest is named.
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, key) != 1 ||
      EVP_DigestSign(ctx.get(), result.data(), &len, message.data(), message.size()) != 1 ||
      len != 64) {
    ERR_clear_error();
    return Status::kCryptoFailure;
  }
  sig = std::move(result);
  return Status::kOk;
}

Status ed25519_verify(EVP_PKEY* key, std::span<const uint8_t> message,
                      std::span<const uint8_t> sig) {
  if (!is_ed25519(key)) return Status::kKeyTypeMismatch;
  if (sig.size() != 64) return Status::kSignatureInvalid;
  MdCtx ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, key) != 1) {
    ERR_clear_error();
    return Status::kCryptoFailure;
  }
  if (EVP_DigestVerify(ctx.get(), sig.data(), sig.size(), message.data(), message.size()) != 1) {
    ERR_clear_error();
    return Status::kSignatureInvalid;
  }
  return Status::kOk;
}

Status raw_public_key(EVP_PKEY* key, Bytes& out) {
  if (!is_ed25519(key) && !is_x25519(key)) return Status::kKeyTypeMismatch;
  Bytes result(32);
  size_t len = result.size();
  if (EVP_PKEY_get_raw_public_key(key, result.data(), &len) != 1 || len != 32) {
    ERR_clear_error();
    return Status::kCryptoFailure;
  }
  out = std::move(result);
  return Status::kOk;
}

}  // namespace ihsm::device::crypto
