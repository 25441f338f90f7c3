// Multi-part encryption, decryption and digests: odd-sized chunks give the
// one-shot result, GCM decryption releases nothing before the tag checks
// out, and the per-session operation state machine answers
// OPERATION_ACTIVE / OPERATION_NOT_INITIALIZED as documented.
#include "integration/mechanisms/mech_fixture.h"

namespace ihsm::test::mech {
namespace {

using namespace usage;

class MechMultiPart : public MechTest {
 protected:
  // Each test runs its operations in a fresh session of the suite's
  // connection, so an operation left open by a failure stays in it.
  void SetUp() override {
    MechTest::SetUp();
    if (HasFatalFailure()) return;
    auto session = device().login(Role::kCryptoUser);
    ASSERT_TRUE(is_ok(session));
    session_ = std::make_unique<Session>(std::move(session).value());
  }
  void TearDown() override {
    session_.reset();
    MechTest::TearDown();
  }
  Session& op() { return *session_; }
  std::unique_ptr<Session> session_;
};

// Splits `data` into chunks of the given sizes, cycling through them.
std::vector<Bytes> chunks(const Bytes& data, std::initializer_list<size_t> sizes) {
  std::vector<Bytes> out;
  size_t at = 0;
  while (at < data.size()) {
    for (size_t n : sizes) {
      if (at >= data.size()) break;
      const size_t take = std::min(n, data.size() - at);
      out.emplace_back(data.begin() + static_cast<ptrdiff_t>(at),
                       data.begin() + static_cast<ptrdiff_t>(at + take));
      at += take;
    }
  }
  return out;
}

constexpr std::initializer_list<size_t> kOdd = {1, 7, 15, 16, 17, 0, 3, 33};

TEST_F(MechMultiPart, EncryptInOddChunksEqualsOneShot) {
  const Bytes key = pattern(32, 0x0a);
  const KeyHandle k = import_aes(key);
  const Bytes iv16 = pattern(16, 0x0b), iv12 = pattern(12, 0x0c), aad = to_bytes("multi aad");
  const struct {
    Mechanism m;
    size_t length;
  } cases[] = {{Mechanism::kAesCbc, 96},
               {Mechanism::kAesCbcPad, 100},
               {Mechanism::kAesCbcPad, 96},
               {Mechanism::kAesCtr, 100},
               {Mechanism::kAesGcm, 100}};
  for (const auto& c : cases) {
    SCOPED_TRACE(std::string(mechanism_name(c.m)) + " " + std::to_string(c.length));
    const Bytes plain = pattern(c.length, 0x0d);
    const bool gcm = c.m == Mechanism::kAesGcm;
    const CipherSpec spec = gcm ? cipher(c.m, iv12, aad) : cipher(c.m, iv16);
    auto one_shot = op().encrypt(k, spec, plain);
    MECH_ASSERT_OK(one_shot);

    auto iv = op().encrypt_init(k, spec);
    MECH_ASSERT_OK(iv);
    EXPECT_EQ(*iv, gcm ? iv12 : iv16);
    Bytes streamed;
    for (const Bytes& part : chunks(plain, kOdd)) {
      auto out = op().encrypt_update(part);
      MECH_ASSERT_OK(out);
      streamed = concat(streamed, *out);
    }
    auto fin = op().encrypt_final();
    MECH_ASSERT_OK(fin);
    streamed = concat(streamed, fin->data);
    EXPECT_EQ(streamed, one_shot->data);
    if (gcm) {
      EXPECT_EQ(fin->tag, one_shot->tag);
      EXPECT_EQ(concat(streamed, fin->tag), ossl::gcm_seal(key, iv12, aad, plain));
    } else if (c.m == Mechanism::kAesCtr) {
      EXPECT_EQ(streamed, ref::ctr(key, iv16, plain));
    } else {
      EXPECT_EQ(streamed, ref::cbc(true, c.m == Mechanism::kAesCbcPad, key, iv16, plain));
    }
  }
}

TEST_F(MechMultiPart, GcmWithDeviceIvInChunksOpensWithOpenSsl) {
  const Bytes key = pattern(16, 0x1a);
  const KeyHandle k = import_aes(key);
  const Bytes aad = to_bytes("device iv"), plain = pattern(77, 0x1b);
  auto iv = op().encrypt_init(k, cipher(Mechanism::kAesGcm, std::nullopt, aad));
  MECH_ASSERT_OK(iv);
  ASSERT_EQ(iv->size(), 12u);
  EXPECT_TRUE(op().last_approved());
  Bytes ct;
  for (const Bytes& part : chunks(plain, {5, 11, 32})) ct = concat(ct, *op().encrypt_update(part));
  auto fin = op().encrypt_final();
  MECH_ASSERT_OK(fin);
  EXPECT_TRUE(op().last_approved());
  ct = concat(ct, fin->data);
  EXPECT_EQ(ref::gcm_open(key, *iv, aad, ct, fin->tag), plain);
}

TEST_F(MechMultiPart, DecryptInOddChunks) {
  const Bytes key = pattern(24, 0x2a);
  const KeyHandle k = import_aes(key);
  const Bytes iv16 = pattern(16, 0x2b);
  const struct {
    Mechanism m;
    Bytes ct;
    Bytes plain;
  } cases[] = {
      {Mechanism::kAesCbc, ref::cbc(true, false, key, iv16, pattern(80, 1)), pattern(80, 1)},
      {Mechanism::kAesCbcPad, ref::cbc(true, true, key, iv16, pattern(81, 2)), pattern(81, 2)},
      {Mechanism::kAesCbcPad, ref::cbc(true, true, key, iv16, Bytes{}), Bytes{}},
      {Mechanism::kAesCtr, ref::ctr(key, iv16, pattern(83, 3)), pattern(83, 3)},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(std::string(mechanism_name(c.m)) + " " + std::to_string(c.plain.size()));
    MECH_ASSERT_OK(op().decrypt_init(k, cipher(c.m, iv16)));
    Bytes out;
    for (const Bytes& part : chunks(c.ct, kOdd)) {
      auto p = op().decrypt_update(part);
      MECH_ASSERT_OK(p);
      out = concat(out, *p);
    }
    auto fin = op().decrypt_final();
    MECH_ASSERT_OK(fin);
    EXPECT_EQ(concat(out, *fin), c.plain);
  }
}

// GCM decryption holds the plaintext back until the tag is checked at
// DecryptFinal: no unauthenticated plaintext leaves the device.
TEST_F(MechMultiPart, GcmDecryptReleasesNothingUntilTheTagChecks) {
  const Bytes key = pattern(32, 0x3a), iv = pattern(12, 0x3b), aad = to_bytes("hold back");
  const KeyHandle k = import_aes(key);
  const Bytes plain = pattern(200, 0x3c);
  const Bytes sealed = ossl::gcm_seal(key, iv, aad, plain);
  const Bytes ct(sealed.begin(), sealed.end() - 16), tag(sealed.end() - 16, sealed.end());

  MECH_ASSERT_OK(op().decrypt_init(k, cipher(Mechanism::kAesGcm, iv, aad)));
  for (const Bytes& part : chunks(ct, kOdd)) {
    auto p = op().decrypt_update(part);
    MECH_ASSERT_OK(p);
    EXPECT_TRUE(p->empty()) << "GCM released " << p->size() << " bytes before the tag";
  }
  auto fin = op().decrypt_final(tag);
  MECH_ASSERT_OK(fin);
  EXPECT_EQ(*fin, plain);
  EXPECT_TRUE(op().last_approved());

  // Bad tag: nothing before final, TAG_MISMATCH at final, and the
  // operation is over.
  Bytes bad_tag = tag;
  bad_tag[0] ^= 0xff;
  MECH_ASSERT_OK(op().decrypt_init(k, cipher(Mechanism::kAesGcm, iv, aad)));
  for (const Bytes& part : chunks(ct, {64})) {
    auto p = op().decrypt_update(part);
    MECH_ASSERT_OK(p);
    EXPECT_TRUE(p->empty());
  }
  MECH_EXPECT_STATUS(op().decrypt_final(bad_tag), Status::kTagMismatch);
  MECH_EXPECT_STATUS(op().decrypt_final(tag), Status::kOperationNotInitialized);
  MECH_EXPECT_STATUS(op().decrypt_update(ct), Status::kOperationNotInitialized);

  // A modified ciphertext fails the same way.
  Bytes bad_ct = ct;
  bad_ct[150] ^= 1;
  MECH_ASSERT_OK(op().decrypt_init(k, cipher(Mechanism::kAesGcm, iv, aad)));
  auto p = op().decrypt_update(bad_ct);
  MECH_ASSERT_OK(p);
  EXPECT_TRUE(p->empty());
  MECH_EXPECT_STATUS(op().decrypt_final(tag), Status::kTagMismatch);
}

TEST_F(MechMultiPart, SecondInitIsOperationActive) {
  const Bytes key = pattern(16, 0x4a), iv = pattern(16, 0x4b);
  const KeyHandle k = import_aes(key);
  MECH_ASSERT_OK(op().encrypt_init(k, cipher(Mechanism::kAesCtr, iv)));
  MECH_EXPECT_STATUS(op().encrypt_init(k, cipher(Mechanism::kAesCbc, iv)),
                     Status::kOperationActive);
  // Decryption and digests are separate slots.
  MECH_ASSERT_OK(op().decrypt_init(k, cipher(Mechanism::kAesCtr, iv)));
  MECH_EXPECT_STATUS(op().decrypt_init(k, cipher(Mechanism::kAesCtr, iv)),
                     Status::kOperationActive);
  MECH_ASSERT_OK(op().digest_init(Mechanism::kSha256));
  MECH_EXPECT_STATUS(op().digest_init(Mechanism::kSha384), Status::kOperationActive);
  // The refused init did not disturb the running operations.
  auto c1 = op().encrypt_update(to_bytes("still "));
  auto c2 = op().encrypt_update(to_bytes("running"));
  MECH_ASSERT_OK(c1);
  MECH_ASSERT_OK(c2);
  auto cf = op().encrypt_final();
  MECH_ASSERT_OK(cf);
  const Bytes ct = concat(concat(*c1, *c2), cf->data);
  EXPECT_EQ(ct, ref::ctr(key, iv, to_bytes("still running")));
  auto d = op().decrypt_update(ct);
  MECH_ASSERT_OK(d);
  MECH_ASSERT_OK(op().decrypt_final());
  EXPECT_EQ(*d, to_bytes("still running"));
  MECH_ASSERT_OK(op().digest_update(to_bytes("abc")));
  auto h = op().digest_final();
  MECH_ASSERT_OK(h);
  EXPECT_EQ(*h, ossl::digest(EVP_sha256(), to_bytes("abc")));
  // Operations belong to a session: another session may run its own.
  MECH_ASSERT_OK(op().encrypt_init(k, cipher(Mechanism::kAesCtr, iv)));
  MECH_EXPECT_OK(s().encrypt_init(k, cipher(Mechanism::kAesCtr, iv)));
  MECH_EXPECT_OK(s().encrypt_final());
  MECH_EXPECT_OK(op().encrypt_final());
}

TEST_F(MechMultiPart, UpdateOrFinalWithoutInitIsNotInitialized) {
  MECH_EXPECT_STATUS(op().encrypt_update(Bytes(16, 1)), Status::kOperationNotInitialized);
  MECH_EXPECT_STATUS(op().encrypt_final(), Status::kOperationNotInitialized);
  MECH_EXPECT_STATUS(op().decrypt_update(Bytes(16, 1)), Status::kOperationNotInitialized);
  MECH_EXPECT_STATUS(op().decrypt_final(), Status::kOperationNotInitialized);
  MECH_EXPECT_STATUS(op().digest_update(Bytes(16, 1)), Status::kOperationNotInitialized);
  MECH_EXPECT_STATUS(op().digest_final(), Status::kOperationNotInitialized);
  // After a final the operation is gone.
  const KeyHandle k = import_aes(pattern(16, 0x5a));
  MECH_ASSERT_OK(op().encrypt_init(k, cipher(Mechanism::kAesCbcPad, Bytes(16, 0))));
  MECH_ASSERT_OK(op().encrypt_final());
  MECH_EXPECT_STATUS(op().encrypt_update(Bytes(1, 1)), Status::kOperationNotInitialized);
  // An error ends the operation (PKCS#11): CBC with a partial block.
  MECH_ASSERT_OK(op().encrypt_init(k, cipher(Mechanism::kAesCbc, Bytes(16, 0))));
  MECH_ASSERT_OK(op().encrypt_update(Bytes(5, 1)));
  MECH_EXPECT_STATUS(op().encrypt_final(), Status::kDataLengthInvalid);
  MECH_EXPECT_STATUS(op().encrypt_update(Bytes(11, 1)), Status::kOperationNotInitialized);
  // A failed init leaves no operation behind.
  MECH_EXPECT_STATUS(op().encrypt_init(k, cipher(Mechanism::kAesCbc, Bytes(8, 0))),
                     Status::kMechanismParamInvalid);
  MECH_EXPECT_STATUS(op().encrypt_update(Bytes(16, 1)), Status::kOperationNotInitialized);
  // Multi-part CTR runs the full 128-bit counter only.
  CipherSpec narrow = cipher(Mechanism::kAesCtr, Bytes(16, 0));
  narrow.params.counter_bits = 32;
  MECH_EXPECT_STATUS(op().encrypt_init(k, narrow), Status::kMechanismParamInvalid);
  // Only AES modes stream.
  MECH_EXPECT_STATUS(op().digest_init(Mechanism::kSha256Hmac), Status::kMechanismInvalid);
}

TEST_F(MechMultiPart, DigestInChunksEqualsOneShot) {
  const Bytes data = pattern(300 * 1024 + 13, 0x6a);
  for (Mechanism m : {Mechanism::kSha256, Mechanism::kSha384, Mechanism::kSha512}) {
    SCOPED_TRACE(mechanism_name(m));
    auto one = op().digest(m, data);
    MECH_ASSERT_OK(one);
    EXPECT_EQ(*one, ossl::digest(ref::md_of(m), data));
    MECH_ASSERT_OK(op().digest_init(m));
    for (const Bytes& part : chunks(data, {1, 127, 128, 129, 65536, 0, 100000})) {
      MECH_ASSERT_OK(op().digest_update(part));
    }
    auto multi = op().digest_final();
    MECH_ASSERT_OK(multi);
    EXPECT_EQ(*multi, *one);
    EXPECT_TRUE(op().last_approved());
  }
}

// Device-drawn GCM IVs are SP 800-38D's deterministic construction: one
// 64-bit fixed field per key incarnation, then a 32-bit counter. Consecutive IVs of one key share
// the fixed field and count up by one, across one-shot and multi-part calls and GCM wraps, so no
// two can ever collide (random IVs would only make a collision unlikely).
TEST_F(MechMultiPart, DeviceGcmIvsNeverRepeatUnderOneKey) {
  const KeyHandle k = import_aes(pattern(32, 0x2a));
  std::vector<Bytes> ivs;
  for (int i = 0; i < 3; ++i) {
    auto one = op().encrypt(k, cipher(Mechanism::kAesGcm, std::nullopt, {}), pattern(8, 0x2b));
    MECH_ASSERT_OK(one);
    ivs.push_back(one->iv);
    auto iv = op().encrypt_init(k, cipher(Mechanism::kAesGcm, std::nullopt, {}));
    MECH_ASSERT_OK(iv);
    MECH_ASSERT_OK(op().encrypt_final());
    ivs.push_back(*iv);
  }
  auto counter = [](const Bytes& iv) {
    uint64_t n = 0;
    for (size_t i = 8; i < 12; ++i) n = (n << 8) | iv[i];
    return n;
  };
  auto fixed = [](const Bytes& iv) { return Bytes(iv.begin(), iv.begin() + 8); };
  for (size_t i = 1; i < ivs.size(); ++i) {
    ASSERT_EQ(ivs[i].size(), 12u);
    EXPECT_EQ(fixed(ivs[i]), fixed(ivs[0])) << i;
    EXPECT_EQ(counter(ivs[i]), counter(ivs[i - 1]) + 1) << i;
  }
  // Another key has its own fixed field, never one handed out before on
  // this device (a durable counter), and starts counting at 0.
  const KeyHandle other = import_aes(pattern(32, 0x2c));
  auto o = op().encrypt(other, cipher(Mechanism::kAesGcm, std::nullopt, {}), pattern(8, 0x2b));
  MECH_ASSERT_OK(o);
  EXPECT_EQ(counter(o->iv), 0u);
  EXPECT_NE(fixed(o->iv), fixed(ivs[0]));
}

}  // namespace
}  // namespace ihsm::test::mech
