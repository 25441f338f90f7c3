// The power-on self-tests (src/device/fips/self_tests.h) in the production
// build: every test passes, quickly, and the table is complete; the DRBG
// known-answer procedure and the continuous test of random_bytes.
#include <gtest/gtest.h>

#include <set>
#include <thread>

#include "device/crypto/backend.h"
#include "device/fips/fault.h"
#include "device/fips/self_tests.h"
#include "device/fips/state.h"
#include "kat_util.h"

namespace ihsm::device::fips {
namespace {

using namespace ihsm::crypto_test;

// The production build has no fault hook at all.
static_assert(!fault_injected("aes-gcm"));

TEST(SelfTests, EveryTestPassesWellUnderASecond) {
  const SelfTestReport r = run_power_on_self_tests();
  EXPECT_TRUE(r.passed()) << r.first_failure;
  EXPECT_LT(r.elapsed, std::chrono::seconds(1));
  ASSERT_EQ(r.outcomes.size(), self_tests().size());
  for (size_t i = 0; i < r.outcomes.size(); ++i) {
    EXPECT_EQ(r.outcomes[i].name, self_tests()[i].name);
    EXPECT_TRUE(r.outcomes[i].passed) << r.outcomes[i].name;
  }
  EXPECT_TRUE(device_state().operational());
  EXPECT_EQ(device_state().failed_test(), "");
}

TEST(SelfTests, TheTableNamesEachTestOnceWithItsAlgorithmAndSource) {
  std::set<std::string_view> names;
  for (const SelfTest& t : self_tests()) {
    EXPECT_TRUE(names.insert(t.name).second) << t.name;
    EXPECT_FALSE(t.algorithm.empty()) << t.name;
    EXPECT_FALSE(t.source.empty()) << t.name;
    EXPECT_NE(t.run, nullptr) << t.name;
    EXPECT_TRUE(t.run(t.name)) << t.name;
  }
  EXPECT_EQ(names.size(), 21u);
  for (std::string_view c : conditional_tests()) {
    EXPECT_TRUE(names.insert(c).second) << c << " is also a power-on test name";
  }
  // The device report's signature relies on these.
  EXPECT_TRUE(report_signature_relies_on("ecdsa-p384-sha-384"));
  EXPECT_TRUE(report_signature_relies_on("rng-health"));
  EXPECT_FALSE(report_signature_relies_on("aes-gcm"));
  EXPECT_FALSE(report_signature_relies_on("pct-rsa"));
}

// The CAVP vector of the ctr-drbg self-test: any change of input changes
// the output, and the procedure refuses an empty request.
TEST(CtrDrbgKnownAnswer, FollowsItsInputs) {
  const Bytes entropy = hex("92898f31fa1cff6d182f260643dff818"), nonce = hex("c2a4d972c3b9b697"),
              pers = hex("ea65ee60264e7eb60e8268c4373c5c0b"),
              pr1 = hex("20728a06f86f8dd441e272b7c42ce810"),
              add1 = hex("1a40fae3cc6c7ca0f8daba59236dad1d"),
              pr2 = hex("3db0f094f305503317863e2208f7a501"),
              add2 = hex("9f72766cc746e5ed2e532012bc59318c");
  const std::string expected =
      "5a3539870f4d22a40924ee71c96fac720ad6f08882d0832873ec3f93d8ab4523"
      "f07eac45145e939fb1d676433db6e80888f6da89087742fe1af43fc423c51f68";
  Bytes out(64);
  ASSERT_EQ(crypto::ctr_drbg_known_answer({entropy, nonce, pers, pr1, add1, pr2, add2}, out),
            Status::kOk);
  EXPECT_EQ(to_hex(out), expected);
  Bytes other_entropy = pr2;
  other_entropy[0] ^= 1;
  ASSERT_EQ(
      crypto::ctr_drbg_known_answer({entropy, nonce, pers, pr1, add1, other_entropy, add2}, out),
      Status::kOk);
  EXPECT_NE(to_hex(out), expected);
  Bytes none;
  EXPECT_EQ(crypto::ctr_drbg_known_answer({entropy, nonce, pers, pr1, add1, pr2, add2}, none),
            Status::kInvalidArgument);
}

TEST(RandomBytes, ConsecutiveOutputsDifferInEveryThreadAndSize) {
  auto draw_many = [] {
    Bytes previous;
    for (size_t n : {1u, 15u, 16u, 17u, 31u, 32u, 100u, 4096u, 65536u, 32u, 32u}) {
      Bytes out(n);
      ASSERT_EQ(crypto::random_bytes(out), Status::kOk) << n;
      if (n == previous.size()) {
        EXPECT_NE(out, previous) << n;
      }
      previous = out;
    }
  };
  draw_many();
  std::thread a(draw_many), b(draw_many);
  a.join();
  b.join();
  Bytes empty;
  EXPECT_EQ(crypto::random_bytes(empty), Status::kOk);
  EXPECT_TRUE(device_state().operational());
}

}  // namespace
}  // namespace ihsm::device::fips
