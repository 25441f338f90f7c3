// `ihsm attest verify`: ihsm::verify_report on a report file, the verdict
// as JSON on stdout. libihsm keeps the verdict plain (it does not link a
// JSON library); the JSON shape lives here.
#include <cstdint>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "ihsm/attestation.h"
#include "tools/ihsm/attest.h"

namespace {

using ihsm::Bytes;
using json = nlohmann::json;

// Far above any report (the decoder stops at 64 KiB); keeps a wrong file
// from being read whole.
constexpr std::streamsize kMaxReportFile = 1 << 20;

struct AttestVerifyOptions {
  std::string report;
  std::string root;
  std::string nonce;
  CLI::Option* nonce_opt = nullptr;  // set: an empty nonce is still expected
  std::vector<std::string> require;
};

std::string hex(const Bytes& b) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (uint8_t c : b) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 0xF]);
  }
  return out;
}

std::optional<Bytes> unhex(const std::string& s) {
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  if (s.size() % 2 != 0) return std::nullopt;
  Bytes out;
  for (size_t i = 0; i < s.size(); i += 2) {
    const int hi = nibble(s[i]);
    const int lo = nibble(s[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<uint8_t>(hi << 4 | lo));
  }
  return out;
}

std::optional<std::string> read_file(const std::string& path, std::streamsize max) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::string data(static_cast<size_t>(max) + 1, '\0');
  in.read(data.data(), max + 1);
  if (in.bad()) return std::nullopt;
  data.resize(static_cast<size_t>(in.gcount()));
  return data;
}

std::string_view class_name(uint32_t c) {
  static constexpr std::string_view kNames[] = {"data", "certificate", "public", "private",
                                                "secret"};
  return c < std::size(kNames) ? kNames[c] : "";
}

std::string_view type_name(uint32_t t) {
  switch (t) {
    case 0x0:
      return "RSA";
    case 0x3:
      return "EC";
    case 0x10:
      return "GENERIC_SECRET";
    case 0x1F:
      return "AES";
    case 0x40:
      return "EC_EDWARDS";
    case 0x41:
      return "EC_MONTGOMERY";
  }
  return "";
}

void add_key_fields(const ihsm::Verdict& v, json& j) {
  j["partition"] = v.partition;
  j["uid"] = hex(v.uid);
  j["class"] = v.object_class;
  if (!class_name(v.object_class).empty()) j["class_name"] = class_name(v.object_class);
  j["type"] = v.key_type;
  if (!type_name(v.key_type).empty()) j["type_name"] = type_name(v.key_type);
  j["bits"] = v.bits;
  j["flags"] = v.flag_names;
  if (!v.public_key_pem.empty()) j["public_key"] = v.public_key_pem;
  if (!v.value_digest.empty()) j["value_digest"] = hex(v.value_digest);
}

json verdict_json(const ihsm::Verdict& v) {
  json j = {{"valid", v.valid}};
  if (!v.valid) j["reason"] = v.reason;
  j["detail"] = v.detail;
  if (v.kind == 0) return j;  // nothing decoded
  j["kind"] = v.kind == 1 ? "key" : "device";
  j["nonce"] = hex(v.nonce);
  j["measurement"] = hex(v.measurement);
  j["svn"] = v.svn;
  j["time"] = v.time;
  if (v.kind == 1) {
    add_key_fields(v, j);
  } else {
    j["firmware_version"] = v.firmware_version;
    j["min_svn"] = v.min_svn;
    j["state"] = v.state;
  }
  return j;
}

int usage(const std::string& message) {
  std::cerr << "ihsm: attest verify: " << message << "\n";
  return 2;
}

int run(const AttestVerifyOptions& o) {
  const std::optional<std::string> report = read_file(o.report, kMaxReportFile);
  if (!report) return usage("cannot read " + o.report);
  ihsm::VerifyOptions options;
  const std::optional<std::string> root = read_file(o.root, kMaxReportFile);
  if (!root) return usage("cannot read " + o.root);
  options.trusted_root_pem = *root;
  if (o.nonce_opt->count() > 0) {
    options.nonce = unhex(o.nonce);
    if (!options.nonce) return usage("--nonce: not an even number of hex digits");
  }
  options.require = o.require;
  const ihsm::Verdict v = ihsm::verify_report(
      std::span(reinterpret_cast<const uint8_t*>(report->data()), report->size()), options);
  std::cout << verdict_json(v).dump(2, ' ', false, json::error_handler_t::replace) << "\n";
  return v.valid ? 0 : 1;
}

}  // namespace

void add_attest_verify(CLI::App& attest, std::function<int()>& action) {
  // Owned by the callbacks, so it lives as long as the App that parses into it.
  auto o = std::make_shared<AttestVerifyOptions>();
  auto* verify = attest.add_subcommand(
      "verify",
      "verify an attestation report offline (no device); prints a JSON verdict, exit 0 only when "
      "valid (docs/attestation.md)");
  verify->add_option("--report", o->report, "the report: a COSE_Sign1, binary CBOR")
      ->required()
      ->type_name("FILE");
  verify->add_option("--root", o->root, "the device's DeviceID certificate (PEM), the trust anchor")
      ->required()
      ->type_name("PEM");
  o->nonce_opt =
      verify->add_option("--nonce", o->nonce, "the expected caller data, hex")->type_name("HEX");
  verify
      ->add_option("--require", o->require,
                   "key properties that must hold, comma separated: flag names "
                   "(generated, never-extractable, ...) or not-<name>")
      ->delimiter(',')
      ->type_name("LIST");
  verify->callback([&action, o] { action = [o] { return run(*o); }; });
}
