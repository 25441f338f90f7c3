// The CBOR codec (src/common/cbor.h): round trips of every type, and the
// hostile-input rules the protocol promises (docs/protocol.md, "Body").
#include "common/cbor.h"

#include <gtest/gtest.h>

#include <limits>

#include "support/util.h"

namespace ihsm {
namespace {

using cbor::Value;
using test::from_hex;
using Type = Value::Type;

Value decode_ok(const Bytes& in) {
  Value v;
  const Status s = cbor::decode(in, v);
  EXPECT_EQ(s, Status::kOk) << status_name(s) << " for " << test::to_hex(in);
  return v;
}

Status decode_status(const Bytes& in, const cbor::DecodeLimits& limits = {}) {
  Value v;
  return cbor::decode(in, v, limits);
}

// Structural equality of two values (the codec has no operator==).
bool same(const Value& a, const Value& b) {
  if (a.type() != b.type()) return false;
  switch (a.type()) {
    case Type::kNull:
      return true;
    case Type::kBool:
      return a.as_bool() == b.as_bool();
    case Type::kUint:
      return a.as_uint() == b.as_uint();
    case Type::kNegint:
      return a.as_negint() == b.as_negint();
    case Type::kBytes:
    case Type::kText:
      return a.as_bytes() == b.as_bytes();
    case Type::kArray:
      if (a.items().size() != b.items().size()) return false;
      for (size_t i = 0; i < a.items().size(); ++i) {
        if (!same(a.items()[i], b.items()[i])) return false;
      }
      return true;
    case Type::kMap:
      if (a.entries().size() != b.entries().size()) return false;
      for (size_t i = 0; i < a.entries().size(); ++i) {
        if (!same(a.entries()[i].first, b.entries()[i].first) ||
            !same(a.entries()[i].second, b.entries()[i].second)) {
          return false;
        }
      }
      return true;
  }
  return false;
}

void expect_round_trip(const Value& v, const std::string& expected_hex = "") {
  const Bytes enc = cbor::encode(v);
  if (!expected_hex.empty()) {
    EXPECT_EQ(test::to_hex(enc), expected_hex);
  }
  Value back;
  ASSERT_EQ(cbor::decode(enc, back), Status::kOk) << test::to_hex(enc);
  EXPECT_TRUE(same(v, back)) << test::to_hex(enc);
  // Re-encoding is byte-identical.
  EXPECT_EQ(cbor::encode(back), enc);
}

TEST(Cbor, UnsignedIntegersRoundTripWithShortestEncoding) {
  expect_round_trip(Value::uint(0), "00");
  expect_round_trip(Value::uint(23), "17");
  expect_round_trip(Value::uint(24), "1818");
  expect_round_trip(Value::uint(255), "18ff");
  expect_round_trip(Value::uint(256), "190100");
  expect_round_trip(Value::uint(65535), "19ffff");
  expect_round_trip(Value::uint(65536), "1a00010000");
  expect_round_trip(Value::uint(0xffffffffu), "1affffffff");
  expect_round_trip(Value::uint(0x100000000ull), "1b0000000100000000");
  expect_round_trip(Value::uint(std::numeric_limits<uint64_t>::max()), "1bffffffffffffffff");
}

TEST(Cbor, NegativeIntegersRoundTrip) {
  expect_round_trip(Value::negint(-1), "20");
  expect_round_trip(Value::negint(-24), "37");
  expect_round_trip(Value::negint(-25), "3818");
  expect_round_trip(Value::negint(-256), "38ff");
  expect_round_trip(Value::negint(-257), "390100");
  expect_round_trip(Value::negint(-65537), "3a00010000");
  expect_round_trip(Value::negint(std::numeric_limits<int64_t>::min()), "3b7fffffffffffffff");
  EXPECT_EQ(decode_ok(from_hex("3903e7")).as_negint(), -1000);
}

TEST(Cbor, NegativeBeyondInt64IsRejected) {
  // -1 - 2^63 does not fit an int64_t.
  EXPECT_EQ(decode_status(from_hex("3b8000000000000000")), Status::kMalformedBody);
  EXPECT_EQ(decode_status(from_hex("3bffffffffffffffff")), Status::kMalformedBody);
}

TEST(Cbor, StringsRoundTrip) {
  expect_round_trip(Value::bytes(Bytes{}), "40");
  expect_round_trip(Value::bytes(Bytes{1, 2, 3, 4}), "4401020304");
  expect_round_trip(Value::text(""), "60");
  expect_round_trip(Value::text("IETF"), "6449455446");
  expect_round_trip(Value::text("\xc3\xbc"), "62c3bc");
  Bytes big(70000, 0xab);
  expect_round_trip(Value::bytes(big));
  EXPECT_EQ(test::to_hex(cbor::encode(Value::bytes(Bytes(24, 0)))).substr(0, 4), "5818");
  EXPECT_EQ(test::to_hex(cbor::encode(Value::bytes(big))).substr(0, 10), "5a00011170");
}

TEST(Cbor, SimpleValuesRoundTrip) {
  expect_round_trip(Value::boolean(false), "f4");
  expect_round_trip(Value::boolean(true), "f5");
  expect_round_trip(Value(), "f6");
}

TEST(Cbor, ArraysAndNestedMapsRoundTrip) {
  expect_round_trip(Value::array(), "80");
  expect_round_trip(Value::map(), "a0");
  Value arr = Value::array();
  arr.push(Value::uint(1)).push(Value::negint(-2)).push(Value::text("x"));
  expect_round_trip(arr, "8301216178");

  Value inner = Value::map();
  inner.set(uint64_t{1}, Value::bytes(Bytes{0xde, 0xad}));
  inner.set(int64_t{-7}, Value::boolean(true));
  Value list = Value::array();
  list.push(inner).push(Value::map()).push(Value::array());
  Value outer = Value::map();
  outer.set(uint64_t{31}, list);
  outer.set(uint64_t{2}, Value::text("name"));
  outer.set(uint64_t{100000}, Value::uint(5));
  expect_round_trip(outer);

  const Value back = decode_ok(cbor::encode(outer));
  ASSERT_TRUE(back.is(Type::kMap));
  const Value* l = back.find(31);
  ASSERT_NE(l, nullptr);
  ASSERT_EQ(l->items().size(), 3u);
  const Value* b = l->items()[0].find(1);
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->as_bytes(), (Bytes{0xde, 0xad}));
  EXPECT_EQ(l->items()[0].entries()[1].first.as_negint(), -7);
  EXPECT_EQ(back.find(100000)->as_uint(), 5u);
  EXPECT_EQ(back.find(99), nullptr);
}

TEST(Cbor, TextKeysAreAccepted) {
  // {"a": 1}
  const Value v = decode_ok(from_hex("a1616101"));
  ASSERT_EQ(v.entries().size(), 1u);
  EXPECT_EQ(v.entries()[0].first.as_text(), "a");
}

TEST(Cbor, RejectsEmptyInput) { EXPECT_EQ(decode_status({}), Status::kMalformedBody); }

TEST(Cbor, RejectsTrailingBytes) {
  EXPECT_EQ(decode_status(from_hex("a000")), Status::kMalformedBody);
  EXPECT_EQ(decode_status(from_hex("0101")), Status::kMalformedBody);
  EXPECT_EQ(decode_status(from_hex("a10102ff")), Status::kMalformedBody);
  EXPECT_EQ(decode_status(from_hex("a0a0")), Status::kMalformedBody);
}

Bytes nested_arrays(int depth) {
  Bytes out(static_cast<size_t>(depth), 0x81);  // [ [ [ ...
  out.back() = 0x80;                            // innermost empty
  return out;
}

TEST(Cbor, DepthEightIsAcceptedNineIsRejected) {
  EXPECT_EQ(decode_status(nested_arrays(8)), Status::kOk);
  EXPECT_EQ(decode_status(nested_arrays(9)), Status::kMalformedBody);
  EXPECT_EQ(decode_status(nested_arrays(200)), Status::kMalformedBody);
  // Maps count too: eight maps nested under key 1, then a ninth.
  Bytes maps8, maps9;
  for (int i = 0; i < 7; ++i) maps8.insert(maps8.end(), {0xa1, 0x01});
  maps8.push_back(0xa0);
  for (int i = 0; i < 8; ++i) maps9.insert(maps9.end(), {0xa1, 0x01});
  maps9.push_back(0xa0);
  EXPECT_EQ(decode_status(maps8), Status::kOk);
  EXPECT_EQ(decode_status(maps9), Status::kMalformedBody);
  // A custom limit is honoured.
  EXPECT_EQ(decode_status(nested_arrays(3), {.max_depth = 2}), Status::kMalformedBody);
}

TEST(Cbor, RejectsIndefiniteLengthItems) {
  EXPECT_EQ(decode_status(from_hex("9fff")), Status::kMalformedBody);                // []
  EXPECT_EQ(decode_status(from_hex("9f01ff")), Status::kMalformedBody);              // [1]
  EXPECT_EQ(decode_status(from_hex("bf0102ff")), Status::kMalformedBody);            // {1:2}
  EXPECT_EQ(decode_status(from_hex("5f42010243030405ff")), Status::kMalformedBody);  // bytes
  EXPECT_EQ(decode_status(from_hex("7f6161ff")), Status::kMalformedBody);            // text
  EXPECT_EQ(decode_status(from_hex("a1015f4101ff")), Status::kMalformedBody);        // nested
  EXPECT_EQ(decode_status(from_hex("ff")), Status::kMalformedBody);                  // lone break
}

TEST(Cbor, RejectsTags) {
  EXPECT_EQ(decode_status(from_hex("c11a514b67b0")), Status::kMalformedBody);  // epoch time
  EXPECT_EQ(decode_status(from_hex("d8184100")), Status::kMalformedBody);      // tag 24
  EXPECT_EQ(decode_status(from_hex("a101c24101")), Status::kMalformedBody);    // bignum value
}

TEST(Cbor, RejectsFloatsAndUndefined) {
  EXPECT_EQ(decode_status(from_hex("f93c00")), Status::kMalformedBody);              // half 1.0
  EXPECT_EQ(decode_status(from_hex("fa47c35000")), Status::kMalformedBody);          // single
  EXPECT_EQ(decode_status(from_hex("fb3ff199999999999a")), Status::kMalformedBody);  // double
  EXPECT_EQ(decode_status(from_hex("a101fa47c35000")), Status::kMalformedBody);
  EXPECT_EQ(decode_status(from_hex("f7")), Status::kMalformedBody);  // undefined
}

TEST(Cbor, RejectsTruncatedInput) {
  const Bytes full = from_hex("a2016474657874024401020304");  // {1:"text", 2:h'01020304'}
  ASSERT_EQ(decode_status(full), Status::kOk);
  for (size_t n = 1; n < full.size(); ++n) {
    EXPECT_EQ(decode_status(Bytes(full.begin(), full.begin() + static_cast<ptrdiff_t>(n))),
              Status::kMalformedBody)
        << "prefix of " << n << " bytes";
  }
  EXPECT_EQ(decode_status(from_hex("19")), Status::kMalformedBody);  // uint16 without bytes
  EXPECT_EQ(decode_status(from_hex("1b00")), Status::kMalformedBody);
}

TEST(Cbor, HugeDeclaredLengthsOnShortBuffersAreRejectedWithoutAllocating) {
  // A byte string declaring 2^60 bytes, then three bytes.
  EXPECT_EQ(decode_status(from_hex("5b1000000000000000010203")), Status::kMalformedBody);
  EXPECT_EQ(decode_status(from_hex("5bffffffffffffffff00")), Status::kMalformedBody);
  EXPECT_EQ(decode_status(from_hex("7b1000000000000000616263")), Status::kMalformedBody);
  // Arrays and maps declaring 2^60 entries.
  EXPECT_EQ(decode_status(from_hex("9b100000000000000001")), Status::kMalformedBody);
  EXPECT_EQ(decode_status(from_hex("bb10000000000000000102")), Status::kMalformedBody);
  // Inside a map, as a field value.
  EXPECT_EQ(decode_status(from_hex("a1175b10000000000000000102")), Status::kMalformedBody);
}

TEST(Cbor, ItemCountLimit) {
  // An array of n small integers is 1 + n items.
  auto array_of = [](size_t n) {
    Bytes out = {0x9a};
    for (int i = 3; i >= 0; --i) out.push_back(static_cast<uint8_t>(n >> (8 * i)));
    out.insert(out.end(), n, 0x01);
    return out;
  };
  EXPECT_EQ(decode_status(array_of(65535)), Status::kOk);
  EXPECT_EQ(decode_status(array_of(65536)), Status::kFieldTooLarge);
  EXPECT_EQ(decode_status(array_of(200000)), Status::kFieldTooLarge);
  // Map keys count as items: {1: [0 x 3]} is 6 items.
  EXPECT_EQ(decode_status(from_hex("a10183000000"), {.max_items = 6}), Status::kOk);
  EXPECT_EQ(decode_status(from_hex("a10183000000"), {.max_items = 5}), Status::kFieldTooLarge);
}

TEST(Cbor, MapKeysMustBeIntegersOrText) {
  EXPECT_EQ(decode_status(from_hex("a1410101")), Status::kMalformedBody);  // bytes key
  EXPECT_EQ(decode_status(from_hex("a1f501")), Status::kMalformedBody);    // bool key
  EXPECT_EQ(decode_status(from_hex("a1f601")), Status::kMalformedBody);    // null key
  EXPECT_EQ(decode_status(from_hex("a18001")), Status::kMalformedBody);    // array key
  EXPECT_EQ(decode_status(from_hex("a1a001")), Status::kMalformedBody);    // map key
  EXPECT_EQ(decode_status(from_hex("a12001")), Status::kOk);               // -1: fine
}

TEST(Cbor, RejectsReservedAndUnassignedEncodings) {
  EXPECT_EQ(decode_status(from_hex("1c")), Status::kMalformedBody);  // additional info 28
  EXPECT_EQ(decode_status(from_hex("1f")), Status::kMalformedBody);  // indefinite uint
}

// ---------------------------------------------------------------- MapReader

class MapReaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    map_ = Value::map();
    map_.set(uint64_t{1}, Value::uint(42));
    map_.set(uint64_t{2}, Value::text("hello"));
    map_.set(uint64_t{3}, Value::bytes(Bytes{1, 2, 3}));
    map_.set(uint64_t{4}, Value::boolean(true));
    map_.set(uint64_t{5}, Value::array());
    map_.set(uint64_t{6}, Value::negint(-3));
  }
  Value map_;
};

TEST_F(MapReaderTest, TypedGetters) {
  cbor::MapReader r(map_);
  EXPECT_TRUE(r.is_map());
  uint64_t u = 0;
  EXPECT_EQ(r.get_uint(1, u), Status::kOk);
  EXPECT_EQ(u, 42u);
  std::string t;
  EXPECT_EQ(r.get_text(2, t, 5), Status::kOk);
  EXPECT_EQ(t, "hello");
  Bytes b;
  EXPECT_EQ(r.get_bytes(3, b, 3), Status::kOk);
  EXPECT_EQ(b, (Bytes{1, 2, 3}));
  bool flag = false;
  EXPECT_EQ(r.get_bool(4, flag), Status::kOk);
  EXPECT_TRUE(flag);
  ASSERT_NE(r.get(5), nullptr);
  EXPECT_TRUE(r.get(5)->is(Type::kArray));
}

TEST_F(MapReaderTest, MissingFields) {
  cbor::MapReader r(map_);
  uint64_t u = 7;
  std::string t;
  Bytes b;
  bool flag = false;
  EXPECT_EQ(r.get_uint(99, u), Status::kMissingField);
  EXPECT_EQ(r.get_text(99, t, 10), Status::kMissingField);
  EXPECT_EQ(r.get_bytes(99, b, 10), Status::kMissingField);
  EXPECT_EQ(r.get_bool(99, flag), Status::kMissingField);
  EXPECT_EQ(u, 7u);
  EXPECT_FALSE(r.has(99));
  EXPECT_EQ(r.get(99), nullptr);
}

TEST_F(MapReaderTest, WrongTypesAreMalformed) {
  cbor::MapReader r(map_);
  uint64_t u = 0;
  std::string t;
  Bytes b;
  bool flag = false;
  EXPECT_EQ(r.get_uint(2, u), Status::kMalformedBody);
  EXPECT_EQ(r.get_uint(6, u), Status::kMalformedBody);  // negative is not a uint
  EXPECT_EQ(r.get_text(3, t, 100), Status::kMalformedBody);
  EXPECT_EQ(r.get_bytes(2, b, 100), Status::kMalformedBody);  // text is not bytes
  EXPECT_EQ(r.get_bool(1, flag), Status::kMalformedBody);
  std::optional<uint64_t> ou;
  EXPECT_EQ(r.opt_uint(3, ou), Status::kMalformedBody);
  EXPECT_FALSE(ou.has_value());
  EXPECT_EQ(r.opt_bytes(1, b, 10), Status::kMalformedBody);
  EXPECT_EQ(r.opt_text(1, t, 10), Status::kMalformedBody);
  EXPECT_EQ(r.opt_bool(1, flag), Status::kMalformedBody);
}

TEST_F(MapReaderTest, SizeLimits) {
  cbor::MapReader r(map_);
  std::string t;
  Bytes b;
  uint64_t u = 0;
  EXPECT_EQ(r.get_text(2, t, 4), Status::kFieldTooLarge);
  EXPECT_EQ(r.get_bytes(3, b, 2), Status::kFieldTooLarge);
  EXPECT_EQ(r.opt_bytes(3, b, 2), Status::kFieldTooLarge);
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(r.get_uint(1, u, 41), Status::kInvalidArgument);
  EXPECT_EQ(r.get_uint(1, u, 42), Status::kOk);
}

TEST_F(MapReaderTest, OptionalAbsentLeavesOutputAlone) {
  cbor::MapReader r(map_);
  std::optional<uint64_t> ou;
  EXPECT_EQ(r.opt_uint(99, ou), Status::kOk);
  EXPECT_FALSE(ou.has_value());
  EXPECT_EQ(r.opt_uint(1, ou), Status::kOk);
  EXPECT_EQ(ou, 42u);
  std::string t = "keep";
  EXPECT_EQ(r.opt_text(99, t, 10), Status::kOk);
  EXPECT_EQ(t, "keep");
  bool flag = true;
  EXPECT_EQ(r.opt_bool(99, flag), Status::kOk);
  EXPECT_TRUE(flag);
}

TEST(MapReader, NonMapValue) {
  const Value arr = Value::array();
  cbor::MapReader r(arr);
  EXPECT_FALSE(r.is_map());
  uint64_t u = 0;
  EXPECT_EQ(r.get_uint(1, u), Status::kMissingField);
  // find() on a map skips non-uint keys.
  Value m = Value::map();
  m.set(int64_t{-1}, Value::uint(1));
  EXPECT_EQ(m.find(1), nullptr);
}

}  // namespace
}  // namespace ihsm
