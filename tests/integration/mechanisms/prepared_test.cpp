// Prepared per-key contexts (issue 8, src/device/crypto/prepared.h): the
// device keeps keyed AES-GCM and HMAC contexts between operations. One key
// used from several connections at once must still give results that
// OpenSSL, with the key's known value, agrees with; and a reused context
// must keep nothing from the operations before it (a wrong tag fails
// after any number of good ones).
#include <atomic>
#include <set>
#include <thread>

#include "integration/mechanisms/mech_fixture.h"

namespace ihsm::test::mech {
namespace {

using namespace usage;

class MechPrepared : public MechTest {
 protected:
  // A token key (visible to every connection of the partition) holding a
  // known value, imported through the BYOK key.
  static KeyHandle import_token(const Bytes& value, KeyType type, uint32_t flags) {
    NewKeySpec spec = secret_spec(type, flags, static_cast<uint32_t>(value.size()));
    spec.tmpl.token = true;
    const Bytes wrapped =
        ref::oaep_encrypt(importer().pub.get(), Mechanism::kSha256, Mechanism::kSha256, {}, value);
    auto k = s().unwrap_key(importer().pair.private_handle, Mechanism::kRsaPkcsOaep, wrapped, spec,
                            oaep(Mechanism::kSha256, Mechanism::kSha256));
    if (!k) throw std::runtime_error("unwrap: " + std::string(status_name(k.status())));
    return *k;
  }

  // `threads` sessions, each on its own connection.
  static std::vector<Session> sessions(int threads) {
    std::vector<Session> out;
    for (int t = 0; t < threads; ++t) {
      auto session = device().login_on_new_connection(Role::kCryptoUser);
      if (!session)
        throw std::runtime_error("login: " + std::string(status_name(session.status())));
      out.push_back(std::move(session).value());
    }
    return out;
  }
};

TEST_F(MechPrepared, OneGcmKeyFromFourConnectionsAtOnce) {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 200;
  const Bytes key = pattern(32, 0x21);
  const KeyHandle k = import_token(key, KeyType::kAes, kEncrypt | kDecrypt | kSensitive);
  std::vector<Session> users = sessions(kThreads);
  struct Sealed {
    Bytes plain, aad, iv, ct, tag;
  };
  std::vector<std::vector<Sealed>> results(kThreads);
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      Session& session = users[static_cast<size_t>(t)];
      for (int i = 0; i < kPerThread; ++i) {
        Sealed r;
        r.plain =
            pattern(static_cast<size_t>(1 + (i * 7) % 1024), static_cast<uint8_t>(t * 50 + i));
        r.aad = pattern(static_cast<size_t>(i % 5), static_cast<uint8_t>(t));
        auto ct = session.encrypt(k, cipher(Mechanism::kAesGcm, std::nullopt, r.aad), r.plain);
        if (!ct) {
          ++failures;
          continue;
        }
        r.iv = ct->iv;
        r.ct = ct->data;
        r.tag = ct->tag;
        // Every other one straight back through the device.
        if (i % 2 == 0) {
          auto pt = session.decrypt(k, cipher(Mechanism::kAesGcm, r.iv, r.aad), r.ct, r.tag);
          if (!pt || *pt != r.plain) ++failures;
        }
        results[static_cast<size_t>(t)].push_back(std::move(r));
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  // Independently: OpenSSL with the key's value opens every ciphertext,
  // and the device drew no IV twice.
  std::set<Bytes> ivs;
  size_t checked = 0;
  for (const auto& per_thread : results) {
    for (const Sealed& r : per_thread) {
      const auto opened = ref::gcm_open(key, r.iv, r.aad, r.ct, r.tag);
      ASSERT_TRUE(opened.has_value()) << "ciphertext " << checked << " does not open";
      EXPECT_EQ(*opened, r.plain);
      EXPECT_TRUE(ivs.insert(r.iv).second) << "IV drawn twice: " << to_hex(r.iv);
      ++checked;
    }
  }
  EXPECT_EQ(checked, size_t{kThreads * kPerThread});
}

TEST_F(MechPrepared, OneHmacKeyFromFourConnectionsAtOnce) {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 200;
  const Bytes key = pattern(32, 0x42);
  const KeyHandle k = import_token(key, KeyType::kGenericSecret, kSign | kVerify | kSensitive);
  std::vector<Session> users = sessions(kThreads);
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      Session& session = users[static_cast<size_t>(t)];
      for (int i = 0; i < kPerThread; ++i) {
        const Mechanism m = i % 3 == 0   ? Mechanism::kSha256Hmac
                            : i % 3 == 1 ? Mechanism::kSha384Hmac
                                         : Mechanism::kSha512Hmac;
        const Mechanism h = i % 3 == 0   ? Mechanism::kSha256
                            : i % 3 == 1 ? Mechanism::kSha384
                                         : Mechanism::kSha512;
        const Bytes data = pattern(static_cast<size_t>(i), static_cast<uint8_t>(t + i));
        auto mac = session.sign(k, m, data, {});
        if (!mac || *mac != ref::hmac(h, key, data)) ++failures;
        if (mac && !session.verify(k, m, data, *mac)) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
}

TEST_F(MechPrepared, AWrongTagAfterManyGoodDecryptionsStillFails) {
  const Bytes key = pattern(16, 0x63), iv = pattern(12, 0x64), aad = to_bytes("aad"),
              plain = pattern(1024, 0x65);
  const KeyHandle k = import_aes(key);
  const Bytes sealed = ossl::gcm_seal(key, iv, aad, plain);
  const Bytes ct(sealed.begin(), sealed.end() - 16), tag(sealed.end() - 16, sealed.end());
  for (int i = 0; i < 300; ++i) {
    auto pt = s().decrypt(k, cipher(Mechanism::kAesGcm, iv, aad), ct, tag);
    MECH_ASSERT_OK(pt);
    ASSERT_EQ(*pt, plain);
  }
  Bytes bad_tag = tag;
  bad_tag[0] ^= 0x01;
  MECH_EXPECT_STATUS(s().decrypt(k, cipher(Mechanism::kAesGcm, iv, aad), ct, bad_tag),
                     Status::kTagMismatch);
  MECH_EXPECT_STATUS(s().decrypt(k, cipher(Mechanism::kAesGcm, iv, to_bytes("aaD")), ct, tag),
                     Status::kTagMismatch);
  // And the key still works after the failures.
  auto pt = s().decrypt(k, cipher(Mechanism::kAesGcm, iv, aad), ct, tag);
  MECH_ASSERT_OK(pt);
  EXPECT_EQ(*pt, plain);
}

TEST_F(MechPrepared, AWrongMacAfterManyGoodOnesStillFails) {
  const Bytes key = pattern(32, 0x71), data = to_bytes("message");
  const KeyHandle k = import(key, KeyType::kGenericSecret, kSign | kVerify | kSensitive);
  const Bytes mac = ref::hmac(Mechanism::kSha256, key, data);
  for (int i = 0; i < 300; ++i) MECH_ASSERT_OK(s().verify(k, Mechanism::kSha256Hmac, data, mac));
  Bytes bad = mac;
  bad[31] ^= 0x01;
  MECH_EXPECT_STATUS(s().verify(k, Mechanism::kSha256Hmac, data, bad), Status::kSignatureInvalid);
  MECH_EXPECT_STATUS(s().verify(k, Mechanism::kSha256Hmac, to_bytes("messagE"), mac),
                     Status::kSignatureInvalid);
  MECH_EXPECT_OK(s().verify(k, Mechanism::kSha256Hmac, data, mac));
}

}  // namespace
}  // namespace ihsm::test::mech
