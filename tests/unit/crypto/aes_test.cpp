// AES: CBC and CTR (SP 800-38A), KW (RFC 3394), KWP (RFC 5649), and the
// multi-part AesStream (GCM test cases of McGrew & Viega, "The Galois/
// Counter Mode of Operation", the vectors SP 800-38D refers to).
#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "device/crypto/algorithms.h"
#include "device/crypto/prepared.h"
#include "kat_util.h"

namespace ihsm::device::crypto {
namespace {

using namespace ihsm::crypto_test;

// ---------------------------------------------------------------- SP 800-38A

// SP 800-38A appendix F: the common plaintext of F.2 and F.5.
const char* kPlain38a =
    "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51"
    "30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710";
const char* kKey128 = "2b7e151628aed2a6abf7158809cf4f3c";
const char* kKey256 = "603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4";
const char* kCbcIv = "000102030405060708090a0b0c0d0e0f";
const char* kCtrBlock = "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff";

struct ModeKat {
  const char* name;
  const char* key;
  const char* cipher;
};

// F.2.1 / F.2.2 CBC-AES128, F.2.5 / F.2.6 CBC-AES256.
const ModeKat kCbc[] = {
    {"F.2.1 CBC-AES128", kKey128,
     "7649abac8119b246cee98e9b12e9197d5086cb9b507219ee95db113a917678b2"
     "73bed6b8e3c1743b7116e69e222295163ff1caa1681fac09120eca307586e1a7"},
    {"F.2.5 CBC-AES256", kKey256,
     "f58c4c04d6e5f1ba779eabfb5f7bfbd69cfc4e967edb808d679f777bc6702c7d"
     "39f23369a9d9bacfa530e26304231461b2eb05e2c39be9fcda6c19078c6a9d1b"},
};

// F.5.1 / F.5.2 CTR-AES128, F.5.5 / F.5.6 CTR-AES256.
const ModeKat kCtr[] = {
    {"F.5.1 CTR-AES128", kKey128,
     "874d6191b620e3261bef6864990db6ce9806f66b7970fdff8617187bb9fffdff"
     "5ae4df3edbd5d35e5b4f09020db03eab1e031dda2fbe03d1792170a0f3009cee"},
    {"F.5.5 CTR-AES256", kKey256,
     "601ec313775789a5b7a7f504bbf3d228f443e3ca4d62b59aca84e990cacaf5c5"
     "2b0930daa23de94ce87017ba2d84988ddfc9c58db67aada613c2dd08457941a6"},
};

TEST(AesCbc, Sp800_38aNoPadding) {
  for (const auto& k : kCbc) {
    SCOPED_TRACE(k.name);
    SecretBytes out;
    ASSERT_EQ(aes_cbc(true, false, hex(k.key), hex(kCbcIv), hex(kPlain38a), out), Status::kOk);
    EXPECT_EQ(to_hex(reveal(out)), k.cipher);
    ASSERT_EQ(aes_cbc(false, false, hex(k.key), hex(kCbcIv), hex(k.cipher), out), Status::kOk);
    EXPECT_EQ(to_hex(reveal(out)), kPlain38a);
  }
}

TEST(AesCbc, Pkcs7PaddingRoundTrip) {
  const Bytes key = hex(kKey128), iv = hex(kCbcIv), plain = hex(kPlain38a);
  // A whole-block message gets a whole block of padding; the first blocks
  // are the unpadded CBC ciphertext.
  SecretBytes ct;
  ASSERT_EQ(aes_cbc(true, true, key, iv, plain, ct), Status::kOk);
  ASSERT_EQ(ct.size(), 80u);
  EXPECT_EQ(to_hex(Bytes(ct.reveal().begin(), ct.reveal().begin() + 64)), kCbc[0].cipher);
  SecretBytes pt;
  ASSERT_EQ(aes_cbc(false, true, key, iv, ct.reveal(), pt), Status::kOk);
  EXPECT_EQ(reveal(pt), plain);
  for (size_t n : {size_t{0}, size_t{1}, size_t{15}, size_t{16}, size_t{17}, size_t{63}}) {
    const Bytes m(plain.begin(), plain.begin() + static_cast<long>(n));
    ASSERT_EQ(aes_cbc(true, true, key, iv, m, ct), Status::kOk);
    EXPECT_EQ(ct.size(), (n / 16 + 1) * 16);
    ASSERT_EQ(aes_cbc(false, true, key, iv, ct.reveal(), pt), Status::kOk);
    EXPECT_EQ(reveal(pt), m) << n;
  }
}

TEST(AesCbc, BadPaddingIsInvalidArgument) {
  const Bytes key = hex(kKey128), iv = hex(kCbcIv);
  // Ciphertexts whose final plaintext block ends in an invalid PKCS#7 pad.
  const Bytes bad_tails[] = {
      hex("00000000000000000000000000000000"),  // pad byte 0
      hex("00000000000000000000000000000011"),  // pad byte 17
      hex("00000000000000000000000000000302"),  // 02 02 expected
      hex("000000000000000000000000000f0f10"),  // 16 x 10 expected
  };
  for (const auto& tail : bad_tails) {
    SecretBytes ct, pt;
    ASSERT_EQ(aes_cbc(true, false, key, iv, tail, ct), Status::kOk);
    EXPECT_EQ(aes_cbc(false, true, key, iv, ct.reveal(), pt), Status::kInvalidArgument);
    EXPECT_TRUE(pt.empty());
  }
}

TEST(AesCbc, LengthKeyAndIvErrors) {
  const Bytes key = hex(kKey128), iv = hex(kCbcIv);
  SecretBytes out;
  EXPECT_EQ(aes_cbc(true, false, key, iv, Bytes(17, 0), out), Status::kDataLengthInvalid);
  EXPECT_EQ(aes_cbc(false, false, key, iv, Bytes(31, 0), out), Status::kDataLengthInvalid);
  EXPECT_EQ(aes_cbc(false, true, key, iv, Bytes(15, 0), out), Status::kDataLengthInvalid);
  EXPECT_EQ(aes_cbc(false, true, key, iv, Bytes{}, out), Status::kDataLengthInvalid);
  EXPECT_EQ(aes_cbc(true, false, key, iv, Bytes{}, out), Status::kOk);
  EXPECT_TRUE(out.empty());
  for (size_t n : {0, 8, 15, 17, 20, 31, 33, 64}) {
    EXPECT_EQ(aes_cbc(true, false, Bytes(n, 1), iv, Bytes(16, 0), out), Status::kKeySizeInvalid)
        << n;
  }
  EXPECT_EQ(aes_cbc(true, false, key, Bytes(12, 0), Bytes(16, 0), out),
            Status::kMechanismParamInvalid);
}

TEST(AesCtr, Sp800_38a) {
  for (const auto& k : kCtr) {
    SCOPED_TRACE(k.name);
    SecretBytes out;
    ASSERT_EQ(aes_ctr(hex(k.key), hex(kCtrBlock), 128, hex(kPlain38a), out), Status::kOk);
    EXPECT_EQ(to_hex(reveal(out)), k.cipher);
    // CTR decryption is the same operation (F.5.2 / F.5.6).
    ASSERT_EQ(aes_ctr(hex(k.key), hex(kCtrBlock), 16, hex(k.cipher), out), Status::kOk);
    EXPECT_EQ(to_hex(reveal(out)), kPlain38a);
    // Partial final block.
    const Bytes plain = hex(kPlain38a);
    ASSERT_EQ(aes_ctr(hex(k.key), hex(kCtrBlock), 32, std::span(plain).first(37), out),
              Status::kOk);
    EXPECT_EQ(to_hex(reveal(out)), std::string(k.cipher).substr(0, 74));
  }
}

TEST(AesCtr, CounterSpaceIsEnforced) {
  const Bytes key = hex(kKey128);
  SecretBytes out;
  // F.5.1's counter block ends in ff: with an 8-bit counter one block
  // remains before the field wraps; with 16 bits (feff) 257 do.
  EXPECT_EQ(aes_ctr(key, hex(kCtrBlock), 8, hex(kPlain38a), out), Status::kDataLengthInvalid);
  EXPECT_TRUE(out.empty());
  ASSERT_EQ(aes_ctr(key, hex(kCtrBlock), 8, Bytes(16, 0x6b), out), Status::kOk);
  EXPECT_EQ(aes_ctr(key, hex(kCtrBlock), 8, Bytes(17, 0), out), Status::kDataLengthInvalid);
  ASSERT_EQ(aes_ctr(key, hex(kCtrBlock), 16, Bytes(257 * 16, 0), out), Status::kOk);
  EXPECT_EQ(aes_ctr(key, hex(kCtrBlock), 16, Bytes(257 * 16 + 1, 0), out),
            Status::kDataLengthInvalid);
  // 32-bit counter at fffffffe: two blocks.
  const Bytes two_left = hex("000102030405060708090a0bfffffffe");
  EXPECT_EQ(aes_ctr(key, two_left, 32, Bytes(32, 0), out), Status::kOk);
  EXPECT_EQ(aes_ctr(key, two_left, 32, Bytes(33, 0), out), Status::kDataLengthInvalid);
  // The whole block as the counter, all ones: one block.
  const Bytes all_ones(16, 0xff);
  EXPECT_EQ(aes_ctr(key, all_ones, 128, Bytes(16, 0), out), Status::kOk);
  EXPECT_EQ(aes_ctr(key, all_ones, 128, Bytes(17, 0), out), Status::kDataLengthInvalid);
  EXPECT_EQ(aes_ctr(key, all_ones, 64, Bytes(17, 0), out), Status::kDataLengthInvalid);
  // A zero counter with 128 bits has the whole space; empty input is fine anywhere.
  EXPECT_EQ(aes_ctr(key, Bytes(16, 0), 128, Bytes(1000, 0), out), Status::kOk);
  EXPECT_EQ(aes_ctr(key, all_ones, 1, Bytes{}, out), Status::kOk);
  EXPECT_TRUE(out.empty());
  // 1-bit counter at 0: two blocks.
  EXPECT_EQ(aes_ctr(key, Bytes(16, 0), 1, Bytes(32, 0), out), Status::kOk);
  EXPECT_EQ(aes_ctr(key, Bytes(16, 0), 1, Bytes(33, 0), out), Status::kDataLengthInvalid);
}

TEST(AesCtr, ParameterErrors) {
  SecretBytes out;
  EXPECT_EQ(aes_ctr(hex(kKey128), hex(kCtrBlock), 0, Bytes(16, 0), out),
            Status::kMechanismParamInvalid);
  EXPECT_EQ(aes_ctr(hex(kKey128), hex(kCtrBlock), 129, Bytes(16, 0), out),
            Status::kMechanismParamInvalid);
  EXPECT_EQ(aes_ctr(hex(kKey128), Bytes(15, 0), 32, Bytes(16, 0), out),
            Status::kMechanismParamInvalid);
  EXPECT_EQ(aes_ctr(Bytes(20, 0), hex(kCtrBlock), 32, Bytes(16, 0), out), Status::kKeySizeInvalid);
}

// ---------------------------------------------------------------- KW / KWP

struct WrapKat {
  const char* name;
  const char* kek;
  const char* key;
  const char* wrapped;
};

// RFC 3394 section 4.
const WrapKat kRfc3394[] = {
    {"4.1", "000102030405060708090a0b0c0d0e0f", "00112233445566778899aabbccddeeff",
     "1fa68b0a8112b447aef34bd8fb5a7b829d3e862371d2cfe5"},
    {"4.2", "000102030405060708090a0b0c0d0e0f1011121314151617", "00112233445566778899aabbccddeeff",
     "96778b25ae6ca435f92b5b97c050aed2468ab8a17ad84e5d"},
    {"4.3", "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
     "00112233445566778899aabbccddeeff", "64e8c3f9ce0f5ba263e9777905818a2a93c8191e7d6e8ae7"},
    {"4.4", "000102030405060708090a0b0c0d0e0f1011121314151617",
     "00112233445566778899aabbccddeeff0001020304050607",
     "031d33264e15d33268f24ec260743edce1c6c7ddee725a936ba814915c6762d2"},
    {"4.5", "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
     "00112233445566778899aabbccddeeff0001020304050607",
     "a8f9bc1612c68b3ff6e6f4fbe30e71e4769c8b80a32cb8958cd5d17d6b254da1"},
    {"4.6", "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
     "00112233445566778899aabbccddeeff000102030405060708090a0b0c0d0e0f",
     "28c9f404c4b810f4cbccb35cfb87f8263f5786e2d80ed326cbc7f0e71a99f43bfb988b9b7a02dd21"},
};

// RFC 5649 section 6.
const WrapKat kRfc5649[] = {
    {"20 octets", "5840df6e29b02af1ab493b705bf16ea1ae8338f4dcc176a8",
     "c37b7e6492584340bed12207808941155068f738",
     "138bdeaa9b8fa7fc61f97742e72248ee5ae6ae5360d1ae6a5f54f373fa543b6a"},
    {"7 octets", "5840df6e29b02af1ab493b705bf16ea1ae8338f4dcc176a8", "466f7250617369",
     "afbeb0f07dfbf5419200f2ccb50bb24f"},
};

TEST(AesKw, Rfc3394) {
  for (const auto& k : kRfc3394) {
    SCOPED_TRACE(k.name);
    Bytes wrapped;
    ASSERT_EQ(aes_kw_wrap(hex(k.kek), hex(k.key), wrapped), Status::kOk);
    EXPECT_EQ(to_hex(wrapped), k.wrapped);
    SecretBytes key;
    ASSERT_EQ(aes_kw_unwrap(hex(k.kek), hex(k.wrapped), key), Status::kOk);
    EXPECT_EQ(to_hex(reveal(key)), k.key);
  }
}

TEST(AesKw, ModifiedBlobIsTagMismatch) {
  const auto& k = kRfc3394[5];
  const Bytes wrapped = hex(k.wrapped);
  for (size_t i = 0; i < wrapped.size(); i += 7) {
    Bytes bad = wrapped;
    bad[i] ^= 0x01;
    SecretBytes key = SecretBytes::from_string("stale");
    EXPECT_EQ(aes_kw_unwrap(hex(k.kek), bad, key), Status::kTagMismatch) << i;
    EXPECT_TRUE(key.empty());
  }
  // The wrong KEK fails the same way.
  SecretBytes key;
  EXPECT_EQ(aes_kw_unwrap(Bytes(32, 0x55), wrapped, key), Status::kTagMismatch);
  // KWP's integrity check too.
  Bytes bad = hex(kRfc5649[0].wrapped);
  bad.back() ^= 0x80;
  EXPECT_EQ(aes_kwp_unwrap(hex(kRfc5649[0].kek), bad, key), Status::kTagMismatch);
}

TEST(AesKw, LengthAndKeySizeErrors) {
  const Bytes kek(16, 0x11);
  Bytes wrapped;
  SecretBytes key;
  EXPECT_EQ(aes_kw_wrap(kek, Bytes(8, 0), wrapped), Status::kDataLengthInvalid);
  EXPECT_EQ(aes_kw_wrap(kek, Bytes(20, 0), wrapped), Status::kDataLengthInvalid);
  EXPECT_EQ(aes_kw_wrap(kek, Bytes{}, wrapped), Status::kDataLengthInvalid);
  EXPECT_EQ(aes_kw_unwrap(kek, Bytes(16, 0), key), Status::kDataLengthInvalid);
  EXPECT_EQ(aes_kw_unwrap(kek, Bytes(25, 0), key), Status::kDataLengthInvalid);
  EXPECT_EQ(aes_kwp_wrap(kek, Bytes{}, wrapped), Status::kDataLengthInvalid);
  EXPECT_EQ(aes_kwp_unwrap(kek, Bytes(8, 0), key), Status::kDataLengthInvalid);
  EXPECT_EQ(aes_kwp_unwrap(kek, Bytes(17, 0), key), Status::kDataLengthInvalid);
  for (size_t n : {0, 15, 17, 33}) {
    EXPECT_EQ(aes_kw_wrap(Bytes(n, 1), Bytes(16, 0), wrapped), Status::kKeySizeInvalid);
    EXPECT_EQ(aes_kw_unwrap(Bytes(n, 1), Bytes(24, 0), key), Status::kKeySizeInvalid);
    EXPECT_EQ(aes_kwp_wrap(Bytes(n, 1), Bytes(16, 0), wrapped), Status::kKeySizeInvalid);
    EXPECT_EQ(aes_kwp_unwrap(Bytes(n, 1), Bytes(24, 0), key), Status::kKeySizeInvalid);
  }
}

TEST(AesKwp, Rfc5649) {
  for (const auto& k : kRfc5649) {
    SCOPED_TRACE(k.name);
    Bytes wrapped;
    ASSERT_EQ(aes_kwp_wrap(hex(k.kek), hex(k.key), wrapped), Status::kOk);
    EXPECT_EQ(to_hex(wrapped), k.wrapped);
    SecretBytes key;
    ASSERT_EQ(aes_kwp_unwrap(hex(k.kek), hex(k.wrapped), key), Status::kOk);
    EXPECT_EQ(to_hex(reveal(key)), k.key);
  }
}

TEST(AesKwp, RoundTripEveryLengthUpTo40) {
  for (size_t kek_len : {16, 24, 32}) {
    const Bytes kek(kek_len, 0x3c);
    for (size_t n = 1; n <= 40; ++n) {
      Bytes key(n);
      for (size_t i = 0; i < n; ++i) key[i] = static_cast<uint8_t>(i * 37 + n);
      Bytes wrapped;
      ASSERT_EQ(aes_kwp_wrap(kek, key, wrapped), Status::kOk);
      EXPECT_EQ(wrapped.size(), (n + 7) / 8 * 8 + 8);
      SecretBytes back;
      ASSERT_EQ(aes_kwp_unwrap(kek, wrapped, back), Status::kOk);
      EXPECT_EQ(reveal(back), key) << n;
    }
  }
}

// ---------------------------------------------------------------- AesStream

// Feed `in` to the stream in pieces of the given (cycled) sizes.
Status feed(AesStream& s, const Bytes& in, std::initializer_list<size_t> sizes, Bytes& out) {
  out.clear();
  size_t pos = 0;
  auto it = sizes.begin();
  while (pos < in.size()) {
    const size_t n = std::min(*it, in.size() - pos);
    if (++it == sizes.end()) it = sizes.begin();
    SecretBytes part;
    const Status st = s.update(std::span(in).subspan(pos, n), part);
    if (!ok(st)) return st;
    // At most one block is ever held back.
    if (part.size() + 16 < n) return Status::kInternalError;
    out.insert(out.end(), part.reveal().begin(), part.reveal().end());
    pos += n;
  }
  return Status::kOk;
}

struct GcmKat {
  const char* name;
  const char* key;
  const char* iv;
  const char* plain;
  const char* aad;
  const char* cipher;
  const char* tag;
};

// McGrew & Viega, GCM specification, appendix B: test cases 3, 4 and 16.
const char* kGcmPlain64 =
    "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
    "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255";
const char* kGcmPlain60 =
    "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
    "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39";
const GcmKat kGcm[] = {
    {"TC3", "feffe9928665731c6d6a8f9467308308", "cafebabefacedbaddecaf888", kGcmPlain64, "",
     "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e"
     "21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091473f5985",
     "4d5c2af327cd64a62cf35abd2ba6fab4"},
    {"TC4", "feffe9928665731c6d6a8f9467308308", "cafebabefacedbaddecaf888", kGcmPlain60,
     "feedfacedeadbeeffeedfacedeadbeefabaddad2",
     "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e"
     "21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091",
     "5bc94fbc3221a5db94fae95ae7121a47"},
    {"TC16", "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
     "cafebabefacedbaddecaf888", kGcmPlain60, "feedfacedeadbeeffeedfacedeadbeefabaddad2",
     "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
     "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662",
     "76fc6ece0f4e1768cddf8853bb2d551b"},
};

TEST(AesStream, GcmMultiPartMatchesKatAndOneShot) {
  for (const auto& k : kGcm) {
    SCOPED_TRACE(k.name);
    const Bytes key = hex(k.key), iv = hex(k.iv), aad = hex(k.aad), plain = hex(k.plain);
    // The one-shot backend function agrees with the published vector.
    Bytes ct1, tag1;
    ASSERT_EQ(aes_gcm_encrypt(key, iv, aad, plain, ct1, tag1), Status::kOk);
    EXPECT_EQ(to_hex(ct1), k.cipher);
    EXPECT_EQ(to_hex(tag1), k.tag);
    for (auto sizes : {std::initializer_list<size_t>{1}, {7}, {13, 3}, {17, 1, 31}, {64}}) {
      AesStream enc;
      ASSERT_EQ(enc.init(AesMode::kGcm, true, key, iv, aad), Status::kOk);
      Bytes ct;
      ASSERT_EQ(feed(enc, plain, sizes, ct), Status::kOk);
      SecretBytes last;
      Bytes tag;
      ASSERT_EQ(enc.final(last, tag), Status::kOk);
      ct.insert(ct.end(), last.reveal().begin(), last.reveal().end());
      EXPECT_EQ(to_hex(ct), k.cipher);
      EXPECT_EQ(to_hex(tag), k.tag);

      AesStream dec;
      ASSERT_EQ(dec.init(AesMode::kGcm, false, key, iv, aad), Status::kOk);
      Bytes pt;
      ASSERT_EQ(feed(dec, hex(k.cipher), sizes, pt), Status::kOk);
      Bytes expected_tag = hex(k.tag);
      ASSERT_EQ(dec.final(last, expected_tag), Status::kOk);
      pt.insert(pt.end(), last.reveal().begin(), last.reveal().end());
      EXPECT_EQ(to_hex(pt), k.plain);
    }
  }
}

// A PreparedAead reuses its keyed contexts: every use after the first
// must give the published values again, in both directions, whatever ran
// on the context before (encrypt, decrypt, a failed decrypt).
TEST(PreparedAead, GcmRepeatsTheKatAcrossReusedContexts) {
  for (const auto& k : kGcm) {
    SCOPED_TRACE(k.name);
    const Bytes key = hex(k.key), iv = hex(k.iv), aad = hex(k.aad), plain = hex(k.plain);
    PreparedAead prepared;
    for (int round = 0; round < 3; ++round) {
      Bytes ct, tag;
      ASSERT_EQ(prepared.gcm_encrypt(key, iv, aad, plain, ct, tag), Status::kOk);
      EXPECT_EQ(to_hex(ct), k.cipher);
      EXPECT_EQ(to_hex(tag), k.tag);
      SecretBytes pt;
      ASSERT_EQ(prepared.gcm_decrypt(key, iv, aad, ct, tag, pt), Status::kOk);
      EXPECT_EQ(to_hex(Bytes(pt.reveal().begin(), pt.reveal().end())), k.plain);
      Bytes bad = tag;
      bad[0] ^= 0x80;
      EXPECT_EQ(prepared.gcm_decrypt(key, iv, aad, ct, bad, pt), Status::kTagMismatch);
      EXPECT_TRUE(pt.empty());
    }
  }
}

// The pooled context must carry nothing from one operation to the next:
// many good decryptions, then a wrong tag (and other AAD) still fail, and
// the next good one still passes.
TEST(PreparedAead, AWrongTagAfterManyGoodOnesStillFails) {
  const auto& k = kGcm[2];
  const Bytes key = hex(k.key), iv = hex(k.iv), aad = hex(k.aad);
  const Bytes ct = hex(k.cipher), tag = hex(k.tag);
  PreparedAead prepared;
  SecretBytes pt;
  for (int i = 0; i < 100; ++i)
    ASSERT_EQ(prepared.gcm_decrypt(key, iv, aad, ct, tag, pt), Status::kOk);
  Bytes bad = tag;
  bad[15] ^= 1;
  EXPECT_EQ(prepared.gcm_decrypt(key, iv, aad, ct, bad, pt), Status::kTagMismatch);
  EXPECT_EQ(prepared.gcm_decrypt(key, iv, hex("feedface"), ct, tag, pt), Status::kTagMismatch);
  EXPECT_EQ(prepared.gcm_decrypt(key, iv, aad, ct, Bytes(15), pt), Status::kMechanismParamInvalid);
  EXPECT_EQ(prepared.gcm_decrypt(key, iv, aad, ct, tag, pt), Status::kOk);
  EXPECT_EQ(to_hex(Bytes(pt.reveal().begin(), pt.reveal().end())), k.plain);
  // Parameter checks as in the one-shot functions.
  Bytes c, t;
  EXPECT_EQ(prepared.gcm_encrypt(key, hex("00"), aad, ct, c, t), Status::kMechanismParamInvalid);
  PreparedAead odd;
  EXPECT_EQ(odd.gcm_encrypt(Bytes(20), iv, aad, ct, c, t), Status::kKeySizeInvalid);
}

// Four threads on one PreparedAead at once (more than one context in use,
// some freed as the pool fills): every result equals the one-shot one.
TEST(PreparedAead, ThreadsOnOneKeyGetCorrectResults) {
  const Bytes key = hex(kGcm[2].key), aad = hex("a0a1a2");
  PreparedAead prepared;
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        Bytes iv(12, static_cast<uint8_t>(t));
        iv[11] = static_cast<uint8_t>(i);
        const Bytes plain(static_cast<size_t>(i % 70), static_cast<uint8_t>(t * 31 + i));
        Bytes ct, tag, want_ct, want_tag;
        SecretBytes back;
        if (!ok(prepared.gcm_encrypt(key, iv, aad, plain, ct, tag)) ||
            !ok(aes_gcm_encrypt(key, iv, aad, plain, want_ct, want_tag)) || ct != want_ct ||
            tag != want_tag || !ok(prepared.gcm_decrypt(key, iv, aad, ct, tag, back)) ||
            Bytes(back.reveal().begin(), back.reveal().end()) != plain) {
          ++wrong;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(wrong.load(), 0);
}

TEST(AesStream, GcmBadTag) {
  const auto& k = kGcm[1];
  const Bytes key = hex(k.key), iv = hex(k.iv), aad = hex(k.aad);
  const struct {
    const char* what;
    Bytes tag;
    Bytes aad;
    Bytes cipher;
    Status expect;
  } cases[] = {
      {"flipped tag",
       [&] {
         Bytes t = hex(k.tag);
         t[15] ^= 1;
         return t;
       }(),
       aad, hex(k.cipher), Status::kTagMismatch},
      {"other aad", hex(k.tag), hex("feedface"), hex(k.cipher), Status::kTagMismatch},
      {"flipped ciphertext", hex(k.tag), aad,
       [&] {
         Bytes c = hex(k.cipher);
         c[30] ^= 4;
         return c;
       }(),
       Status::kTagMismatch},
      {"short tag",
       [&] {
         Bytes t = hex(k.tag);
         t.resize(12);
         return t;
       }(),
       aad, hex(k.cipher), Status::kMechanismParamInvalid},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    AesStream dec;
    ASSERT_EQ(dec.init(AesMode::kGcm, false, key, iv, c.aad), Status::kOk);
    Bytes pt;
    ASSERT_EQ(feed(dec, c.cipher, {5, 11}, pt), Status::kOk);
    SecretBytes last;
    Bytes tag = c.tag;
    EXPECT_EQ(dec.final(last, tag), c.expect);
    EXPECT_TRUE(last.empty());
    // The operation is over either way.
    EXPECT_EQ(dec.update(Bytes(1, 0), last), Status::kOperationNotInitialized);
  }
}

TEST(AesStream, CbcAndCtrMultiPartMatchSp800_38a) {
  const Bytes plain = hex(kPlain38a);
  for (auto sizes : {std::initializer_list<size_t>{1}, {5}, {15, 2}, {16}, {17, 33}, {64}}) {
    for (const auto& k : kCbc) {
      SCOPED_TRACE(k.name);
      AesStream s;
      ASSERT_EQ(s.init(AesMode::kCbc, true, hex(k.key), hex(kCbcIv)), Status::kOk);
      Bytes out;
      ASSERT_EQ(feed(s, plain, sizes, out), Status::kOk);
      SecretBytes last;
      Bytes tag = {1, 2, 3};
      ASSERT_EQ(s.final(last, tag), Status::kOk);
      EXPECT_TRUE(last.empty());
      EXPECT_EQ(tag, (Bytes{1, 2, 3}));  // not GCM: tag untouched
      EXPECT_EQ(to_hex(out), k.cipher);

      ASSERT_EQ(s.init(AesMode::kCbc, false, hex(k.key), hex(kCbcIv)), Status::kOk);
      ASSERT_EQ(feed(s, hex(k.cipher), sizes, out), Status::kOk);
      ASSERT_EQ(s.final(last, tag), Status::kOk);
      out.insert(out.end(), last.reveal().begin(), last.reveal().end());
      EXPECT_EQ(to_hex(out), kPlain38a);
    }
    for (const auto& k : kCtr) {
      SCOPED_TRACE(k.name);
      AesStream s;
      ASSERT_EQ(s.init(AesMode::kCtr, true, hex(k.key), hex(kCtrBlock)), Status::kOk);
      Bytes out;
      ASSERT_EQ(feed(s, plain, sizes, out), Status::kOk);
      EXPECT_EQ(out.size(), plain.size());  // CTR holds nothing back
      SecretBytes last;
      Bytes tag;
      ASSERT_EQ(s.final(last, tag), Status::kOk);
      EXPECT_TRUE(last.empty());
      EXPECT_EQ(to_hex(out), k.cipher);
    }
  }
}

TEST(AesStream, CbcPadHoldsBackTheLastBlock) {
  const Bytes key = hex(kKey128), iv = hex(kCbcIv);
  const Bytes plain = hex(kGcmPlain60);  // 60 bytes: 4 bytes of padding
  SecretBytes one_shot;
  ASSERT_EQ(aes_cbc(true, true, key, iv, plain, one_shot), Status::kOk);
  ASSERT_EQ(one_shot.size(), 64u);
  for (auto sizes : {std::initializer_list<size_t>{1}, {3, 29}, {16}, {64}}) {
    AesStream enc;
    ASSERT_EQ(enc.init(AesMode::kCbcPad, true, key, iv), Status::kOk);
    Bytes ct;
    ASSERT_EQ(feed(enc, plain, sizes, ct), Status::kOk);
    SecretBytes last;
    Bytes tag;
    ASSERT_EQ(enc.final(last, tag), Status::kOk);
    ct.insert(ct.end(), last.reveal().begin(), last.reveal().end());
    EXPECT_EQ(ct, reveal(one_shot));

    AesStream dec;
    ASSERT_EQ(dec.init(AesMode::kCbcPad, false, key, iv), Status::kOk);
    Bytes pt;
    ASSERT_EQ(feed(dec, ct, sizes, pt), Status::kOk);
    // Everything but the last block came out; it waits for final().
    EXPECT_LE(pt.size(), 48u);
    ASSERT_EQ(dec.final(last, tag), Status::kOk);
    EXPECT_GE(last.size(), 12u);
    pt.insert(pt.end(), last.reveal().begin(), last.reveal().end());
    EXPECT_EQ(pt, plain);
  }
}

TEST(AesStream, CbcFinalErrors) {
  const Bytes key = hex(kKey128), iv = hex(kCbcIv);
  SecretBytes part, last;
  Bytes tag;
  // No padding: the total must be whole blocks.
  AesStream s;
  ASSERT_EQ(s.init(AesMode::kCbc, true, key, iv), Status::kOk);
  ASSERT_EQ(s.update(Bytes(17, 0), part), Status::kOk);
  EXPECT_EQ(s.final(last, tag), Status::kDataLengthInvalid);
  EXPECT_EQ(s.final(last, tag), Status::kOperationNotInitialized);
  ASSERT_EQ(s.init(AesMode::kCbc, false, key, iv), Status::kOk);
  ASSERT_EQ(s.update(Bytes(31, 0), part), Status::kOk);
  EXPECT_EQ(s.final(last, tag), Status::kDataLengthInvalid);
  // Padded decrypt: whole blocks, at least one, valid padding.
  ASSERT_EQ(s.init(AesMode::kCbcPad, false, key, iv), Status::kOk);
  ASSERT_EQ(s.update(Bytes(20, 0), part), Status::kOk);
  EXPECT_EQ(s.final(last, tag), Status::kDataLengthInvalid);
  ASSERT_EQ(s.init(AesMode::kCbcPad, false, key, iv), Status::kOk);
  EXPECT_EQ(s.final(last, tag), Status::kDataLengthInvalid);
  SecretBytes bad_ct;
  ASSERT_EQ(aes_cbc(true, false, key, iv, hex("00112233445566778899aabbccddee00"), bad_ct),
            Status::kOk);
  ASSERT_EQ(s.init(AesMode::kCbcPad, false, key, iv), Status::kOk);
  ASSERT_EQ(s.update(bad_ct.reveal(), part), Status::kOk);
  EXPECT_TRUE(part.empty());
  EXPECT_EQ(s.final(last, tag), Status::kInvalidArgument);
  EXPECT_TRUE(last.empty());
  // Padded encrypt of nothing is one block of padding.
  ASSERT_EQ(s.init(AesMode::kCbcPad, true, key, iv), Status::kOk);
  ASSERT_EQ(s.final(last, tag), Status::kOk);
  SecretBytes expected;
  ASSERT_EQ(aes_cbc(true, true, key, iv, Bytes{}, expected), Status::kOk);
  EXPECT_EQ(reveal(last), reveal(expected));
}

TEST(AesStream, InitErrorsAndStateMachine) {
  AesStream s;
  SecretBytes out;
  Bytes tag;
  EXPECT_EQ(s.update(Bytes(16, 0), out), Status::kOperationNotInitialized);
  EXPECT_EQ(s.final(out, tag), Status::kOperationNotInitialized);
  for (AesMode m : {AesMode::kGcm, AesMode::kCbc, AesMode::kCbcPad, AesMode::kCtr}) {
    const size_t iv_len = m == AesMode::kGcm ? 12 : 16;
    for (size_t n : {0, 15, 17, 33}) {
      EXPECT_EQ(s.init(m, true, Bytes(n, 1), Bytes(iv_len, 0)), Status::kKeySizeInvalid);
    }
    EXPECT_EQ(s.init(m, true, Bytes(16, 1), Bytes(iv_len + 1, 0)), Status::kMechanismParamInvalid);
    // A failed init leaves no operation behind.
    EXPECT_EQ(s.update(Bytes(16, 0), out), Status::kOperationNotInitialized);
  }
  EXPECT_EQ(s.init(AesMode::kCbc, true, Bytes(16, 1), Bytes(16, 0), Bytes(4, 0)),
            Status::kMechanismParamInvalid);
  EXPECT_EQ(s.init(AesMode::kCtr, true, Bytes(16, 1), Bytes(16, 0), Bytes(4, 0)),
            Status::kMechanismParamInvalid);
  // Moves carry the operation.
  ASSERT_EQ(s.init(AesMode::kCtr, true, hex(kKey128), hex(kCtrBlock)), Status::kOk);
  AesStream moved(std::move(s));
  AesStream assigned;
  assigned = std::move(moved);
  ASSERT_EQ(assigned.update(hex(kPlain38a), out), Status::kOk);
  EXPECT_EQ(to_hex(reveal(out)), kCtr[0].cipher);
}

}  // namespace
}  // namespace ihsm::device::crypto
