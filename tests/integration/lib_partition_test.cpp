// Partitions through libihsm: owner administration, listing, binding to
// a uid, and what a caller who is not the owner may do (root only).
#include <grp.h>
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <set>

#include "integration/lib_fixture.h"
#include "support/ossl.h"

namespace ihsm::test {
namespace {

class LibPartition : public LibTest {};

TEST_F(LibPartition, DeviceInfo) {
  Client c = connect();
  auto info = c.device_info();
  ASSERT_OK(info);
  EXPECT_EQ(info->protocol_revision, 1u);
  EXPECT_EQ(info->state, "operational");
  EXPECT_FALSE(info->firmware_version.empty());
  EXPECT_TRUE(info->caller_is_owner);
  EXPECT_EQ(info->partition_count, 0u);
  auto id = ossl::load_spki(info->identity_public_key);
  auto tr = ossl::load_spki(info->pin_transport_public_key);
  ASSERT_TRUE(id && tr);
  EXPECT_EQ(ossl::group_of(id.get()), "secp384r1");
  EXPECT_EQ(ossl::group_of(tr.get()), "secp384r1");
  make_partition(c, "one");
  EXPECT_EQ(c.device_info()->partition_count, 1u);
}

TEST_F(LibPartition, CreateListDelete) {
  Client c = connect();
  const PartitionInfo a = make_partition(c, "alpha");
  const PartitionInfo b = make_partition(c, "beta", nullptr, 7);
  EXPECT_EQ(a.name, "alpha");
  EXPECT_TRUE(a.user_pin_set);
  EXPECT_FALSE(b.user_pin_set);
  EXPECT_EQ(a.max_sessions, 64u);  // the daemon default
  EXPECT_EQ(b.max_sessions, 7u);
  EXPECT_EQ(a.open_sessions, 0u);
  EXPECT_FALSE(a.user_pin_locked);
  EXPECT_FALSE(a.officer_pin_locked);
  EXPECT_FALSE(a.bound_uid.has_value());
  EXPECT_NE(a.id, b.id);
  // Each partition has its own P-384 identity, distinct from the device's.
  auto key = ossl::load_spki(a.identity_public_key);
  ASSERT_TRUE(key);
  EXPECT_EQ(ossl::group_of(key.get()), "secp384r1");
  EXPECT_NE(a.identity_public_key, b.identity_public_key);
  EXPECT_NE(a.identity_public_key, c.device_info()->identity_public_key);

  auto list = c.list_partitions();
  ASSERT_OK(list);
  ASSERT_EQ(list->size(), 2u);
  std::set<std::string> names;
  for (const auto& p : *list) names.insert(p.name);
  EXPECT_EQ(names, (std::set<std::string>{"alpha", "beta"}));
  auto found = c.find_partition("beta");
  ASSERT_OK(found);
  EXPECT_EQ(found->id, b.id);
  EXPECT_EQ(found->identity_public_key, b.identity_public_key);
  EXPECT_STATUS(c.find_partition("gamma"), Status::kNoSuchPartition);

  // Names are unique.
  PartitionOptions dup;
  dup.name = "alpha";
  EXPECT_STATUS(c.create_partition(dup, SecretPin(kOfficerPin)), Status::kPartitionExists);

  ASSERT_OK(c.delete_partition(a.id));
  list = c.list_partitions();
  ASSERT_OK(list);
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ(list->front().name, "beta");
  EXPECT_STATUS(c.delete_partition(a.id), Status::kNoSuchPartition);
  EXPECT_STATUS(c.open_session(a.id), Status::kNoSuchPartition);
  // The name is free again, under a new id.
  const PartitionInfo again = make_partition(c, "alpha");
  EXPECT_NE(again.id, a.id);
}

TEST_F(LibPartition, DeletingAPartitionEndsItsSessions) {
  Client c = connect();
  const PartitionInfo p = make_partition(c, "doomed");
  Session s = login(c, p.id);
  auto key = s.generate_aes_key(256, aes_flags());
  ASSERT_OK(key);
  ASSERT_OK(c.delete_partition(p.id));
  EXPECT_STATUS(s.role(), Status::kInvalidSession);
  EXPECT_STATUS(s.encrypt_gcm(*key, Bytes(16, 1), {}), Status::kInvalidSession);
}

TEST_F(LibPartition, CreateChecksItsArguments) {
  Client c = connect();
  PartitionOptions o;
  o.name = "";
  EXPECT_STATUS(c.create_partition(o, SecretPin(kOfficerPin)), Status::kInvalidArgument);
  o.name = std::string(65, 'x');
  EXPECT_STATUS(c.create_partition(o, SecretPin(kOfficerPin)), Status::kInvalidArgument);
  o.name = std::string(64, 'x');
  EXPECT_OK(c.create_partition(o, SecretPin(kOfficerPin)));
  o.name = "short-pin";
  EXPECT_STATUS(c.create_partition(o, SecretPin("123")), Status::kPinInvalid);
}

// Runs `body` in a child that has dropped to uid/gid 65534 (nobody);
// returns the child's exit code (0 = every check passed).
template <typename F>
int as_nobody(F&& body) {
  std::fflush(stdout);
  std::fflush(stderr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    if (::setgroups(0, nullptr) != 0 || ::setgid(65534) != 0 || ::setuid(65534) != 0) _exit(90);
    int rc = 91;
    try {
      rc = body();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "child: %s\n", e.what());
      rc = 92;
    }
    std::fflush(stderr);
    _exit(rc);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 100 + WTERMSIG(status);
}

TEST_F(LibPartition, NonOwnerAndBoundPartitions) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to act as another uid";
  Client c = connect();
  const PartitionInfo open_to_all = make_partition(c, "open");
  PartitionOptions o;
  o.name = "bound-1234";
  o.bound_uid = 1234;
  auto other = c.create_partition(o, SecretPin(kOfficerPin), nullptr);
  ASSERT_OK(other);
  EXPECT_EQ(other->bound_uid, 1234u);
  o.name = "bound-nobody";
  o.bound_uid = 65534;
  SecretPin user(kUserPin);
  auto mine = c.create_partition(o, SecretPin(kOfficerPin), &user);
  ASSERT_OK(mine);
  const PartitionId other_id = other->id, mine_id = mine->id, open_id = open_to_all.id;
  // The owner is not exempt from a binding either.
  EXPECT_STATUS(c.open_session(other_id), Status::kPartitionAccessDenied);

  const std::string sock = socket_path();
  const int rc = as_nobody([&]() -> int {
    auto nc = Client::connect(sock);
    if (!nc) return 1;
    auto info = nc->device_info();
    if (!info || info->caller_is_owner) return 2;
    PartitionOptions evil;
    evil.name = "evil";
    if (nc->create_partition(evil, SecretPin(kOfficerPin)).status() != Status::kNotOwner) return 3;
    if (nc->delete_partition(open_id).status() != Status::kNotOwner) return 4;
    if (nc->unlock_officer(open_id).status() != Status::kNotOwner) return 5;
    if (nc->open_session(other_id).status() != Status::kPartitionAccessDenied) return 6;
    auto list = nc->list_partitions();
    if (!list) return 7;
    std::set<PartitionId> seen;
    for (const auto& p : *list) seen.insert(p.id);
    if (seen != std::set<PartitionId>{open_id, mine_id}) return 8;
    // Its own partition works end to end.
    auto s = nc->open_session(mine_id);
    if (!s) return 9;
    if (!s->login(Role::kCryptoUser, SecretPin(kUserPin))) return 10;
    auto pair = s->generate_ec_key_pair(Curve::kP256, verify_public(), sign_private());
    if (!pair) return 11;
    auto sig = s->sign(pair->private_handle, Mechanism::kEcdsaSha256, Bytes(10, 1));
    if (!sig) return 12;
    auto spki = s->public_key(pair->public_handle);
    if (!spki || !ossl::verify_ecdsa_raw(*spki, EVP_sha256(), Bytes(10, 1), *sig)) return 13;
    return 0;
  });
  EXPECT_EQ(rc, 0) << "check " << rc << " failed in the unprivileged child";
  // Nothing changed for the owner.
  auto list = c.list_partitions();
  ASSERT_OK(list);
  EXPECT_EQ(list->size(), 3u);
}

}  // namespace
}  // namespace ihsm::test
