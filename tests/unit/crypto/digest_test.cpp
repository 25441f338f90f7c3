// Digests: FIPS 180-4 'abc' examples, one-shot and multi-part.
#include <gtest/gtest.h>

#include "device/crypto/algorithms.h"
#include "kat_util.h"

namespace ihsm::device::crypto {
namespace {

using namespace ihsm::crypto_test;

struct DigestKat {
  Hash hash;
  const char* name;
  const char* abc;  // digest of "abc"
};

// FIPS 180-4 (NIST CSRC "Examples with Intermediate Values", SHA-1/224/
// 256/384/512, one-block message "abc").
const DigestKat kAbc[] = {
    {Hash::kSha1, "SHA-1", "a9993e364706816aba3e25717850c26c9cd0d89d"},
    {Hash::kSha224, "SHA-224", "23097d223405d8228642a477bda255b32aadbce4bda0b3f7e36c9da7"},
    {Hash::kSha256, "SHA-256", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
    {Hash::kSha384, "SHA-384",
     "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed"
     "8086072ba1e7cc2358baeca134c825a7"},
    {Hash::kSha512, "SHA-512",
     "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
     "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"},
};

TEST(Digest, HashSizesAndMds) {
  for (const auto& k : kAbc) {
    SCOPED_TRACE(k.name);
    ASSERT_NE(hash_md(k.hash), nullptr);
    EXPECT_EQ(static_cast<size_t>(EVP_MD_get_size(hash_md(k.hash))), hash_size(k.hash));
    EXPECT_EQ(hash_size(k.hash) * 2, std::string(k.abc).size());
  }
  EXPECT_EQ(hash_md(static_cast<Hash>(99)), nullptr);
  EXPECT_EQ(hash_size(static_cast<Hash>(99)), 0u);
}

TEST(Digest, Fips180AbcOneShot) {
  for (const auto& k : kAbc) {
    SCOPED_TRACE(k.name);
    Bytes out;
    ASSERT_EQ(digest(k.hash, text("abc"), out), Status::kOk);
    EXPECT_EQ(to_hex(out), k.abc);
  }
}

TEST(Digest, Fips180AbcMultiPart) {
  for (const auto& k : kAbc) {
    SCOPED_TRACE(k.name);
    DigestStream s;
    ASSERT_EQ(s.init(k.hash), Status::kOk);
    ASSERT_EQ(s.update(text("a")), Status::kOk);
    ASSERT_EQ(s.update({}), Status::kOk);
    ASSERT_EQ(s.update(text("bc")), Status::kOk);
    Bytes out;
    ASSERT_EQ(s.final(out), Status::kOk);
    EXPECT_EQ(to_hex(out), k.abc);
  }
}

// FIPS 180-4 two-block example: "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".
TEST(Digest, Fips180TwoBlockSplitAtEveryOffset) {
  const Bytes msg = text("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq");
  const std::string expected = "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1";
  Bytes one;
  ASSERT_EQ(digest(Hash::kSha256, msg, one), Status::kOk);
  EXPECT_EQ(to_hex(one), expected);
  for (size_t cut = 0; cut <= msg.size(); ++cut) {
    DigestStream s;
    ASSERT_EQ(s.init(Hash::kSha256), Status::kOk);
    ASSERT_EQ(s.update(std::span(msg).first(cut)), Status::kOk);
    ASSERT_EQ(s.update(std::span(msg).subspan(cut)), Status::kOk);
    Bytes out;
    ASSERT_EQ(s.final(out), Status::kOk);
    EXPECT_EQ(to_hex(out), expected) << "cut at " << cut;
  }
}

TEST(Digest, StreamStateMachine) {
  DigestStream s;
  Bytes out;
  EXPECT_EQ(s.update(text("x")), Status::kOperationNotInitialized);
  EXPECT_EQ(s.final(out), Status::kOperationNotInitialized);
  EXPECT_EQ(s.init(static_cast<Hash>(99)), Status::kMechanismInvalid);
  ASSERT_EQ(s.init(Hash::kSha256), Status::kOk);
  ASSERT_EQ(s.update(text("abc")), Status::kOk);
  ASSERT_EQ(s.final(out), Status::kOk);
  // final() ends the operation.
  EXPECT_EQ(s.update(text("x")), Status::kOperationNotInitialized);
  EXPECT_EQ(s.final(out), Status::kOperationNotInitialized);
  // init() again restarts from scratch, also mid-operation.
  ASSERT_EQ(s.init(Hash::kSha384), Status::kOk);
  ASSERT_EQ(s.update(text("garbage")), Status::kOk);
  ASSERT_EQ(s.init(Hash::kSha384), Status::kOk);
  ASSERT_EQ(s.update(text("abc")), Status::kOk);
  // Moves carry the operation along.
  DigestStream moved(std::move(s));
  DigestStream assigned;
  assigned = std::move(moved);
  ASSERT_EQ(assigned.final(out), Status::kOk);
  EXPECT_EQ(to_hex(out), kAbc[3].abc);
}

TEST(Digest, InvalidHash) {
  Bytes out;
  EXPECT_EQ(digest(static_cast<Hash>(99), text("abc"), out), Status::kMechanismInvalid);
}

}  // namespace
}  // namespace ihsm::device::crypto
