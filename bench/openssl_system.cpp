#include "openssl_system.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#include <algorithm>

namespace ihsm::bench {

struct OpensslSystem::Worker {
  size_t thread = 0;
  Pkey p256, p384, ed25519, rsa2048, rsa3072;
  Bytes aes, hmac;
  uint64_t gcm_counter = 0;  // the next IV under `aes`
};

namespace {

Pkey generate(const char* type, const char* param) {
  Pkey key(type == std::string("RSA")
               ? EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(std::stoul(param)))
           : param != nullptr ? EVP_PKEY_Q_keygen(nullptr, nullptr, type, param)
                              : EVP_PKEY_Q_keygen(nullptr, nullptr, type));
  check_openssl(key != nullptr, "key generation");
  return key;
}

Bytes random_bytes(size_t n) {
  Bytes b(n);
  check_openssl(RAND_bytes(b.data(), static_cast<int>(n)) == 1, "RAND_bytes");
  return b;
}

// ------------------------------------------------------------------ sign

// ECDSA and RSA sign through a prepared EVP_PKEY_CTX (RSA hashes first, as
// CKM_SHA256_RSA_PKCS does); Ed25519 through EVP_DigestSign.
class SignRunner : public Runner {
 public:
  SignRunner(const OpensslSystem::Worker& w, Op op, EVP_PKEY* key)
      : op_(op), thread_(w.thread), key_(key), input_(input_size(op)), sig_(512) {
    if (op == Op::kEd25519) {
      md_.reset(EVP_MD_CTX_new());
      check_openssl(md_ != nullptr, "EVP_MD_CTX_new");
      return;
    }
    ctx_.reset(EVP_PKEY_CTX_new_from_pkey(nullptr, key, nullptr));
    check_openssl(ctx_ && EVP_PKEY_sign_init(ctx_.get()) == 1, "EVP_PKEY_sign_init");
    if (op != Op::kEcdsaP256 && op != Op::kEcdsaP384) {
      const bool pss = op == Op::kRsa2048Pss || op == Op::kRsa3072Pss;
      check_openssl(EVP_PKEY_CTX_set_rsa_padding(
                        ctx_.get(), pss ? RSA_PKCS1_PSS_PADDING : RSA_PKCS1_PADDING) == 1 &&
                        EVP_PKEY_CTX_set_signature_md(ctx_.get(), EVP_sha256()) == 1,
                    "RSA sign set-up");
      if (pss) {
        check_openssl(EVP_PKEY_CTX_set_rsa_mgf1_md(ctx_.get(), EVP_sha256()) == 1 &&
                          EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx_.get(), 32) == 1,
                      "PSS set-up");
      }
    }
  }

  void op() override {
    make_input(input_, thread_, next_);
    size_t len = sig_.size();
    if (op_ == Op::kEd25519) {
      check_openssl(
          EVP_DigestSignInit(md_.get(), nullptr, nullptr, nullptr, key_) == 1 &&
              EVP_DigestSign(md_.get(), sig_.data(), &len, input_.data(), input_.size()) == 1,
          "Ed25519 sign");
    } else if (op_ == Op::kEcdsaP256 || op_ == Op::kEcdsaP384) {
      check_openssl(EVP_PKEY_sign(ctx_.get(), sig_.data(), &len, input_.data(), input_.size()) == 1,
                    "ECDSA sign");
    } else {
      uint8_t digest[32];
      unsigned int dlen = 0;
      check_openssl(
          EVP_Digest(input_.data(), input_.size(), digest, &dlen, EVP_sha256(), nullptr) == 1 &&
              EVP_PKEY_sign(ctx_.get(), sig_.data(), &len, digest, dlen) == 1,
          "RSA sign");
    }
    answers_.add(next_++, sig_.data(), len);
  }

  uint64_t check() override {
    Bytes input(input_size(op_));
    const std::vector<size_t> sample = answers_.sample(kCheckSample);
    for (const size_t k : sample) {
      make_input(input, thread_, answers_.index(k));
      verify_signature(op_, key_, input, answers_.bytes(k), false, "openssl");
    }
    answers_.clear();
    return sample.size();
  }

 private:
  Op op_;
  size_t thread_;
  EVP_PKEY* key_;
  PkeyCtx ctx_;
  MdCtx md_;
  Bytes input_, sig_;
  uint64_t next_ = 0;
  Answers answers_;
};

// ------------------------------------------------------------------ OAEP

class OaepRunner : public Runner {
 public:
  OaepRunner(const OpensslSystem::Worker& w, EVP_PKEY* key) : out_(512) {
    PkeyCtx enc(EVP_PKEY_CTX_new_from_pkey(nullptr, key, nullptr));
    ctx_.reset(EVP_PKEY_CTX_new_from_pkey(nullptr, key, nullptr));
    for (EVP_PKEY_CTX* c : {enc.get(), ctx_.get()}) {
      check_openssl(c != nullptr, "EVP_PKEY_CTX_new");
      check_openssl((c == enc.get() ? EVP_PKEY_encrypt_init(c) : EVP_PKEY_decrypt_init(c)) == 1 &&
                        EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_OAEP_PADDING) == 1 &&
                        EVP_PKEY_CTX_set_rsa_oaep_md(c, EVP_sha256()) == 1 &&
                        EVP_PKEY_CTX_set_rsa_mgf1_md(c, EVP_sha256()) == 1,
                    "OAEP set-up");
    }
    for (size_t i = 0; i < kPool; ++i) {
      Bytes pt(32), ct(512);
      make_input(pt, w.thread, i);
      size_t len = ct.size();
      check_openssl(EVP_PKEY_encrypt(enc.get(), ct.data(), &len, pt.data(), pt.size()) == 1,
                    "OAEP encrypt");
      ct.resize(len);
      plaintexts_.push_back(std::move(pt));
      ciphertexts_.push_back(std::move(ct));
    }
  }

  void op() override {
    const Bytes& ct = ciphertexts_[next_ % kPool];
    size_t len = out_.size();
    check_openssl(EVP_PKEY_decrypt(ctx_.get(), out_.data(), &len, ct.data(), ct.size()) == 1,
                  "OAEP decrypt");
    answers_.add(next_++, out_.data(), len);
  }

  uint64_t check() override {
    for (size_t k = 0; k < answers_.size(); ++k) {
      const Bytes& pt = plaintexts_[answers_.index(k) % kPool];
      const auto got = answers_.bytes(k);
      if (got.size() != pt.size() || !std::equal(got.begin(), got.end(), pt.begin())) {
        die("openssl: an OAEP decryption differs from the plaintext");
      }
    }
    const uint64_t n = answers_.size();
    answers_.clear();
    return n;
  }

 private:
  static constexpr size_t kPool = 16;
  PkeyCtx ctx_;
  std::vector<Bytes> plaintexts_, ciphertexts_;
  Bytes out_;
  uint64_t next_ = 0;
  Answers answers_;
};

// ------------------------------------------------------------------ GCM

class GcmRunner : public Runner {
 public:
  GcmRunner(OpensslSystem::Worker& w, Op op)
      : w_(w), ctx_(EVP_CIPHER_CTX_new()), input_(input_size(op)), out_(input_size(op) + 16) {
    check_openssl(ctx_ && EVP_EncryptInit_ex(ctx_.get(), EVP_aes_256_gcm(), nullptr, w.aes.data(),
                                             nullptr) == 1,
                  "GCM set-up");
  }

  void op() override {
    const uint64_t counter = w_.gcm_counter++;
    make_input(input_, w_.thread, counter);
    uint8_t iv[12];
    make_iv(iv, w_.thread, counter);
    int len = 0, final_len = 0;
    const int n = static_cast<int>(input_.size());
    check_openssl(
        EVP_EncryptInit_ex(ctx_.get(), nullptr, nullptr, nullptr, iv) == 1 &&
            EVP_EncryptUpdate(ctx_.get(), out_.data(), &len, input_.data(), n) == 1 &&
            EVP_EncryptFinal_ex(ctx_.get(), out_.data() + len, &final_len) == 1 &&
            EVP_CIPHER_CTX_ctrl(ctx_.get(), EVP_CTRL_GCM_GET_TAG, 16, out_.data() + n) == 1,
        "GCM encrypt");
    answers_.add(counter, out_.data(), out_.size());
  }

  uint64_t check() override {
    Bytes expected(input_.size()), plain(input_.size());
    CipherCtx dec(EVP_CIPHER_CTX_new());
    const std::vector<size_t> sample = answers_.sample(kCheckSample / 4);
    for (const size_t k : sample) {
      const uint64_t counter = answers_.index(k);
      make_input(expected, w_.thread, counter);
      const auto ct = answers_.bytes(k);
      uint8_t iv[12];
      make_iv(iv, w_.thread, counter);
      const int n = static_cast<int>(expected.size());
      int len = 0, final_len = 0;
      const bool ok =
          dec &&
          EVP_DecryptInit_ex(dec.get(), EVP_aes_256_gcm(), nullptr, w_.aes.data(), iv) == 1 &&
          EVP_DecryptUpdate(dec.get(), plain.data(), &len, ct.data(), n) == 1 &&
          EVP_CIPHER_CTX_ctrl(dec.get(), EVP_CTRL_GCM_SET_TAG, 16,
                              const_cast<uint8_t*>(ct.data()) + n) == 1 &&
          EVP_DecryptFinal_ex(dec.get(), plain.data() + len, &final_len) == 1;
      if (!ok || plain != expected) die("openssl: a GCM ciphertext does not decrypt to its input");
    }
    answers_.clear();
    return sample.size();
  }

 private:
  OpensslSystem::Worker& w_;
  CipherCtx ctx_;
  Bytes input_, out_;
  Answers answers_{kCheckSample};  // ciphertexts of up to 16 KiB: fewer kept
};

// ------------------------------------------------------------------ HMAC

class HmacRunner : public Runner {
 public:
  explicit HmacRunner(const OpensslSystem::Worker& w)
      : thread_(w.thread), key_(w.hmac), input_(1024) {
    mac_ = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
    ctx_ = mac_ != nullptr ? EVP_MAC_CTX_new(mac_) : nullptr;
    char digest[] = "SHA256";
    const OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                                 OSSL_PARAM_END};
    check_openssl(ctx_ != nullptr && EVP_MAC_init(ctx_, key_.data(), key_.size(), params) == 1,
                  "HMAC set-up");
  }
  ~HmacRunner() override {
    EVP_MAC_CTX_free(ctx_);
    EVP_MAC_free(mac_);
  }

  void op() override {
    make_input(input_, thread_, next_);
    uint8_t out[32];
    size_t len = 0;
    // Re-initialised with the key it holds, like a prepared HMAC key.
    check_openssl(EVP_MAC_init(ctx_, nullptr, 0, nullptr) == 1 &&
                      EVP_MAC_update(ctx_, input_.data(), input_.size()) == 1 &&
                      EVP_MAC_final(ctx_, out, &len, sizeof out) == 1,
                  "HMAC");
    answers_.add(next_++, out, len);
  }

  uint64_t check() override {
    Bytes input(1024);
    uint8_t expected[32];
    const std::vector<size_t> sample = answers_.sample(kCheckSample);
    for (const size_t k : sample) {
      make_input(input, thread_, answers_.index(k));
      size_t len = 0;
      check_openssl(
          EVP_Q_mac(nullptr, "HMAC", nullptr, "SHA256", nullptr, key_.data(), key_.size(),
                    input.data(), input.size(), expected, sizeof expected, &len) != nullptr,
          "EVP_Q_mac");
      const auto got = answers_.bytes(k);
      if (got.size() != 32 || !std::equal(got.begin(), got.end(), expected)) {
        die("openssl: an HMAC differs from a fresh computation");
      }
    }
    answers_.clear();
    return sample.size();
  }

 private:
  size_t thread_;
  Bytes key_;
  EVP_MAC* mac_ = nullptr;
  EVP_MAC_CTX* ctx_ = nullptr;
  Bytes input_;
  uint64_t next_ = 0;
  Answers answers_;
};

// ------------------------------------------------------------------ key pairs

class KeygenRunner : public Runner {
 public:
  KeygenRunner() : ctx_(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr)) {
    check_openssl(ctx_ && EVP_PKEY_keygen_init(ctx_.get()) == 1 &&
                      EVP_PKEY_CTX_set_group_name(ctx_.get(), "P-256") == 1,
                  "P-256 keygen set-up");
  }

  void op() override {
    EVP_PKEY* key = nullptr;
    check_openssl(EVP_PKEY_generate(ctx_.get(), &key) == 1, "P-256 keygen");
    keys_.emplace_back(key);
  }

  uint64_t check() override {
    std::vector<Bytes> points;
    Bytes digest(32);
    for (size_t k = 0; k < keys_.size(); k = k == 0 ? 1 : k * 2) {
      make_input(digest, 0, k);
      PkeyCtx sign(EVP_PKEY_CTX_new_from_pkey(nullptr, keys_[k].get(), nullptr));
      Bytes sig(80);
      size_t len = sig.size();
      check_openssl(sign && EVP_PKEY_sign_init(sign.get()) == 1 &&
                        EVP_PKEY_sign(sign.get(), sig.data(), &len, digest.data(), 32) == 1,
                    "sign with a new key");
      verify_signature(Op::kEcdsaP256, keys_[k].get(), digest, {sig.data(), len}, false,
                       "openssl (new key)");
      Bytes point(65);
      size_t plen = 0;
      check_openssl(EVP_PKEY_get_octet_string_param(keys_[k].get(), OSSL_PKEY_PARAM_PUB_KEY,
                                                    point.data(), point.size(), &plen) == 1,
                    "public point");
      points.push_back(point);
    }
    std::sort(points.begin(), points.end());
    if (std::adjacent_find(points.begin(), points.end()) != points.end()) {
      die("openssl: two generated key pairs have the same public key");
    }
    const uint64_t n = points.size();
    keys_.clear();
    return n;
  }

 private:
  PkeyCtx ctx_;
  std::vector<Pkey> keys_;
};

class RandomRunner : public Runner {
 public:
  void op() override {
    uint8_t out[32];
    check_openssl(RAND_bytes(out, sizeof out) == 1, "RAND_bytes");
    answers_.add(next_++, out, sizeof out);
  }
  uint64_t check() override { return check_random_answers(answers_, "openssl"); }

 private:
  uint64_t next_ = 0;
  Answers answers_{1u << 15};
};

}  // namespace

OpensslSystem::OpensslSystem() = default;
OpensslSystem::~OpensslSystem() = default;

std::string OpensslSystem::description() const { return OpenSSL_version(OPENSSL_VERSION); }

OpensslSystem::Worker& OpensslSystem::worker(size_t thread) {
  while (workers_.size() <= thread) {
    auto w = std::make_unique<Worker>();
    w->thread = workers_.size();
    workers_.push_back(std::move(w));
  }
  return *workers_[thread];
}

std::unique_ptr<Runner> OpensslSystem::runner(const Workload& w, size_t thread, std::string& why) {
  Worker& k = worker(thread);
  switch (w.op) {
    case Op::kEcdsaP256:
      if (!k.p256) k.p256 = generate("EC", "P-256");
      return std::make_unique<SignRunner>(k, w.op, k.p256.get());
    case Op::kEcdsaP384:
      if (!k.p384) k.p384 = generate("EC", "P-384");
      return std::make_unique<SignRunner>(k, w.op, k.p384.get());
    case Op::kEd25519:
      if (!k.ed25519) k.ed25519 = generate("ED25519", nullptr);
      return std::make_unique<SignRunner>(k, w.op, k.ed25519.get());
    case Op::kRsa2048Pkcs:
    case Op::kRsa2048Pss:
      if (!k.rsa2048) k.rsa2048 = generate("RSA", "2048");
      return std::make_unique<SignRunner>(k, w.op, k.rsa2048.get());
    case Op::kRsa3072Pkcs:
    case Op::kRsa3072Pss:
      if (!k.rsa3072) k.rsa3072 = generate("RSA", "3072");
      return std::make_unique<SignRunner>(k, w.op, k.rsa3072.get());
    case Op::kRsa2048Oaep:
      if (!k.rsa2048) k.rsa2048 = generate("RSA", "2048");
      return std::make_unique<OaepRunner>(k, k.rsa2048.get());
    case Op::kGcm64:
    case Op::kGcm1k:
    case Op::kGcm16k:
      if (k.aes.empty()) k.aes = random_bytes(32);
      return std::make_unique<GcmRunner>(k, w.op);
    case Op::kHmac1k:
      if (k.hmac.empty()) k.hmac = random_bytes(32);
      return std::make_unique<HmacRunner>(k);
    case Op::kKeygenSession:
      return std::make_unique<KeygenRunner>();
    case Op::kKeygenToken:
      why = "no durable key store";
      return nullptr;
    case Op::kFind:
      why = "no object store";
      return nullptr;
    case Op::kRandom32:
      return std::make_unique<RandomRunner>();
  }
  why = "unknown workload";
  return nullptr;
}

}  // namespace ihsm::bench
