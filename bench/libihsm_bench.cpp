// ihsm-bench --libihsm: operations through libihsm (not PKCS#11) against a
// real ihsmd, next to the same operations done by raw OpenSSL in this
// process, in alternating rounds. (The default, comparative table over
// PKCS#11 modules is compare.cpp.)
//
//   ihsm-bench --libihsm [--seconds N] [--rounds R] [--smoke] [--json]
//                        [--socket PATH] [--ihsmd PATH] [--lookup-objects N]
//   ihsm-bench --capacity N [--json] [--socket PATH] [--ihsmd PATH]
//
// Without --socket (or IHSM_SOCKET) it starts its own ihsmd on a temporary
// state directory. Against an existing daemon it must run as the device
// owner: it creates temporary partitions and deletes them at the end.
//
// Every answer is checked after its round, outside the timed loop: each
// signature verifies under the key's public half (OpenSSL, in-process), GCM
// IVs never repeat, and a random sample of ciphertexts decrypts to what was
// encrypted. A fast wrong answer fails the run.
//
// A second table has the durable token objects, which have no OpenSSL
// counterpart: P-256 key pairs created from 1 and 2 client threads (each its
// own connection), their destruction, and lookups by label and by id among
// --lookup-objects token keys (populated from 8 connections before, not in,
// the timed rounds). --capacity N replaces all of this with one partition
// filled with N token keys and what it then costs (run_capacity).
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "common.h"
#include "daemon.h"
#include "ihsm/client.h"

#ifndef IHSM_BENCH_IHSMD
#define IHSM_BENCH_IHSMD "ihsmd"
#endif

using namespace ihsm;
using Clock = std::chrono::steady_clock;

namespace {

using bench::cpu_model;
using bench::Daemon;
using bench::die;
using bench::Fatal;
using bench::median;

// ------------------------------------------------------------------ basics

template <typename T>
T must(Result<T> r, const std::string& what) {
  if (!r) {
    std::string msg = what + ": " + std::string(status_name(r.status()));
    if (!r.detail().message.empty()) msg += " (" + r.detail().message + ")";
    die(msg);
  }
  return std::move(r).value();
}

using bench::CipherCtx;
using bench::MdCtx;
using bench::Pkey;
using bench::PkeyCtx;
struct SigFree {
  void operator()(ECDSA_SIG* p) const { ECDSA_SIG_free(p); }
};

void check(bool ok, const char* what) {
  if (!ok) die(std::string("OpenSSL: ") + what);
}

// Input of operation `i`: every operation signs or encrypts something new,
// so a cached answer cannot pass verification.
void stamp(Bytes& buf, uint64_t i) {
  for (size_t b = 0; b < 8 && b < buf.size(); ++b) buf[b] = static_cast<uint8_t>(i >> (8 * b));
}

Bytes sha256(const Bytes& data) {
  Bytes out(32);
  unsigned int len = 0;
  check(EVP_Digest(data.data(), data.size(), out.data(), &len, EVP_sha256(), nullptr) == 1,
        "SHA-256");
  return out;
}

// r||s -> DER, for verification with OpenSSL.
Bytes raw_to_der(const Bytes& raw) {
  const int half = static_cast<int>(raw.size() / 2);
  std::unique_ptr<ECDSA_SIG, SigFree> sig(ECDSA_SIG_new());
  BIGNUM* r = BN_bin2bn(raw.data(), half, nullptr);
  BIGNUM* s = BN_bin2bn(raw.data() + half, half, nullptr);
  check(sig && r && s && ECDSA_SIG_set0(sig.get(), r, s) == 1, "ECDSA_SIG_set0");
  const int len = i2d_ECDSA_SIG(sig.get(), nullptr);
  Bytes der(static_cast<size_t>(std::max(len, 0)));
  unsigned char* p = der.data();
  check(len > 0 && i2d_ECDSA_SIG(sig.get(), &p) == len, "i2d_ECDSA_SIG");
  return der;
}

bool verify_digest(EVP_PKEY* key, const Bytes& digest, const Bytes& der) {
  PkeyCtx ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, key, nullptr));
  return ctx && EVP_PKEY_verify_init(ctx.get()) == 1 &&
         EVP_PKEY_verify(ctx.get(), der.data(), der.size(), digest.data(), digest.size()) == 1;
}

// ------------------------------------------------------------------ rounds

struct RoundResult {
  uint64_t ops = 0;
  double seconds = 0;
  double rate() const { return seconds > 0 ? static_cast<double>(ops) / seconds : 0; }
};

// Runs `op(i)` until `seconds` have passed (at least once).
RoundResult timed(double seconds, const std::function<void(uint64_t)>& op) {
  const auto start = Clock::now();
  const auto end = start + std::chrono::duration<double>(seconds);
  RoundResult r;
  auto now = start;
  do {
    op(r.ops++);
    now = Clock::now();
  } while (now < end);
  r.seconds = std::chrono::duration<double>(now - start).count();
  return r;
}

// One benchmarked operation: a way to run a round through ihsm and through
// OpenSSL; each round checks its own answers before it returns.
// Answers checked after the rounds, per side.
struct Checked {
  uint64_t ihsm = 0;
  uint64_t openssl = 0;
};

struct Benchmark {
  std::string name;
  std::function<RoundResult(double)> ihsm;
  std::function<RoundResult(double)> openssl;
  std::vector<double> ihsm_rates, openssl_rates;
  Checked checked;
};

// ------------------------------------------------------------------ ECDSA

struct SignBench {
  Session& session;
  Mechanism mechanism;  // kEcdsa: the input is the digest; kEcdsaSha256: hashed in the device
  KeyHandle key;
  Pkey device_public;  // the device key's public half, for verification here
  Pkey local;          // OpenSSL's own P-256 key
  Checked* checked;

  Bytes digest_of(const Bytes& input) const {
    return mechanism == Mechanism::kEcdsa ? input : sha256(input);
  }

  RoundResult ihsm_round(double seconds) {
    Bytes input(32, 0xA5);
    std::vector<Bytes> sigs;
    const RoundResult r = timed(seconds, [&](uint64_t i) {
      stamp(input, i);
      auto sig = session.sign(key, mechanism, input);
      if (!sig) die("ihsm sign failed: " + std::string(status_name(sig.status())));
      sigs.push_back(std::move(sig).value());
    });
    for (uint64_t i = 0; i < sigs.size(); ++i) {
      stamp(input, i);
      if (sigs[i].size() != 64 ||
          !verify_digest(device_public.get(), digest_of(input), raw_to_der(sigs[i]))) {
        die("ihsm signature " + std::to_string(i) + " does not verify");
      }
    }
    checked->ihsm += sigs.size();
    return r;
  }

  RoundResult openssl_round(double seconds) {
    Bytes input(32, 0xA5);
    PkeyCtx ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, local.get(), nullptr));
    check(ctx && EVP_PKEY_sign_init(ctx.get()) == 1, "EVP_PKEY_sign_init");
    std::vector<Bytes> sigs;
    const RoundResult r = timed(seconds, [&](uint64_t i) {
      stamp(input, i);
      uint8_t digest[32];
      const uint8_t* to_sign = input.data();
      if (mechanism != Mechanism::kEcdsa) {
        unsigned int len = 0;
        check(EVP_Digest(input.data(), input.size(), digest, &len, EVP_sha256(), nullptr) == 1,
              "SHA-256");
        to_sign = digest;
      }
      Bytes der(80);
      size_t len = der.size();
      check(EVP_PKEY_sign(ctx.get(), der.data(), &len, to_sign, 32) == 1, "EVP_PKEY_sign");
      der.resize(len);
      sigs.push_back(std::move(der));
    });
    for (uint64_t i = 0; i < sigs.size(); ++i) {
      stamp(input, i);
      if (!verify_digest(local.get(), digest_of(input), sigs[i])) {
        die("OpenSSL signature " + std::to_string(i) + " does not verify");
      }
    }
    checked->openssl += sigs.size();
    return r;
  }
};

// ------------------------------------------------------------------ AES-GCM

constexpr size_t kGcmSize = 1024;
constexpr size_t kGcmSample = 128;  // ciphertexts per round decrypted to check

struct Sealed {
  uint64_t index;
  GcmCiphertext ct;
};

// Keeps a uniform random sample of what a round produced.
class Reservoir {
 public:
  explicit Reservoir(size_t size) : size_(size), rng_(0x1A5B) {}
  void offer(uint64_t seen, Sealed&& s) {
    if (items_.size() < size_) {
      items_.push_back(std::move(s));
    } else if (const uint64_t j = std::uniform_int_distribution<uint64_t>(0, seen)(rng_);
               j < size_) {
      items_[j] = std::move(s);
    }
  }
  std::vector<Sealed>& items() { return items_; }

 private:
  size_t size_;
  std::mt19937_64 rng_;
  std::vector<Sealed> items_;
};

void check_unique_ivs(std::vector<Bytes>& ivs, const char* who) {
  std::sort(ivs.begin(), ivs.end());
  if (std::adjacent_find(ivs.begin(), ivs.end()) != ivs.end()) {
    die(std::string(who) + " repeated a GCM IV");
  }
}

struct GcmBench {
  Session& session;
  KeyHandle key;
  Bytes local_key;  // OpenSSL's own AES-256 key
  Checked* checked;

  RoundResult ihsm_round(double seconds) {
    Bytes plaintext(kGcmSize, 0x3C);
    const Bytes aad;
    std::vector<Bytes> ivs;
    Reservoir sample(kGcmSample);
    const RoundResult r = timed(seconds, [&](uint64_t i) {
      stamp(plaintext, i);
      auto ct = session.encrypt_gcm(key, plaintext, aad);
      if (!ct) die("ihsm encrypt failed: " + std::string(status_name(ct.status())));
      GcmCiphertext& c = ct.value();
      if (c.iv.size() != 12 || c.tag.size() != 16 || c.ciphertext.size() != kGcmSize) {
        die("ihsm encrypt returned the wrong sizes");
      }
      ivs.push_back(c.iv);
      sample.offer(i, Sealed{i, std::move(c)});
    });
    check_unique_ivs(ivs, "ihsm");
    for (const Sealed& s : sample.items()) {
      stamp(plaintext, s.index);
      if (s.ct.ciphertext == plaintext) die("ihsm ciphertext equals its plaintext");
      auto back = session.decrypt_gcm(key, s.ct, aad);
      if (!back || back.value() != plaintext) {
        die("ihsm ciphertext " + std::to_string(s.index) + " does not decrypt to its plaintext");
      }
    }
    checked->ihsm += sample.items().size();
    return r;
  }

  RoundResult openssl_round(double seconds) {
    Bytes plaintext(kGcmSize, 0x3C);
    CipherCtx ctx(EVP_CIPHER_CTX_new());
    check(ctx && EVP_EncryptInit_ex2(ctx.get(), EVP_aes_256_gcm(), local_key.data(), nullptr,
                                     nullptr) == 1,
          "EVP_EncryptInit_ex2");
    std::vector<Bytes> ivs;
    Reservoir sample(kGcmSample);
    const RoundResult r = timed(seconds, [&](uint64_t i) {
      stamp(plaintext, i);
      // Same work as the device: a fresh random IV, then seal.
      GcmCiphertext c;
      c.iv.resize(12);
      c.ciphertext.resize(kGcmSize);
      c.tag.resize(16);
      int len = 0;
      check(RAND_bytes(c.iv.data(), 12) == 1 &&
                EVP_EncryptInit_ex2(ctx.get(), nullptr, nullptr, c.iv.data(), nullptr) == 1 &&
                EVP_EncryptUpdate(ctx.get(), c.ciphertext.data(), &len, plaintext.data(),
                                  static_cast<int>(plaintext.size())) == 1 &&
                EVP_EncryptFinal_ex(ctx.get(), c.ciphertext.data() + len, &len) == 1 &&
                EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, 16, c.tag.data()) == 1,
            "AES-256-GCM encrypt");
      ivs.push_back(c.iv);
      sample.offer(i, Sealed{i, std::move(c)});
    });
    check_unique_ivs(ivs, "OpenSSL");
    CipherCtx dec(EVP_CIPHER_CTX_new());
    for (const Sealed& s : sample.items()) {
      stamp(plaintext, s.index);
      Bytes out(kGcmSize);
      int len = 0, fin = 0;
      const bool good = dec &&
                        EVP_DecryptInit_ex2(dec.get(), EVP_aes_256_gcm(), local_key.data(),
                                            s.ct.iv.data(), nullptr) == 1 &&
                        EVP_DecryptUpdate(dec.get(), out.data(), &len, s.ct.ciphertext.data(),
                                          static_cast<int>(s.ct.ciphertext.size())) == 1 &&
                        EVP_CIPHER_CTX_ctrl(dec.get(), EVP_CTRL_GCM_SET_TAG, 16,
                                            const_cast<uint8_t*>(s.ct.tag.data())) == 1 &&
                        EVP_DecryptFinal_ex(dec.get(), out.data() + len, &fin) == 1;
      if (!good || out != plaintext) die("OpenSSL ciphertext does not decrypt to its plaintext");
    }
    checked->openssl += sample.items().size();
    return r;
  }
};

// ------------------------------------------------------------------ round trip

struct RandomBench {
  Session& session;
  Checked* checked;

  RoundResult ihsm_round(double seconds) {
    Bytes last;
    uint64_t repeats = 0;
    const RoundResult r = timed(seconds, [&](uint64_t) {
      Bytes b = must(session.random(16), "ihsm random");
      if (b.size() != 16) die("ihsm random returned the wrong length");
      repeats += (b == last);
      last = std::move(b);
    });
    if (repeats != 0) die("ihsm random repeated its output");
    checked->ihsm += r.ops;
    return r;
  }

  RoundResult openssl_round(double seconds) {
    Bytes last(16), b(16);
    uint64_t repeats = 0;
    const RoundResult r = timed(seconds, [&](uint64_t) {
      check(RAND_priv_bytes(b.data(), 16) == 1, "RAND_priv_bytes");
      repeats += (b == last);
      std::swap(b, last);
    });
    if (repeats != 0) die("OpenSSL random repeated its output");
    checked->openssl += r.ops;
    return r;
  }
};

// ------------------------------------------------------------------ RSA-2048 and HMAC

// SHA256-RSA-PKCS over 32 bytes: the device hashes and signs; OpenSSL does
// the same with EVP_DigestSign. Every signature is verified afterwards.
struct RsaSignBench {
  Session& session;
  KeyHandle key;
  Pkey device_public;
  Pkey local;
  Checked* checked;

  static bool verify(EVP_PKEY* pub, const Bytes& msg, const Bytes& sig) {
    MdCtx ctx(EVP_MD_CTX_new());
    return ctx && EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, pub) == 1 &&
           EVP_DigestVerify(ctx.get(), sig.data(), sig.size(), msg.data(), msg.size()) == 1;
  }

  RoundResult ihsm_round(double seconds) {
    Bytes input(32, 0x5A);
    std::vector<Bytes> sigs;
    const RoundResult r = timed(seconds, [&](uint64_t i) {
      stamp(input, i);
      sigs.push_back(must(session.sign(key, Mechanism::kSha256RsaPkcs, input), "ihsm RSA sign"));
    });
    for (uint64_t i = 0; i < sigs.size(); ++i) {
      stamp(input, i);
      if (!verify(device_public.get(), input, sigs[i])) {
        die("ihsm RSA signature " + std::to_string(i) + " does not verify");
      }
    }
    checked->ihsm += sigs.size();
    return r;
  }

  RoundResult openssl_round(double seconds) {
    Bytes input(32, 0x5A);
    std::vector<Bytes> sigs;
    const RoundResult r = timed(seconds, [&](uint64_t i) {
      stamp(input, i);
      MdCtx ctx(EVP_MD_CTX_new());
      Bytes sig(256);
      size_t len = sig.size();
      check(ctx &&
                EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, local.get()) == 1 &&
                EVP_DigestSign(ctx.get(), sig.data(), &len, input.data(), input.size()) == 1,
            "RSA sign");
      sig.resize(len);
      sigs.push_back(std::move(sig));
    });
    for (uint64_t i = 0; i < sigs.size(); ++i) {
      stamp(input, i);
      if (!verify(local.get(), input, sigs[i])) die("OpenSSL RSA signature does not verify");
    }
    checked->openssl += sigs.size();
    return r;
  }
};

// HMAC-SHA256 of 1 KiB. The device key never leaves, so its answers are
// checked by the device's own constant-time verify on a sample, and by
// determinism (the same message gives the same MAC).
struct HmacBench {
  Session& session;
  KeyHandle key;
  Bytes local_key;
  Checked* checked;

  RoundResult ihsm_round(double seconds) {
    Bytes input(1024, 0x3C);
    std::vector<Bytes> macs;
    const RoundResult r = timed(seconds, [&](uint64_t i) {
      stamp(input, i);
      macs.push_back(
          must(session.sign(key, Mechanism::kSha256Hmac, input, MechanismParams{}), "ihsm HMAC"));
    });
    const uint64_t step = std::max<uint64_t>(1, macs.size() / 64);
    for (uint64_t i = 0; i < macs.size(); i += step) {
      stamp(input, i);
      if (macs[i].size() != 32 ||
          !session.verify(key, Mechanism::kSha256Hmac, input, macs[i]).ok() ||
          must(session.sign(key, Mechanism::kSha256Hmac, input, MechanismParams{}), "HMAC") !=
              macs[i]) {
        die("ihsm HMAC " + std::to_string(i) + " does not check out");
      }
      checked->ihsm += 1;
    }
    return r;
  }

  RoundResult openssl_round(double seconds) {
    Bytes input(1024, 0x3C);
    std::vector<Bytes> macs;
    const RoundResult r = timed(seconds, [&](uint64_t i) {
      stamp(input, i);
      Bytes mac(32);
      size_t len = 0;
      check(
          EVP_Q_mac(nullptr, "HMAC", nullptr, "SHA256", nullptr, local_key.data(), local_key.size(),
                    input.data(), input.size(), mac.data(), mac.size(), &len) != nullptr &&
              len == 32,
          "HMAC");
      macs.push_back(std::move(mac));
    });
    checked->openssl += macs.size();
    return r;
  }
};

// ------------------------------------------------------------------ key pairs

// P-256 key pair generation as a session object; each ihsm operation also
// destroys both handles (two more round trips) so the partition does not
// grow. OpenSSL generates with a reused EVP_PKEY_CTX and frees the key.
// Checked after each round: the pairs of operations 1, 2, 4, 8, ... are
// kept until then and each signs a message that verifies under its public
// half; their public keys are all different.
struct KeygenBench {
  Session& session;
  Checked* checked;

  static bool is_sampled(uint64_t i) { return (i & (i + 1)) == 0; }  // 0, 1, 3, 7, ...

  RoundResult ihsm_round(double seconds) {
    KeyTemplate pub, priv;
    pub.label = priv.label = "bench-keygen";
    pub.flags = usage::kVerify;
    priv.flags = usage::kSign | usage::kSensitive;
    std::vector<KeyPair> kept;
    const RoundResult r = timed(seconds, [&](uint64_t i) {
      const KeyPair pair =
          must(session.generate_key_pair(Mechanism::kEcKeyPairGen, Curve::kP256, 0, pub, priv),
               "ihsm P-256 key pair");
      if (is_sampled(i)) {
        kept.push_back(pair);
      } else {
        must(session.destroy_key(pair.private_handle), "destroy private key");
        must(session.destroy_key(pair.public_handle), "destroy public key");
      }
    });
    std::vector<Bytes> spkis;
    for (const KeyPair& pair : kept) {
      spkis.push_back(check_pair(session, pair, false));
      must(session.destroy_key(pair.private_handle), "destroy private key");
      must(session.destroy_key(pair.public_handle), "destroy public key");
    }
    std::sort(spkis.begin(), spkis.end());
    if (std::adjacent_find(spkis.begin(), spkis.end()) != spkis.end()) {
      die("ihsm generated the same P-256 key twice");
    }
    checked->ihsm += kept.size();
    return r;
  }

  RoundResult openssl_round(double seconds) {
    PkeyCtx ctx(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
    check(ctx && EVP_PKEY_keygen_init(ctx.get()) == 1 &&
              EVP_PKEY_CTX_set_group_name(ctx.get(), "P-256") == 1,
          "P-256 keygen init");
    std::vector<Pkey> kept;
    const RoundResult r = timed(seconds, [&](uint64_t i) {
      EVP_PKEY* raw = nullptr;
      check(EVP_PKEY_keygen(ctx.get(), &raw) == 1, "EVP_PKEY_keygen");
      Pkey key(raw);
      if (is_sampled(i)) kept.push_back(std::move(key));
    });
    Bytes input(32, 0x77);
    std::vector<Bytes> publics;
    for (const Pkey& key : kept) {
      PkeyCtx sctx(EVP_PKEY_CTX_new_from_pkey(nullptr, key.get(), nullptr));
      Bytes der(80);
      size_t len = der.size();
      check(sctx && EVP_PKEY_sign_init(sctx.get()) == 1 &&
                EVP_PKEY_sign(sctx.get(), der.data(), &len, input.data(), input.size()) == 1,
            "EVP_PKEY_sign");
      der.resize(len);
      if (!verify_digest(key.get(), input, der)) die("OpenSSL P-256 key does not sign");
      const int plen = i2d_PUBKEY(key.get(), nullptr);
      Bytes spki(static_cast<size_t>(std::max(plen, 0)));
      unsigned char* p = spki.data();
      check(plen > 0 && i2d_PUBKEY(key.get(), &p) == plen, "i2d_PUBKEY");
      publics.push_back(std::move(spki));
    }
    std::sort(publics.begin(), publics.end());
    if (std::adjacent_find(publics.begin(), publics.end()) != publics.end()) {
      die("OpenSSL generated the same P-256 key twice");
    }
    checked->openssl += kept.size();
    return r;
  }

  // The pair is a P-256 pair of the expected kind whose private half signs
  // (ECDSA-SHA256 of a fresh message) what its public half verifies, with
  // ihsm::verify_ecdsa; returns the public key (DER SPKI).
  static Bytes check_pair(Session& s, const KeyPair& pair, bool token) {
    const KeyInfo info = must(s.key_info(pair.private_handle), "key info");
    if (info.object_class != ObjectClass::kPrivateKey || info.curve != Curve::kP256 ||
        info.token != token || info.pair_handle != pair.public_handle) {
      die("a generated key pair has the wrong attributes");
    }
    const Bytes spki = must(s.public_key(pair.public_handle), "public key");
    Bytes message(48);
    check(RAND_bytes(message.data(), static_cast<int>(message.size())) == 1, "RAND_bytes");
    const Bytes sig = must(s.sign(pair.private_handle, Mechanism::kEcdsaSha256, message), "sign");
    if (!must(verify_ecdsa(spki, Mechanism::kEcdsaSha256, message, sig), "verify_ecdsa")) {
      die("a generated key pair does not verify its own signature");
    }
    message[0] ^= 1;
    if (must(verify_ecdsa(spki, Mechanism::kEcdsaSha256, message, sig), "verify_ecdsa")) {
      die("verify_ecdsa accepts a signature over another message");
    }
    return spki;
  }
};

// ------------------------------------------------------------------ concurrent clients

// Runs body(t) on `threads` threads at once. A failure in one sets `abort`
// (the other loops watch it) and ends the run once all have returned.
void parallel(size_t threads, std::atomic<bool>& abort, const std::function<void(size_t)>& body) {
  std::vector<std::thread> pool;
  for (size_t t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      try {
        body(t);
      } catch (const Fatal&) {
        abort = true;
      } catch (const std::exception& e) {
        std::fprintf(stderr, "ihsm-bench: %s\n", e.what());
        abort = true;
      }
    });
  }
  for (std::thread& th : pool) th.join();
  if (abort) throw Fatal{};
}

// A client thread's own connection and session, logged in as Crypto User.
struct Worker {
  Client client;
  Session session;
};

std::vector<Worker> open_workers(const std::string& socket, PartitionId partition,
                                 const SecretPin& user_pin, size_t count) {
  std::vector<Worker> workers;
  for (size_t i = 0; i < count; ++i) {
    Client c = must(Client::connect(socket), "connect");
    Session s = must(c.open_session(partition), "open session");
    must(s.login(Role::kCryptoUser, user_pin), "login");
    workers.push_back(Worker{std::move(c), std::move(s)});
  }
  return workers;
}

struct Latency {
  double mean = 0, p50 = 0, p99 = 0;  // microseconds
};

Latency latency_of(std::vector<double> us) {
  Latency l;
  if (us.empty()) return l;
  std::sort(us.begin(), us.end());
  double sum = 0;
  for (double v : us) sum += v;
  l.mean = sum / static_cast<double>(us.size());
  const auto at = [&](double q) {
    const size_t k = static_cast<size_t>(std::ceil(q * static_cast<double>(us.size())));
    return us[std::min(us.size() - 1, k > 0 ? k - 1 : 0)];
  };
  l.p50 = at(0.50);
  l.p99 = at(0.99);
  return l;
}

double micros(Clock::duration d) { return std::chrono::duration<double, std::micro>(d).count(); }

// A row of the token-object table: no OpenSSL counterpart, latencies per
// operation as one client thread sees them.
struct DeviceRow {
  std::string name;
  size_t threads = 1;
  std::vector<double> rates;      // ops/s per round
  std::vector<double> latencies;  // microseconds, every operation of every round
  uint64_t checked = 0;
};

// ------------------------------------------------------------------ durable key pairs

// P-256 key pairs as token objects from `workers.size()` client threads at
// once, each on its own connection. The pairs of a round accumulate while
// it runs (so the rate is that of durable creates alone, one transaction
// per pair) and are destroyed after it, outside the timed part, by the same
// threads; that destroy rate (one durable write per handle) is its own row.
// Checked after each round: another session of the partition finds exactly
// the round's handles under the round's label (so each create reached the
// store), and the pairs of operations 1, 2, 4, ... of every thread sign with
// the private half what ihsm::verify_ecdsa accepts under the public half.
struct TokenKeygenBench {
  Session& observer;  // a session of the same partition on another connection
  uint64_t rounds_run = 0;

  void round(std::span<Worker> workers, double seconds, DeviceRow& create, DeviceRow& destroy) {
    const size_t n = workers.size();
    const std::string label = "bench-token-" + std::to_string(++rounds_run);
    KeyTemplate pub, priv;
    pub.label = priv.label = label;
    pub.flags = usage::kVerify;
    priv.flags = usage::kSign | usage::kSensitive;
    pub.token = priv.token = true;

    // Timed: creates until the deadline, on every thread.
    std::vector<std::vector<KeyPair>> pairs(n);
    std::vector<std::vector<double>> lat(n);
    std::vector<Clock::time_point> ends(n);
    std::atomic<bool> abort{false};
    const auto start = Clock::now();
    const auto deadline = start + std::chrono::duration<double>(seconds);
    parallel(n, abort, [&](size_t t) {
      auto now = Clock::now();
      do {
        const auto t0 = now;
        pairs[t].push_back(must(workers[t].session.generate_key_pair(Mechanism::kEcKeyPairGen,
                                                                     Curve::kP256, 0, pub, priv),
                                "ihsm P-256 token key pair"));
        now = Clock::now();
        lat[t].push_back(micros(now - t0));
      } while (now < deadline && !abort);
      ends[t] = now;
    });
    uint64_t ops = 0;
    for (size_t t = 0; t < n; ++t) {
      ops += pairs[t].size();
      create.latencies.insert(create.latencies.end(), lat[t].begin(), lat[t].end());
    }
    const auto end = *std::max_element(ends.begin(), ends.end());
    create.rates.push_back(static_cast<double>(ops) /
                           std::chrono::duration<double>(end - start).count());

    // Checked: the store holds exactly these handles, seen from elsewhere.
    std::vector<KeyHandle> made;
    for (const auto& list : pairs) {
      for (const KeyPair& p : list) {
        made.push_back(p.public_handle);
        made.push_back(p.private_handle);
      }
    }
    std::sort(made.begin(), made.end());
    KeyQuery q;
    q.label = label;
    std::vector<KeyHandle> found;
    for (const KeyInfo& k : must(observer.find_keys(q), "find the round's token keys")) {
      if (!k.token) die("a token key pair came back as a session object");
      found.push_back(k.handle);
    }
    std::sort(found.begin(), found.end());
    if (found != made) {
      die("the store holds " + std::to_string(found.size()) + " keys of the round, not the " +
          std::to_string(made.size()) + " created");
    }
    std::vector<Bytes> spkis;
    for (const auto& list : pairs) {
      for (uint64_t i = 0; i < list.size(); ++i) {
        if (KeygenBench::is_sampled(i)) {
          spkis.push_back(KeygenBench::check_pair(observer, list[i], true));
        }
      }
    }
    std::sort(spkis.begin(), spkis.end());
    if (std::adjacent_find(spkis.begin(), spkis.end()) != spkis.end()) {
      die("ihsm generated the same token key pair twice");
    }
    create.checked += ops;  // every pair found in the store; a sample also signed

    // Destroyed by the same threads, timed as its own row.
    std::vector<std::vector<double>> dlat(n);
    std::vector<double> took(n);
    parallel(n, abort, [&](size_t t) {
      const auto t_start = Clock::now();
      for (const KeyPair& p : pairs[t]) {
        for (KeyHandle h : {p.private_handle, p.public_handle}) {
          const auto t0 = Clock::now();
          must(workers[t].session.destroy_key(h), "destroy token key");
          dlat[t].push_back(micros(Clock::now() - t0));
          if (abort) return;
        }
      }
      took[t] = std::chrono::duration<double>(Clock::now() - t_start).count();
    });
    for (size_t t = 0; t < n; ++t) {
      destroy.latencies.insert(destroy.latencies.end(), dlat[t].begin(), dlat[t].end());
    }
    destroy.rates.push_back(static_cast<double>(made.size()) /
                            *std::max_element(took.begin(), took.end()));
    if (!must(observer.find_keys(q), "find destroyed keys").empty()) {
      die("destroyed token keys are still found");
    }
    destroy.checked += made.size();
  }
};

// ------------------------------------------------------------------ many token objects

std::string lookup_label(uint64_t i) {
  char label[32];
  std::snprintf(label, sizeof(label), "lookup-%08llu", static_cast<unsigned long long>(i));
  return label;
}

Bytes lookup_id(uint64_t i) {
  Bytes id(8);
  for (size_t b = 0; b < 8; ++b) id[b] = static_cast<uint8_t>(i >> (8 * (7 - b)));
  return id;
}

struct Fill {
  std::vector<KeyHandle> handles;  // handles[i] has label lookup_label(i), id lookup_id(i)
  double seconds = 0;
  double rate() const { return seconds > 0 ? static_cast<double>(handles.size()) / seconds : 0; }
};

// Creates `count` token AES-256 keys in the workers' partition, one worker
// thread each (concurrent writers share the store's group commits). Prints
// a line every `progress_every` keys (0: never) through `progress`: keys so
// far, elapsed time, average rate and the rate since the previous line.
Fill fill_partition(std::vector<Worker>& workers, uint64_t count, uint64_t progress_every,
                    const std::function<void(const std::string&)>& progress) {
  Fill f;
  f.handles.assign(count, 0);
  std::atomic<uint64_t> next{0}, done{0};
  std::atomic<bool> abort{false};
  const auto start = Clock::now();
  std::mutex progress_mutex;
  uint64_t last_done = 0;
  auto last_time = start;
  parallel(workers.size(), abort, [&](size_t t) {
    KeyTemplate tmpl;
    tmpl.flags = usage::kEncrypt | usage::kDecrypt | usage::kSensitive;
    tmpl.token = true;
    for (uint64_t i = next.fetch_add(1); i < count && !abort; i = next.fetch_add(1)) {
      tmpl.label = lookup_label(i);
      tmpl.id = lookup_id(i);
      f.handles[i] = must(workers[t].session.generate_aes_key(256, tmpl), "generate token AES key");
      const uint64_t d = done.fetch_add(1) + 1;
      if (progress_every != 0 && d % progress_every == 0) {
        std::lock_guard lock(progress_mutex);
        const auto now = Clock::now();
        const double s = std::chrono::duration<double>(now - start).count();
        const double recent = d > last_done
                                  ? static_cast<double>(d - last_done) /
                                        std::chrono::duration<double>(now - last_time).count()
                                  : 0;
        last_done = std::max(last_done, d);
        last_time = now;
        char line[160];
        std::snprintf(line, sizeof(line),
                      "  %10llu objects  %8.1f s  %8.0f objects/s (last %llu: %.0f/s)",
                      static_cast<unsigned long long>(d), s, static_cast<double>(d) / s,
                      static_cast<unsigned long long>(progress_every), recent);
        progress(line);
      }
    }
  });
  f.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return f;
}

// One lookup: by label or by id, of a random one of the filled keys.
struct LookupResult {
  uint64_t index;
  std::vector<KeyInfo> found;
};

void check_lookups(const Fill& fill, const std::vector<LookupResult>& results, bool by_id) {
  for (const LookupResult& r : results) {
    if (r.found.size() != 1 || r.found[0].handle != fill.handles[r.index] ||
        r.found[0].label != lookup_label(r.index) || r.found[0].id != lookup_id(r.index) ||
        !r.found[0].token || r.found[0].object_class != ObjectClass::kSecretKey) {
      die(std::string("find by ") + (by_id ? "id" : "label") + " of key " +
          std::to_string(r.index) + " returned " + std::to_string(r.found.size()) +
          " key(s), not the one created");
    }
  }
}

// Lookups of random filled keys from one thread: for `seconds` when
// `seconds` > 0, else `count` of them. Checked: each finds exactly its key.
RoundResult lookup_round(Session& session, const Fill& fill, bool by_id, std::mt19937_64& rng,
                         double seconds, uint64_t count, std::vector<double>& latencies) {
  std::uniform_int_distribution<uint64_t> pick(0, fill.handles.size() - 1);
  std::vector<LookupResult> results;
  auto one = [&](uint64_t) {
    LookupResult r{pick(rng), {}};
    KeyQuery q;
    if (by_id) {
      q.id = lookup_id(r.index);
    } else {
      q.label = lookup_label(r.index);
    }
    const auto t0 = Clock::now();
    r.found = must(session.find_keys(q), "find_keys");
    latencies.push_back(micros(Clock::now() - t0));
    results.push_back(std::move(r));
  };
  RoundResult rr;
  if (seconds > 0) {
    rr = timed(seconds, one);
  } else {
    const auto start = Clock::now();
    for (uint64_t i = 0; i < count; ++i) one(i);
    rr.ops = count;
    rr.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  }
  check_lookups(fill, results, by_id);
  return rr;
}

// A temporary partition, deleted on every way out (through `client`, which
// the caller may replace after a daemon restart).
struct TempPartition {
  Client* client;
  PartitionInfo info;
  std::string name;
  bool done = false;

  TempPartition(Client& c, const std::string& prefix, const SecretPin& officer_pin,
                const SecretPin& user_pin)
      : client(&c) {
    Bytes nonce(4);
    check(RAND_bytes(nonce.data(), 4) == 1, "RAND_bytes");
    char buf[64];
    std::snprintf(buf, sizeof(buf), "%s-%d-%02x%02x%02x%02x", prefix.c_str(),
                  static_cast<int>(::getpid()), nonce[0], nonce[1], nonce[2], nonce[3]);
    name = buf;
    PartitionOptions popt;
    popt.name = name;
    info = must(client->create_partition(popt, officer_pin, &user_pin), "create partition");
  }
  TempPartition(const TempPartition&) = delete;
  TempPartition& operator=(const TempPartition&) = delete;
  ~TempPartition() {
    if (!done) (void)client->delete_partition(info.id);
  }
  // Deletes it now; false (with a message) if the device refused.
  bool remove() {
    done = true;
    if (auto d = client->delete_partition(info.id); !d) {
      std::fprintf(stderr, "ihsm-bench: could not delete partition %s: %s\n", name.c_str(),
                   std::string(status_name(d.status())).c_str());
      return false;
    }
    return true;
  }
};

uint64_t file_size(const std::string& path) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  return ec ? 0 : static_cast<uint64_t>(size);
}

// VmRSS of a process in KiB (0 if unknown).
uint64_t rss_kib(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::strtoull(line.c_str() + 6, nullptr, 10);
  }
  return 0;
}

// ------------------------------------------------------------------ main

struct Options {
  double seconds = 2.0;
  int rounds = 3;
  bool json = false;
  std::string socket;
  std::string ihsmd = IHSM_BENCH_IHSMD;
  uint64_t lookup_objects = 100000;  // token keys populated for the lookup rows
  uint64_t capacity = 0;             // --capacity N: only the capacity run
};

void usage(int code) {
  std::fprintf(code == 0 ? stdout : stderr,
               "usage: ihsm-bench --libihsm [--seconds N] [--rounds R] [--smoke] [--json]\n"
               "                            [--socket PATH] [--ihsmd PATH] [--lookup-objects N]\n"
               "       ihsm-bench --capacity N [--json] [--socket PATH] [--ihsmd PATH]\n"
               "  --seconds N    length of one round in seconds (default 2)\n"
               "  --rounds R     rounds per side and operation, alternating (default 3)\n"
               "  --smoke        a very short run (0.2 s, 1 round, 2,000 lookup objects):\n"
               "                 checks, not numbers\n"
               "  --json         print the results as one JSON object\n"
               "  --socket PATH  use a running ihsmd (as its owner; default $IHSM_SOCKET);\n"
               "                 otherwise one is started on a temporary state directory\n"
               "  --ihsmd PATH   the daemon to start (default %s)\n"
               "  --lookup-objects N  token keys to find among (default 100,000)\n"
               "  --capacity N   instead of the table: fill one partition with N token keys\n"
               "                 (8 connections), then report fill time, store size, lookup\n"
               "                 latency and daemon restart time\n",
               IHSM_BENCH_IHSMD);
  std::exit(code);
}

Options parse(int argc, char** argv) {
  Options o;
  std::optional<uint64_t> lookup_objects;
  if (const char* s = std::getenv("IHSM_SOCKET"); s != nullptr) o.socket = s;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage(2);
      return argv[++i];
    };
    try {
      if (a == "--seconds") {
        o.seconds = std::stod(value());
      } else if (a == "--rounds") {
        o.rounds = std::stoi(value());
      } else if (a == "--smoke") {
        o.seconds = 0.2;
        o.rounds = 1;
        o.lookup_objects = 2000;
      } else if (a == "--lookup-objects") {
        lookup_objects = std::stoull(value());
      } else if (a == "--capacity") {
        o.capacity = std::stoull(value());
        if (o.capacity == 0) usage(2);
      } else if (a == "--json") {
        o.json = true;
      } else if (a == "--socket") {
        o.socket = value();
      } else if (a == "--ihsmd") {
        o.ihsmd = value();
      } else if (a == "--help" || a == "-h") {
        usage(0);
      } else {
        usage(2);
      }
    } catch (const std::exception&) {
      usage(2);
    }
  }
  if (lookup_objects) o.lookup_objects = *lookup_objects;  // wins over --smoke
  if (!(o.seconds > 0) || o.rounds < 1 || o.lookup_objects == 0) usage(2);
  return o;
}

Pkey public_from_der(const Bytes& der) {
  const unsigned char* p = der.data();
  Pkey key(d2i_PUBKEY(nullptr, &p, static_cast<long>(der.size())));
  check(key != nullptr, "d2i_PUBKEY");
  return key;
}

int run(const Options& opt) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);

  Daemon daemon;
  std::string socket = opt.socket;
  const bool own_daemon = socket.empty();
  if (own_daemon) socket = daemon.start(opt.ihsmd);
  auto log = [&](const std::string& s) {
    if (!opt.json) std::printf("%s\n", s.c_str());
  };
  log("ihsm-bench: device at " + socket + (own_daemon ? " (started by the benchmark)" : ""));

  // A temporary partition with a user PIN; logged in as Crypto User.
  Client client = must(Client::connect(socket), "connect");
  Bytes nonce(4);
  check(RAND_bytes(nonce.data(), 4) == 1, "RAND_bytes");
  char name[64];
  std::snprintf(name, sizeof(name), "bench-%d-%02x%02x%02x%02x", static_cast<int>(::getpid()),
                nonce[0], nonce[1], nonce[2], nonce[3]);
  const SecretPin officer_pin("bench-officer-pin");
  const SecretPin user_pin("bench-user-pin");
  PartitionOptions popt;
  popt.name = name;
  const PartitionInfo partition =
      must(client.create_partition(popt, officer_pin, &user_pin), "create partition");
  // Deleted on every way out, a failed check included.
  struct PartitionCleanup {
    Client& client;
    PartitionId id;
    bool done = false;
    ~PartitionCleanup() {
      if (!done) (void)client.delete_partition(id);
    }
  } cleanup{client, partition.id};
  int exit_code = 0;
  {
    Session session = must(client.open_session(partition.id), "open session");
    must(session.login(Role::kCryptoUser, user_pin), "login");

    KeyTemplate pub_tmpl, priv_tmpl, aes_tmpl;
    pub_tmpl.label = "bench-ec";
    pub_tmpl.flags = usage::kVerify;
    priv_tmpl.label = "bench-ec";
    priv_tmpl.flags = usage::kSign | usage::kSensitive;
    aes_tmpl.label = "bench-aes";
    aes_tmpl.flags = usage::kEncrypt | usage::kDecrypt | usage::kSensitive;
    const KeyPair pair =
        must(session.generate_ec_key_pair(Curve::kP256, pub_tmpl, priv_tmpl), "generate EC key");
    const KeyHandle aes = must(session.generate_aes_key(256, aes_tmpl), "generate AES key");
    const Bytes spki = must(session.public_key(pair.public_handle), "get public key");

    Pkey local_ec(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
    check(local_ec != nullptr, "P-256 keygen");
    Bytes local_aes(32);
    check(RAND_bytes(local_aes.data(), 32) == 1, "RAND_bytes");

    KeyTemplate rsa_pub, rsa_priv, hmac_tmpl;
    rsa_pub.label = rsa_priv.label = "bench-rsa";
    hmac_tmpl.label = "bench-hmac";
    const KeyPair rsa = must(
        session.generate_key_pair(Mechanism::kRsaKeyPairGen, std::nullopt, 2048, rsa_pub, rsa_priv),
        "generate RSA-2048 key");
    const Bytes rsa_spki = must(session.public_key(rsa.public_handle), "get RSA public key");
    const KeyHandle hmac =
        must(session.generate_secret_key(Mechanism::kGenericSecretKeyGen, 256, hmac_tmpl),
             "generate HMAC key");
    Pkey local_rsa(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{2048}));
    check(local_rsa != nullptr, "RSA-2048 keygen");

    std::vector<Benchmark> benches(7);
    SignBench ecdsa{session,
                    Mechanism::kEcdsa,
                    pair.private_handle,
                    public_from_der(spki),
                    Pkey(EVP_PKEY_dup(local_ec.get())),
                    &benches[0].checked};
    SignBench ecdsa_sha{session,
                        Mechanism::kEcdsaSha256,
                        pair.private_handle,
                        public_from_der(spki),
                        Pkey(EVP_PKEY_dup(local_ec.get())),
                        &benches[1].checked};
    GcmBench gcm{session, aes, local_aes, &benches[2].checked};
    RandomBench rnd{session, &benches[3].checked};
    benches[0].name = "ECDSA P-256 sign, 32 B digest (ECDSA)";
    benches[0].ihsm = [&](double s) { return ecdsa.ihsm_round(s); };
    benches[0].openssl = [&](double s) { return ecdsa.openssl_round(s); };
    benches[1].name = "ECDSA P-256 sign, SHA-256 of 32 B (ECDSA-SHA256)";
    benches[1].ihsm = [&](double s) { return ecdsa_sha.ihsm_round(s); };
    benches[1].openssl = [&](double s) { return ecdsa_sha.openssl_round(s); };
    benches[2].name = "AES-256-GCM encrypt 1 KiB, fresh IV";
    benches[2].ihsm = [&](double s) { return gcm.ihsm_round(s); };
    benches[2].openssl = [&](double s) { return gcm.openssl_round(s); };
    benches[3].name = "round trip: 16 random bytes";
    benches[3].ihsm = [&](double s) { return rnd.ihsm_round(s); };
    benches[3].openssl = [&](double s) { return rnd.openssl_round(s); };
    RsaSignBench rsa_sign{session, rsa.private_handle, public_from_der(rsa_spki),
                          std::move(local_rsa), &benches[4].checked};
    HmacBench hmac_bench{session, hmac, local_aes, &benches[5].checked};
    benches[4].name = "RSA-2048 sign, SHA256-RSA-PKCS of 32 B";
    benches[4].ihsm = [&](double s) { return rsa_sign.ihsm_round(s); };
    benches[4].openssl = [&](double s) { return rsa_sign.openssl_round(s); };
    benches[5].name = "HMAC-SHA256 of 1 KiB";
    benches[5].ihsm = [&](double s) { return hmac_bench.ihsm_round(s); };
    benches[5].openssl = [&](double s) { return hmac_bench.openssl_round(s); };
    KeygenBench keygen{session, &benches[6].checked};
    benches[6].name = "P-256 key pair, session";
    benches[6].ihsm = [&](double s) { return keygen.ihsm_round(s); };
    benches[6].openssl = [&](double s) { return keygen.openssl_round(s); };

    char plan[128];
    std::snprintf(plan, sizeof(plan),
                  "ihsm-bench: %d round(s) of %.2f s per side and operation, alternating",
                  opt.rounds, opt.seconds);
    log(plan);
    for (Benchmark& b : benches) {
      // Warm-up, not counted: first-use costs and idle CPUs waking up.
      (void)b.ihsm(std::min(opt.seconds, 0.2));
      (void)b.openssl(std::min(opt.seconds, 0.2));
      b.checked = {};
      for (int r = 0; r < opt.rounds; ++r) {
        b.ihsm_rates.push_back(b.ihsm(opt.seconds).rate());
        b.openssl_rates.push_back(b.openssl(opt.seconds).rate());
      }
      if (!opt.json) std::printf("  done: %s\n", b.name.c_str());
    }

    // Durable token objects: 1 and 2 client threads, alternating rounds,
    // each thread on its own connection and session.
    std::vector<Worker> token_workers = open_workers(socket, partition.id, user_pin, 2);
    TokenKeygenBench token{session};
    std::vector<DeviceRow> rows;
    rows.push_back({"P-256 key pair, token (durable)", 1, {}, {}, 0});
    rows.push_back({"P-256 key pair, token (durable)", 2, {}, {}, 0});
    rows.push_back({"destroy token key (durable)", 1, {}, {}, 0});
    rows.push_back({"destroy token key (durable)", 2, {}, {}, 0});
    {
      DeviceRow scratch_create, scratch_destroy;  // warm-up, not counted
      token.round(token_workers, std::min(opt.seconds, 0.2), scratch_create, scratch_destroy);
    }
    for (int r = 0; r < opt.rounds; ++r) {
      token.round(std::span(token_workers).first(1), opt.seconds, rows[0], rows[2]);
      token.round(token_workers, opt.seconds, rows[1], rows[3]);
    }
    token_workers.clear();
    if (!opt.json) std::printf("  done: P-256 key pair, token (durable)\n");

    // Lookups among many token objects, in a partition of their own; the
    // population is not timed as part of a round.
    TempPartition lookup_partition(client, "bench-lookup", officer_pin, user_pin);
    std::vector<Worker> fillers = open_workers(socket, lookup_partition.info.id, user_pin, 8);
    log("ihsm-bench: populating a partition with " + std::to_string(opt.lookup_objects) +
        " token AES-256 keys from 8 connections");
    const Fill fill = fill_partition(fillers, opt.lookup_objects, 25000, log);
    char filled[160];
    std::snprintf(filled, sizeof(filled), "  populated: %llu token keys in %.1f s (%.0f keys/s)",
                  static_cast<unsigned long long>(fill.handles.size()), fill.seconds, fill.rate());
    log(filled);
    const std::string among = " among " + std::to_string(opt.lookup_objects) + " token objects";
    rows.push_back({"find by label" + among, 1, {}, {}, 0});
    rows.push_back({"find by id" + among, 1, {}, {}, 0});
    {
      Session& finder = fillers[0].session;
      std::mt19937_64 rng(0xF1D);
      std::vector<double> scratch;
      for (bool by_id : {false, true}) {
        (void)lookup_round(finder, fill, by_id, rng, std::min(opt.seconds, 0.2), 0, scratch);
      }
      for (int r = 0; r < opt.rounds; ++r) {
        for (bool by_id : {false, true}) {
          DeviceRow& row = rows[by_id ? 5 : 4];
          const RoundResult rr =
              lookup_round(finder, fill, by_id, rng, opt.seconds, 0, row.latencies);
          row.rates.push_back(rr.rate());
          row.checked += rr.ops;
        }
      }
    }
    fillers.clear();
    const auto delete_start = Clock::now();
    if (!lookup_partition.remove()) exit_code = 1;
    const double delete_seconds =
        std::chrono::duration<double>(Clock::now() - delete_start).count();
    if (!opt.json) std::printf("  done: find among token objects\n");
    const double scaling =
        median(rows[0].rates) > 0 ? median(rows[1].rates) / median(rows[0].rates) : 0;

    const unsigned cpus = std::thread::hardware_concurrency();
    if (opt.json) {
      nlohmann::json j;
      j["machine"] = {
          {"cpus", cpus}, {"cpu", cpu_model()}, {"openssl", OpenSSL_version(OPENSSL_VERSION)}};
      j["seconds_per_round"] = opt.seconds;
      j["rounds"] = opt.rounds;
      j["socket"] = socket;
      for (const Benchmark& b : benches) {
        const double i = median(b.ihsm_rates), o = median(b.openssl_rates);
        j["results"].push_back({{"operation", b.name},
                                {"ihsm_ops_per_s", i},
                                {"openssl_ops_per_s", o},
                                {"ratio", o > 0 ? i / o : 0},
                                {"ihsm_rounds", b.ihsm_rates},
                                {"openssl_rounds", b.openssl_rates},
                                {"ihsm_answers_checked", b.checked.ihsm},
                                {"openssl_answers_checked", b.checked.openssl}});
      }
      for (const DeviceRow& row : rows) {
        const Latency l = latency_of(row.latencies);
        j["token_objects"].push_back(
            {{"operation", row.name},
             {"threads", row.threads},
             {"ihsm_ops_per_s", median(row.rates)},
             {"ihsm_rounds", row.rates},
             {"latency_us", {{"mean", l.mean}, {"p50", l.p50}, {"p99", l.p99}}},
             {"ihsm_answers_checked", row.checked}});
      }
      j["token_keygen_2_vs_1_threads"] = scaling;
      j["lookup_population"] = {{"objects", fill.handles.size()},
                                {"connections", 8},
                                {"seconds", fill.seconds},
                                {"objects_per_s", fill.rate()},
                                {"delete_partition_seconds", delete_seconds}};
      std::printf("%s\n", j.dump(2).c_str());
    } else {
      std::printf("\n%u CPU(s), %s; %s; one client thread; medians of %d round(s)\n\n", cpus,
                  cpu_model().c_str(), OpenSSL_version(OPENSSL_VERSION), opt.rounds);
      std::printf("| %-48s | %10s | %8s | %13s | %10s | %6s | %15s |\n", "operation", "ihsm ops/s",
                  "ihsm us", "OpenSSL ops/s", "OpenSSL us", "ratio", "checked (i/O)");
      std::printf("|%s|%s|%s|%s|%s|%s|%s|\n", std::string(50, '-').c_str(),
                  std::string(12, '-').c_str(), std::string(10, '-').c_str(),
                  std::string(15, '-').c_str(), std::string(12, '-').c_str(),
                  std::string(8, '-').c_str(), std::string(17, '-').c_str());
      for (const Benchmark& b : benches) {
        const double i = median(b.ihsm_rates), o = median(b.openssl_rates);
        const std::string checked =
            std::to_string(b.checked.ihsm) + " / " + std::to_string(b.checked.openssl);
        std::printf("| %-48s | %10.0f | %8.1f | %13.0f | %10.2f | %6.3f | %15s |\n", b.name.c_str(),
                    i, i > 0 ? 1e6 / i : 0, o, o > 0 ? 1e6 / o : 0, o > 0 ? i / o : 0,
                    checked.c_str());
      }
      std::printf(
          "\nratio = ihsm / OpenSSL in-process (higher is better; 1.0 = no cost for the "
          "boundary).\n"
          "checked: answers verified after the rounds (ihsm / OpenSSL): every signature; for GCM\n"
          "a random sample decrypted, and every IV unique; for random, no repeated output; for\n"
          "key pairs, those of operations 1, 2, 4, 8, ... sign and verify, all distinct.\n"
          "P-256 key pair, session: ihsm generates and destroys both handles (3 round trips).\n");
      std::printf("\n| %-56s | %7s | %10s | %9s | %9s | %9s | %8s |\n", "token objects (durable)",
                  "threads", "ops/s", "mean us", "p50 us", "p99 us", "checked");
      std::printf("|%s|%s|%s|%s|%s|%s|%s|\n", std::string(58, '-').c_str(),
                  std::string(9, '-').c_str(), std::string(12, '-').c_str(),
                  std::string(11, '-').c_str(), std::string(11, '-').c_str(),
                  std::string(11, '-').c_str(), std::string(10, '-').c_str());
      for (const DeviceRow& row : rows) {
        const Latency l = latency_of(row.latencies);
        std::printf("| %-56s | %7zu | %10.0f | %9.1f | %9.1f | %9.1f | %8llu |\n", row.name.c_str(),
                    row.threads, median(row.rates), l.mean, l.p50, l.p99,
                    static_cast<unsigned long long>(row.checked));
      }
      std::printf(
          "\ntoken key pair, 2 threads vs 1: %.2fx. Each thread has its own connection and\n"
          "session; a round's pairs accumulate and are destroyed after it (the destroy rows).\n"
          "checked: every pair of a round found (both handles, exactly) from another session,\n"
          "and pairs 1, 2, 4, ... of each thread sign and verify (ihsm::verify_ecdsa); every\n"
          "destroyed key no longer found; every find returns exactly the one key created with\n"
          "that label or id.\n"
          "population (not timed in the rounds): %llu token AES-256 keys from 8 connections in\n"
          "%.1f s (%.0f keys/s); deleting that partition took %.2f s.\n",
          scaling, static_cast<unsigned long long>(fill.handles.size()), fill.seconds, fill.rate(),
          delete_seconds);
    }
    if (!session.close()) exit_code = 1;
  }
  cleanup.done = true;
  if (auto d = client.delete_partition(partition.id); !d) {
    std::fprintf(stderr, "ihsm-bench: could not delete partition %s: %s\n", name,
                 std::string(status_name(d.status())).c_str());
    exit_code = 1;
  }
  return exit_code;
}

// --capacity N: one partition filled with N token AES-256 keys from 8
// connections, then what that costs. Store size, daemon memory and restart
// time need the daemon the benchmark started (its state directory and pid).
int run_capacity(const Options& opt) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  Daemon daemon;
  std::string socket = opt.socket;
  const bool own_daemon = socket.empty();
  if (own_daemon) socket = daemon.start(opt.ihsmd);
  // Progress goes to stderr under --json, so stdout stays one JSON object.
  auto log = [&](const std::string& s) {
    std::fprintf(opt.json ? stderr : stdout, "%s\n", s.c_str());
  };
  log("ihsm-bench: device at " + socket + (own_daemon ? " (started by the benchmark)" : ""));

  const SecretPin officer_pin("bench-officer-pin");
  const SecretPin user_pin("bench-user-pin");
  Client client = must(Client::connect(socket), "connect");
  std::optional<Client> reconnected;  // after the restart; outlives `partition`
  TempPartition partition(client, "bench-capacity", officer_pin, user_pin);
  nlohmann::json j;
  j["objects"] = opt.capacity;
  j["connections"] = 8;
  j["socket"] = socket;
  j["cpus"] = std::thread::hardware_concurrency();
  j["cpu"] = cpu_model();

  log("ihsm-bench: filling partition " + partition.name + " with " + std::to_string(opt.capacity) +
      " token AES-256 keys from 8 connections");
  Fill fill;
  {
    std::vector<Worker> fillers = open_workers(socket, partition.info.id, user_pin, 8);
    fill = fill_partition(fillers, opt.capacity, 100000, log);
  }
  char line[256];
  std::snprintf(line, sizeof(line), "fill: %llu token keys in %.1f s (%.0f keys/s)",
                static_cast<unsigned long long>(fill.handles.size()), fill.seconds, fill.rate());
  log(line);
  j["fill"] = {{"seconds", fill.seconds}, {"objects_per_s", fill.rate()}};

  const std::string db = own_daemon ? daemon.state_dir() + "/objects.db" : "";
  auto sizes = [&](const char* when, const char* key) {
    const uint64_t main_size = file_size(db), wal = file_size(db + "-wal");
    std::snprintf(line, sizeof(line),
                  "store %s: objects.db %.1f MiB + objects.db-wal %.1f MiB (%.0f bytes/object)",
                  when, static_cast<double>(main_size) / 1048576.0,
                  static_cast<double>(wal) / 1048576.0,
                  static_cast<double>(main_size + wal) / static_cast<double>(opt.capacity));
    log(line);
    j[key] = {{"objects_db_bytes", main_size}, {"wal_bytes", wal}};
  };
  if (own_daemon) {
    sizes("after fill", "store_after_fill");
    const uint64_t rss = rss_kib(daemon.pid());
    std::snprintf(line, sizeof(line), "ihsmd resident memory after fill: %.1f MiB",
                  static_cast<double>(rss) / 1024.0);
    log(line);
    j["ihsmd_rss_kib"] = rss;
  } else {
    log("store size, memory and restart: not measured (the daemon is not the benchmark's)");
  }

  std::mt19937_64 rng(0xCA9);
  auto lookups = [&](Session& s, const char* key, const char* what, bool by_id) {
    std::vector<double> lat;
    (void)lookup_round(s, fill, by_id, rng, 0, 2000, lat);
    const Latency l = latency_of(lat);
    std::snprintf(line, sizeof(line),
                  "%s: 2000 random lookups, mean %.1f us, p50 %.1f us, p99 %.1f us (all found)",
                  what, l.mean, l.p50, l.p99);
    log(line);
    j[key] = {{"lookups", 2000}, {"mean_us", l.mean}, {"p50_us", l.p50}, {"p99_us", l.p99}};
  };
  {
    Session s = must(client.open_session(partition.info.id), "open session");
    must(s.login(Role::kCryptoUser, user_pin), "login");
    lookups(s, "find_by_label", "find by label", false);
    lookups(s, "find_by_id", "find by id", true);
    // For scale: the cheapest command, on this machine, now.
    std::vector<double> lat;
    for (int i = 0; i < 2000; ++i) {
      const auto t0 = Clock::now();
      if (must(s.random(16), "random").size() != 16) die("random returned the wrong length");
      lat.push_back(micros(Clock::now() - t0));
    }
    const Latency l = latency_of(lat);
    std::snprintf(line, sizeof(line),
                  "for scale, round trip (16 random bytes): mean %.1f us, p50 %.1f us, p99 %.1f us",
                  l.mean, l.p50, l.p99);
    log(line);
    j["round_trip"] = {{"mean_us", l.mean}, {"p50_us", l.p50}, {"p99_us", l.p99}};
  }

  if (own_daemon) {
    const auto [stop_s, start_s] = daemon.restart(600);
    std::snprintf(line, sizeof(line),
                  "restart: SIGTERM to exit %.3f s, start to accepting %.3f s (total %.3f s)",
                  stop_s, start_s, stop_s + start_s);
    log(line);
    j["restart"] = {{"stop_seconds", stop_s}, {"start_seconds", start_s}};
    sizes("after restart", "store_after_restart");
    reconnected.emplace(must(Client::connect(socket), "reconnect"));
    partition.client = &*reconnected;
    Session s = must(reconnected->open_session(partition.info.id), "open session");
    must(s.login(Role::kCryptoUser, user_pin), "login");
    lookups(s, "find_by_label_after_restart", "find by label after restart", false);
  }

  const auto delete_start = Clock::now();
  const bool deleted = partition.remove();
  const double delete_seconds = std::chrono::duration<double>(Clock::now() - delete_start).count();
  std::snprintf(line, sizeof(line), "delete partition: %.2f s", delete_seconds);
  log(line);
  j["delete_partition_seconds"] = delete_seconds;
  if (opt.json) std::printf("%s\n", j.dump(2).c_str());
  return deleted ? 0 : 1;
}

}  // namespace

namespace ihsm::bench {

// The libihsm benchmark (--libihsm, --capacity): its own options.
int run_libihsm(int argc, char** argv) {
  const Options opt = parse(argc, argv);
  if (opt.capacity != 0) return run_capacity(opt);
  return run(opt);
}

}  // namespace ihsm::bench
