// A small CBOR value tree over libcbor's streaming decoder and encoder.
// Decoding is hostile-input safe: bounded depth and item count, definite
// lengths only, no tags or floats, no trailing bytes, no reservation from
// declared lengths.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ihsm/status.h"
#include "ihsm/types.h"

namespace ihsm::cbor {

class Value {
 public:
  enum class Type : uint8_t { kNull, kUint, kNegint, kBytes, kText, kArray, kMap, kBool };

  Value() = default;
  static Value uint(uint64_t v);
  static Value negint(int64_t v);  // v < 0
  static Value bytes(std::span<const uint8_t> v);
  static Value bytes(Bytes&& v);  // takes the buffer: no copy of a large result
  static Value text(std::string_view v);
  static Value boolean(bool v);
  static Value array();
  static Value map();

  Type type() const { return type_; }
  bool is(Type t) const { return type_ == t; }

  uint64_t as_uint() const { return uint_; }
  int64_t as_negint() const { return negint_; }
  bool as_bool() const { return bool_; }
  const Bytes& as_bytes() const { return bytes_; }
  std::string_view as_text() const {
    return {reinterpret_cast<const char*>(bytes_.data()), bytes_.size()};
  }
  const std::vector<Value>& items() const { return items_; }
  const std::vector<std::pair<Value, Value>>& entries() const { return entries_; }

  // Array and map building.
  Value& push(Value v);
  Value& set(uint64_t key, Value v);  // map with unsigned-integer keys
  Value& set(int64_t key, Value v);   // map with any integer key (COSE)
  // Map lookup by unsigned-integer key; nullptr when absent.
  const Value* find(uint64_t key) const;

  // Cleanses every byte and text string in the tree, for values that held
  // secrets (the device's own state records).
  void wipe();

  // Mutable access used by the decoder only.
  std::vector<Value>& mutable_items() { return items_; }
  std::vector<std::pair<Value, Value>>& mutable_entries() { return entries_; }

 private:
  Type type_ = Type::kNull;
  bool bool_ = false;
  uint64_t uint_ = 0;
  int64_t negint_ = 0;
  Bytes bytes_;  // byte and text strings
  std::vector<Value> items_;
  std::vector<std::pair<Value, Value>> entries_;
};

struct DecodeLimits {
  size_t max_depth = 8;
  size_t max_items = 65536;
};

Bytes encode(const Value& v);
void encode_append(const Value& v, Bytes& out);
Status decode(std::span<const uint8_t> in, Value& out, const DecodeLimits& limits = {});

// Typed, size-checked reads of a map with unsigned-integer keys. Every
// getter returns kMissingField, kMalformedBody (wrong type) or
// kFieldTooLarge, so handlers never touch an unchecked value.
class MapReader {
 public:
  explicit MapReader(const Value& map) : map_(map) {}
  bool is_map() const { return map_.is(Value::Type::kMap); }
  bool has(uint64_t key) const { return map_.find(key) != nullptr; }

  Status get_uint(uint64_t key, uint64_t& out, uint64_t max = UINT64_MAX) const;
  Status get_bool(uint64_t key, bool& out) const;
  Status get_bytes(uint64_t key, Bytes& out, size_t max_len) const;
  // The same checks, no copy: `out` views the map's own bytes (valid while
  // the map lives and is not changed).
  Status get_bytes_view(uint64_t key, std::span<const uint8_t>& out, size_t max_len) const;
  Status get_text(uint64_t key, std::string& out, size_t max_len) const;
  // Optional variants: absent leaves `out` as it is and returns kOk.
  Status opt_uint(uint64_t key, std::optional<uint64_t>& out, uint64_t max = UINT64_MAX) const;
  Status opt_bool(uint64_t key, bool& out) const;
  Status opt_bytes(uint64_t key, Bytes& out, size_t max_len) const;
  Status opt_bytes_view(uint64_t key, std::span<const uint8_t>& out, size_t max_len) const;
  Status opt_text(uint64_t key, std::string& out, size_t max_len) const;
  // Array or map value, for nested structures.
  const Value* get(uint64_t key) const { return map_.find(key); }

 private:
  const Value& map_;
};

}  // namespace ihsm::cbor
