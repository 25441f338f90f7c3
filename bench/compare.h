// The default mode of ihsm-bench: the same workloads on every PKCS#11
// module given (ihsm's and SoftHSMv2's by default) and on raw OpenSSL, in
// one run, alternating systems within each round.
#pragma once

namespace ihsm::bench {

int run_compare(int argc, char** argv);

}  // namespace ihsm::bench
