// Secret bytes live only in SecretBytes: the storage is cleansed when freed
// (also on every reallocation, through the allocator), copies are explicit,
// and every read of the plaintext goes through reveal(), so
// `grep -rn 'reveal' src/` lists every place that touches secret material.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

namespace ihsm {

void secure_cleanse(void* p, size_t n);
// Constant-time comparison of two equal-length buffers; false if lengths differ.
bool constant_time_equal(std::span<const uint8_t> a, std::span<const uint8_t> b);

template <typename T>
struct ZeroizingAllocator {
  using value_type = T;
  ZeroizingAllocator() = default;
  template <typename U>
  ZeroizingAllocator(const ZeroizingAllocator<U>&) {}
  T* allocate(size_t n) { return std::allocator<T>{}.allocate(n); }
  void deallocate(T* p, size_t n) {
    secure_cleanse(p, n * sizeof(T));
    std::allocator<T>{}.deallocate(p, n);
  }
  template <typename U>
  bool operator==(const ZeroizingAllocator<U>&) const {
    return true;
  }
};

class SecretBytes {
 public:
  SecretBytes() = default;
  explicit SecretBytes(size_t n) : data_(n) {}
  SecretBytes(std::span<const uint8_t> bytes) : data_(bytes.begin(), bytes.end()) {}
  static SecretBytes from_string(std::string_view s) {
    return SecretBytes(std::span(reinterpret_cast<const uint8_t*>(s.data()), s.size()));
  }

  SecretBytes(SecretBytes&&) noexcept = default;
  SecretBytes& operator=(SecretBytes&&) noexcept = default;
  SecretBytes(const SecretBytes&) = delete;
  SecretBytes& operator=(const SecretBytes&) = delete;
  SecretBytes clone() const { return SecretBytes(reveal()); }

  size_t size() const { return data_.size(); }
  bool empty() const { return data_.empty(); }
  void resize(size_t n) { data_.resize(n); }
  void clear() { data_.clear(); }

  // The only ways to read or write the plaintext.
  std::span<const uint8_t> reveal() const { return {data_.data(), data_.size()}; }
  std::span<uint8_t> reveal_mutable() { return {data_.data(), data_.size()}; }
  std::string_view reveal_as_text() const {
    return {reinterpret_cast<const char*>(data_.data()), data_.size()};
  }

 private:
  std::vector<uint8_t, ZeroizingAllocator<uint8_t>> data_;
};

}  // namespace ihsm
