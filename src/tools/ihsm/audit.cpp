// `ihsm audit show | verify | export | rotate`: the device's audit log
// (docs/security-policy.md, "Audit log"). Verification is ihsm::verify_audit,
// offline over export and archive files, or over the live log with a head
// the device signs for this run (which is what catches a cut-off tail).
#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <ctime>
#include <fstream>
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "common/cbor.h"
#include "ihsm/audit.h"
#include "ihsm/client.h"
#include "tools/ihsm/attest.h"

namespace {

using ihsm::AuditLog;
using ihsm::Bytes;
using json = nlohmann::json;

constexpr std::streamsize kMaxFile = std::streamsize{256} << 20;

struct AuditOptions {
  std::vector<std::string> files;
  std::string trust;
  std::string out;
  bool live = false;
  uint64_t after = 0;
};

struct CommandFailed {
  std::string message;
};

template <typename T>
T need(ihsm::Result<T> r, const std::string& what) {
  if (!r) {
    std::string m = what + ": " + std::string(ihsm::status_name(r.status()));
    if (!r.detail().message.empty()) m += ": " + r.detail().message;
    throw CommandFailed{m};
  }
  return std::move(r).value();
}

Bytes read_all(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw CommandFailed{"cannot read " + path};
  Bytes data((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  if (static_cast<std::streamsize>(data.size()) > kMaxFile)
    throw CommandFailed{path + ": too large"};
  return data;
}

std::string pem_of_der(const Bytes& der) {
  const unsigned char* p = der.data();
  X509* cert = d2i_X509(nullptr, &p, static_cast<long>(der.size()));
  BIO* bio = BIO_new(BIO_s_mem());
  std::string out;
  if (cert != nullptr && bio != nullptr && PEM_write_bio_X509(bio, cert) == 1) {
    char* data = nullptr;
    const long n = BIO_get_mem_data(bio, &data);
    if (n > 0) out.assign(data, static_cast<size_t>(n));
  }
  BIO_free(bio);
  X509_free(cert);
  return out;
}

// The live log with a head signed before it was read, and the device's
// certificates (DeviceID first).
AuditLog read_live(const std::string& socket) {
  ihsm::Client client = need(ihsm::Client::connect(socket), "connect");
  // The head first: every record it covers is then in what is read.
  auto head = client.audit_checkpoint(false);
  if (!head && head.status() != ihsm::Status::kDeviceError) {
    (void)need(std::move(head), "sign the audit head");
  }
  AuditLog log = need(client.read_audit(), "read the audit log");
  if (head) {
    log.head = std::move(head).value();
  } else {
    // In its error state the device reads its log but signs nothing.
    std::cerr << "ihsm: audit: the device is in its error state and signs no fresh head: "
                 "records cut off after its last checkpoint would not be noticed\n";
  }
  log.certificates = need(client.certificates(), "read the device certificates");
  return log;
}

// The detail map as JSON: keys are protocol field numbers.
json detail_json(const Bytes& detail) {
  ihsm::cbor::Value v;
  json out = json::object();
  if (!ok(ihsm::cbor::decode(detail, v)) || !v.is(ihsm::cbor::Value::Type::kMap)) return out;
  using T = ihsm::cbor::Value::Type;
  static constexpr char kDigits[] = "0123456789abcdef";
  for (const auto& [key, value] : v.entries()) {
    if (!key.is(T::kUint)) continue;
    const std::string k = std::to_string(key.as_uint());
    if (value.is(T::kUint)) {
      out[k] = value.as_uint();
    } else if (value.is(T::kNegint)) {
      out[k] = value.as_negint();
    } else if (value.is(T::kBool)) {
      out[k] = value.as_bool();
    } else if (value.is(T::kText)) {
      out[k] = std::string(value.as_text());
    } else if (value.is(T::kBytes)) {
      std::string h;
      for (uint8_t c : value.as_bytes()) {
        h.push_back(kDigits[c >> 4]);
        h.push_back(kDigits[c & 15]);
      }
      out[k] = h;
    }
  }
  return out;
}

std::string iso_time(uint64_t ms) {
  const std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  char out[40];
  std::snprintf(out, sizeof out, "%s.%03uZ", buf, static_cast<unsigned>(ms % 1000));
  return out;
}

int show(const std::string& socket, bool as_json, const AuditOptions& o) {
  ihsm::Client client = need(ihsm::Client::connect(socket), "connect");
  const AuditLog log = need(client.read_audit(o.after), "read the audit log");
  json records = json::array();
  for (const auto& r : log.records) {
    const std::string status(ihsm::status_name(static_cast<ihsm::Status>(r.status)));
    if (as_json) {
      records.push_back({{"seq", r.seq},
                         {"time_ms", r.time_ms},
                         {"event", r.event},
                         {"partition", r.partition},
                         {"uid", r.uid},
                         {"opcode", r.opcode},
                         {"status", status},
                         {"object", r.object},
                         {"detail", detail_json(r.detail)}});
    } else {
      std::cout << r.seq << "  " << iso_time(r.time_ms) << "  " << r.event << "  partition "
                << r.partition << "  uid " << r.uid << "  " << status;
      if (r.object != 0) std::cout << "  object " << r.object;
      const json d = detail_json(r.detail);
      if (!d.empty()) std::cout << "  " << d.dump();
      std::cout << "\n";
    }
  }
  if (as_json) {
    std::cout << json{{"records", records}, {"checkpoints", log.checkpoints.size()}}.dump(2)
              << "\n";
  }
  return 0;
}

int verify(const std::string& socket, bool as_json, const AuditOptions& o) {
  std::vector<AuditLog> parts;
  for (const std::string& path : o.files) {
    AuditLog part;
    if (!ok(ihsm::decode_audit_log(read_all(path), part))) {
      throw CommandFailed{path + ": not an ihsm audit log file"};
    }
    parts.push_back(std::move(part));
  }
  if (o.files.empty() || o.live) parts.push_back(read_live(socket));
  ihsm::AuditVerifyOptions options;
  std::string anchor = "trusted";
  if (!o.trust.empty()) {
    const Bytes pem = read_all(o.trust);
    options.trusted_root_pem.assign(pem.begin(), pem.end());
  } else {
    // Without --trust, the DeviceID certificate the device (or the export)
    // gave: this checks the log against the device, not the device itself.
    for (auto it = parts.rbegin(); it != parts.rend() && options.trusted_root_pem.empty(); ++it) {
      if (!it->certificates.empty()) options.trusted_root_pem = pem_of_der(it->certificates[0]);
    }
    anchor = o.files.empty() || o.live ? "device" : "file";
    if (options.trusted_root_pem.empty()) {
      throw CommandFailed{"no DeviceID certificate: give --trust deviceid.pem"};
    }
  }
  const ihsm::AuditVerdict v = ihsm::verify_audit(parts, options);
  if (as_json) {
    json j = {{"valid", v.valid},
              {"records", v.records},
              {"checkpoints", v.checkpoints},
              {"first_seq", v.first_seq},
              {"last_seq", v.last_seq},
              {"detail", v.detail},
              {"root", anchor}};
    if (!v.valid) {
      j["reason"] = v.reason;
      j["seq"] = v.seq;
    }
    std::cout << j.dump(2) << "\n";
  } else if (v.valid) {
    std::cout << "audit log valid: " << v.detail << " (DeviceID certificate: " << anchor << ")\n";
  } else {
    std::cout << "audit log INVALID: " << v.reason << " at seq " << v.seq << ": " << v.detail
              << "\n";
  }
  return v.valid ? 0 : 1;
}

int export_log(const std::string& socket, bool as_json, const AuditOptions& o) {
  const AuditLog log = read_live(socket);
  const Bytes data = ihsm::encode_audit_log(log);
  std::ofstream f(o.out, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
  if (!f.flush()) throw CommandFailed{"cannot write " + o.out};
  if (as_json) {
    std::cout << json{{"file", o.out},
                      {"records", log.records.size()},
                      {"checkpoints", log.checkpoints.size()}}
                     .dump(2)
              << "\n";
  } else {
    std::cout << "exported " << log.records.size() << " records and " << log.checkpoints.size()
              << " checkpoints (with a fresh signed head) to " << o.out << "\n";
  }
  return 0;
}

int rotate(const std::string& socket, bool as_json) {
  ihsm::Client client = need(ihsm::Client::connect(socket), "connect");
  (void)need(client.audit_checkpoint(true), "rotate the audit log");
  if (as_json) {
    std::cout << json{{"rotated", true}}.dump(2) << "\n";
  } else {
    std::cout << "audit log rotated into an archive file in the device's state directory\n";
  }
  return 0;
}

template <typename F>
int guarded(bool as_json, F&& f) {
  try {
    return f();
  } catch (const CommandFailed& e) {
    std::cerr << "ihsm: audit: " << e.message << "\n";
    if (as_json) std::cout << json{{"error", {{"message", e.message}}}}.dump(2) << "\n";
    return 1;
  }
}

}  // namespace

void add_audit(CLI::App& app, const std::string& socket, const bool& as_json,
               std::function<int()>& action) {
  auto* audit = app.add_subcommand("audit", "the device's tamper-evident audit log (owner)");
  audit->require_subcommand(1);
  auto o = std::make_shared<AuditOptions>();
  auto* show_cmd = audit->add_subcommand("show", "list the live audit records");
  show_cmd->add_option("--after", o->after, "only records after this seq");
  show_cmd->callback([&, o] {
    action = [&, o] { return guarded(as_json, [&] { return show(socket, as_json, *o); }); };
  });
  auto* verify_cmd = audit->add_subcommand(
      "verify",
      "check the hash chain and the signed checkpoints: exit 0 valid, 1 invalid (which seq, and "
      "whether deleted, edited, reordered or truncated)");
  verify_cmd
      ->add_option("--file", o->files,
                   "an export or archive file (repeat: archives oldest first, then the export); "
                   "without it, the live log")
      ->check(CLI::ExistingFile);
  verify_cmd->add_flag("--live", o->live, "with --file: the live log follows the files");
  verify_cmd
      ->add_option("--trust", o->trust,
                   "the DeviceID certificate (PEM) to trust (default: the one the device or the "
                   "export gives)")
      ->check(CLI::ExistingFile);
  verify_cmd->callback([&, o] {
    action = [&, o] { return guarded(as_json, [&] { return verify(socket, as_json, *o); }); };
  });
  auto* export_cmd = audit->add_subcommand(
      "export", "write the live log, its checkpoints, a fresh signed head and the certificates");
  export_cmd->add_option("file", o->out, "output file (CBOR)")->required();
  export_cmd->callback([&, o] {
    action = [&, o] { return guarded(as_json, [&] { return export_log(socket, as_json, *o); }); };
  });
  audit->add_subcommand("rotate", "archive the live log now (a file in the state directory)")
      ->callback([&] {
        action = [&] { return guarded(as_json, [&] { return rotate(socket, as_json); }); };
      });
}
