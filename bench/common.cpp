#include "common.h"

#include <algorithm>
#include <cstdio>
#include <fstream>

namespace ihsm::bench {

void die(const std::string& what) {
  std::fprintf(stderr, "ihsm-bench: %s\n", what.c_str());
  throw Fatal{};
}

void check_openssl(bool ok, const char* what) {
  if (!ok) die(std::string("OpenSSL: ") + what);
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

std::string cpu_model() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("model name", 0) == 0) {
      const size_t colon = line.find(':');
      if (colon != std::string::npos) return line.substr(colon + 2);
    }
  }
  return "unknown CPU";
}

}  // namespace ihsm::bench
