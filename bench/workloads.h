// The comparative workloads (issue 8, item 2), the interface each system
// (a PKCS#11 module, raw OpenSSL) implements for them, and what the
// systems share for checking answers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "common.h"

namespace ihsm::bench {

enum class Op {
  kEcdsaP256,      // CKM_ECDSA over a 32-byte digest
  kEcdsaP384,      // CKM_ECDSA over a 48-byte digest
  kEd25519,        // CKM_EDDSA over 32 bytes
  kRsa2048Pkcs,    // CKM_SHA256_RSA_PKCS over 32 bytes
  kRsa2048Pss,     // CKM_SHA256_RSA_PKCS_PSS, MGF1-SHA256, 32-byte salt
  kRsa3072Pkcs,    //
  kRsa3072Pss,     //
  kRsa2048Oaep,    // CKM_RSA_PKCS_OAEP decrypt, SHA-256 and MGF1-SHA256, 32-byte message
  kGcm64,          // CKM_AES_GCM encrypt, AES-256, caller's 12-byte IV, 128-bit tag
  kGcm1k,          //
  kGcm16k,         //
  kHmac1k,         // CKM_SHA256_HMAC of 1 KiB, 256-bit key
  kKeygenSession,  // CKM_EC_KEY_PAIR_GEN P-256, session objects
  kKeygenToken,    // the same as token (durable) objects
  kFind,           // find one CKO_DATA token object by label among `objects`
  kRandom32,       // C_GenerateRandom of 32 bytes
};

struct Workload {
  Op op;
  std::string name;
  uint64_t objects = 0;  // kFind: how many token objects to search among
};

// Every workload, in table order; one find row per entry of `lookup_objects`.
std::vector<Workload> all_workloads(const std::vector<uint64_t>& lookup_objects);

// The input (message, digest or plaintext) size of a workload.
size_t input_size(Op op);
bool is_sign(Op op);

// One client thread's side of one workload on one system. op() is what the
// rounds time; check() runs after each round, outside the timing.
class Runner {
 public:
  virtual ~Runner() = default;
  // One operation; keeps what check() needs.
  virtual void op() = 0;
  // Verifies the answers since the last check (all, or a large sample),
  // forgets them and returns how many it checked. A wrong answer: die().
  virtual uint64_t check() = 0;
};

class System {
 public:
  virtual ~System() = default;
  virtual const std::string& name() const = 0;
  // "OpenSSL 3.0.x", "SoftHSM ... 2.6", ...
  virtual std::string description() const = 0;
  // A runner for client thread `thread` (0 or 1: each its own session and
  // keys), or nullptr when the system does not offer the workload, with
  // the reason in `why` (printed as "n/a").
  virtual std::unique_ptr<Runner> runner(const Workload& w, size_t thread, std::string& why) = 0;
  // kFind: makes at least `objects` token objects exist, for no longer than
  // `budget_seconds`; returns how many there are (fewer when the budget ran
  // out). Not offered: 0.
  virtual uint64_t populate(uint64_t objects, double budget_seconds) = 0;
};

// The input of operation `index` of client thread `thread`: never the same
// twice, so an answer kept from before cannot pass a check.
void make_input(Bytes& buf, size_t thread, uint64_t index);

// The 12-byte GCM IV of operation `counter` of thread `thread`: unique per
// key (each thread has its own key), the same construction on every system.
void make_iv(uint8_t iv[12], size_t thread, uint64_t counter);

// Answers of one round, kept in one buffer: all of them up to 2 x `keep`,
// then an even sample (every 2nd, 4th, ... answer), so memory stays
// bounded (a round of 16 KiB GCM from OpenSSL would otherwise keep
// hundreds of MiB) and skipped answers are not even copied.
class Answers {
 public:
  explicit Answers(size_t keep = 4096) : keep_(keep) {}
  void add(uint64_t index, const uint8_t* data, size_t size);
  size_t size() const { return entries_.size(); }
  uint64_t index(size_t k) const { return entries_[k].index; }
  std::span<const uint8_t> bytes(size_t k) const {
    return {data_.data() + entries_[k].offset, entries_[k].size};
  }
  void clear();
  // All kept positions when there are at most `max`, else `max` of them
  // spread evenly (the first and last included).
  std::vector<size_t> sample(size_t max) const;

 private:
  struct Entry {
    uint64_t index;
    size_t offset;
    size_t size;
  };
  void halve();  // keeps every other entry, doubles the stride

  size_t keep_;
  uint64_t seen_ = 0;    // answers offered this round
  uint64_t stride_ = 1;  // every stride_-th offered answer is kept
  std::vector<uint8_t> data_;
  std::vector<Entry> entries_;
};

// How many answers of a round are checked at most (signatures verified,
// ciphertexts decrypted, ...).
constexpr size_t kCheckSample = 512;

// Signature checks with OpenSSL, for every system alike. `raw_ecdsa`: the
// signature is PKCS#11's r||s rather than DER.
void verify_signature(Op op, EVP_PKEY* key, const Bytes& input, std::span<const uint8_t> sig,
                      bool raw_ecdsa, const std::string& who);

// Random outputs of a round: no two alike (all, or the first 65,536).
uint64_t check_random_answers(Answers& answers, const std::string& who);

// The label and value of token object `j` of the find population.
std::string find_label(uint64_t j);
Bytes find_value(uint64_t j);

}  // namespace ihsm::bench
