#include "common/tcb_info.h"

#include <openssl/objects.h>

#include <algorithm>
#include <memory>

namespace ihsm::dice {
namespace {

// Every tag here has a number below 31, so it is one byte.
constexpr uint8_t kSequence = 0x30;
constexpr uint8_t kOid = 0x06;
constexpr uint8_t kOctetString = 0x04;
constexpr uint8_t kContext = 0x80;  // class bits of [n]
constexpr uint8_t kVendor = 0x80, kModel = 0x81, kVersion = 0x82, kSvn = 0x83, kFwids = 0xA6;

// The content octets of the OID sha384 (2.16.840.1.101.3.4.2.2).
constexpr uint8_t kSha384Oid[] = {0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02};

std::span<const uint8_t> as_bytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

// Strict UTF-8 (no overlong forms, surrogates or code points past
// U+10FFFF), without NUL so that no C consumer sees a shorter string.
bool valid_utf8(std::span<const uint8_t> s) {
  static constexpr uint32_t kMinimum[] = {0, 0x80, 0x800, 0x10000};
  for (size_t i = 0; i < s.size();) {
    const uint8_t lead = s[i];
    size_t extra = 0;
    uint32_t cp = 0;
    if (lead == 0) return false;
    if (lead < 0x80) {
      ++i;
      continue;
    }
    if (lead >= 0xC2 && lead <= 0xDF) {
      extra = 1;
      cp = lead & 0x1Fu;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
      extra = 2;
      cp = lead & 0x0Fu;
    } else if (lead >= 0xF0 && lead <= 0xF4) {
      extra = 3;
      cp = lead & 0x07u;
    } else {
      return false;
    }
    if (s.size() - i <= extra) return false;
    for (size_t k = 1; k <= extra; ++k) {
      if ((s[i + k] & 0xC0) != 0x80) return false;
      cp = cp << 6 | (s[i + k] & 0x3Fu);
    }
    if (cp < kMinimum[extra] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += extra + 1;
  }
  return true;
}

bool valid_string(std::span<const uint8_t> s) { return s.size() <= kMaxTcbString && valid_utf8(s); }

// ---- encoding (sizes are bounded by encode_tcb_info's checks: < 64 KiB)

void put_tlv(Bytes& out, uint8_t tag, std::span<const uint8_t> value) {
  const size_t n = value.size();
  out.push_back(tag);
  if (n >= 0x100) {
    out.insert(out.end(), {0x82, static_cast<uint8_t>(n >> 8), static_cast<uint8_t>(n)});
  } else if (n >= 0x80) {
    out.insert(out.end(), {0x81, static_cast<uint8_t>(n)});
  } else {
    out.push_back(static_cast<uint8_t>(n));
  }
  out.insert(out.end(), value.begin(), value.end());
}

// The content octets of a non-negative DER INTEGER: minimal, with a leading
// zero when the top bit would otherwise make it negative.
Bytes integer_content(uint64_t v) {
  Bytes out;
  for (int shift = 56; shift >= 0; shift -= 8) {
    const auto b = static_cast<uint8_t>(v >> shift);
    if (out.empty() && b == 0 && shift > 0) continue;
    out.push_back(b);
  }
  if ((out[0] & 0x80) != 0) out.insert(out.begin(), 0);
  return out;
}

// ---- decoding

// One TLV at a time: definite, minimal lengths up to 64 KiB, one-byte tags.
class Reader {
 public:
  explicit Reader(std::span<const uint8_t> in) : in_(in) {}
  bool done() const { return in_.empty(); }

  bool next(uint8_t& tag, std::span<const uint8_t>& value) {
    if (in_.size() < 2 || (in_[0] & 0x1F) == 0x1F) return false;
    size_t len = in_[1];
    size_t header = 2;
    if (len >= 0x80) {
      const size_t count = len & 0x7F;
      if (count == 0 || count > 2 || in_.size() < 2 + count) return false;
      len = count == 1 ? in_[2] : size_t{in_[2]} << 8 | in_[3];
      if (len < 0x80 || (count == 2 && len < 0x100)) return false;
      header += count;
    }
    if (in_.size() - header < len) return false;
    tag = in_[0];
    value = in_.subspan(header, len);
    in_ = in_.subspan(header + len);
    return true;
  }

  bool expect(uint8_t tag, std::span<const uint8_t>& value) {
    uint8_t got = 0;
    return next(got, value) && got == tag;
  }

 private:
  std::span<const uint8_t> in_;
};

bool read_string(std::span<const uint8_t> value, std::string& out) {
  if (!valid_string(value)) return false;
  out.assign(value.begin(), value.end());
  return true;
}

bool read_uint(std::span<const uint8_t> v, uint64_t& out) {
  if (v.empty() || v.size() > 9 || (v[0] & 0x80) != 0) return false;  // empty, huge, negative
  if (v.size() > 1 && v[0] == 0 && (v[1] & 0x80) == 0) return false;  // not minimal
  if (v.size() == 9 && v[0] != 0) return false;                       // past 2^64 - 1
  uint64_t x = 0;
  for (uint8_t b : v) x = x << 8 | b;
  out = x;
  return true;
}

// FWIDLIST ::= SEQUENCE SIZE (1..MAX) OF FWID. Exactly one sha384 FWID, so
// that there is no choosing between two measurements.
bool read_fwids(std::span<const uint8_t> list, Bytes& sha384) {
  Reader r(list);
  bool found = false;
  while (!r.done()) {
    std::span<const uint8_t> fwid, oid, digest;
    if (!r.expect(kSequence, fwid)) return false;
    Reader f(fwid);
    if (!f.expect(kOid, oid) || oid.empty() || !f.expect(kOctetString, digest) || !f.done()) {
      return false;
    }
    if (!std::ranges::equal(oid, kSha384Oid)) continue;
    if (found || digest.size() != kFwidSize) return false;
    sha384.assign(digest.begin(), digest.end());
    found = true;
  }
  return found;
}

bool read_field(uint8_t tag, std::span<const uint8_t> value, TcbInfo& info) {
  switch (tag) {
    case kVendor:
      return read_string(value, info.vendor);
    case kModel:
      return read_string(value, info.model);
    case kVersion:
      return read_string(value, info.version);
    case kSvn:
      return read_uint(value, info.svn);
    case kFwids:
      return read_fwids(value, info.fwid_sha384);
    // layer, index (INTEGER), flags (BIT STRING), vendorInfo, type (OCTET
    // STRING), flagsMask (BIT STRING): all primitive, none of ours.
    case kContext | 4:
    case kContext | 5:
    case kContext | 7:
    case kContext | 8:
    case kContext | 9:
    case kContext | 10:
      return true;
    default:
      return false;
  }
}

struct ObjectFree {
  void operator()(ASN1_OBJECT* p) const { ASN1_OBJECT_free(p); }
};

}  // namespace

Bytes encode_tcb_info(const TcbInfo& info) {
  if (!valid_string(as_bytes(info.vendor)) || !valid_string(as_bytes(info.model)) ||
      !valid_string(as_bytes(info.version)) || info.fwid_sha384.size() != kFwidSize) {
    return {};
  }
  Bytes fwid, fwids, body, out;
  put_tlv(fwid, kOid, kSha384Oid);
  put_tlv(fwid, kOctetString, info.fwid_sha384);
  put_tlv(fwids, kSequence, fwid);
  put_tlv(body, kVendor, as_bytes(info.vendor));
  put_tlv(body, kModel, as_bytes(info.model));
  put_tlv(body, kVersion, as_bytes(info.version));
  put_tlv(body, kSvn, integer_content(info.svn));
  put_tlv(body, kFwids, fwids);
  put_tlv(out, kSequence, body);
  return out;
}

Status decode_tcb_info(std::span<const uint8_t> der, TcbInfo& out) {
  if (der.size() > kMaxTcbInfoSize) return Status::kMalformedBody;
  Reader outer(der);
  std::span<const uint8_t> body;
  if (!outer.expect(kSequence, body) || !outer.done()) return Status::kMalformedBody;

  TcbInfo info;
  uint32_t seen = 0;  // bit n: field [n]
  int last = -1;
  Reader fields(body);
  while (!fields.done()) {
    uint8_t tag = 0;
    std::span<const uint8_t> value;
    if (!fields.next(tag, value)) return Status::kMalformedBody;
    // DER puts a SEQUENCE's optional fields in their declared order, once.
    const int number = tag & 0x1F;
    if ((tag & 0xC0) != kContext || number <= last) return Status::kMalformedBody;
    if (!read_field(tag, value, info)) return Status::kMalformedBody;
    last = number;
    seen |= 1u << number;
  }
  constexpr uint32_t kRequired = 1u << 0 | 1u << 1 | 1u << 2 | 1u << 3 | 1u << 6;
  if ((seen & kRequired) != kRequired) return Status::kMalformedBody;
  out = std::move(info);
  return Status::kOk;
}

Status tcb_info_of(X509* cert, TcbInfo& out) {
  if (cert == nullptr) return Status::kInvalidArgument;
  std::unique_ptr<ASN1_OBJECT, ObjectFree> oid(OBJ_txt2obj(kTcbInfoOid, 1));
  if (!oid) return Status::kCryptoFailure;
  const int at = X509_get_ext_by_OBJ(cert, oid.get(), -1);
  if (at < 0) return Status::kMissingField;
  if (X509_get_ext_by_OBJ(cert, oid.get(), at) >= 0) return Status::kMalformedBody;
  const ASN1_OCTET_STRING* data = X509_EXTENSION_get_data(X509_get_ext(cert, at));
  if (data == nullptr) return Status::kMalformedBody;
  return decode_tcb_info(
      {ASN1_STRING_get0_data(data), static_cast<size_t>(ASN1_STRING_length(data))}, out);
}

}  // namespace ihsm::dice
