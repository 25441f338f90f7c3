// Helpers for tests that reach a real ihsmd through libihsm
// (include/ihsm/client.h).
#pragma once

#include <openssl/pem.h>
#include <openssl/x509.h>

#include <gtest/gtest.h>

#include <string>

#include "ihsm/client.h"
#include "integration/daemon_fixture.h"

namespace ihsm::test {

// Prints a failed Result's status name and detail.
template <typename T>
::testing::AssertionResult is_ok(const Result<T>& r) {
  if (r.ok()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << status_name(r.status()) << ": " << r.detail().message;
}

template <typename T>
::testing::AssertionResult has_status(const Result<T>& r, Status expected) {
  if (r.status() == expected) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "expected " << status_name(expected) << ", got "
                                       << status_name(r.status()) << ": " << r.detail().message;
}

#define ASSERT_OK(expr) ASSERT_TRUE(::ihsm::test::is_ok(expr))
#define EXPECT_OK(expr) EXPECT_TRUE(::ihsm::test::is_ok(expr))
#define EXPECT_STATUS(expr, status) EXPECT_TRUE(::ihsm::test::has_status((expr), (status)))
#define ASSERT_STATUS(expr, status) ASSERT_TRUE(::ihsm::test::has_status((expr), (status)))

// The usage and sensitivity bits a caller chooses (sign ... extractable).
// The device may report further bits it sets itself (PKCS#11 attributes
// such as always-sensitive); tests compare only these.
constexpr uint32_t kCallerBits = (1u << 9) - 1;
inline uint32_t caller_bits(uint32_t flags) { return flags & kCallerBits; }

constexpr const char* kOfficerPin = "officer-pin-0000";
constexpr const char* kUserPin = "user-pin-1111";

inline KeyTemplate tmpl(uint32_t flags, std::string label = "", Bytes id = {}) {
  KeyTemplate t;
  t.flags = flags;
  t.label = std::move(label);
  t.id = std::move(id);
  return t;
}

// Explicit flags everywhere: the defaults are the device's to choose.
inline KeyTemplate sign_private(std::string label = "") {
  return tmpl(usage::kSign | usage::kSensitive, std::move(label));
}
inline KeyTemplate verify_public(std::string label = "") {
  return tmpl(usage::kVerify, std::move(label));
}
inline KeyTemplate aes_flags(std::string label = "") {
  return tmpl(usage::kEncrypt | usage::kDecrypt | usage::kSensitive, std::move(label));
}

inline KeyQuery query(std::optional<std::string> label, std::optional<Bytes> id = std::nullopt,
                      std::optional<ObjectClass> object_class = std::nullopt) {
  KeyQuery q;
  q.label = std::move(label);
  q.id = std::move(id);
  q.object_class = object_class;
  return q;
}

class LibTest : public DaemonTest {
 protected:
  Client connect() {
    auto c = Client::connect(socket_path());
    if (!c) throw std::runtime_error("connect: " + std::string(status_name(c.status())));
    return std::move(c).value();
  }

  // A partition with both PINs set.
  PartitionInfo make_partition(Client& c, const std::string& name, const char* user_pin = kUserPin,
                               uint32_t max_sessions = 0) {
    PartitionOptions o;
    o.name = name;
    o.max_sessions = max_sessions;
    SecretPin officer(kOfficerPin);
    SecretPin user(user_pin == nullptr ? "" : user_pin);
    auto r = c.create_partition(o, officer, user_pin == nullptr ? nullptr : &user);
    if (!r) {
      throw std::runtime_error("create_partition " + name + ": " +
                               std::string(status_name(r.status())) + " " + r.detail().message);
    }
    return std::move(r).value();
  }

  Session open(Client& c, PartitionId p) {
    auto s = c.open_session(p);
    if (!s) throw std::runtime_error("open_session: " + std::string(status_name(s.status())));
    return std::move(s).value();
  }

  Session login(Client& c, PartitionId p, Role role = Role::kCryptoUser,
                const char* pin = nullptr) {
    Session s = open(c, p);
    if (pin == nullptr) pin = role == Role::kCryptoOfficer ? kOfficerPin : kUserPin;
    auto r = s.login(role, SecretPin(pin));
    if (!r) throw std::runtime_error("login: " + std::string(status_name(r.status())));
    return s;
  }

  PartitionInfo info_of(Client& c, PartitionId id) {
    auto list = c.list_partitions();
    if (!list) throw std::runtime_error("list_partitions failed");
    for (auto& p : list.value()) {
      if (p.id == id) return p;
    }
    throw std::runtime_error("partition " + std::to_string(id) + " not listed");
  }
};

// A DER certificate as PEM (for verifiers and `openssl verify`).
inline std::string pem_of_cert(const Bytes& der) {
  const unsigned char* p = der.data();
  X509* cert = d2i_X509(nullptr, &p, static_cast<long>(der.size()));
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(bio, cert);
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  std::string pem(data, static_cast<size_t>(n));
  BIO_free(bio);
  X509_free(cert);
  return pem;
}

// One partition with a user logged in on it: the usual start of a test.
class LibSessionTest : public LibTest {
 protected:
  virtual std::string partition_name() const { return "test"; }
  void SetUp() override {
    LibTest::SetUp();
    if (HasFatalFailure()) return;
    client_ = std::make_unique<Client>(connect());
    partition_ = make_partition(*client_, partition_name()).id;
    session_ = std::make_unique<Session>(login(*client_, partition_));
  }
  void TearDown() override {
    session_.reset();
    client_.reset();
    LibTest::TearDown();
  }
  Session& s() { return *session_; }

  std::unique_ptr<Client> client_;
  PartitionId partition_ = 0;
  std::unique_ptr<Session> session_;
};

}  // namespace ihsm::test
