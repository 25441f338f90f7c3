#include "device/fips/fault.h"

#ifdef IHSM_FAULT_INJECTION

#include <cstdio>
#include <cstdlib>
#include <string>

namespace ihsm::device::fips {

bool fault_injected(std::string_view name) {
  // Read once: the fault is chosen for the life of the process.
  static const std::string chosen = [] {
    const char* v = std::getenv("IHSM_FAULT_INJECT");
    if (v != nullptr && *v != '\0') {
      std::fprintf(stderr, "ihsmd: FAULT-INJECTION IMAGE: injecting a fault into %s\n", v);
    }
    return std::string(v == nullptr ? "" : v);
  }();
  return !chosen.empty() && chosen == name;
}

}  // namespace ihsm::device::fips

#endif
