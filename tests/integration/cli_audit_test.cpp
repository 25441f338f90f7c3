// `ihsm audit show | verify | export` as an operator runs them: exit 0 for
// a valid log, 1 for a tampered one (with reason and seq in the JSON),
// offline verification of an export, and NOT_OWNER for anyone else.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "integration/daemon_fixture.h"
#include "support/sqlite_file.h"
#include "support/util.h"

namespace ihsm::test {
namespace {

using json = nlohmann::json;

class CliAudit : public DaemonTest {
 protected:
  ProcessResult ihsm(const std::vector<std::string>& args,
                     std::optional<uint32_t> as_uid = std::nullopt) {
    std::vector<std::string> argv = {IHSM_CLI_PATH};
    argv.insert(argv.end(), args.begin(), args.end());
    return run_process(argv, {"IHSM_SOCKET=" + socket_path()}, "", std::chrono::seconds(60),
                       as_uid);
  }
};

TEST_F(CliAudit, VerifyExitCodesShowAndExport) {
  ProcessResult r = ihsm({"self-test"});
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  r = ihsm({"--json", "audit", "show"});
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  const json shown = json::parse(r.out);
  ASSERT_GE(shown.at("records").size(), 2u);
  EXPECT_EQ(shown.at("records")[0].at("event"), "boot");

  r = ihsm({"--json", "audit", "verify"});
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  json v = json::parse(r.out);
  EXPECT_EQ(v.at("valid"), true);
  EXPECT_EQ(v.at("root"), "device");

  // An export verifies offline, against the DeviceID certificate given.
  const std::string file = dir().file("audit.cbor");
  r = ihsm({"audit", "export", file});
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  const std::string root = dir().file("deviceid.pem");
  std::filesystem::create_directories(dir().file("chain"));
  r = ihsm({"attest", "chain", "--out-dir", dir().file("chain")});
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  std::filesystem::copy_file(dir().file("chain") + "/deviceid.pem", root);
  r = ihsm({"--json", "audit", "verify", "--file", file, "--trust", root});
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_EQ(json::parse(r.out).at("root"), "trusted");

  // The device stopped, one record edited: exit 1, reason and seq.
  ASSERT_TRUE(daemon().stop());
  {
    SqliteFile db(state_dir() + "/objects.db");
    db.exec("UPDATE audit SET uid = 4242 WHERE seq = 2");
  }
  ASSERT_TRUE(daemon().start());
  r = ihsm({"--json", "audit", "verify", "--trust", root});
  ASSERT_EQ(r.exit_code, 1) << r.describe();
  v = json::parse(r.out);
  EXPECT_EQ(v.at("valid"), false);
  EXPECT_EQ(v.at("reason"), "edited");
  EXPECT_EQ(v.at("seq"), 2);
  // The export made before is still valid on its own.
  r = ihsm({"audit", "verify", "--file", file, "--trust", root});
  EXPECT_EQ(r.exit_code, 0) << r.describe();
}

TEST_F(CliAudit, OnlyTheOwnerReadsTheLog) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to run the CLI as another uid";
  const ProcessResult probe = ihsm({"--help"}, 65534);
  if (probe.exit_code == 127 || probe.exit_code == 126) {
    GTEST_SKIP() << "the ihsm binary is not reachable for uid 65534";
  }
  for (const auto& args :
       {std::vector<std::string>{"audit", "show"}, std::vector<std::string>{"audit", "verify"},
        std::vector<std::string>{"audit", "rotate"}}) {
    const ProcessResult r = ihsm(args, 65534);
    EXPECT_EQ(r.exit_code, 1) << r.describe();
    EXPECT_NE(r.err.find("NOT_OWNER"), std::string::npos) << r.describe();
  }
}

}  // namespace
}  // namespace ihsm::test
