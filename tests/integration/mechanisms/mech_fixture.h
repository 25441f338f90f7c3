// Fixture and helpers for the mechanism tests (issue 3): one real ihsmd per
// test suite, a partition with a logged-in Crypto User, a BYOK import key,
// and independent OpenSSL code to build and check everything the device
// does. Nothing here shares code with the device or libihsm internals.
#pragma once

#include <gtest/gtest.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <memory>
#include <string>
#include <vector>

#include "ihsm/client.h"
#include "integration/daemon_fixture.h"
#include "support/ossl.h"
#include "support/util.h"

namespace ihsm::test::mech {

// ------------------------------------------------------------ assertions

template <typename T>
::testing::AssertionResult is_ok(const Result<T>& r) {
  if (r.ok()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << status_name(r.status()) << ": " << r.detail().message;
}

template <typename T>
::testing::AssertionResult has_status(const Result<T>& r, Status expected) {
  if (r.status() == expected) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "expected " << status_name(expected) << ", got "
                                       << status_name(r.status()) << ": " << r.detail().message;
}

#define MECH_ASSERT_OK(expr) ASSERT_TRUE(::ihsm::test::mech::is_ok(expr))
#define MECH_EXPECT_OK(expr) EXPECT_TRUE(::ihsm::test::mech::is_ok(expr))
#define MECH_EXPECT_STATUS(expr, status) \
  EXPECT_TRUE(::ihsm::test::mech::has_status((expr), (status)))
#define MECH_ASSERT_STATUS(expr, status) \
  ASSERT_TRUE(::ihsm::test::mech::has_status((expr), (status)))

constexpr const char* kOfficerPin = "officer-pin-0000";
constexpr const char* kUserPin = "user-pin-1111";

// ------------------------------------------------------------ templates

// `flags` over usage::kBasic (usage and sensitivity); the other bits keep
// the device's defaults (modifiable, destroyable).
inline KeyTemplate basic(uint32_t flags, std::string label = "") {
  KeyTemplate t;
  t.flags = flags;
  t.flags_mask = usage::kBasic;
  t.label = std::move(label);
  return t;
}

// `flags` over kBasic plus the extra bits in `extra_mask`.
inline KeyTemplate masked(uint32_t flags, uint32_t extra_mask) {
  KeyTemplate t;
  t.flags = flags;
  t.flags_mask = usage::kBasic | extra_mask;
  return t;
}

inline NewKeySpec secret_spec(KeyType type, uint32_t flags, uint32_t length = 32) {
  NewKeySpec spec;
  spec.object_class = ObjectClass::kSecretKey;
  spec.key_type = type;
  spec.value_length = length;
  spec.tmpl = basic(flags);
  return spec;
}

inline NewKeySpec private_spec(KeyType type, uint32_t flags) {
  NewKeySpec spec;
  spec.object_class = ObjectClass::kPrivateKey;
  spec.key_type = type;
  spec.tmpl = basic(flags);
  return spec;
}

inline MechanismParams oaep(Mechanism hash = Mechanism::kSha256, Mechanism mgf = Mechanism::kSha256,
                            Bytes label = {}) {
  MechanismParams p;
  p.hash = hash;
  p.mgf_hash = mgf;
  p.source_data = std::move(label);
  return p;
}

inline MechanismParams pss(Mechanism hash, uint32_t salt) {
  MechanismParams p;
  p.hash = hash;
  p.mgf_hash = hash;
  p.salt_length = salt;
  return p;
}

inline CipherSpec cipher(Mechanism m, std::optional<Bytes> iv = std::nullopt, Bytes aad = {}) {
  CipherSpec c;
  c.mechanism = m;
  c.iv = std::move(iv);
  c.aad = std::move(aad);
  return c;
}

inline Bytes concat(Bytes a, const Bytes& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

inline Bytes pattern(size_t n, uint8_t seed) {
  Bytes out(n);
  for (size_t i = 0; i < n; ++i) out[i] = static_cast<uint8_t>(seed + 31 * i + (i >> 3));
  return out;
}

// ------------------------------------------------------------ OpenSSL

namespace ref {

using ossl::Pkey;
using ossl::PkeyCtx;

inline void check(bool ok, const char* what) {
  if (!ok) {
    ERR_clear_error();
    throw std::runtime_error(std::string("OpenSSL: ") + what);
  }
}

inline const EVP_MD* md_of(Mechanism hash) {
  switch (hash) {
    case Mechanism::kSha256:
      return EVP_sha256();
    case Mechanism::kSha384:
      return EVP_sha384();
    case Mechanism::kSha512:
      return EVP_sha512();
    default:
      return nullptr;
  }
}

inline const char* md_name(Mechanism hash) {
  switch (hash) {
    case Mechanism::kSha256:
      return "SHA256";
    case Mechanism::kSha384:
      return "SHA384";
    default:
      return "SHA512";
  }
}

inline Bytes hmac(Mechanism hash, const Bytes& key, const Bytes& data) {
  Bytes out(EVP_MAX_MD_SIZE);
  size_t len = 0;
  const Bytes k = key.empty() ? Bytes(1, 0) : key;
  check(EVP_Q_mac(nullptr, "HMAC", nullptr, md_name(hash), nullptr, k.data(), key.size(),
                  data.data(), data.size(), out.data(), out.size(), &len) != nullptr,
        "HMAC");
  out.resize(len);
  return out;
}

// SP 800-108 counter mode, written out from the formula with EVP_MAC:
// K(i) = PRF(K, [i]_32 || Label || 0x00 || Context || [L]_32), the
// separator and [L]_32 each left out when asked.
inline Bytes kbkdf_counter(Mechanism hash, const Bytes& key, const Bytes& label,
                           const Bytes& context, size_t length, bool separator = true,
                           bool length_field = true) {
  const uint32_t l_bits = static_cast<uint32_t>(length * 8);
  Bytes out;
  for (uint32_t i = 1; out.size() < length; ++i) {
    Bytes block;
    for (int b = 3; b >= 0; --b) block.push_back(static_cast<uint8_t>(i >> (8 * b)));
    block.insert(block.end(), label.begin(), label.end());
    if (separator) block.push_back(0x00);
    block.insert(block.end(), context.begin(), context.end());
    if (length_field) {
      for (int b = 3; b >= 0; --b) block.push_back(static_cast<uint8_t>(l_bits >> (8 * b)));
    }
    const Bytes k = hmac(hash, key, block);
    out.insert(out.end(), k.begin(), k.end());
  }
  out.resize(length);
  return out;
}

inline Bytes cipher_run(const EVP_CIPHER* c, bool encrypt, const Bytes& key, const Bytes& iv,
                        const Bytes& in, int padding = -1) {
  std::unique_ptr<EVP_CIPHER_CTX, ossl::CipherCtxDel> ctx(EVP_CIPHER_CTX_new());
  check(ctx && EVP_CipherInit_ex2(ctx.get(), c, key.data(), iv.empty() ? nullptr : iv.data(),
                                  encrypt ? 1 : 0, nullptr) == 1,
        "cipher init");
  if (padding >= 0) EVP_CIPHER_CTX_set_padding(ctx.get(), padding);
  Bytes out(in.size() + 32);
  int n1 = 0, n2 = 0;
  if (!in.empty()) {
    check(EVP_CipherUpdate(ctx.get(), out.data(), &n1, in.data(), static_cast<int>(in.size())) == 1,
          "cipher update");
  }
  check(EVP_CipherFinal_ex(ctx.get(), out.data() + n1, &n2) == 1, "cipher final");
  out.resize(static_cast<size_t>(n1 + n2));
  return out;
}

inline const EVP_CIPHER* aes(const char* mode, size_t key_len) {
  const std::string name = "AES-" + std::to_string(key_len * 8) + "-" + mode;
  const EVP_CIPHER* c = EVP_get_cipherbyname(name.c_str());
  check(c != nullptr, "cipher name");
  return c;
}

inline Bytes cbc(bool encrypt, bool pad, const Bytes& key, const Bytes& iv, const Bytes& in) {
  return cipher_run(aes("CBC", key.size()), encrypt, key, iv, in, pad ? 1 : 0);
}
inline Bytes ctr(const Bytes& key, const Bytes& iv, const Bytes& in) {
  return cipher_run(aes("CTR", key.size()), true, key, iv, in);
}

inline const EVP_CIPHER* kw_cipher(size_t kek_len, bool pad) {
  switch (kek_len) {
    case 16:
      return pad ? EVP_aes_128_wrap_pad() : EVP_aes_128_wrap();
    case 24:
      return pad ? EVP_aes_192_wrap_pad() : EVP_aes_192_wrap();
    default:
      return pad ? EVP_aes_256_wrap_pad() : EVP_aes_256_wrap();
  }
}

// RFC 3394 (pad false) / RFC 5649 (pad true). Unwrap failure: empty.
inline Bytes key_wrap(bool wrap, bool pad, const Bytes& kek, const Bytes& in) {
  std::unique_ptr<EVP_CIPHER_CTX, ossl::CipherCtxDel> ctx(EVP_CIPHER_CTX_new());
  EVP_CIPHER_CTX_set_flags(ctx.get(), EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
  check(EVP_CipherInit_ex2(ctx.get(), kw_cipher(kek.size(), pad), kek.data(), nullptr, wrap ? 1 : 0,
                           nullptr) == 1,
        "wrap init");
  Bytes out(in.size() + 16);
  int n1 = 0, n2 = 0;
  if (EVP_CipherUpdate(ctx.get(), out.data(), &n1, in.data(), static_cast<int>(in.size())) != 1 ||
      EVP_CipherFinal_ex(ctx.get(), out.data() + n1, &n2) != 1) {
    ERR_clear_error();
    return {};
  }
  out.resize(static_cast<size_t>(n1 + n2));
  return out;
}

// AES-GCM decryption; nullopt when the tag does not verify.
inline std::optional<Bytes> gcm_open(const Bytes& key, const Bytes& iv, const Bytes& aad,
                                     const Bytes& ct, const Bytes& tag) {
  std::unique_ptr<EVP_CIPHER_CTX, ossl::CipherCtxDel> ctx(EVP_CIPHER_CTX_new());
  int len = 0;
  check(
      EVP_DecryptInit_ex(ctx.get(), ossl::gcm_cipher(key.size()), nullptr, nullptr, nullptr) == 1 &&
          EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, static_cast<int>(iv.size()),
                              nullptr) == 1 &&
          EVP_DecryptInit_ex(ctx.get(), nullptr, nullptr, key.data(), iv.data()) == 1,
      "gcm init");
  if (!aad.empty()) {
    check(
        EVP_DecryptUpdate(ctx.get(), nullptr, &len, aad.data(), static_cast<int>(aad.size())) == 1,
        "gcm aad");
  }
  Bytes out(ct.size() + 16);
  int n1 = 0, n2 = 0;
  if (!ct.empty()) {
    check(
        EVP_DecryptUpdate(ctx.get(), out.data(), &n1, ct.data(), static_cast<int>(ct.size())) == 1,
        "gcm update");
  }
  Bytes t = tag;
  check(EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, static_cast<int>(t.size()),
                            t.data()) == 1,
        "gcm tag");
  if (EVP_DecryptFinal_ex(ctx.get(), out.data() + n1, &n2) != 1) {
    ERR_clear_error();
    return std::nullopt;
  }
  out.resize(static_cast<size_t>(n1 + n2));
  return out;
}

inline Pkey rsa_keygen(unsigned bits) {
  Pkey k(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(bits)));
  check(k != nullptr, "RSA keygen");
  return k;
}

inline Pkey raw_private(int type, const Bytes& raw) {
  Pkey k(EVP_PKEY_new_raw_private_key(type, nullptr, raw.data(), raw.size()));
  check(k != nullptr, "raw private key");
  return k;
}

inline Bytes raw_public(EVP_PKEY* key) {
  Bytes out(64);
  size_t len = out.size();
  check(EVP_PKEY_get_raw_public_key(key, out.data(), &len) == 1, "raw public key");
  out.resize(len);
  return out;
}

// PrivateKeyInfo (PKCS#8, unencrypted) DER of any private key.
inline Bytes pkcs8(EVP_PKEY* key) {
  PKCS8_PRIV_KEY_INFO* p8 = EVP_PKEY2PKCS8(key);
  check(p8 != nullptr, "EVP_PKEY2PKCS8");
  unsigned char* der = nullptr;
  const int len = i2d_PKCS8_PRIV_KEY_INFO(p8, &der);
  PKCS8_PRIV_KEY_INFO_free(p8);
  check(len > 0, "i2d_PKCS8_PRIV_KEY_INFO");
  Bytes out(der, der + len);
  OPENSSL_clear_free(der, static_cast<size_t>(len));
  return out;
}

// Parses exactly one PrivateKeyInfo (not a type-specific structure).
inline Pkey from_pkcs8(const Bytes& der) {
  const unsigned char* p = der.data();
  PKCS8_PRIV_KEY_INFO* p8 = d2i_PKCS8_PRIV_KEY_INFO(nullptr, &p, static_cast<long>(der.size()));
  if (p8 == nullptr || p != der.data() + der.size()) {
    PKCS8_PRIV_KEY_INFO_free(p8);
    ERR_clear_error();
    return nullptr;
  }
  Pkey key(EVP_PKCS82PKEY(p8));
  PKCS8_PRIV_KEY_INFO_free(p8);
  ERR_clear_error();
  return key;
}

// Any private-key DER OpenSSL knows (PKCS#8 or type-specific).
inline Pkey from_any_der(const Bytes& der) {
  const unsigned char* p = der.data();
  Pkey key(d2i_AutoPrivateKey(nullptr, &p, static_cast<long>(der.size())));
  ERR_clear_error();
  return key;
}

inline Bytes oaep_encrypt(EVP_PKEY* key, Mechanism hash, Mechanism mgf, const Bytes& label,
                          const Bytes& data) {
  PkeyCtx ctx(EVP_PKEY_CTX_new(key, nullptr));
  check(ctx && EVP_PKEY_encrypt_init(ctx.get()) == 1 &&
            EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_OAEP_PADDING) == 1 &&
            EVP_PKEY_CTX_set_rsa_oaep_md(ctx.get(), md_of(hash)) == 1 &&
            EVP_PKEY_CTX_set_rsa_mgf1_md(ctx.get(), md_of(mgf)) == 1,
        "OAEP init");
  if (!label.empty()) {
    auto* copy = static_cast<unsigned char*>(OPENSSL_memdup(label.data(), label.size()));
    check(EVP_PKEY_CTX_set0_rsa_oaep_label(ctx.get(), copy, static_cast<int>(label.size())) == 1,
          "OAEP label");
  }
  size_t len = 0;
  check(EVP_PKEY_encrypt(ctx.get(), nullptr, &len, data.data(), data.size()) == 1, "OAEP size");
  Bytes out(len);
  check(EVP_PKEY_encrypt(ctx.get(), out.data(), &len, data.data(), data.size()) == 1, "OAEP");
  out.resize(len);
  return out;
}

// nullopt when the ciphertext does not decrypt.
inline std::optional<Bytes> oaep_decrypt(EVP_PKEY* key, Mechanism hash, Mechanism mgf,
                                         const Bytes& label, const Bytes& ct) {
  PkeyCtx ctx(EVP_PKEY_CTX_new(key, nullptr));
  check(ctx && EVP_PKEY_decrypt_init(ctx.get()) == 1 &&
            EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_OAEP_PADDING) == 1 &&
            EVP_PKEY_CTX_set_rsa_oaep_md(ctx.get(), md_of(hash)) == 1 &&
            EVP_PKEY_CTX_set_rsa_mgf1_md(ctx.get(), md_of(mgf)) == 1,
        "OAEP init");
  if (!label.empty()) {
    auto* copy = static_cast<unsigned char*>(OPENSSL_memdup(label.data(), label.size()));
    check(EVP_PKEY_CTX_set0_rsa_oaep_label(ctx.get(), copy, static_cast<int>(label.size())) == 1,
          "OAEP label");
  }
  Bytes out(1024);
  size_t len = out.size();
  if (EVP_PKEY_decrypt(ctx.get(), out.data(), &len, ct.data(), ct.size()) != 1) {
    ERR_clear_error();
    return std::nullopt;
  }
  out.resize(len);
  return out;
}

// PKCS#11 CKM_RSA_AES_KEY_WRAP: OAEP(ephemeral AES key) || KWP(ephemeral, data).
inline Bytes rsa_aes_wrap(EVP_PKEY* key, Mechanism hash, const Bytes& data,
                          size_t ephemeral_len = 32) {
  Bytes ephemeral(ephemeral_len);
  check(RAND_bytes(ephemeral.data(), static_cast<int>(ephemeral.size())) == 1, "RAND");
  return concat(oaep_encrypt(key, hash, hash, {}, ephemeral),
                key_wrap(true, true, ephemeral, data));
}

inline std::optional<Bytes> rsa_aes_unwrap(EVP_PKEY* key, Mechanism hash, const Bytes& wrapped) {
  const size_t head = static_cast<size_t>(EVP_PKEY_get_size(key));
  if (wrapped.size() <= head) return std::nullopt;
  auto ephemeral =
      oaep_decrypt(key, hash, hash, {}, Bytes(wrapped.begin(), wrapped.begin() + head));
  if (!ephemeral) return std::nullopt;
  Bytes out = key_wrap(false, true, *ephemeral, Bytes(wrapped.begin() + head, wrapped.end()));
  if (out.empty()) return std::nullopt;
  return out;
}

// Sign `data` with md (hash-then-sign), or nullptr md for Ed25519.
inline Bytes sign(EVP_PKEY* key, const EVP_MD* md, const Bytes& data, int rsa_padding = 0,
                  int salt = 0) {
  std::unique_ptr<EVP_MD_CTX, ossl::MdCtxDel> ctx(EVP_MD_CTX_new());
  EVP_PKEY_CTX* pctx = nullptr;
  check(EVP_DigestSignInit(ctx.get(), &pctx, md, nullptr, key) == 1, "sign init");
  if (rsa_padding != 0) {
    check(EVP_PKEY_CTX_set_rsa_padding(pctx, rsa_padding) == 1, "padding");
    if (rsa_padding == RSA_PKCS1_PSS_PADDING) {
      check(EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, salt) == 1 &&
                EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, md) == 1,
            "pss");
    }
  }
  size_t len = 0;
  check(EVP_DigestSign(ctx.get(), nullptr, &len, data.data(), data.size()) == 1, "sign size");
  Bytes out(len);
  check(EVP_DigestSign(ctx.get(), out.data(), &len, data.data(), data.size()) == 1, "sign");
  out.resize(len);
  return out;
}

inline bool verify(const Bytes& spki, const EVP_MD* md, const Bytes& data, const Bytes& sig,
                   int rsa_padding = 0, int salt = 0) {
  Pkey key = ossl::load_spki(spki);
  if (!key) return false;
  std::unique_ptr<EVP_MD_CTX, ossl::MdCtxDel> ctx(EVP_MD_CTX_new());
  EVP_PKEY_CTX* pctx = nullptr;
  if (EVP_DigestVerifyInit(ctx.get(), &pctx, md, nullptr, key.get()) != 1) return false;
  if (rsa_padding != 0) {
    EVP_PKEY_CTX_set_rsa_padding(pctx, rsa_padding);
    if (rsa_padding == RSA_PKCS1_PSS_PADDING) {
      EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, salt);
      EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, md);
    }
  }
  const bool good =
      EVP_DigestVerify(ctx.get(), sig.data(), sig.size(), data.data(), data.size()) == 1;
  ERR_clear_error();
  return good;
}

// ECDSA r||s over `md(data)` signed by OpenSSL.
inline Bytes ecdsa_sign_raw(EVP_PKEY* key, const EVP_MD* md, const Bytes& data) {
  const Bytes der = sign(key, md, data);
  const unsigned char* p = der.data();
  std::unique_ptr<ECDSA_SIG, ossl::SigDel> sig(
      d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size())));
  check(sig != nullptr, "d2i_ECDSA_SIG");
  const size_t half = static_cast<size_t>((EVP_PKEY_get_bits(key) + 7) / 8);
  Bytes out(2 * half);
  check(
      BN_bn2binpad(ECDSA_SIG_get0_r(sig.get()), out.data(), static_cast<int>(half)) > 0 &&
          BN_bn2binpad(ECDSA_SIG_get0_s(sig.get()), out.data() + half, static_cast<int>(half)) > 0,
      "BN_bn2binpad");
  return out;
}

// DER DigestInfo of SHA-256/384/512 over `data` (RFC 8017 section 9.2).
inline Bytes digest_info(Mechanism hash, const Bytes& data) {
  static const Bytes k256 = from_hex("3031300d060960864801650304020105000420");
  static const Bytes k384 = from_hex("3041300d060960864801650304020205000430");
  static const Bytes k512 = from_hex("3051300d060960864801650304020305000440");
  const Bytes& prefix = hash == Mechanism::kSha256   ? k256
                        : hash == Mechanism::kSha384 ? k384
                                                     : k512;
  return concat(prefix, ossl::digest(md_of(hash), data));
}

}  // namespace ref

// ------------------------------------------------------------ devices

// One ihsmd on its own temporary directory, a partition with both PINs,
// and a session logged in as Crypto User.
class Device {
 public:
  explicit Device(std::vector<std::string> args = {}) {
    ::chmod(dir_.path().c_str(), 0755);
    daemon_ = std::make_unique<Daemon>(dir_.file("state"), dir_.file("sock"), std::move(args),
                                       dir_.file("ihsmd.log"));
  }
  ~Device() {
    user_.reset();
    client_.reset();
    if (daemon_ && daemon_->pid() > 0) {
      const auto stopped = daemon_->stop();
      if (!stopped) ADD_FAILURE() << stopped.message();
    }
  }
  Device(const Device&) = delete;
  Device& operator=(const Device&) = delete;

  ::testing::AssertionResult start() {
    auto started = daemon_->start();
    if (!started) return started;
    auto c = Client::connect(daemon_->socket());
    if (!c) return ::testing::AssertionFailure() << "connect: " << status_name(c.status());
    client_ = std::make_unique<Client>(std::move(c).value());
    PartitionOptions o;
    o.name = "mechanisms";
    SecretPin officer(kOfficerPin), user(kUserPin);
    auto p = client_->create_partition(o, officer, &user);
    if (!p) return ::testing::AssertionFailure() << "create_partition: " << status_name(p.status());
    partition_ = p->id;
    auto s = login(Role::kCryptoUser);
    if (!s) return ::testing::AssertionFailure() << "login: " << status_name(s.status());
    user_ = std::make_unique<Session>(std::move(s).value());
    return ::testing::AssertionSuccess();
  }

  // Another session of the same connection (it sees this connection's keys).
  Result<Session> login(Role role) {
    auto s = client_->open_session(partition_);
    if (!s) return {s.status(), s.detail()};
    auto r = s->login(role, SecretPin(role == Role::kCryptoOfficer ? kOfficerPin : kUserPin));
    if (!r) return {r.status(), r.detail()};
    return std::move(s).value();
  }

  // A session on a connection of its own (another application: it sees
  // the partition's token objects, not this connection's session objects).
  Result<Session> login_on_new_connection(Role role) {
    auto c = Client::connect(daemon_->socket());
    if (!c) return {c.status(), c.detail()};
    auto s = c->open_session(partition_);
    if (!s) return {s.status(), s.detail()};
    auto r = s->login(role, SecretPin(role == Role::kCryptoOfficer ? kOfficerPin : kUserPin));
    if (!r) return {r.status(), r.detail()};
    return std::move(s).value();
  }

  Session& user() { return *user_; }
  std::string log() const { return daemon_->log(); }

 private:
  TempDir dir_;
  std::unique_ptr<Daemon> daemon_;
  std::unique_ptr<Client> client_;
  PartitionId partition_ = 0;
  std::unique_ptr<Session> user_;
};

// A BYOK import key: an RSA-3072 pair made in the device whose private key
// may only unwrap. The test wraps known key values to its public key with
// OpenSSL and unwraps them into the device.
struct Importer {
  KeyPair pair;
  Bytes spki;
  ossl::Pkey pub;
};

inline Result<Importer> make_importer(Session& s) {
  auto pair = s.generate_key_pair(Mechanism::kRsaKeyPairGen, std::nullopt, 3072, basic(0),
                                  basic(usage::kUnwrap | usage::kSensitive));
  if (!pair) return {pair.status(), pair.detail()};
  auto spki = s.public_key(pair->public_handle);
  if (!spki) return {spki.status(), spki.detail()};
  Importer imp;
  imp.pair = *pair;
  imp.spki = *spki;
  imp.pub = ossl::load_spki(imp.spki);
  if (!imp.pub) return Status::kInternalError;
  return imp;
}

// Imports a known secret value (AES or generic secret): RSA-OAEP SHA-256.
inline Result<KeyHandle> import_secret(Session& s, const Importer& imp, const Bytes& value,
                                       KeyType type, uint32_t flags) {
  const Bytes wrapped =
      ref::oaep_encrypt(imp.pub.get(), Mechanism::kSha256, Mechanism::kSha256, {}, value);
  return s.unwrap_key(imp.pair.private_handle, Mechanism::kRsaPkcsOaep, wrapped,
                      secret_spec(type, flags, static_cast<uint32_t>(value.size())),
                      oaep(Mechanism::kSha256, Mechanism::kSha256));
}

// Imports a known private key as PKCS#8 with RSA-AES-KEY-WRAP.
inline Result<KeyHandle> import_private(Session& s, const Importer& imp, EVP_PKEY* key,
                                        KeyType type, uint32_t flags) {
  const Bytes wrapped = ref::rsa_aes_wrap(imp.pub.get(), Mechanism::kSha256, ref::pkcs8(key));
  MechanismParams p = oaep(Mechanism::kSha256, Mechanism::kSha256);
  p.aes_key_bits = 256;
  return s.unwrap_key(imp.pair.private_handle, Mechanism::kRsaAesKeyWrap, wrapped,
                      private_spec(type, flags), p);
}

// ------------------------------------------------------------ the fixture

// One device per test suite (each suite starts its own ihsmd). The import
// key is made on first use: RSA-3072 generation takes a second or so.
class MechTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    device_ = std::make_unique<Device>();
    auto started = device_->start();
    if (!started) {
      start_error_ = started.message();
      device_.reset();
    }
  }
  static void TearDownTestSuite() {
    importer_.reset();
    device_.reset();
    start_error_.clear();
  }
  void SetUp() override { ASSERT_TRUE(device_ != nullptr) << "ihsmd: " << start_error_; }
  void TearDown() override {
    if (HasFailure() && device_) {
      std::fprintf(stderr, "---- ihsmd log ----\n%s-------------------\n", device_->log().c_str());
    }
  }

  static Session& s() { return device_->user(); }
  static Device& device() { return *device_; }

  static const Importer& importer() {
    if (!importer_) {
      auto imp = make_importer(s());
      if (!imp) {
        throw std::runtime_error("import key: " + std::string(status_name(imp.status())) + " " +
                                 imp.detail().message);
      }
      importer_ = std::make_unique<Importer>(std::move(imp).value());
    }
    return *importer_;
  }

  static KeyHandle import(const Bytes& value, KeyType type, uint32_t flags) {
    auto k = import_secret(s(), importer(), value, type, flags);
    if (!k) {
      throw std::runtime_error("import_secret: " + std::string(status_name(k.status())) + " " +
                               k.detail().message);
    }
    return *k;
  }
  static KeyHandle import_aes(const Bytes& value, uint32_t flags = usage::kEncrypt |
                                                                   usage::kDecrypt |
                                                                   usage::kSensitive) {
    return import(value, KeyType::kAes, flags);
  }
  static KeyHandle import_key_pair_private(EVP_PKEY* key, KeyType type, uint32_t flags) {
    auto k = import_private(s(), importer(), key, type, flags);
    if (!k) {
      throw std::runtime_error("import_private: " + std::string(status_name(k.status())) + " " +
                               k.detail().message);
    }
    return *k;
  }

  // Proves that a generic-secret key `key` (with sign) holds `expected`:
  // HMAC-SHA256 of a fixed message inside the device must equal the HMAC
  // OpenSSL computes with `expected`.
  static ::testing::AssertionResult holds_secret(KeyHandle key, const Bytes& expected) {
    const Bytes message = to_bytes("the HMAC trick: prove a key value without reading it");
    auto mac = s().sign(key, Mechanism::kSha256Hmac, message, {});
    if (!mac) {
      return ::testing::AssertionFailure()
             << "device HMAC: " << status_name(mac.status()) << " " << mac.detail().message;
    }
    const Bytes want = ref::hmac(Mechanism::kSha256, expected, message);
    if (*mac == want) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << "key does not hold " << to_hex(expected);
  }

  // Same for an AES key with encrypt: AES-CBC of a fixed block.
  static ::testing::AssertionResult holds_aes(Session& session, KeyHandle key,
                                              const Bytes& expected) {
    const Bytes iv(16, 0x42), block = to_bytes("0123456789abcdef");
    auto ct = session.encrypt(key, cipher(Mechanism::kAesCbc, iv), block);
    if (!ct) {
      return ::testing::AssertionFailure()
             << "device CBC: " << status_name(ct.status()) << " " << ct.detail().message;
    }
    if (ct->data == ref::cbc(true, false, expected, iv, block)) {
      return ::testing::AssertionSuccess();
    }
    return ::testing::AssertionFailure() << "AES key does not hold " << to_hex(expected);
  }
  static ::testing::AssertionResult holds_aes(KeyHandle key, const Bytes& expected) {
    return holds_aes(s(), key, expected);
  }

  static bool has_flag(KeyHandle key, uint32_t flag) {
    auto info = s().key_info(key);
    if (!info) throw std::runtime_error("key_info failed");
    return (info->flags & flag) == flag;
  }

  static inline std::unique_ptr<Device> device_;
  static inline std::unique_ptr<Importer> importer_;
  static inline std::string start_error_;
};

// A device-generated private key exported to the test: wrapped with
// AES-KWP under a KEK whose value the test imported, so OpenSSL can use
// the same key pair the device holds.
struct Exported {
  KeyPair pair;
  Bytes spki;
  ossl::Pkey priv;  // OpenSSL's copy of the device's private key
  Bytes wrapped;    // as the device wrapped it
};

}  // namespace ihsm::test::mech
