// SecretBytes (src/common/secret.h): storage is cleansed when freed -
// on destruction, after a move, on reallocation - and constant_time_equal.
//
// This binary replaces the global allocation functions so it can look at
// a watched block at the moment it is handed back, before free() reuses it.
#include "common/secret.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <new>
#include <vector>

namespace {

// The block being watched and what it held when it was freed.
void* g_watched = nullptr;
size_t g_watched_size = 0;
bool g_watched_freed = false;
bool g_watched_was_zero = false;

void inspect(void* p) {
  if (p != nullptr && p == g_watched) {
    const auto* b = static_cast<const unsigned char*>(p);
    g_watched_was_zero = std::all_of(b, b + g_watched_size, [](unsigned char c) { return c == 0; });
    g_watched_freed = true;
    g_watched = nullptr;
  }
}

void watch(const void* p, size_t n) {
  g_watched = const_cast<void*>(p);
  g_watched_size = n;
  g_watched_freed = false;
  g_watched_was_zero = false;
}

}  // namespace

void* operator new(size_t n) {
  void* p = std::malloc(n == 0 ? 1 : n);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}
void* operator new[](size_t n) { return ::operator new(n); }
void operator delete(void* p) noexcept {
  inspect(p);
  std::free(p);
}
void operator delete[](void* p) noexcept { ::operator delete(p); }
void operator delete(void* p, size_t) noexcept { ::operator delete(p); }
void operator delete[](void* p, size_t) noexcept { ::operator delete(p); }

namespace ihsm {
namespace {

std::vector<uint8_t> pattern(size_t n) { return std::vector<uint8_t>(n, 0xA5); }

TEST(SecretBytes, DestructionCleansesTheStorage) {
  {
    SecretBytes s(pattern(64));
    ASSERT_EQ(s.size(), 64u);
    ASSERT_EQ(s.reveal()[0], 0xA5);
    watch(s.reveal().data(), s.size());
  }
  EXPECT_TRUE(g_watched_freed);
  EXPECT_TRUE(g_watched_was_zero);
}

TEST(SecretBytes, ControlPlainVectorIsNotCleansed) {
  // The watcher is not vacuous: ordinary storage keeps its bytes when freed.
  {
    std::vector<uint8_t> v = pattern(64);
    watch(v.data(), v.size());
  }
  EXPECT_TRUE(g_watched_freed);
  EXPECT_FALSE(g_watched_was_zero);
}

TEST(SecretBytes, MoveTransfersTheBufferAndTheNewOwnerCleanses) {
  SecretBytes a(pattern(48));
  const uint8_t* buffer = a.reveal().data();
  watch(buffer, 48);
  SecretBytes b(std::move(a));
  EXPECT_FALSE(g_watched_freed);  // moved, not copied and freed
  EXPECT_EQ(b.reveal().data(), buffer);
  EXPECT_TRUE(a.empty());  // NOLINT(bugprone-use-after-move): documented state
  SecretBytes c;
  c = std::move(b);
  EXPECT_FALSE(g_watched_freed);
  EXPECT_EQ(c.reveal().data(), buffer);
  c = SecretBytes(pattern(8));  // replacing the buffer frees the old one
  EXPECT_TRUE(g_watched_freed);
  EXPECT_TRUE(g_watched_was_zero);
}

TEST(SecretBytes, CloneIsAnIndependentCleansedCopy) {
  SecretBytes original(pattern(32));
  SecretBytes copy = original.clone();
  ASSERT_NE(copy.reveal().data(), original.reveal().data());
  EXPECT_TRUE(std::equal(copy.reveal().begin(), copy.reveal().end(), original.reveal().begin(),
                         original.reveal().end()));
  copy.reveal_mutable()[0] = 0x11;
  EXPECT_EQ(original.reveal()[0], 0xA5);
  watch(copy.reveal().data(), copy.size());
  copy = SecretBytes();
  EXPECT_TRUE(g_watched_freed);
  EXPECT_TRUE(g_watched_was_zero);
  watch(original.reveal().data(), original.size());
  original.clear();
  original.resize(0);
  { SecretBytes sink(std::move(original)); }
  EXPECT_TRUE(g_watched_freed);
  EXPECT_TRUE(g_watched_was_zero);
}

TEST(SecretBytes, ReallocationCleansesTheOldBuffer) {
  SecretBytes s(pattern(16));
  watch(s.reveal().data(), 16);
  s.resize(4096);  // must move to a bigger block
  EXPECT_TRUE(g_watched_freed);
  EXPECT_TRUE(g_watched_was_zero);
  EXPECT_EQ(s.reveal()[15], 0xA5);  // contents carried over
  EXPECT_EQ(s.reveal()[16], 0x00);
}

TEST(SecretBytes, FromStringAndText) {
  SecretBytes s = SecretBytes::from_string("1234");
  EXPECT_EQ(s.reveal_as_text(), "1234");
  EXPECT_EQ(s.size(), 4u);
  SecretBytes empty;
  EXPECT_TRUE(empty.empty());
  EXPECT_EQ(empty.reveal().size(), 0u);
}

TEST(SecureCleanse, ZeroesAndToleratesNull) {
  std::vector<uint8_t> v = pattern(10);
  secure_cleanse(v.data(), v.size());
  EXPECT_TRUE(std::all_of(v.begin(), v.end(), [](uint8_t b) { return b == 0; }));
  secure_cleanse(nullptr, 10);
  secure_cleanse(v.data(), 0);
}

TEST(ConstantTimeEqual, Semantics) {
  const std::vector<uint8_t> a = {1, 2, 3, 4}, b = {1, 2, 3, 4}, c = {1, 2, 3, 5}, d = {1, 2, 3},
                             e = {0, 2, 3, 4};
  EXPECT_TRUE(constant_time_equal(a, b));
  EXPECT_FALSE(constant_time_equal(a, c));
  EXPECT_FALSE(constant_time_equal(a, e));
  EXPECT_FALSE(constant_time_equal(a, d));  // lengths differ
  EXPECT_FALSE(constant_time_equal(d, a));
  EXPECT_TRUE(constant_time_equal(std::span<const uint8_t>(), std::span<const uint8_t>()));
  EXPECT_FALSE(constant_time_equal(std::span<const uint8_t>(), a));
  std::vector<uint8_t> big1(4096, 7), big2(4096, 7);
  EXPECT_TRUE(constant_time_equal(big1, big2));
  big2[4095] = 8;
  EXPECT_FALSE(constant_time_equal(big1, big2));
}

}  // namespace
}  // namespace ihsm
