#include "p11_system.h"

#include <openssl/rand.h>
#include <openssl/rsa.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <thread>

#include <unistd.h>

namespace ihsm::bench {

namespace {

const std::string kSoPin = "bench-so-pin-1234";
const std::string kUserPin = "bench-user-pin-5678";

CK_MECHANISM_TYPE mechanism_of(Op op) {
  switch (op) {
    case Op::kEcdsaP256:
    case Op::kEcdsaP384:
      return CKM_ECDSA;
    case Op::kEd25519:
      return CKM_EDDSA;
    case Op::kRsa2048Pkcs:
    case Op::kRsa3072Pkcs:
      return CKM_SHA256_RSA_PKCS;
    case Op::kRsa2048Pss:
    case Op::kRsa3072Pss:
      return CKM_SHA256_RSA_PKCS_PSS;
    case Op::kRsa2048Oaep:
      return CKM_RSA_PKCS_OAEP;
    case Op::kGcm64:
    case Op::kGcm1k:
    case Op::kGcm16k:
      return CKM_AES_GCM;
    case Op::kHmac1k:
      return CKM_SHA256_HMAC;
    case Op::kKeygenSession:
    case Op::kKeygenToken:
      return CKM_EC_KEY_PAIR_GEN;
    case Op::kFind:
    case Op::kRandom32:
      break;
  }
  return CKM_VENDOR_DEFINED;  // needs no mechanism
}

// ------------------------------------------------------------------ sign

class SignRunner : public Runner {
 public:
  SignRunner(const P11System::Worker& w, Op op, std::string who, CK_OBJECT_HANDLE priv, Pkey pub)
      : s_(w.s),
        op_(op),
        who_(std::move(who)),
        thread_(w.thread),
        priv_(priv),
        pub_(std::move(pub)),
        input_(input_size(op)),
        sig_(512) {
    mech_ = {mechanism_of(op), nullptr, 0};
    if (mech_.mechanism == CKM_SHA256_RSA_PKCS_PSS) {
      pss_ = {CKM_SHA256, CKG_MGF1_SHA256, 32};
      mech_.pParameter = &pss_;
      mech_.ulParameterLen = sizeof pss_;
    }
  }

  void op() override {
    make_input(input_, thread_, next_);
    CK_ULONG len = sig_.size();
    ck(s_.f->C_SignInit(s_.h, &mech_, priv_), who_ + ": C_SignInit");
    ck(s_.f->C_Sign(s_.h, input_.data(), input_.size(), sig_.data(), &len), who_ + ": C_Sign");
    answers_.add(next_++, sig_.data(), len);
  }

  uint64_t check() override {
    Bytes input(input_size(op_));
    const std::vector<size_t> sample = answers_.sample(kCheckSample);
    for (const size_t k : sample) {
      make_input(input, thread_, answers_.index(k));
      verify_signature(op_, pub_.get(), input, answers_.bytes(k), true, who_);
    }
    answers_.clear();
    return sample.size();
  }

 private:
  P11Session s_;
  Op op_;
  std::string who_;
  size_t thread_;
  CK_OBJECT_HANDLE priv_;
  Pkey pub_;
  CK_MECHANISM mech_;
  CK_RSA_PKCS_PSS_PARAMS pss_{};
  Bytes input_, sig_;
  uint64_t next_ = 0;
  Answers answers_;
};

// ------------------------------------------------------------------ OAEP

// Decrypts ciphertexts made with OpenSSL under the module's public key;
// each decryption must give back the plaintext.
class OaepRunner : public Runner {
 public:
  OaepRunner(const P11System::Worker& w, std::string who, CK_OBJECT_HANDLE priv, EVP_PKEY* pub)
      : s_(w.s), who_(std::move(who)), priv_(priv), out_(512) {
    oaep_ = {CKM_SHA256, CKG_MGF1_SHA256, CKZ_DATA_SPECIFIED, nullptr, 0};
    mech_ = {CKM_RSA_PKCS_OAEP, &oaep_, sizeof oaep_};
    PkeyCtx ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, pub, nullptr));
    check_openssl(ctx && EVP_PKEY_encrypt_init(ctx.get()) == 1 &&
                      EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_OAEP_PADDING) == 1 &&
                      EVP_PKEY_CTX_set_rsa_oaep_md(ctx.get(), EVP_sha256()) == 1 &&
                      EVP_PKEY_CTX_set_rsa_mgf1_md(ctx.get(), EVP_sha256()) == 1,
                  "OAEP encrypt set-up");
    for (size_t i = 0; i < kPool; ++i) {
      Bytes pt(32);
      make_input(pt, w.thread, i);
      Bytes ct(512);
      size_t len = ct.size();
      check_openssl(EVP_PKEY_encrypt(ctx.get(), ct.data(), &len, pt.data(), pt.size()) == 1,
                    "OAEP encrypt");
      ct.resize(len);
      plaintexts_.push_back(std::move(pt));
      ciphertexts_.push_back(std::move(ct));
    }
  }

  // One decryption outside the rounds: whether the module takes these
  // OAEP parameters at all (SoftHSMv2 2.6 takes only SHA-1).
  CK_RV probe() {
    CK_ULONG len = out_.size();
    CK_RV r = s_.f->C_DecryptInit(s_.h, &mech_, priv_);
    if (r == CKR_OK) {
      r = s_.f->C_Decrypt(s_.h, ciphertexts_[0].data(), ciphertexts_[0].size(), out_.data(), &len);
    }
    return r;
  }

  void op() override {
    Bytes& ct = ciphertexts_[next_ % kPool];
    CK_ULONG len = out_.size();
    ck(s_.f->C_DecryptInit(s_.h, &mech_, priv_), who_ + ": C_DecryptInit (OAEP)");
    ck(s_.f->C_Decrypt(s_.h, ct.data(), ct.size(), out_.data(), &len), who_ + ": C_Decrypt (OAEP)");
    answers_.add(next_++, out_.data(), len);
  }

  uint64_t check() override {
    for (size_t k = 0; k < answers_.size(); ++k) {
      const Bytes& pt = plaintexts_[answers_.index(k) % kPool];
      const auto got = answers_.bytes(k);
      if (got.size() != pt.size() || !std::equal(got.begin(), got.end(), pt.begin())) {
        die(who_ + ": an OAEP decryption differs from the plaintext OpenSSL encrypted");
      }
    }
    const uint64_t n = answers_.size();
    answers_.clear();
    return n;
  }

 private:
  static constexpr size_t kPool = 16;
  P11Session s_;
  std::string who_;
  CK_OBJECT_HANDLE priv_;
  CK_RSA_PKCS_OAEP_PARAMS oaep_;
  CK_MECHANISM mech_;
  std::vector<Bytes> plaintexts_, ciphertexts_;
  Bytes out_;
  uint64_t next_ = 0;
  Answers answers_;
};

// ------------------------------------------------------------------ GCM

CK_GCM_PARAMS gcm_params(uint8_t* iv) {
  CK_GCM_PARAMS p;
  std::memset(&p, 0, sizeof p);
  p.pIv = iv;
  p.ulIvLen = 12;
  p.ulIvBits = 96;
  p.pAAD = nullptr;
  p.ulAADLen = 0;
  p.ulTagBits = 128;
  return p;
}

// Encrypts under the worker's key with the IV of its next counter value;
// a sample of ciphertexts is decrypted through the module afterwards.
class GcmRunner : public Runner {
 public:
  GcmRunner(P11System::Worker& w, Op op, std::string who)
      : w_(w), who_(std::move(who)), input_(input_size(op)), out_(input_size(op) + 16) {}

  void op() override {
    const uint64_t counter = w_.gcm_counter++;
    make_input(input_, w_.thread, counter);
    uint8_t iv[12];
    make_iv(iv, w_.thread, counter);
    CK_GCM_PARAMS p = gcm_params(iv);
    CK_MECHANISM m = {CKM_AES_GCM, &p, sizeof p};
    CK_ULONG len = out_.size();
    ck(w_.s.f->C_EncryptInit(w_.s.h, &m, *w_.aes), who_ + ": C_EncryptInit (GCM)");
    ck(w_.s.f->C_Encrypt(w_.s.h, input_.data(), input_.size(), out_.data(), &len),
       who_ + ": C_Encrypt (GCM)");
    answers_.add(counter, out_.data(), len);
  }

  uint64_t check() override {
    Bytes expected(input_.size()), plain(input_.size() + 16);
    const std::vector<size_t> sample = answers_.sample(kCheckSample / 4);
    for (const size_t k : sample) {
      const uint64_t counter = answers_.index(k);
      make_input(expected, w_.thread, counter);
      const auto ct = answers_.bytes(k);
      if (ct.size() != expected.size() + 16) die(who_ + ": GCM ciphertext of the wrong length");
      uint8_t iv[12];
      make_iv(iv, w_.thread, counter);
      CK_GCM_PARAMS p = gcm_params(iv);
      CK_MECHANISM m = {CKM_AES_GCM, &p, sizeof p};
      CK_ULONG len = plain.size();
      ck(w_.s.f->C_DecryptInit(w_.s.h, &m, *w_.aes), who_ + ": C_DecryptInit (GCM check)");
      ck(w_.s.f->C_Decrypt(w_.s.h, const_cast<uint8_t*>(ct.data()), ct.size(), plain.data(), &len),
         who_ + ": a GCM ciphertext does not decrypt through the module");
      if (len != expected.size() || !std::equal(expected.begin(), expected.end(), plain.begin())) {
        die(who_ + ": a GCM ciphertext decrypts to something else than its input");
      }
    }
    answers_.clear();
    return sample.size();
  }

 private:
  P11System::Worker& w_;
  std::string who_;
  Bytes input_, out_;
  Answers answers_{kCheckSample};  // ciphertexts of up to 16 KiB: fewer kept
};

// ------------------------------------------------------------------ HMAC

// The key stays in the module: a sample is checked by the module's own
// C_Verify, by determinism (the same input, the same MAC) and by a
// neighbouring input giving another MAC.
class HmacRunner : public Runner {
 public:
  HmacRunner(const P11System::Worker& w, std::string who)
      : s_(w.s), who_(std::move(who)), thread_(w.thread), key_(*w.hmac), input_(1024), mac_(64) {}

  void op() override {
    make_input(input_, thread_, next_);
    answers_.add(next_++, mac_.data(), sign(input_));
  }

  uint64_t check() override {
    Bytes input(1024);
    const std::vector<size_t> sample = answers_.sample(kCheckSample / 4);
    for (const size_t k : sample) {
      make_input(input, thread_, answers_.index(k));
      const auto mac = answers_.bytes(k);
      if (mac.size() != 32) die(who_ + ": HMAC-SHA256 of the wrong length");
      CK_MECHANISM m = {CKM_SHA256_HMAC, nullptr, 0};
      ck(s_.f->C_VerifyInit(s_.h, &m, key_), who_ + ": C_VerifyInit (HMAC)");
      ck(s_.f->C_Verify(s_.h, input.data(), input.size(), const_cast<uint8_t*>(mac.data()),
                        mac.size()),
         who_ + ": the module's C_Verify rejects its own HMAC");
      const size_t len = sign(input);
      if (len != 32 || !std::equal(mac.begin(), mac.end(), mac_.begin())) {
        die(who_ + ": HMAC of the same input differs");
      }
      input[20] ^= 1;
      if (sign(input) == 32 && std::equal(mac.begin(), mac.end(), mac_.begin())) {
        die(who_ + ": HMAC of another input is the same");
      }
    }
    answers_.clear();
    return sample.size();
  }

 private:
  size_t sign(Bytes& input) {
    CK_MECHANISM m = {CKM_SHA256_HMAC, nullptr, 0};
    CK_ULONG len = mac_.size();
    ck(s_.f->C_SignInit(s_.h, &m, key_), who_ + ": C_SignInit (HMAC)");
    ck(s_.f->C_Sign(s_.h, input.data(), input.size(), mac_.data(), &len), who_ + ": C_Sign (HMAC)");
    return len;
  }

  P11Session s_;
  std::string who_;
  size_t thread_;
  CK_OBJECT_HANDLE key_;
  Bytes input_, mac_;
  uint64_t next_ = 0;
  Answers answers_;
};

// ------------------------------------------------------------------ key pairs

// P-256 key pairs as session or token objects. A round's pairs accumulate
// (the rate is that of generation alone) and are destroyed in check(),
// after a sample of them signed a digest that verifies under the public
// half read from the module, each public point different.
class KeygenRunner : public Runner {
 public:
  KeygenRunner(const P11System::Worker& w, bool token, std::string who)
      : s_(w.s), token_(token), who_(std::move(who)) {}
  ~KeygenRunner() override { destroy_all(); }

  void op() override {
    P11Session::Pair p;
    ck(s_.try_generate_ec(kOidP256, false, token_, p), who_ + ": C_GenerateKeyPair (P-256)");
    pairs_.push_back(p);
  }

  uint64_t check() override {
    std::vector<Bytes> points;
    size_t checked = 0;
    Bytes digest(32);
    for (size_t k = 0; k < pairs_.size(); k = k == 0 ? 1 : k * 2) {
      const P11Session::Pair& p = pairs_[k];
      make_input(digest, 0, k);
      CK_MECHANISM m = {CKM_ECDSA, nullptr, 0};
      uint8_t sig[64];
      CK_ULONG len = sizeof sig;
      ck(s_.f->C_SignInit(s_.h, &m, p.priv), who_ + ": C_SignInit (new key)");
      ck(s_.f->C_Sign(s_.h, digest.data(), digest.size(), sig, &len), who_ + ": C_Sign (new key)");
      const Pkey pub = s_.public_key(p.pub);
      verify_signature(Op::kEcdsaP256, pub.get(), digest, {sig, len}, true, who_ + " (new key)");
      points.push_back(s_.attribute(p.pub, CKA_EC_POINT));
      ++checked;
    }
    std::sort(points.begin(), points.end());
    if (std::adjacent_find(points.begin(), points.end()) != points.end()) {
      die(who_ + ": two generated key pairs have the same public key");
    }
    destroy_all();
    return checked;
  }

 private:
  void destroy_all() {
    for (const P11Session::Pair& p : pairs_) {
      (void)s_.f->C_DestroyObject(s_.h, p.priv);
      (void)s_.f->C_DestroyObject(s_.h, p.pub);
    }
    pairs_.clear();
  }

  P11Session s_;
  bool token_;
  std::string who_;
  std::vector<P11Session::Pair> pairs_;
};

// ------------------------------------------------------------------ find

// Finds a random one of the populated CKO_DATA token objects by label.
// Every find must return exactly one object; a sample of them is read back
// (CKA_VALUE) to be the expected one.
class FindRunner : public Runner {
 public:
  FindRunner(const P11System::Worker& w, uint64_t population, std::string who)
      : s_(w.s), who_(std::move(who)), population_(population), rng_(0xF1D + w.thread) {}

  void op() override {
    const uint64_t j = std::uniform_int_distribution<uint64_t>(0, population_ - 1)(rng_);
    const std::string label = find_label(j);
    CK_OBJECT_CLASS data = CKO_DATA;
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &data, sizeof data},
                        {CKA_LABEL, const_cast<char*>(label.data()), label.size()}};
    CK_OBJECT_HANDLE found[2] = {CK_INVALID_HANDLE, CK_INVALID_HANDLE};
    CK_ULONG n = 0;
    ck(s_.f->C_FindObjectsInit(s_.h, t, 2), who_ + ": C_FindObjectsInit");
    ck(s_.f->C_FindObjects(s_.h, found, 2, &n), who_ + ": C_FindObjects");
    ck(s_.f->C_FindObjectsFinal(s_.h), who_ + ": C_FindObjectsFinal");
    results_.push_back({j, n, found[0]});
  }

  uint64_t check() override {
    for (const Result& r : results_) {
      if (r.count != 1) {
        die(who_ + ": find by label '" + find_label(r.j) + "' returned " + std::to_string(r.count) +
            " objects, not 1");
      }
    }
    size_t checked = 0;
    const size_t step = std::max<size_t>(1, results_.size() / (kCheckSample / 4));
    for (size_t k = 0; k < results_.size(); k += step, ++checked) {
      if (s_.attribute(results_[k].handle, CKA_VALUE) != find_value(results_[k].j)) {
        die(who_ + ": find by label '" + find_label(results_[k].j) + "' found another object");
      }
    }
    const uint64_t n = results_.size();
    results_.clear();
    return std::max<uint64_t>(n, checked);
  }

 private:
  struct Result {
    uint64_t j;
    CK_ULONG count;
    CK_OBJECT_HANDLE handle;
  };
  P11Session s_;
  std::string who_;
  uint64_t population_;
  std::mt19937_64 rng_;
  std::vector<Result> results_;
};

// ------------------------------------------------------------------ random

class RandomRunner : public Runner {
 public:
  RandomRunner(const P11System::Worker& w, std::string who) : s_(w.s), who_(std::move(who)) {}

  void op() override {
    uint8_t out[32];
    ck(s_.f->C_GenerateRandom(s_.h, out, sizeof out), who_ + ": C_GenerateRandom");
    answers_.add(next_++, out, sizeof out);
  }

  uint64_t check() override { return check_random_answers(answers_, who_); }

 private:
  P11Session s_;
  std::string who_;
  uint64_t next_ = 0;
  Answers answers_{1u << 15};
};

}  // namespace

P11System::P11System(std::string name, const std::string& path)
    : module_(std::move(name), path),
      slot_(module_.init_token("ihsm-bench " + module_.name() + " " + std::to_string(::getpid()),
                               kSoPin, kUserPin)) {}

P11System::~P11System() {
  for (const auto& w : workers_) w->s.close();
}

P11System::Worker& P11System::worker(size_t thread) {
  while (workers_.size() <= thread) {
    auto w = std::make_unique<Worker>();
    w->s = {module_.f(), module_.user_session(slot_, kUserPin)};
    w->thread = workers_.size();
    workers_.push_back(std::move(w));
  }
  return *workers_[thread];
}

std::unique_ptr<Runner> P11System::runner(const Workload& w, size_t thread, std::string& why) {
  const CK_MECHANISM_TYPE mech = mechanism_of(w.op);
  if (mech != CKM_VENDOR_DEFINED && !module_.has_mechanism(slot_, mech)) {
    why = "mechanism not offered";
    return nullptr;
  }
  Worker& k = worker(thread);
  const std::string who = name() + " " + w.name;
  switch (w.op) {
    case Op::kEcdsaP256:
      if (!k.p256) k.p256 = k.s.generate_ec(kOidP256, false, false);
      return std::make_unique<SignRunner>(k, w.op, who, k.p256->priv, k.s.public_key(k.p256->pub));
    case Op::kEcdsaP384:
      if (!k.p384) k.p384 = k.s.generate_ec(kOidP384, false, false);
      return std::make_unique<SignRunner>(k, w.op, who, k.p384->priv, k.s.public_key(k.p384->pub));
    case Op::kEd25519: {
      if (!k.ed25519 && !k.ed25519_failure) {
        P11Session::Pair p;
        const CK_RV r = k.s.try_generate_ec(kOidEd25519, true, false, p);
        if (r == CKR_OK) {
          k.ed25519 = p;
        } else {
          k.ed25519_failure = r;
        }
      }
      if (k.ed25519_failure) {
        why = "Ed25519 key generation: " + rv_name(*k.ed25519_failure);
        return nullptr;
      }
      return std::make_unique<SignRunner>(k, w.op, who, k.ed25519->priv,
                                          k.s.public_key(k.ed25519->pub));
    }
    case Op::kRsa2048Pkcs:
    case Op::kRsa2048Pss:
    case Op::kRsa2048Oaep:
      if (!k.rsa2048) k.rsa2048 = k.s.generate_rsa(2048);
      if (w.op == Op::kRsa2048Oaep) {
        auto oaep = std::make_unique<OaepRunner>(k, who, k.rsa2048->priv,
                                                 k.s.public_key(k.rsa2048->pub).get());
        if (const CK_RV r = oaep->probe(); r != CKR_OK) {
          why = "OAEP with SHA-256 and MGF1-SHA256 refused: " + rv_name(r);
          return nullptr;
        }
        return oaep;
      }
      return std::make_unique<SignRunner>(k, w.op, who, k.rsa2048->priv,
                                          k.s.public_key(k.rsa2048->pub));
    case Op::kRsa3072Pkcs:
    case Op::kRsa3072Pss:
      if (!k.rsa3072) k.rsa3072 = k.s.generate_rsa(3072);
      return std::make_unique<SignRunner>(k, w.op, who, k.rsa3072->priv,
                                          k.s.public_key(k.rsa3072->pub));
    case Op::kGcm64:
    case Op::kGcm1k:
    case Op::kGcm16k:
      if (!k.aes) k.aes = k.s.generate_aes256();
      return std::make_unique<GcmRunner>(k, w.op, who);
    case Op::kHmac1k:
      if (!k.hmac) k.hmac = k.s.generate_hmac_key();
      return std::make_unique<HmacRunner>(k, who);
    case Op::kKeygenSession:
    case Op::kKeygenToken:
      return std::make_unique<KeygenRunner>(k, w.op == Op::kKeygenToken, who);
    case Op::kFind:
      if (populated_ == 0) {
        why = "no objects";
        return nullptr;
      }
      return std::make_unique<FindRunner>(k, populated_, who);
    case Op::kRandom32:
      return std::make_unique<RandomRunner>(k, who);
  }
  why = "unknown workload";
  return nullptr;
}

uint64_t P11System::populate(uint64_t objects, double budget_seconds) {
  if (populated_ >= objects) return populated_;
  // Several sessions at once, as applications do; each thread takes the
  // next index, so objects 0 .. next-1 all exist when the threads stop.
  constexpr size_t kThreads = 8;
  std::atomic<uint64_t> next{populated_};
  std::atomic<bool> failed{false};
  std::string failure;
  std::mutex failure_mutex;
  const auto deadline = Clock::now() + std::chrono::duration<double>(budget_seconds);
  // Sessions opened and logged in one after the other: ihsm's module can
  // answer CKR_USER_NOT_LOGGED_IN to a session whose C_Login raced another
  // thread's (reported; src/pkcs11 is not the benchmark's to change).
  std::vector<CK_SESSION_HANDLE> sessions;
  for (size_t t = 0; t < kThreads; ++t) sessions.push_back(module_.user_session(slot_, kUserPin));
  std::vector<std::thread> threads;
  for (size_t t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const CK_SESSION_HANDLE h = sessions[t];
      CK_OBJECT_CLASS data = CKO_DATA;
      CK_BBOOL yes = CK_TRUE;
      char app[] = "ihsm-bench";
      while (!failed && Clock::now() < deadline) {
        const uint64_t j = next.fetch_add(1);
        if (j >= objects) {
          next.fetch_sub(1);  // only indices below `objects` were taken
          break;
        }
        std::string label = find_label(j);
        Bytes value = find_value(j);
        CK_ATTRIBUTE attrs[] = {
            {CKA_CLASS, &data, sizeof data},        {CKA_TOKEN, &yes, sizeof yes},
            {CKA_PRIVATE, &yes, sizeof yes},        {CKA_LABEL, label.data(), label.size()},
            {CKA_APPLICATION, app, sizeof app - 1}, {CKA_VALUE, value.data(), value.size()}};
        CK_OBJECT_HANDLE o = CK_INVALID_HANDLE;
        if (const CK_RV r = module_.f()->C_CreateObject(h, attrs, 6, &o); r != CKR_OK) {
          std::lock_guard lock(failure_mutex);
          failure = rv_name(r);
          failed = true;
        }
      }
      (void)module_.f()->C_CloseSession(h);
    });
  }
  for (std::thread& t : threads) t.join();
  if (failed) die(name() + ": C_CreateObject (CKO_DATA token object): " + failure);
  populated_ = std::min<uint64_t>(next.load(), objects);
  return populated_;
}

}  // namespace ihsm::bench
