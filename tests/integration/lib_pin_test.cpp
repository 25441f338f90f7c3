// Logins, wrong PINs, back-off, lockout and PIN management through
// libihsm against a daemon with a short back-off and a low lockout limit:
//   ihsmd --pin-max-failures 5 --pin-backoff-ms 50 --pin-backoff-max-ms 200
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "integration/lib_fixture.h"

namespace ihsm::test {
namespace {

constexpr uint32_t kMaxFailures = 5;

class LibPin : public LibTest {
 protected:
  std::vector<std::string> daemon_args() const override {
    return {"--pin-max-failures", "5", "--pin-backoff-ms", "50", "--pin-backoff-max-ms", "200"};
  }

  // A login attempt that waits out any back-off first (and says how often
  // it had to).
  Done login_waiting(Session& s, Role role, const char* pin, int* backoffs = nullptr) {
    for (int i = 0; i < 20; ++i) {
      Done r = s.login(role, SecretPin(pin));
      if (r.status() != Status::kPinBackoff) return r;
      if (backoffs != nullptr) ++*backoffs;
      EXPECT_TRUE(r.detail().retry_after_ms.has_value());
      std::this_thread::sleep_for(
          std::chrono::milliseconds(r.detail().retry_after_ms.value_or(50) + 2));
    }
    return {Status::kInternalError};
  }
};

TEST_F(LibPin, UserAndOfficerLogin) {
  Client c = connect();
  const PartitionInfo p = make_partition(c, "p");
  Session s = open(c, p.id);
  ASSERT_OK(s.role());
  EXPECT_EQ(*s.role(), Role::kPublic);
  ASSERT_OK(s.login(Role::kCryptoUser, SecretPin(kUserPin)));
  EXPECT_EQ(*s.role(), Role::kCryptoUser);
  EXPECT_STATUS(s.login(Role::kCryptoOfficer, SecretPin(kOfficerPin)), Status::kAlreadyLoggedIn);
  ASSERT_OK(s.logout());
  EXPECT_EQ(*s.role(), Role::kPublic);
  ASSERT_OK(s.login(Role::kCryptoOfficer, SecretPin(kOfficerPin)));
  EXPECT_EQ(*s.role(), Role::kCryptoOfficer);
  // The PINs are per role: the officer PIN is not the user's.
  Session t = open(c, p.id);
  EXPECT_STATUS(t.login(Role::kCryptoUser, SecretPin(kOfficerPin)), Status::kPinIncorrect);
  EXPECT_STATUS(t.login(Role::kPublic, SecretPin(kUserPin)), Status::kInvalidArgument);
}

// The back-off itself, with a wait long enough (1 s) that a slow disk or
// a loaded machine cannot make it expire before the next attempt arrives.
class LibPinBackoff : public LibPin {
 protected:
  std::vector<std::string> daemon_args() const override {
    return {"--pin-max-failures", "5", "--pin-backoff-ms", "1000", "--pin-backoff-max-ms", "2000"};
  }
};

TEST_F(LibPinBackoff, WrongPinBackoffAndRecovery) {
  Client c = connect();
  const PartitionInfo p = make_partition(c, "p");
  Session s = open(c, p.id);
  // Failures 1 and 2 are free.
  auto r = s.login(Role::kCryptoUser, SecretPin("wrong-pin"));
  ASSERT_STATUS(r, Status::kPinIncorrect);
  ASSERT_TRUE(r.detail().retries_left.has_value());
  EXPECT_EQ(*r.detail().retries_left, kMaxFailures - 1);
  r = s.login(Role::kCryptoUser, SecretPin("wrong-pin"));
  ASSERT_STATUS(r, Status::kPinIncorrect);
  EXPECT_EQ(r.detail().retries_left, kMaxFailures - 2);
  // The third starts a 1 s back-off.
  r = s.login(Role::kCryptoUser, SecretPin("wrong-pin"));
  ASSERT_STATUS(r, Status::kPinIncorrect);
  EXPECT_EQ(r.detail().retries_left, kMaxFailures - 3);
  r = s.login(Role::kCryptoUser, SecretPin(kUserPin));  // even the right PIN must wait
  ASSERT_STATUS(r, Status::kPinBackoff);
  ASSERT_TRUE(r.detail().retry_after_ms.has_value());
  EXPECT_GT(*r.detail().retry_after_ms, 0u);
  EXPECT_LE(*r.detail().retry_after_ms, 1000u);
  // Still waiting a moment later, with less time left.
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  auto r2 = s.login(Role::kCryptoUser, SecretPin(kUserPin));
  ASSERT_STATUS(r2, Status::kPinBackoff);
  EXPECT_LT(*r2.detail().retry_after_ms, *r.detail().retry_after_ms);
  // A refused attempt costs nothing; after the wait the right PIN works
  // and resets the count.
  std::this_thread::sleep_for(std::chrono::milliseconds(*r.detail().retry_after_ms + 5));
  ASSERT_OK(s.login(Role::kCryptoUser, SecretPin(kUserPin)));
  ASSERT_OK(s.logout());
  r = s.login(Role::kCryptoUser, SecretPin("wrong-pin"));
  ASSERT_STATUS(r, Status::kPinIncorrect);
  EXPECT_EQ(r.detail().retries_left, kMaxFailures - 1);
  ASSERT_OK(s.login(Role::kCryptoUser, SecretPin(kUserPin)));
}

// Parallel guesses must not outrun the back-off: however many wrong PINs
// arrive at once, only the free failures plus the one that starts the wait
// are checked; the rest are refused (back-off) without being verified.
TEST_F(LibPinBackoff, ParallelGuessesDoNotOutrunTheBackoff) {
  Client c = connect();
  const PartitionId p = make_partition(c, "p").id;
  constexpr int kGuessers = 8;
  std::vector<Client> clients;
  std::vector<Session> sessions;
  for (int i = 0; i < kGuessers; ++i) clients.push_back(connect());
  for (auto& cl : clients) sessions.push_back(open(cl, p));
  std::vector<Status> results(kGuessers, Status::kInternalError);
  std::vector<std::thread> threads;
  for (int i = 0; i < kGuessers; ++i) {
    threads.emplace_back([&, i] {
      results[i] =
          sessions[i].login(Role::kCryptoUser, SecretPin("guess-" + std::to_string(i))).status();
    });
  }
  for (auto& t : threads) t.join();
  int verified = 0;
  for (int i = 0; i < kGuessers; ++i) {
    const Status s = results[i];
    EXPECT_TRUE(s == Status::kPinIncorrect || s == Status::kPinBackoff || s == Status::kBusy)
        << "guess " << i << ": " << status_name(s);
    if (s == Status::kPinIncorrect || s == Status::kPinLocked) ++verified;
  }
  EXPECT_GE(verified, 1);
  EXPECT_LE(verified, 3) << "failures 1 and 2 are free, the 3rd starts a 1 s wait";
  EXPECT_FALSE(info_of(c, p).user_pin_locked);
}

TEST_F(LibPin, LockoutAndUnlockUser) {
  Client c = connect();
  const PartitionInfo p = make_partition(c, "p");
  Session s = open(c, p.id);
  for (uint32_t i = 1; i < kMaxFailures; ++i) {
    auto r = login_waiting(s, Role::kCryptoUser, "wrong-pin");
    ASSERT_STATUS(r, Status::kPinIncorrect) << "failure " << i;
    EXPECT_EQ(r.detail().retries_left, kMaxFailures - i);
  }
  auto r = login_waiting(s, Role::kCryptoUser, "wrong-pin");
  ASSERT_STATUS(r, Status::kPinLocked);
  // Locked: the right PIN is refused as well, and the list says so.
  EXPECT_STATUS(login_waiting(s, Role::kCryptoUser, kUserPin), Status::kPinLocked);
  EXPECT_TRUE(info_of(c, p.id).user_pin_locked);
  EXPECT_FALSE(info_of(c, p.id).officer_pin_locked);

  // A user cannot unlock, a public session cannot, the officer can.
  Session officer = open(c, p.id);
  EXPECT_STATUS(officer.unlock_user(), Status::kNotLoggedIn);
  ASSERT_OK(officer.login(Role::kCryptoOfficer, SecretPin(kOfficerPin)));
  ASSERT_OK(officer.unlock_user());
  EXPECT_FALSE(info_of(c, p.id).user_pin_locked);
  ASSERT_OK(s.login(Role::kCryptoUser, SecretPin(kUserPin)));
  EXPECT_STATUS(s.unlock_user(), Status::kRoleNotAllowed);
}

TEST_F(LibPin, OfficerLockoutIsUnlockedByTheOwner) {
  Client c = connect();
  const PartitionInfo p = make_partition(c, "p");
  Session s = open(c, p.id);
  for (uint32_t i = 1; i < kMaxFailures; ++i) {
    ASSERT_STATUS(login_waiting(s, Role::kCryptoOfficer, "wrong-pin"), Status::kPinIncorrect);
  }
  ASSERT_STATUS(login_waiting(s, Role::kCryptoOfficer, "wrong-pin"), Status::kPinLocked);
  EXPECT_TRUE(info_of(c, p.id).officer_pin_locked);
  // The user role is unaffected.
  EXPECT_FALSE(info_of(c, p.id).user_pin_locked);
  ASSERT_OK(c.unlock_officer(p.id));
  EXPECT_FALSE(info_of(c, p.id).officer_pin_locked);
  ASSERT_OK(s.login(Role::kCryptoOfficer, SecretPin(kOfficerPin)));
  EXPECT_STATUS(c.unlock_officer(p.id + 100), Status::kNoSuchPartition);
}

TEST_F(LibPin, LockCountersSurviveRestart) {
  PartitionId id = 0;
  {
    Client c = connect();
    id = make_partition(c, "p").id;
    Session s = open(c, id);
    ASSERT_STATUS(s.login(Role::kCryptoUser, SecretPin("wrong-pin")), Status::kPinIncorrect);
    ASSERT_STATUS(s.login(Role::kCryptoUser, SecretPin("wrong-pin")), Status::kPinIncorrect);
  }
  ASSERT_TRUE(restart_daemon());
  {
    Client c = connect();
    Session s = open(c, id);
    // The third failure of the count, not the first.
    auto r = s.login(Role::kCryptoUser, SecretPin("wrong-pin"));
    ASSERT_STATUS(r, Status::kPinIncorrect);
    EXPECT_EQ(r.detail().retries_left, kMaxFailures - 3);
    ASSERT_STATUS(login_waiting(s, Role::kCryptoUser, "wrong-pin"), Status::kPinIncorrect);
    ASSERT_STATUS(login_waiting(s, Role::kCryptoUser, "wrong-pin"), Status::kPinLocked);
  }
  // Killing the daemon does not reset a lock either.
  daemon().kill_hard();
  ASSERT_TRUE(daemon().start());
  {
    Client c = connect();
    EXPECT_TRUE(info_of(c, id).user_pin_locked);
    Session s = open(c, id);
    EXPECT_STATUS(s.login(Role::kCryptoUser, SecretPin(kUserPin)), Status::kPinLocked);
    Session o = login(c, id, Role::kCryptoOfficer);
    ASSERT_OK(o.unlock_user());
  }
  ASSERT_TRUE(restart_daemon());
  {
    Client c = connect();
    EXPECT_FALSE(info_of(c, id).user_pin_locked);
    Session s = open(c, id);
    EXPECT_OK(s.login(Role::kCryptoUser, SecretPin(kUserPin)));
  }
}

TEST_F(LibPin, SetPinReplacesTheOldPin) {
  Client c = connect();
  const PartitionInfo p = make_partition(c, "p");
  Session s = open(c, p.id);
  EXPECT_STATUS(s.set_pin(SecretPin(kUserPin), SecretPin("new-user-pin")), Status::kNotLoggedIn);
  ASSERT_OK(s.login(Role::kCryptoUser, SecretPin(kUserPin)));
  // A wrong old PIN is refused (and counts like a failed login).
  auto bad = s.set_pin(SecretPin("not-the-pin"), SecretPin("new-user-pin"));
  ASSERT_STATUS(bad, Status::kPinIncorrect);
  EXPECT_EQ(bad.detail().retries_left, kMaxFailures - 1);
  ASSERT_OK(s.set_pin(SecretPin(kUserPin), SecretPin("new-user-pin")));
  ASSERT_OK(s.logout());
  EXPECT_STATUS(s.login(Role::kCryptoUser, SecretPin(kUserPin)), Status::kPinIncorrect);
  ASSERT_OK(s.login(Role::kCryptoUser, SecretPin("new-user-pin")));
  ASSERT_OK(s.logout());
  // The officer changes its own PIN the same way; the user's is untouched.
  ASSERT_OK(s.login(Role::kCryptoOfficer, SecretPin(kOfficerPin)));
  ASSERT_OK(s.set_pin(SecretPin(kOfficerPin), SecretPin("new-officer-pin")));
  ASSERT_OK(s.logout());
  EXPECT_STATUS(s.login(Role::kCryptoOfficer, SecretPin(kOfficerPin)), Status::kPinIncorrect);
  ASSERT_OK(s.login(Role::kCryptoOfficer, SecretPin("new-officer-pin")));
  Session u = open(c, p.id);
  EXPECT_OK(u.login(Role::kCryptoUser, SecretPin("new-user-pin")));
  // The new PIN survives a restart.
  ASSERT_TRUE(restart_daemon());
  Client c2 = connect();
  Session v = open(c2, p.id);
  EXPECT_OK(v.login(Role::kCryptoUser, SecretPin("new-user-pin")));
}

TEST_F(LibPin, SetPinRejectsBadLengths) {
  Client c = connect();
  const PartitionInfo p = make_partition(c, "p");
  Session s = login(c, p.id);
  EXPECT_STATUS(s.set_pin(SecretPin(kUserPin), SecretPin("123")), Status::kPinInvalid);
  EXPECT_STATUS(s.set_pin(SecretPin(kUserPin), SecretPin(std::string(65, '9'))),
                Status::kPinInvalid);
  ASSERT_OK(s.set_pin(SecretPin(kUserPin), SecretPin(std::string(64, '9'))));
  ASSERT_OK(s.logout());
  EXPECT_OK(s.login(Role::kCryptoUser, SecretPin(std::string(64, '9'))));
}

TEST_F(LibPin, InitUserPinByTheOfficer) {
  Client c = connect();
  const PartitionInfo p = make_partition(c, "p", nullptr);  // no user PIN yet
  EXPECT_FALSE(p.user_pin_set);
  Session user = open(c, p.id);
  EXPECT_STATUS(user.login(Role::kCryptoUser, SecretPin(kUserPin)), Status::kPinNotInitialized);
  EXPECT_STATUS(user.init_user_pin(SecretPin(kUserPin)), Status::kNotLoggedIn);

  Session officer = login(c, p.id, Role::kCryptoOfficer);
  ASSERT_OK(officer.init_user_pin(SecretPin("first-user-pin")));
  EXPECT_TRUE(info_of(c, p.id).user_pin_set);
  ASSERT_OK(user.login(Role::kCryptoUser, SecretPin("first-user-pin")));
  // A user may not set its own PIN this way.
  EXPECT_STATUS(user.init_user_pin(SecretPin("other-pin")), Status::kRoleNotAllowed);
  ASSERT_OK(user.logout());

  // InitUserPin also resets a locked user.
  for (uint32_t i = 1; i < kMaxFailures; ++i) {
    ASSERT_STATUS(login_waiting(user, Role::kCryptoUser, "wrong-pin"), Status::kPinIncorrect);
  }
  ASSERT_STATUS(login_waiting(user, Role::kCryptoUser, "wrong-pin"), Status::kPinLocked);
  ASSERT_OK(officer.init_user_pin(SecretPin("second-user-pin")));
  EXPECT_FALSE(info_of(c, p.id).user_pin_locked);
  EXPECT_STATUS(user.login(Role::kCryptoUser, SecretPin("first-user-pin")), Status::kPinIncorrect);
  EXPECT_OK(user.login(Role::kCryptoUser, SecretPin("second-user-pin")));
}

TEST_F(LibPin, PinLengthLimits) {
  Client c = connect();
  const PartitionInfo p = make_partition(c, "p");
  Session s = open(c, p.id);
  EXPECT_STATUS(s.login(Role::kCryptoUser, SecretPin("123")), Status::kPinInvalid);
  EXPECT_STATUS(s.login(Role::kCryptoUser, SecretPin(std::string(65, 'x'))), Status::kPinInvalid);
  // Not counted as failures.
  auto r = s.login(Role::kCryptoUser, SecretPin("1234"));
  ASSERT_STATUS(r, Status::kPinIncorrect);
  EXPECT_EQ(r.detail().retries_left, kMaxFailures - 1);
}

// Several applications logging in at the same moment with the right PIN
// must all get in. The device runs one PIN check per role at a time (so
// parallel guesses cannot outrun the failure counter), but a concurrent
// correct login is not a guess and must not fail with BUSY.
TEST_F(LibPin, ConcurrentCorrectLoginsAllSucceed) {
  Client c = connect();
  const PartitionId p = make_partition(c, "p").id;
  constexpr int kClients = 4;
  std::vector<Client> clients;
  std::vector<Session> sessions;
  for (int i = 0; i < kClients; ++i) clients.push_back(connect());
  for (auto& cl : clients) sessions.push_back(open(cl, p));
  std::vector<Status> results(kClients, Status::kInternalError);
  std::vector<std::thread> threads;
  for (int i = 0; i < kClients; ++i) {
    threads.emplace_back([&, i] {
      results[i] = sessions[i].login(Role::kCryptoUser, SecretPin(kUserPin)).status();
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < kClients; ++i) {
    EXPECT_EQ(results[i], Status::kOk) << "client " << i << ": " << status_name(results[i]);
  }
}

// `ihsmd --min-pin-length 7` (the approved configuration, security policy
// section 4): every way a new PIN enters is held to it; logins are not.
class LibPinMinimumLength : public LibPin {
 protected:
  std::vector<std::string> daemon_args() const override { return {"--min-pin-length", "7"}; }
};

TEST_F(LibPinMinimumLength, NewPinsShorterThanTheMinimumAreRefused) {
  Client c = connect();
  PartitionOptions o;
  o.name = "short";
  SecretPin six("123456"), seven("1234567"), user(kUserPin);
  EXPECT_STATUS(c.create_partition(o, six, &user), Status::kPinInvalid);
  EXPECT_STATUS(c.create_partition(o, SecretPin(kOfficerPin), &six), Status::kPinInvalid);
  auto p = c.create_partition(o, seven, &user);
  ASSERT_OK(p);
  Session s = open(c, p->id);
  ASSERT_OK(s.login(Role::kCryptoOfficer, SecretPin("1234567")));
  EXPECT_STATUS(s.init_user_pin(SecretPin("abcdef")), Status::kPinInvalid);
  ASSERT_OK(s.init_user_pin(SecretPin("abcdefg")));
  EXPECT_STATUS(s.set_pin(SecretPin("1234567"), SecretPin("654321")), Status::kPinInvalid);
  ASSERT_OK(s.set_pin(SecretPin("1234567"), SecretPin("7654321")));
  ASSERT_OK(s.logout());
  ASSERT_OK(s.login(Role::kCryptoUser, SecretPin("abcdefg")));
}

}  // namespace
}  // namespace ihsm::test
