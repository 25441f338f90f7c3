#include "common/cbor.h"

#include <cbor.h>

#include <array>

#include "common/secret.h"

namespace ihsm::cbor {

Value Value::uint(uint64_t v) {
  Value out;
  out.type_ = Type::kUint;
  out.uint_ = v;
  return out;
}
Value Value::negint(int64_t v) {
  Value out;
  out.type_ = Type::kNegint;
  out.negint_ = v;
  return out;
}
Value Value::bytes(std::span<const uint8_t> v) {
  Value out;
  out.type_ = Type::kBytes;
  out.bytes_.assign(v.begin(), v.end());
  return out;
}
Value Value::bytes(Bytes&& v) {
  Value out;
  out.type_ = Type::kBytes;
  out.bytes_ = std::move(v);
  return out;
}
Value Value::text(std::string_view v) {
  Value out;
  out.type_ = Type::kText;
  out.bytes_.assign(v.begin(), v.end());
  return out;
}
Value Value::boolean(bool v) {
  Value out;
  out.type_ = Type::kBool;
  out.bool_ = v;
  return out;
}
Value Value::array() {
  Value out;
  out.type_ = Type::kArray;
  return out;
}
Value Value::map() {
  Value out;
  out.type_ = Type::kMap;
  return out;
}

Value& Value::push(Value v) {
  items_.push_back(std::move(v));
  return *this;
}

Value& Value::set(uint64_t key, Value v) {
  // A map never holds a key twice (the decoder refuses that): setting an
  // existing key replaces its value.
  for (auto& [k, existing] : entries_) {
    if (k.is(Type::kUint) && k.as_uint() == key) {
      existing = std::move(v);
      return *this;
    }
  }
  entries_.emplace_back(Value::uint(key), std::move(v));
  return *this;
}

Value& Value::set(int64_t key, Value v) {
  if (key >= 0) return set(static_cast<uint64_t>(key), std::move(v));
  for (auto& [k, existing] : entries_) {
    if (k.is(Type::kNegint) && k.as_negint() == key) {
      existing = std::move(v);
      return *this;
    }
  }
  entries_.emplace_back(Value::negint(key), std::move(v));
  return *this;
}

void Value::wipe() {
  secure_cleanse(bytes_.data(), bytes_.size());
  for (auto& item : items_) item.wipe();
  for (auto& [k, v] : entries_) {
    k.wipe();
    v.wipe();
  }
}

const Value* Value::find(uint64_t key) const {
  if (type_ != Type::kMap) return nullptr;
  for (const auto& [k, v] : entries_) {
    if (k.type_ == Type::kUint && k.uint_ == key) return &v;
  }
  return nullptr;
}

// ---------------------------------------------------------------- encoding

namespace {

void append_header(Bytes& out, size_t (*enc)(size_t, unsigned char*, size_t), size_t n) {
  std::array<unsigned char, 9> buf{};
  const size_t len = enc(n, buf.data(), buf.size());
  out.insert(out.end(), buf.begin(), buf.begin() + static_cast<ptrdiff_t>(len));
}

}  // namespace

void encode_append(const Value& v, Bytes& out) {
  std::array<unsigned char, 9> buf{};
  size_t len = 0;
  switch (v.type()) {
    case Value::Type::kNull:
      len = cbor_encode_null(buf.data(), buf.size());
      break;
    case Value::Type::kBool:
      len = cbor_encode_bool(v.as_bool(), buf.data(), buf.size());
      break;
    case Value::Type::kUint:
      len = cbor_encode_uint(v.as_uint(), buf.data(), buf.size());
      break;
    case Value::Type::kNegint:
      // CBOR stores -1 - n.
      len = cbor_encode_negint(static_cast<uint64_t>(-(v.as_negint() + 1)), buf.data(), buf.size());
      break;
    case Value::Type::kBytes:
      append_header(out, cbor_encode_bytestring_start, v.as_bytes().size());
      out.insert(out.end(), v.as_bytes().begin(), v.as_bytes().end());
      return;
    case Value::Type::kText:
      append_header(out, cbor_encode_string_start, v.as_bytes().size());
      out.insert(out.end(), v.as_bytes().begin(), v.as_bytes().end());
      return;
    case Value::Type::kArray:
      append_header(out, cbor_encode_array_start, v.items().size());
      for (const auto& item : v.items()) encode_append(item, out);
      return;
    case Value::Type::kMap:
      append_header(out, cbor_encode_map_start, v.entries().size());
      for (const auto& [k, val] : v.entries()) {
        encode_append(k, out);
        encode_append(val, out);
      }
      return;
  }
  out.insert(out.end(), buf.begin(), buf.begin() + static_cast<ptrdiff_t>(len));
}

namespace {

// At least the encoded size (headers counted at their largest), so
// encode() allocates once instead of growing through every power of two
// up to a large string's size.
size_t encoded_size_bound(const Value& v) {
  constexpr size_t kHeader = 9;
  switch (v.type()) {
    case Value::Type::kBytes:
    case Value::Type::kText:
      return kHeader + v.as_bytes().size();
    case Value::Type::kArray: {
      size_t n = kHeader;
      for (const auto& item : v.items()) n += encoded_size_bound(item);
      return n;
    }
    case Value::Type::kMap: {
      size_t n = kHeader;
      for (const auto& [k, val] : v.entries()) n += encoded_size_bound(k) + encoded_size_bound(val);
      return n;
    }
    default:
      return kHeader;
  }
}

}  // namespace

Bytes encode(const Value& v) {
  Bytes out;
  out.reserve(encoded_size_bound(v));
  encode_append(v, out);
  return out;
}

// ---------------------------------------------------------------- decoding

namespace {

// Protocol maps are small; the bound also keeps the duplicate-key check cheap.
constexpr size_t kMaxMapEntries = 256;

bool same_key(const Value& a, const Value& b) {
  if (a.type() != b.type()) return false;
  switch (a.type()) {
    case Value::Type::kUint:
      return a.as_uint() == b.as_uint();
    case Value::Type::kNegint:
      return a.as_negint() == b.as_negint();
    default:
      return a.as_bytes() == b.as_bytes();
  }
}

struct OpenContainer {
  Value* value;
  uint64_t remaining;  // items (array) or entries (map) still to come
  bool expecting_key;  // maps only
};

struct DecodeContext {
  const DecodeLimits* limits;
  Value root;
  bool have_root = false;
  std::vector<OpenContainer> stack;
  size_t items = 0;
  Status error = Status::kOk;

  void fail() {
    if (error == Status::kOk) error = Status::kMalformedBody;
  }

  // Place a finished scalar, or a freshly opened container, into its parent.
  Value* place(Value v) {
    if (error != Status::kOk) return nullptr;
    if (++items > limits->max_items) {
      error = Status::kFieldTooLarge;
      return nullptr;
    }
    if (stack.empty()) {
      if (have_root) {
        fail();  // a second top-level item: trailing data
        return nullptr;
      }
      root = std::move(v);
      have_root = true;
      return &root;
    }
    OpenContainer& top = stack.back();
    Value* placed = nullptr;
    if (top.value->is(Value::Type::kArray)) {
      top.value->mutable_items().push_back(std::move(v));
      placed = &top.value->mutable_items().back();
      --top.remaining;
    } else if (top.expecting_key) {
      // Keys must be integers or text: anything else is not our protocol.
      if (!v.is(Value::Type::kUint) && !v.is(Value::Type::kNegint) && !v.is(Value::Type::kText)) {
        fail();
        return nullptr;
      }
      // A repeated key could mean different things to different readers.
      auto& entries = top.value->mutable_entries();
      if (entries.size() >= kMaxMapEntries) {
        error = Status::kFieldTooLarge;
        return nullptr;
      }
      for (const auto& [k, unused] : entries) {
        if (same_key(k, v)) {
          fail();
          return nullptr;
        }
      }
      top.value->mutable_entries().emplace_back(std::move(v), Value());
      placed = &top.value->mutable_entries().back().first;
      top.expecting_key = false;
    } else {
      top.value->mutable_entries().back().second = std::move(v);
      placed = &top.value->mutable_entries().back().second;
      top.expecting_key = true;
      --top.remaining;
    }
    return placed;
  }

  void close_finished() {
    while (!stack.empty() && stack.back().remaining == 0 && stack.back().expecting_key) {
      stack.pop_back();
    }
  }

  void scalar(Value v) {
    place(std::move(v));
    close_finished();
  }

  void open(Value container, uint64_t count) {
    if (stack.size() + 1 > limits->max_depth) {
      error = Status::kMalformedBody;
      return;
    }
    Value* placed = place(std::move(container));
    if (placed == nullptr) return;
    stack.push_back(OpenContainer{placed, count, true});
    close_finished();
  }
};

DecodeContext* ctx(void* p) { return static_cast<DecodeContext*>(p); }

void on_uint8(void* c, uint8_t v) { ctx(c)->scalar(Value::uint(v)); }
void on_uint16(void* c, uint16_t v) { ctx(c)->scalar(Value::uint(v)); }
void on_uint32(void* c, uint32_t v) { ctx(c)->scalar(Value::uint(v)); }
void on_uint64(void* c, uint64_t v) { ctx(c)->scalar(Value::uint(v)); }
void on_negint(void* c, uint64_t n) {
  // Value is -1 - n; anything below INT64_MIN is not ours to represent.
  if (n > static_cast<uint64_t>(INT64_MAX)) {
    ctx(c)->fail();
    return;
  }
  ctx(c)->scalar(Value::negint(-1 - static_cast<int64_t>(n)));
}
void on_negint8(void* c, uint8_t v) { on_negint(c, v); }
void on_negint16(void* c, uint16_t v) { on_negint(c, v); }
void on_negint32(void* c, uint32_t v) { on_negint(c, v); }
void on_negint64(void* c, uint64_t v) { on_negint(c, v); }
void on_bytes(void* c, cbor_data data, size_t len) {
  ctx(c)->scalar(Value::bytes(std::span<const uint8_t>(data, len)));
}
void on_text(void* c, cbor_data data, size_t len) {
  ctx(c)->scalar(Value::text(std::string_view(reinterpret_cast<const char*>(data), len)));
}
void on_array(void* c, size_t n) { ctx(c)->open(Value::array(), n); }
void on_map(void* c, size_t n) { ctx(c)->open(Value::map(), n); }
void on_bool(void* c, bool v) { ctx(c)->scalar(Value::boolean(v)); }
void on_null(void* c) { ctx(c)->scalar(Value()); }
void on_reject(void* c) { ctx(c)->fail(); }
void on_reject_tag(void* c, uint64_t) { ctx(c)->fail(); }
void on_reject_float(void* c, float) { ctx(c)->fail(); }
void on_reject_double(void* c, double) { ctx(c)->fail(); }

cbor_callbacks make_callbacks() {
  cbor_callbacks cb = cbor_empty_callbacks;
  cb.uint8 = on_uint8;
  cb.uint16 = on_uint16;
  cb.uint32 = on_uint32;
  cb.uint64 = on_uint64;
  cb.negint8 = on_negint8;
  cb.negint16 = on_negint16;
  cb.negint32 = on_negint32;
  cb.negint64 = on_negint64;
  cb.byte_string = on_bytes;
  cb.string = on_text;
  cb.array_start = on_array;
  cb.map_start = on_map;
  cb.boolean = on_bool;
  cb.null = on_null;
  // Indefinite lengths, tags, floats and undefined are not part of the protocol.
  cb.byte_string_start = on_reject;
  cb.string_start = on_reject;
  cb.indef_array_start = on_reject;
  cb.indef_map_start = on_reject;
  cb.indef_break = on_reject;
  cb.undefined = on_reject;
  cb.tag = on_reject_tag;
  cb.float2 = on_reject_float;
  cb.float4 = on_reject_float;
  cb.float8 = on_reject_double;
  return cb;
}

const cbor_callbacks kCallbacks = make_callbacks();

}  // namespace

Status decode(std::span<const uint8_t> in, Value& out, const DecodeLimits& limits) {
  DecodeContext c;
  c.limits = &limits;
  size_t offset = 0;
  while (offset < in.size()) {
    const cbor_decoder_result r =
        cbor_stream_decode(in.data() + offset, in.size() - offset, &kCallbacks, &c);
    if (r.status != CBOR_DECODER_FINISHED || r.read == 0) return Status::kMalformedBody;
    offset += r.read;
    if (c.error != Status::kOk) return c.error;
  }
  if (!c.have_root || !c.stack.empty()) return Status::kMalformedBody;
  out = std::move(c.root);
  return Status::kOk;
}

// ---------------------------------------------------------------- MapReader

Status MapReader::get_uint(uint64_t key, uint64_t& out, uint64_t max) const {
  const Value* v = map_.find(key);
  if (v == nullptr) return Status::kMissingField;
  if (!v->is(Value::Type::kUint)) return Status::kMalformedBody;
  if (v->as_uint() > max) return Status::kInvalidArgument;
  out = v->as_uint();
  return Status::kOk;
}

Status MapReader::get_bool(uint64_t key, bool& out) const {
  const Value* v = map_.find(key);
  if (v == nullptr) return Status::kMissingField;
  if (!v->is(Value::Type::kBool)) return Status::kMalformedBody;
  out = v->as_bool();
  return Status::kOk;
}

Status MapReader::get_bytes(uint64_t key, Bytes& out, size_t max_len) const {
  std::span<const uint8_t> view;
  const Status s = get_bytes_view(key, view, max_len);
  if (ok(s)) out.assign(view.begin(), view.end());
  return s;
}

Status MapReader::get_bytes_view(uint64_t key, std::span<const uint8_t>& out,
                                 size_t max_len) const {
  const Value* v = map_.find(key);
  if (v == nullptr) return Status::kMissingField;
  if (!v->is(Value::Type::kBytes)) return Status::kMalformedBody;
  if (v->as_bytes().size() > max_len) return Status::kFieldTooLarge;
  out = v->as_bytes();
  return Status::kOk;
}

Status MapReader::get_text(uint64_t key, std::string& out, size_t max_len) const {
  const Value* v = map_.find(key);
  if (v == nullptr) return Status::kMissingField;
  if (!v->is(Value::Type::kText)) return Status::kMalformedBody;
  if (v->as_bytes().size() > max_len) return Status::kFieldTooLarge;
  out = std::string(v->as_text());
  return Status::kOk;
}

Status MapReader::opt_uint(uint64_t key, std::optional<uint64_t>& out, uint64_t max) const {
  if (!has(key)) return Status::kOk;
  uint64_t v = 0;
  const Status s = get_uint(key, v, max);
  if (ok(s)) out = v;
  return s;
}

Status MapReader::opt_bool(uint64_t key, bool& out) const {
  return has(key) ? get_bool(key, out) : Status::kOk;
}

Status MapReader::opt_bytes(uint64_t key, Bytes& out, size_t max_len) const {
  return has(key) ? get_bytes(key, out, max_len) : Status::kOk;
}

Status MapReader::opt_bytes_view(uint64_t key, std::span<const uint8_t>& out,
                                 size_t max_len) const {
  return has(key) ? get_bytes_view(key, out, max_len) : Status::kOk;
}

Status MapReader::opt_text(uint64_t key, std::string& out, size_t max_len) const {
  return has(key) ? get_text(key, out, max_len) : Status::kOk;
}

}  // namespace ihsm::cbor
