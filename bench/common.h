// Shared by the benchmark's parts: failing the run, clocks, medians and
// owning pointers for OpenSSL objects.
#pragma once

#include <openssl/evp.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace ihsm::bench {

using Clock = std::chrono::steady_clock;
using Bytes = std::vector<uint8_t>;

// A failure ends the run through main(), so a daemon the benchmark started
// is stopped and temporary directories are removed.
struct Fatal {};

// Prints "ihsm-bench: <what>" and throws Fatal.
[[noreturn]] void die(const std::string& what);

// die() with "OpenSSL: <what>" unless `ok`.
void check_openssl(bool ok, const char* what);

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct PkeyCtxFree {
  void operator()(EVP_PKEY_CTX* p) const { EVP_PKEY_CTX_free(p); }
};
struct CipherCtxFree {
  void operator()(EVP_CIPHER_CTX* p) const { EVP_CIPHER_CTX_free(p); }
};
struct MdCtxFree {
  void operator()(EVP_MD_CTX* p) const { EVP_MD_CTX_free(p); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;
using PkeyCtx = std::unique_ptr<EVP_PKEY_CTX, PkeyCtxFree>;
using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, CipherCtxFree>;
using MdCtx = std::unique_ptr<EVP_MD_CTX, MdCtxFree>;

double median(std::vector<double> v);
double seconds_since(Clock::time_point start);

// "model name" from /proc/cpuinfo.
std::string cpu_model();

}  // namespace ihsm::bench
