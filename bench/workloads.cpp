#include "workloads.h"

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/rsa.h>

#include <algorithm>
#include <cstring>

namespace ihsm::bench {

std::vector<Workload> all_workloads(const std::vector<uint64_t>& lookup_objects) {
  std::vector<Workload> w = {
      {Op::kEcdsaP256, "ECDSA P-256 sign (32 B digest)"},
      {Op::kEcdsaP384, "ECDSA P-384 sign (48 B digest)"},
      {Op::kEd25519, "Ed25519 sign (32 B)"},
      {Op::kRsa2048Pkcs, "RSA-2048 PKCS#1 v1.5 sign (SHA-256)"},
      {Op::kRsa2048Pss, "RSA-2048 PSS sign (SHA-256)"},
      {Op::kRsa3072Pkcs, "RSA-3072 PKCS#1 v1.5 sign (SHA-256)"},
      {Op::kRsa3072Pss, "RSA-3072 PSS sign (SHA-256)"},
      {Op::kRsa2048Oaep, "RSA-2048 OAEP decrypt (SHA-256)"},
      {Op::kGcm64, "AES-256-GCM encrypt 64 B"},
      {Op::kGcm1k, "AES-256-GCM encrypt 1 KiB"},
      {Op::kGcm16k, "AES-256-GCM encrypt 16 KiB"},
      {Op::kHmac1k, "HMAC-SHA256 of 1 KiB"},
      {Op::kKeygenSession, "P-256 key pair, session objects"},
      {Op::kKeygenToken, "P-256 key pair, token objects (durable)"},
  };
  for (const uint64_t n : lookup_objects) {
    w.push_back({Op::kFind, "find by label among " + std::to_string(n) + " objects", n});
  }
  w.push_back({Op::kRandom32, "random, 32 bytes"});
  return w;
}

size_t input_size(Op op) {
  switch (op) {
    case Op::kEcdsaP384:
      return 48;
    case Op::kGcm64:
      return 64;
    case Op::kGcm1k:
    case Op::kHmac1k:
      return 1024;
    case Op::kGcm16k:
      return 16384;
    default:
      return 32;
  }
}

bool is_sign(Op op) {
  switch (op) {
    case Op::kEcdsaP256:
    case Op::kEcdsaP384:
    case Op::kEd25519:
    case Op::kRsa2048Pkcs:
    case Op::kRsa2048Pss:
    case Op::kRsa3072Pkcs:
    case Op::kRsa3072Pss:
      return true;
    default:
      return false;
  }
}

void make_input(Bytes& buf, size_t thread, uint64_t index) {
  for (size_t b = 0; b < buf.size(); ++b) buf[b] = static_cast<uint8_t>(0x5A ^ (b * 7));
  for (size_t b = 0; b < 8 && b < buf.size(); ++b) buf[b] = static_cast<uint8_t>(index >> (8 * b));
  if (buf.size() > 8) buf[8] = static_cast<uint8_t>(thread);
}

void make_iv(uint8_t iv[12], size_t thread, uint64_t counter) {
  const uint32_t t = static_cast<uint32_t>(thread);
  for (int b = 0; b < 4; ++b) iv[b] = static_cast<uint8_t>(t >> (8 * b));
  for (int b = 0; b < 8; ++b) iv[4 + b] = static_cast<uint8_t>(counter >> (8 * b));
}

void Answers::add(uint64_t index, const uint8_t* data, size_t size) {
  if (seen_++ % stride_ != 0) return;
  entries_.push_back({index, data_.size(), size});
  data_.insert(data_.end(), data, data + size);
  if (entries_.size() >= 2 * keep_) halve();
}

void Answers::halve() {
  std::vector<uint8_t> data;
  std::vector<Entry> entries;
  for (size_t k = 0; k < entries_.size(); k += 2) {
    const Entry& e = entries_[k];
    entries.push_back({e.index, data.size(), e.size});
    data.insert(data.end(), data_.begin() + static_cast<std::ptrdiff_t>(e.offset),
                data_.begin() + static_cast<std::ptrdiff_t>(e.offset + e.size));
  }
  data_ = std::move(data);
  entries_ = std::move(entries);
  stride_ *= 2;
}

void Answers::clear() {
  data_.clear();
  entries_.clear();
  seen_ = 0;
  stride_ = 1;
}

std::vector<size_t> Answers::sample(size_t max) const {
  std::vector<size_t> out;
  const size_t n = entries_.size();
  if (n <= max) {
    for (size_t k = 0; k < n; ++k) out.push_back(k);
    return out;
  }
  for (size_t k = 0; k < max; ++k) out.push_back(k * (n - 1) / (max - 1));
  return out;
}

namespace {

// r||s -> DER, for OpenSSL's verify.
Bytes raw_to_der(std::span<const uint8_t> raw) {
  const int half = static_cast<int>(raw.size() / 2);
  std::unique_ptr<ECDSA_SIG, decltype(&ECDSA_SIG_free)> sig(ECDSA_SIG_new(), ECDSA_SIG_free);
  BIGNUM* r = BN_bin2bn(raw.data(), half, nullptr);
  BIGNUM* s = BN_bin2bn(raw.data() + half, half, nullptr);
  if (!sig || !r || !s || ECDSA_SIG_set0(sig.get(), r, s) != 1) {
    BN_free(r);
    BN_free(s);
    die("OpenSSL: ECDSA_SIG_set0");
  }
  const int len = i2d_ECDSA_SIG(sig.get(), nullptr);
  Bytes der(static_cast<size_t>(len > 0 ? len : 0));
  unsigned char* p = der.data();
  check_openssl(len > 0 && i2d_ECDSA_SIG(sig.get(), &p) == len, "i2d_ECDSA_SIG");
  return der;
}

}  // namespace

void verify_signature(Op op, EVP_PKEY* key, const Bytes& input, std::span<const uint8_t> sig,
                      bool raw_ecdsa, const std::string& who) {
  bool ok = false;
  if (op == Op::kEcdsaP256 || op == Op::kEcdsaP384) {
    const size_t raw_size = op == Op::kEcdsaP256 ? 64 : 96;
    Bytes der;
    if (raw_ecdsa) {
      if (sig.size() != raw_size) die(who + ": ECDSA signature of the wrong length");
      der = raw_to_der(sig);
    } else {
      der.assign(sig.begin(), sig.end());
    }
    PkeyCtx ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, key, nullptr));
    ok = ctx && EVP_PKEY_verify_init(ctx.get()) == 1 &&
         EVP_PKEY_verify(ctx.get(), der.data(), der.size(), input.data(), input.size()) == 1;
  } else {
    MdCtx md(EVP_MD_CTX_new());
    EVP_PKEY_CTX* pctx = nullptr;
    const EVP_MD* digest = op == Op::kEd25519 ? nullptr : EVP_sha256();
    ok = md && EVP_DigestVerifyInit(md.get(), &pctx, digest, nullptr, key) == 1;
    if (ok && (op == Op::kRsa2048Pss || op == Op::kRsa3072Pss)) {
      ok = EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1 &&
           EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()) == 1 &&
           EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, 32) == 1;
    }
    ok = ok && EVP_DigestVerify(md.get(), sig.data(), sig.size(), input.data(), input.size()) == 1;
  }
  if (!ok) die(who + ": a signature does not verify with OpenSSL under the public key");
}

uint64_t check_random_answers(Answers& answers, const std::string& who) {
  std::vector<Bytes> outs;
  for (const size_t k : answers.sample(1u << 16)) {
    const auto b = answers.bytes(k);
    if (b.size() != 32) die(who + ": random output of the wrong length");
    outs.emplace_back(b.begin(), b.end());
  }
  std::sort(outs.begin(), outs.end());
  if (std::adjacent_find(outs.begin(), outs.end()) != outs.end()) {
    die(who + ": two random outputs are the same");
  }
  answers.clear();
  return outs.size();
}

std::string find_label(uint64_t j) { return "ihsm-bench-find-" + std::to_string(j); }

Bytes find_value(uint64_t j) {
  Bytes v(8);
  for (size_t b = 0; b < 8; ++b) v[b] = static_cast<uint8_t>(j >> (8 * b));
  return v;
}

}  // namespace ihsm::bench
