// ihsm-bench: operations through libihsm against a real ihsmd, next to the
// same operations done by raw OpenSSL in this process, in alternating rounds.
//
//   ihsm-bench [--seconds N] [--rounds R] [--smoke] [--json] [--socket PATH] [--ihsmd PATH]
//
// Without --socket (or IHSM_SOCKET) it starts its own ihsmd on a temporary
// state directory. Against an existing daemon it must run as the device
// owner: it creates a temporary partition and deletes it at the end.
//
// Every answer is checked after its round, outside the timed loop: each
// signature verifies under the key's public half (OpenSSL, in-process), GCM
// IVs never repeat, and a random sample of ciphertexts decrypts to what was
// encrypted. A fast wrong answer fails the run.
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "ihsm/client.h"

#ifndef IHSM_BENCH_IHSMD
#define IHSM_BENCH_IHSMD "ihsmd"
#endif

using namespace ihsm;
using Clock = std::chrono::steady_clock;

namespace {

// ------------------------------------------------------------------ basics

// A failure ends the run through main(), so the daemon it started is
// stopped and its temporary state directory removed.
struct Fatal {};

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "ihsm-bench: %s\n", what.c_str());
  throw Fatal{};
}

template <typename T>
T must(Result<T> r, const std::string& what) {
  if (!r) {
    std::string msg = what + ": " + std::string(status_name(r.status()));
    if (!r.detail().message.empty()) msg += " (" + r.detail().message + ")";
    die(msg);
  }
  return std::move(r).value();
}

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct PkeyCtxFree {
  void operator()(EVP_PKEY_CTX* p) const { EVP_PKEY_CTX_free(p); }
};
struct CipherCtxFree {
  void operator()(EVP_CIPHER_CTX* p) const { EVP_CIPHER_CTX_free(p); }
};
struct SigFree {
  void operator()(ECDSA_SIG* p) const { ECDSA_SIG_free(p); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;
using PkeyCtx = std::unique_ptr<EVP_PKEY_CTX, PkeyCtxFree>;
using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, CipherCtxFree>;
struct MdCtxFree {
  void operator()(EVP_MD_CTX* p) const { EVP_MD_CTX_free(p); }
};
using MdCtx = std::unique_ptr<EVP_MD_CTX, MdCtxFree>;

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

// ------------------------------------------------------------------ daemon

// An ihsmd of our own on a temporary state directory, stopped at the end.
class Daemon {
 public:
  ~Daemon() { stop(); }

  std::string start(const std::string& binary) {
    char templ[] = "/tmp/ihsm-bench-XXXXXX";
    if (::mkdtemp(templ) == nullptr) die("mkdtemp failed");
    dir_ = templ;
    const std::string socket = dir_ + "/ihsmd.sock";
    const std::string state = dir_ + "/state";
    log_ = dir_ + "/ihsmd.log";
    pid_ = ::fork();
    if (pid_ < 0) die("fork failed");
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGTERM);  // never outlive the benchmark
      std::FILE* log = std::freopen(log_.c_str(), "w", stderr);
      (void)log;
      ::execl(binary.c_str(), binary.c_str(), "--state-dir", state.c_str(), "--socket",
              socket.c_str(), static_cast<char*>(nullptr));
      std::fprintf(stderr, "exec %s: %s\n", binary.c_str(), std::strerror(errno));
      std::fflush(stderr);
      ::_exit(127);
    }
    // Ready when it accepts a connection.
    const auto deadline = Clock::now() + std::chrono::seconds(20);
    while (Clock::now() < deadline) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        die("ihsmd (" + binary + ") exited during start-up:\n" + read_log());
      }
      if (auto c = Client::connect(socket); c) return socket;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    die("ihsmd did not start within 20 s:\n" + read_log());
  }

  void stop() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      int status = 0;
      ::waitpid(pid_, &status, 0);
      pid_ = -1;
    }
    if (!dir_.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(dir_, ec);
      dir_.clear();
    }
  }

 private:
  std::string read_log() const {
    std::ifstream f(log_);
    return std::string(std::istreambuf_iterator<char>(f), {});
  }
  pid_t pid_ = -1;
  std::string dir_;
  std::string log_;
};

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

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

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

// ------------------------------------------------------------------ main

struct Options {
  double seconds = 2.0;
  int rounds = 3;
  bool json = false;
  std::string socket;
  std::string ihsmd = IHSM_BENCH_IHSMD;
};

void usage(int code) {
  std::fprintf(code == 0 ? stdout : stderr,
               "usage: ihsm-bench [--seconds N] [--rounds R] [--smoke] [--json] [--socket PATH] "
               "[--ihsmd PATH]\n"
               "  --seconds N    length of one round in seconds (default 2)\n"
               "  --rounds R     rounds per side and operation, alternating (default 3)\n"
               "  --smoke        a very short run (0.2 s, 1 round): checks, not numbers\n"
               "  --json         print the results as one JSON object\n"
               "  --socket PATH  use a running ihsmd (as its owner; default $IHSM_SOCKET);\n"
               "                 otherwise one is started on a temporary state directory\n"
               "  --ihsmd PATH   the daemon to start (default %s)\n",
               IHSM_BENCH_IHSMD);
  std::exit(code);
}

Options parse(int argc, char** argv) {
  Options o;
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
  if (!(o.seconds > 0) || o.rounds < 1) usage(2);
  return o;
}

std::string cpu_model() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("model name", 0) == 0) {
      const auto colon = line.find(':');
      if (colon != std::string::npos) return line.substr(colon + 2);
    }
  }
  return "unknown";
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

    std::vector<Benchmark> benches(6);
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
          "a random sample decrypted, and every IV unique; for random, no repeated output.\n");
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

}  // namespace

int main(int argc, char** argv) {
  const Options opt = parse(argc, argv);
  try {
    return run(opt);
  } catch (const Fatal&) {
    return 1;
  }
}
