// ihsm-bench: by default the comparative PKCS#11 benchmark (compare.cpp);
// --libihsm or --capacity: the libihsm benchmark (libihsm_bench.cpp).
#include <cstring>
#include <vector>

#include "common.h"
#include "compare.h"

namespace ihsm::bench {
int run_libihsm(int argc, char** argv);
}

int main(int argc, char** argv) {
  std::vector<char*> args(argv, argv + argc);
  bool libihsm = false;
  for (size_t i = 1; i < args.size(); ++i) {
    if (std::strcmp(args[i], "--libihsm") == 0) {
      libihsm = true;
      args.erase(args.begin() + static_cast<std::ptrdiff_t>(i));
      break;
    }
  }
  for (char* a : args) libihsm |= std::strcmp(a, "--capacity") == 0;
  args.push_back(nullptr);
  const int n = static_cast<int>(args.size()) - 1;
  try {
    return libihsm ? ihsm::bench::run_libihsm(n, args.data())
                   : ihsm::bench::run_compare(n, args.data());
  } catch (const ihsm::bench::Fatal&) {
    return 1;
  }
}
