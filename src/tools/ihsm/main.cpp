// ihsm: the command line front end of libihsm.
//
// Every key command is self-contained: it connects, opens a session on a
// partition, logs in, does its work and exits. Keys generated here are
// session objects, destroyed when the command exits, until the device has
// persistent (token) storage. PINs never come from argv: --pin-env VAR,
// --pin-file FILE, the IHSM_*PIN environment variables, or a prompt with
// echo off when stdin is a terminal.
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <pwd.h>
#include <signal.h>
#include <termios.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/secret.h"
#include "ihsm/client.h"
#include "protocol/fields.h"
#include "tools/ihsm/attest.h"

namespace {

using ihsm::Bytes;
using ihsm::Client;
using ihsm::ErrorDetail;
using ihsm::Mechanism;
using ihsm::Result;
using ihsm::Role;
using ihsm::SecretPin;
using ihsm::Session;
using ihsm::Status;
using json = nlohmann::json;

constexpr const char* kSessionKeyNote =
    "session key: destroyed when this command exits (--token keeps it in the device)";

// ---------------------------------------------------------------- errors

// A device or library call failed.
struct Failure {
  std::string what;
  Status status;
  ErrorDetail detail;
};

// The command line is wrong, or a PIN source is missing (exit code 2).
struct UsageError {
  std::string message;
};

// A local operation (file I/O, parsing a key file) failed (exit code 1).
struct LocalError {
  std::string what;
  std::string message;
};

template <typename T>
T need(Result<T> r, const std::string& what) {
  if (!r) throw Failure{what, r.status(), r.detail()};
  return std::move(r).value();
}

struct Globals {
  std::string socket;
  bool json = false;
};

void print_json(const json& j) {
  std::cout << j.dump(2, ' ', false, json::error_handler_t::replace) << "\n";
}

int report(const Globals& g, const Failure& f) {
  std::string extra = f.detail.message;
  auto append = [&extra](const std::string& s) {
    if (!extra.empty()) extra += "; ";
    extra += s;
  };
  if (f.detail.retry_after_ms)
    append("retry after " + std::to_string(*f.detail.retry_after_ms) + " ms");
  if (f.detail.retries_left) {
    append(std::to_string(*f.detail.retries_left) +
           (*f.detail.retries_left == 1 ? " retry left" : " retries left"));
  }
  std::cerr << "ihsm: " << f.what << ": " << ihsm::status_name(f.status) << " ("
            << ihsm::status_message(f.status) << ")";
  if (!extra.empty()) std::cerr << ": " << extra;
  std::cerr << "\n";
  if (g.json) {
    json e = {{"operation", f.what},
              {"status", std::string(ihsm::status_name(f.status))},
              {"code", static_cast<unsigned>(f.status)},
              {"message", std::string(ihsm::status_message(f.status))}};
    if (!f.detail.message.empty()) e["detail"] = f.detail.message;
    if (f.detail.retry_after_ms) e["retry_after_ms"] = *f.detail.retry_after_ms;
    if (f.detail.retries_left) e["retries_left"] = *f.detail.retries_left;
    print_json({{"error", e}});
  }
  return 1;
}

int report(const Globals& g, const UsageError& u) {
  std::cerr << "ihsm: " << u.message << "\n";
  if (g.json) print_json({{"error", {{"usage", true}, {"message", u.message}}}});
  return 2;
}

int report(const Globals& g, const LocalError& l) {
  std::cerr << "ihsm: " << l.what << ": " << l.message << "\n";
  if (g.json) print_json({{"error", {{"operation", l.what}, {"message", l.message}}}});
  return 1;
}

// ---------------------------------------------------------------- small helpers

std::string hex(const Bytes& b) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(b.size() * 2);
  for (uint8_t c : b) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 0xF]);
  }
  return out;
}

Bytes unhex(const std::string& s, const std::string& what) {
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string t = s;
  if (t.rfind("0x", 0) == 0 || t.rfind("0X", 0) == 0) t = t.substr(2);
  if (t.size() % 2 != 0) throw UsageError{what + ": odd number of hex digits"};
  Bytes out;
  for (size_t i = 0; i < t.size(); i += 2) {
    const int hi = nibble(t[i]);
    const int lo = nibble(t[i + 1]);
    if (hi < 0 || lo < 0) throw UsageError{what + ": not hexadecimal"};
    out.push_back(static_cast<uint8_t>(hi << 4 | lo));
  }
  return out;
}

Bytes sha256(const Bytes& data) {
  Bytes out(EVP_MAX_MD_SIZE);
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), out.data(), &len, EVP_sha256(), nullptr) != 1) {
    throw LocalError{"SHA-256", "digest failed"};
  }
  out.resize(len);
  return out;
}

Bytes read_file(const std::string& path) {
  if (path == "-") {
    return Bytes(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) throw LocalError{"read " + path, std::strerror(errno)};
  Bytes data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw LocalError{"read " + path, "I/O error"};
  return data;
}

void write_file(const std::string& path, const Bytes& data) {
  if (path == "-") {
    std::cout.write(reinterpret_cast<const char*>(data.data()),
                    static_cast<std::streamsize>(data.size()));
    std::cout.flush();
    return;
  }
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw LocalError{"write " + path, std::strerror(errno)};
  out.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
  out.close();
  if (!out) throw LocalError{"write " + path, "I/O error"};
}

void write_text_file(const std::string& path, const std::string& text) {
  write_file(path, Bytes(text.begin(), text.end()));
}

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;
using Bio = std::unique_ptr<BIO, BioFree>;

Pkey parse_der_spki(const Bytes& der) {
  const unsigned char* p = der.data();
  return Pkey(d2i_PUBKEY(nullptr, &p, static_cast<long>(der.size())));
}

std::string spki_to_pem(const Bytes& der) {
  Pkey key = parse_der_spki(der);
  Bio bio(BIO_new(BIO_s_mem()));
  if (!key || !bio || PEM_write_bio_PUBKEY(bio.get(), key.get()) != 1) {
    throw LocalError{"encode public key", "the device returned an unparsable public key"};
  }
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

// A PEM or DER public key file -> DER SPKI and the EC field size in bytes.
Bytes load_public_key(const std::string& path, size_t& component_size) {
  const Bytes raw = read_file(path);
  Bio bio(BIO_new_mem_buf(raw.data(), static_cast<int>(raw.size())));
  Pkey key(bio ? PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr) : nullptr);
  if (!key) {
    ERR_clear_error();
    key = parse_der_spki(raw);
  }
  if (!key || EVP_PKEY_is_a(key.get(), "EC") != 1) {
    ERR_clear_error();
    throw LocalError{"read public key " + path, "not a PEM or DER EC public key"};
  }
  component_size = (static_cast<size_t>(EVP_PKEY_get_bits(key.get())) + 7) / 8;
  unsigned char* der = nullptr;
  const int len = i2d_PUBKEY(key.get(), &der);
  if (len <= 0) throw LocalError{"read public key " + path, "cannot encode the key"};
  Bytes out(der, der + len);
  OPENSSL_free(der);
  return out;
}

std::string class_name(ihsm::ObjectClass c) {
  switch (c) {
    case ihsm::ObjectClass::kPublicKey:
      return "public";
    case ihsm::ObjectClass::kPrivateKey:
      return "private";
    case ihsm::ObjectClass::kSecretKey:
      return "secret";
    case ihsm::ObjectClass::kCertificate:
      return "certificate";
    case ihsm::ObjectClass::kData:
      return "data";
  }
  return "unknown";
}

std::optional<ihsm::ObjectClass> class_from_name(const std::string& s) {
  for (const auto c :
       {ihsm::ObjectClass::kPublicKey, ihsm::ObjectClass::kPrivateKey,
        ihsm::ObjectClass::kSecretKey, ihsm::ObjectClass::kCertificate, ihsm::ObjectClass::kData}) {
    if (class_name(c) == s) return c;
  }
  return std::nullopt;
}

std::string key_type_name(ihsm::KeyType t) { return t == ihsm::KeyType::kEc ? "ec" : "aes"; }

json key_json(const ihsm::KeyInfo& k) {
  json j = {{"handle", k.handle},
            {"class", class_name(k.object_class)},
            {"key_type", key_type_name(k.key_type)},
            {"bits", k.key_bits},
            {"label", k.label},
            {"id", hex(k.id)},
            {"flags", ihsm::flags_to_string(k.flags)},
            {"local", k.local},
            {"token", k.token}};
  if (k.object_class == ihsm::ObjectClass::kCertificate ||
      k.object_class == ihsm::ObjectClass::kData) {
    j.erase("key_type");
    j.erase("bits");
    j["value_size"] = k.value_size;
    if (!k.application.empty()) j["application"] = k.application;
  }
  if (k.curve) j["curve"] = std::string(ihsm::curve_name(*k.curve));
  if (k.pair_handle != 0) j["pair_handle"] = k.pair_handle;
  return j;
}

json partition_json(const ihsm::PartitionInfo& p) {
  json j = {{"id", p.id},
            {"name", p.name},
            {"max_sessions", p.max_sessions},
            {"open_sessions", p.open_sessions},
            {"user_pin_set", p.user_pin_set},
            {"user_pin_locked", p.user_pin_locked},
            {"officer_pin_locked", p.officer_pin_locked},
            {"identity_key_sha256", hex(sha256(p.identity_public_key))}};
  j["bound_uid"] = p.bound_uid ? json(*p.bound_uid) : json(nullptr);
  j["bound_gid"] = p.bound_gid ? json(*p.bound_gid) : json(nullptr);
  return j;
}

void print_key_text(const ihsm::KeyInfo& k) {
  std::cout << "  handle " << k.handle << ": " << (k.token ? "token " : "session ")
            << class_name(k.object_class);
  if (k.object_class == ihsm::ObjectClass::kCertificate ||
      k.object_class == ihsm::ObjectClass::kData) {
    std::cout << ", " << k.value_size << " bytes";
    if (!k.label.empty()) std::cout << ", label '" << k.label << "'";
    if (!k.id.empty()) std::cout << ", id " << hex(k.id);
    std::cout << "\n";
    return;
  }
  std::cout << " " << key_type_name(k.key_type);
  if (k.curve) {
    std::cout << " " << ihsm::curve_name(*k.curve);
  } else {
    std::cout << " " << k.key_bits << "-bit";
  }
  std::cout << ", flags " << ihsm::flags_to_string(k.flags);
  if (!k.label.empty()) std::cout << ", label '" << k.label << "'";
  if (!k.id.empty()) std::cout << ", id " << hex(k.id);
  if (k.pair_handle != 0) std::cout << ", pair " << k.pair_handle;
  std::cout << "\n";
}

// ---------------------------------------------------------------- PINs

struct PinSource {
  std::string env;
  std::string file;
};

void add_pin_options(CLI::App* cmd, PinSource& src, const std::string& prefix,
                     const std::string& what, const std::string& default_env) {
  auto* env = cmd->add_option("--" + prefix + "pin-env", src.env,
                              "read the " + what + " from environment variable VAR (default: " +
                                  default_env + " if set, else a prompt)")
                  ->type_name("VAR");
  auto* file = cmd->add_option("--" + prefix + "pin-file", src.file,
                               "read the " + what + " from the first line of FILE")
                   ->type_name("FILE");
  env->excludes(file);
}

// Terminal state to restore if a signal arrives while echo is off.
struct termios g_saved_termios;
volatile sig_atomic_t g_echo_off = 0;

extern "C" void restore_terminal_and_die(int sig) {
  if (g_echo_off) tcsetattr(STDIN_FILENO, TCSAFLUSH, &g_saved_termios);
  signal(sig, SIG_DFL);
  raise(sig);
}

SecretPin prompt_pin(const std::string& prompt) {
  std::cerr << prompt << std::flush;
  termios t{};
  const bool is_tty = tcgetattr(STDIN_FILENO, &t) == 0;
  if (is_tty) {
    g_saved_termios = t;
    struct sigaction sa {};
    sa.sa_handler = restore_terminal_and_die;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
    sigaction(SIGQUIT, &sa, nullptr);
    sigaction(SIGHUP, &sa, nullptr);
    termios quiet = t;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    g_echo_off = 1;
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
  }
  std::array<char, 256> buf{};
  size_t n = 0;
  bool too_long = false;
  bool got_line = false;
  for (;;) {
    char c = 0;
    const ssize_t r = ::read(STDIN_FILENO, &c, 1);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    if (c == '\n') {
      got_line = true;
      break;
    }
    if (n < buf.size()) {
      buf[n++] = c;
    } else {
      too_long = true;
    }
  }
  if (is_tty) {
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &g_saved_termios);
    g_echo_off = 0;
    std::cerr << "\n";
  }
  if (n > 0 && buf[n - 1] == '\r') --n;
  SecretPin pin(std::string_view(buf.data(), too_long ? buf.size() : n));
  ihsm::secure_cleanse(buf.data(), buf.size());
  if (!got_line && n == 0) throw UsageError{"no PIN entered"};
  return pin;
}

SecretPin read_pin_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw LocalError{"read PIN file " + path, std::strerror(errno)};
  std::array<char, 256> buf{};
  size_t n = 0;
  bool done = false;
  while (!done && n < buf.size()) {
    const ssize_t r = ::read(fd, buf.data() + n, buf.size() - n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    const size_t before = n;
    n += static_cast<size_t>(r);
    for (size_t i = before; i < n; ++i) {
      if (buf[i] == '\n') {
        n = i;
        done = true;
        break;
      }
    }
  }
  ::close(fd);
  if (n > 0 && buf[n - 1] == '\r') --n;
  SecretPin pin(std::string_view(buf.data(), n));
  ihsm::secure_cleanse(buf.data(), buf.size());
  if (pin.empty()) throw LocalError{"read PIN file " + path, "the first line is empty"};
  return pin;
}

// --X-pin-env, --X-pin-file, the default variable, then a prompt on a tty.
SecretPin obtain_pin(const PinSource& src, const std::string& default_env, const std::string& what,
                     const std::string& prefix, bool confirm) {
  if (!src.env.empty()) {
    const char* v = std::getenv(src.env.c_str());
    if (v == nullptr || v[0] == '\0') {
      throw UsageError{"environment variable " + src.env + " (the " + what + ") is not set"};
    }
    return SecretPin(v);
  }
  if (!src.file.empty()) return read_pin_file(src.file);
  if (const char* v = std::getenv(default_env.c_str()); v != nullptr && v[0] != '\0') {
    return SecretPin(v);
  }
  if (!isatty(STDIN_FILENO)) {
    throw UsageError{"no source for the " + what + ": stdin is not a terminal; use --" + prefix +
                     "pin-env VAR, --" + prefix + "pin-file FILE or set " + default_env};
  }
  SecretPin pin =
      prompt_pin(std::string(1, static_cast<char>(std::toupper(what[0]))) + what.substr(1) + ": ");
  if (confirm) {
    SecretPin again = prompt_pin("Repeat the " + what + ": ");
    if (pin.reveal() != again.reveal())
      throw UsageError{"the two entries of the " + what + " differ"};
  }
  return pin;
}

// ---------------------------------------------------------------- sessions

struct SessionOptions {
  std::string partition;
  std::string role = "user";
  PinSource pin;
};

void add_partition_option(CLI::App* cmd, std::string& partition) {
  cmd->add_option("--partition,-p", partition, "partition name or id (default: $IHSM_PARTITION)")
      ->type_name("NAME|ID");
}

void add_session_options(CLI::App* cmd, SessionOptions& o, bool with_role) {
  add_partition_option(cmd, o.partition);
  if (with_role) {
    cmd->add_option("--role", o.role, "log in as user or officer")
        ->check(CLI::IsMember({"user", "officer", "so"}))
        ->capture_default_str();
    add_pin_options(cmd, o.pin, "", "login PIN", "IHSM_PIN (user) / IHSM_SO_PIN (officer)");
  } else {
    o.role = "officer";
    add_pin_options(cmd, o.pin, "", "officer PIN", "IHSM_SO_PIN");
  }
}

Role parse_role(const std::string& r) {
  if (r == "user") return Role::kCryptoUser;
  if (r == "officer" || r == "so") return Role::kCryptoOfficer;
  throw UsageError{"--role must be user or officer"};
}

Client connect(const Globals& g) {
  return need(Client::connect(g.socket), "connect to the device");
}

bool all_digits(const std::string& s) {
  return !s.empty() && s.size() <= 10 &&
         std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// By name first, then by numeric id.
ihsm::PartitionInfo resolve_partition(Client& client, std::string spec) {
  if (spec.empty()) {
    if (const char* env = std::getenv("IHSM_PARTITION"); env != nullptr) spec = env;
  }
  if (spec.empty()) throw UsageError{"--partition NAME|ID is required (or set IHSM_PARTITION)"};
  auto list = need(client.list_partitions(), "list partitions");
  for (auto& p : list) {
    if (p.name == spec) return p;
  }
  if (all_digits(spec)) {
    const unsigned long long id = std::stoull(spec);
    if (id <= UINT32_MAX) {
      for (auto& p : list) {
        if (p.id == id) return p;
      }
      // Not listed (perhaps not visible to us): let the device decide.
      ihsm::PartitionInfo p;
      p.id = static_cast<ihsm::PartitionId>(id);
      p.name = spec;
      return p;
    }
  }
  throw Failure{"find partition '" + spec + "'", Status::kNoSuchPartition, {}};
}

std::string role_label(Role r) { return std::string(ihsm::role_name(r)); }

// The login PIN of `role`: taken before connecting, so a missing source
// fails fast.
SecretPin login_pin(const SessionOptions& o, Role role) {
  const std::string default_env = role == Role::kCryptoOfficer ? "IHSM_SO_PIN" : "IHSM_PIN";
  return obtain_pin(o.pin, default_env, role_label(role) + " PIN", "", false);
}

Session open_logged_in(Client& client, const SessionOptions& o, Role role, const SecretPin& pin) {
  const ihsm::PartitionInfo part = resolve_partition(client, o.partition);
  Session session =
      need(client.open_session(part.id), "open a session on partition '" + part.name + "'");
  need(session.login(role, pin), "log in as " + role_label(role));
  return session;
}

// ---------------------------------------------------------------- commands

const char* yes_no(bool b) { return b ? "yes" : "no"; }

// "ihsm (uid 998)": the daemon is on this host, so its uid names a local user.
std::string user_label(uint32_t uid) {
  const passwd* pw = ::getpwuid(uid);
  return (pw != nullptr ? std::string(pw->pw_name) + " " : std::string()) + "(uid " +
         std::to_string(uid) + ")";
}

json hardening_json(const ihsm::DeviceInfo& info) {
  if (!info.hardening) return nullptr;
  const auto& h = *info.hardening;
  const passwd* pw = ::getpwuid(h.uid);
  return {{"uid", h.uid},
          {"user", pw != nullptr ? pw->pw_name : ""},
          {"memory_locked", h.memory_locked},
          {"core_dumps_off", h.core_dumps_off},
          {"no_new_privs", h.no_new_privs},
          {"syscall_filter", h.syscall_filter}};
}

int cmd_status(const Globals& g) {
  Client client = connect(g);
  const ihsm::DeviceInfo info = need(client.device_info(), "get device info");
  const std::string fp = hex(sha256(info.identity_public_key));
  const std::string tfp = hex(sha256(info.pin_transport_public_key));
  if (g.json) {
    print_json({{"protocol_revision", info.protocol_revision},
                {"firmware_version", info.firmware_version},
                {"state", info.state},
                {"caller_is_owner", info.caller_is_owner},
                {"partition_count", info.partition_count},
                {"identity_key_sha256", fp},
                {"pin_transport_key_sha256", tfp},
                {"measurement", hex(info.measurement)},
                {"security_version", info.security_version},
                {"min_security_version", info.min_security_version},
                {"reason", info.reason},
                {"hardening", hardening_json(info)}});
  } else {
    std::cout << "protocol revision:   " << info.protocol_revision << "\n"
              << "firmware version:    " << info.firmware_version << "\n"
              << "state:               " << info.state
              << (info.reason.empty()     ? ""
                  : info.state == "error" ? " (self-test " + info.reason + " failed)"
                                          : " (" + info.reason + ")")
              << "\n"
              << "firmware measurement: " << hex(info.measurement) << "\n"
              << "security version:    " << info.security_version << " (minimum "
              << info.min_security_version << ")\n"
              << "caller is owner:     " << (info.caller_is_owner ? "yes" : "no") << "\n"
              << "partitions:          " << info.partition_count << "\n"
              << "identity key SHA256: " << fp << "\n";
    if (info.hardening) {
      const auto& h = *info.hardening;
      std::cout << "daemon runs as:      " << user_label(h.uid) << "\n"
                << "memory locked:       " << yes_no(h.memory_locked) << "\n"
                << "core dumps off:      " << yes_no(h.core_dumps_off) << "\n"
                << "no new privileges:   " << yes_no(h.no_new_privs) << "\n"
                << "seccomp filter:      " << yes_no(h.syscall_filter) << "\n";
    }
  }
  return 0;
}

// Exit code 1 when a test failed (the device is then in its error state).
int cmd_self_test(const Globals& g) {
  Client client = connect(g);
  const ihsm::SelfTestReport r = need(client.self_test(), "run the self-tests");
  if (g.json) {
    json tests = json::array();
    for (const auto& t : r.tests) tests.push_back({{"name", t.name}, {"passed", t.passed}});
    json j = {
        {"passed", r.passed}, {"state", r.state}, {"elapsed_us", r.elapsed_us}, {"tests", tests}};
    j["failed_test"] = r.passed ? json(nullptr) : json(r.failed_test);
    print_json(j);
  } else {
    for (const auto& t : r.tests) std::cout << (t.passed ? "pass  " : "FAIL  ") << t.name << "\n";
    if (r.passed) {
      std::cout << "all " << r.tests.size() << " self-tests passed";
    } else {
      std::cout << "self-test " << r.failed_test << " failed";
    }
    std::cout << " in " << (r.elapsed_us + 500) / 1000 << " ms; device state: " << r.state << "\n";
  }
  return r.passed ? 0 : 1;
}

// Zeroization destroys the device's keys for good: only with --yes.
int cmd_zeroize(const Globals& g, bool yes, const std::string& reason) {
  if (!yes) {
    throw UsageError{
        "zeroize destroys every key and secret of the device, in memory and on disk, for good "
        "(every masked blob and backup becomes unusable); repeat with --yes to do it"};
  }
  Client client = connect(g);
  const std::string recorded = need(client.zeroize(reason), "zeroize the device");
  if (g.json) {
    print_json({{"state", "zeroized"}, {"reason", recorded}});
  } else {
    std::cout << "device zeroized (" << recorded
              << "); it serves nothing until ihsmd is started with --provision\n";
  }
  return 0;
}

int cmd_tamper_status(const Globals& g) {
  Client client = connect(g);
  const ihsm::TamperStatusReport r = need(client.tamper_status(), "read the tamper status");
  if (g.json) {
    json events = json::array(), policy = json::object();
    for (const auto& e : r.events) {
      events.push_back(
          {{"sensor", e.sensor}, {"time", e.time}, {"response", e.response}, {"detail", e.detail}});
    }
    for (const auto& [sensor, response] : r.policy) policy[sensor] = response;
    print_json({{"state", r.state}, {"events", events}, {"policy", policy}});
  } else {
    std::cout << "state: " << r.state << "\npolicy:";
    for (const auto& [sensor, response] : r.policy) std::cout << " " << sensor << "=" << response;
    std::cout << "\n"
              << r.events.size() << " tamper event" << (r.events.size() == 1 ? "" : "s") << "\n";
    for (const auto& e : r.events) {
      std::cout << "  " << e.time << "  " << e.sensor << " -> " << e.response << ": " << e.detail
                << "\n";
    }
  }
  return 0;
}

struct PartitionCreateOptions {
  std::string name;
  uint32_t bind_uid = 0;
  uint32_t bind_gid = 0;
  uint32_t max_sessions = 0;
  CLI::Option* bind_uid_opt = nullptr;
  CLI::Option* bind_gid_opt = nullptr;
  PinSource officer_pin;
  PinSource user_pin;
  bool no_user_pin = false;
};

int cmd_partition_create(const Globals& g, const PartitionCreateOptions& o) {
  ihsm::PartitionOptions opts;
  opts.name = o.name;
  if (o.bind_uid_opt->count() > 0) opts.bound_uid = o.bind_uid;
  if (o.bind_gid_opt->count() > 0) opts.bound_gid = o.bind_gid;
  opts.max_sessions = o.max_sessions;
  SecretPin officer = obtain_pin(o.officer_pin, "IHSM_SO_PIN", "new officer PIN", "", true);
  std::optional<SecretPin> user;
  if (!o.no_user_pin) {
    if (o.user_pin.env.empty() && o.user_pin.file.empty() &&
        std::getenv("IHSM_USER_PIN") == nullptr && !isatty(STDIN_FILENO)) {
      throw UsageError{
          "no source for the user PIN: use --user-pin-env VAR, --user-pin-file FILE, set "
          "IHSM_USER_PIN, or pass --no-user-pin and set it later with `ihsm pin init-user`"};
    }
    user.emplace(obtain_pin(o.user_pin, "IHSM_USER_PIN", "new user PIN", "user-", true));
  }
  Client client = connect(g);
  const ihsm::PartitionInfo p =
      need(client.create_partition(opts, officer, user ? &*user : nullptr),
           "create partition '" + o.name + "'");
  if (g.json) {
    print_json(partition_json(p));
  } else {
    std::cout << "created partition '" << p.name << "' (id " << p.id << ")"
              << (p.user_pin_set ? "" : "; set the user PIN with `ihsm pin init-user`") << "\n";
  }
  return 0;
}

int cmd_partition_list(const Globals& g) {
  Client client = connect(g);
  const auto list = need(client.list_partitions(), "list partitions");
  if (g.json) {
    json arr = json::array();
    for (const auto& p : list) arr.push_back(partition_json(p));
    print_json({{"partitions", arr}});
    return 0;
  }
  if (list.empty()) {
    std::cout << "no partitions visible to this user\n";
    return 0;
  }
  std::printf("%-6s %-24s %-9s %-9s %-14s %s\n", "ID", "NAME", "SESSIONS", "USER-PIN", "LOCKED",
              "BOUND");
  for (const auto& p : list) {
    std::string locked;
    if (p.user_pin_locked) locked += "user";
    if (p.officer_pin_locked) locked += locked.empty() ? "officer" : ",officer";
    if (locked.empty()) locked = "-";
    std::string bound;
    if (p.bound_uid) bound += "uid " + std::to_string(*p.bound_uid);
    if (p.bound_gid) bound += (bound.empty() ? "gid " : ", gid ") + std::to_string(*p.bound_gid);
    if (bound.empty()) bound = "-";
    const std::string sessions =
        std::to_string(p.open_sessions) + "/" + std::to_string(p.max_sessions);
    std::printf("%-6u %-24s %-9s %-9s %-14s %s\n", p.id, p.name.c_str(), sessions.c_str(),
                p.user_pin_set ? "set" : "not set", locked.c_str(), bound.c_str());
  }
  return 0;
}

int cmd_partition_delete(const Globals& g, const std::string& spec) {
  Client client = connect(g);
  const ihsm::PartitionInfo p = resolve_partition(client, spec);
  need(client.delete_partition(p.id), "delete partition '" + p.name + "'");
  if (g.json) {
    print_json({{"deleted", p.id}, {"name", p.name}});
  } else {
    std::cout << "deleted partition '" << p.name << "' (id " << p.id << ")\n";
  }
  return 0;
}

int cmd_partition_unlock_officer(const Globals& g, const std::string& spec) {
  Client client = connect(g);
  const ihsm::PartitionInfo p = resolve_partition(client, spec);
  need(client.unlock_officer(p.id), "unlock the officer of partition '" + p.name + "'");
  if (g.json) {
    print_json({{"unlocked", "officer"}, {"partition", p.id}, {"name", p.name}});
  } else {
    std::cout << "officer PIN of partition '" << p.name << "' unlocked\n";
  }
  return 0;
}

struct KeyGenerateOptions {
  SessionOptions session;
  std::string type = "ec";
  std::string curve = "P-256";
  uint32_t bits = 256;
  std::string label;
  std::string id;
  std::string flags;
  std::string public_flags;
  bool token = false;
};

ihsm::Curve parse_curve(const std::string& s) {
  auto c = ihsm::curve_from_name(s);
  if (!c) throw UsageError{"unknown curve '" + s + "' (P-256, P-384, P-521)"};
  return *c;
}

uint32_t parse_flags(const std::string& s, const std::string& option) {
  auto f = ihsm::flags_from_string(s);
  if (!f) {
    throw UsageError{option + ": unknown flag in '" + s +
                     "' (sign, verify, encrypt, decrypt, derive, wrap, unwrap, sensitive, "
                     "extractable)"};
  }
  return *f;
}

int cmd_key_generate(const Globals& g, const KeyGenerateOptions& o) {
  const Role role = parse_role(o.session.role);
  ihsm::KeyTemplate tmpl;
  tmpl.label = o.label;
  tmpl.id = unhex(o.id, "--id");
  tmpl.token = o.token;
  const std::string note =
      o.token ? "token key: kept in the device until destroyed" : kSessionKeyNote;
  const bool ec = o.type == "ec";
  ihsm::Curve curve = ihsm::Curve::kP256;
  if (ec) curve = parse_curve(o.curve);
  // Unset flags take the device's defaults for the key kind.
  if (!o.flags.empty()) tmpl.flags = parse_flags(o.flags, "--flags");
  std::optional<uint32_t> public_flags;
  if (!o.public_flags.empty()) public_flags = parse_flags(o.public_flags, "--public-flags");

  const SecretPin pin = login_pin(o.session, role);
  Client client = connect(g);
  Session session = open_logged_in(client, o.session, role, pin);
  json out;
  if (ec) {
    ihsm::KeyTemplate pub = tmpl;
    pub.flags = public_flags;
    const ihsm::KeyPair pair =
        need(session.generate_ec_key_pair(curve, pub, tmpl), "generate an EC key pair");
    const bool approved = session.last_approved();
    const ihsm::KeyInfo priv_info = need(session.key_info(pair.private_handle), "read key info");
    const ihsm::KeyInfo pub_info = need(session.key_info(pair.public_handle), "read key info");
    const Bytes spki = need(session.public_key(pair.public_handle), "read the public key");
    const std::string pem = spki_to_pem(spki);
    if (g.json) {
      print_json({{"private_key", key_json(priv_info)},
                  {"public_key", key_json(pub_info)},
                  {"public_key_pem", pem},
                  {"approved", approved},
                  {"note", note}});
    } else {
      std::cout << "generated " << ihsm::curve_name(curve) << " key pair:\n";
      print_key_text(priv_info);
      print_key_text(pub_info);
      std::cout << "approved: " << (approved ? "yes" : "no") << "\n"
                << pem << "note: " << note << "\n";
    }
  } else {
    const ihsm::KeyHandle h = need(session.generate_aes_key(o.bits, tmpl), "generate an AES key");
    const bool approved = session.last_approved();
    const ihsm::KeyInfo info = need(session.key_info(h), "read key info");
    if (g.json) {
      print_json({{"key", key_json(info)}, {"approved", approved}, {"note", note}});
    } else {
      std::cout << "generated AES-" << info.key_bits << " key:\n";
      print_key_text(info);
      std::cout << "approved: " << (approved ? "yes" : "no") << "\nnote: " << note << "\n";
    }
  }
  return 0;
}

struct KeyListOptions {
  SessionOptions session;
  std::string label;
  std::string id;
  std::string object_class;
};

int cmd_key_list(const Globals& g, const KeyListOptions& o) {
  const Role role = parse_role(o.session.role);
  ihsm::KeyQuery q;
  if (!o.label.empty()) q.label = o.label;
  if (!o.id.empty()) q.id = unhex(o.id, "--id");
  if (!o.object_class.empty()) q.object_class = class_from_name(o.object_class);
  const SecretPin pin = login_pin(o.session, role);
  Client client = connect(g);
  Session session = open_logged_in(client, o.session, role, pin);
  const auto keys = need(session.find_keys(q), "find keys");
  if (g.json) {
    json arr = json::array();
    for (const auto& k : keys) arr.push_back(key_json(k));
    print_json({{"keys", arr}});
  } else if (keys.empty()) {
    std::cout << "no objects (a fresh session sees only token objects)\n";
  } else {
    for (const auto& k : keys) print_key_text(k);
  }
  return 0;
}

struct SignOptions {
  SessionOptions session;
  std::string curve = "P-256";
  std::string mechanism;
  std::string in;
  std::string out;
  std::string pubkey_out;
  std::string format = "der";
  ihsm::KeyHandle key = 0;
  CLI::Option* key_opt = nullptr;
};

Mechanism parse_signature_mechanism(const std::string& s) {
  auto m = ihsm::mechanism_from_name(s);
  if (!m || (*m != Mechanism::kEcdsa && *m != Mechanism::kEcdsaSha256 &&
             *m != Mechanism::kEcdsaSha384 && *m != Mechanism::kEcdsaSha512)) {
    throw UsageError{"--mechanism must be ECDSA, ECDSA-SHA256, ECDSA-SHA384 or ECDSA-SHA512"};
  }
  return *m;
}

Mechanism default_mechanism_for_bits(size_t bits) {
  if (bits <= 256) return Mechanism::kEcdsaSha256;
  if (bits <= 384) return Mechanism::kEcdsaSha384;
  return Mechanism::kEcdsaSha512;
}

const EVP_MD* mechanism_digest(Mechanism m) {
  switch (m) {
    case Mechanism::kEcdsaSha256:
      return EVP_sha256();
    case Mechanism::kEcdsaSha384:
      return EVP_sha384();
    case Mechanism::kEcdsaSha512:
      return EVP_sha512();
    default:
      return nullptr;
  }
}

int cmd_sign(const Globals& g, const SignOptions& o) {
  const Role role = parse_role(o.session.role);
  const bool have_key = o.key_opt->count() > 0;
  ihsm::Curve curve = parse_curve(o.curve);
  std::optional<Mechanism> mechanism;
  if (!o.mechanism.empty()) mechanism = parse_signature_mechanism(o.mechanism);
  if (g.json && o.out == "-") throw UsageError{"--out - cannot be combined with --json"};
  Bytes data = read_file(o.in);

  const SecretPin pin = login_pin(o.session, role);
  Client client = connect(g);
  Session session = open_logged_in(client, o.session, role, pin);
  ihsm::KeyHandle signing_key = o.key;
  ihsm::KeyHandle public_handle = 0;
  if (have_key) {
    const ihsm::KeyInfo info = need(session.key_info(signing_key), "read key info");
    if (info.curve) curve = *info.curve;
    public_handle = info.pair_handle;
  } else {
    ihsm::KeyTemplate pub;
    pub.label = "ihsm-sign";
    pub.flags = ihsm::usage::kVerify;
    ihsm::KeyTemplate priv;
    priv.label = "ihsm-sign";
    priv.flags = ihsm::usage::kSign | ihsm::usage::kSensitive;
    const ihsm::KeyPair pair =
        need(session.generate_ec_key_pair(curve, pub, priv), "generate a session key pair");
    signing_key = pair.private_handle;
    public_handle = pair.public_handle;
  }
  if (!mechanism) {
    mechanism = default_mechanism_for_bits(curve == ihsm::Curve::kP256   ? 256
                                           : curve == ihsm::Curve::kP384 ? 384
                                                                         : 521);
  }

  // Hash-then-sign input over the device limit: hash here, sign the digest.
  Mechanism wire_mechanism = *mechanism;
  bool hashed_locally = false;
  if (const EVP_MD* md = mechanism_digest(*mechanism);
      md != nullptr && data.size() > ihsm::protocol::kMaxSignData) {
    Bytes digest(EVP_MAX_MD_SIZE);
    unsigned int len = 0;
    if (EVP_Digest(data.data(), data.size(), digest.data(), &len, md, nullptr) != 1) {
      throw LocalError{"hash " + o.in, "digest failed"};
    }
    digest.resize(len);
    data = std::move(digest);
    wire_mechanism = Mechanism::kEcdsa;
    hashed_locally = true;
  }

  const Bytes raw = need(session.sign(signing_key, wire_mechanism, data), "sign");
  const bool approved = session.last_approved();

  // The public key, for the caller to verify with.
  std::optional<Bytes> spki;
  if (public_handle != 0) {
    auto r = session.public_key(public_handle);
    if (r) spki = std::move(r).value();
  }
  if (!spki) {
    auto r = session.public_key(signing_key);
    if (r)
      spki = std::move(r).value();
    else if (!o.pubkey_out.empty())
      need(std::move(r), "read the public key");
  }
  std::string pem = spki ? spki_to_pem(*spki) : std::string();

  const Bytes signature =
      o.format == "raw" ? raw : need(ihsm::ecdsa_raw_to_der(raw), "encode the signature as DER");
  if (!o.out.empty()) write_file(o.out, signature);
  if (!o.pubkey_out.empty()) write_text_file(o.pubkey_out, pem);

  if (g.json) {
    json j = {{"signature_format", o.format},
              {"signature_hex", hex(signature)},
              {"mechanism", std::string(ihsm::mechanism_name(*mechanism))},
              {"hashed_locally", hashed_locally},
              {"approved", approved}};
    j["signature_file"] = o.out.empty() ? json(nullptr) : json(o.out);
    j["public_key_pem"] = spki ? json(pem) : json(nullptr);
    if (!o.pubkey_out.empty()) j["public_key_file"] = o.pubkey_out;
    if (!have_key) {
      j["curve"] = std::string(ihsm::curve_name(curve));
      j["note"] = kSessionKeyNote;
    } else {
      j["key"] = signing_key;
    }
    print_json(j);
    return 0;
  }
  // Raw signature bytes on stdout: the report goes to stderr.
  std::ostream& os = o.out == "-" ? std::cerr : std::cout;
  if (o.out.empty()) {
    os << "signature (" << o.format << "): " << hex(signature) << "\n";
  } else if (o.out != "-") {
    os << "signature written to " << o.out << " (" << o.format << ", " << signature.size()
       << " bytes)\n";
  }
  os << "mechanism: " << ihsm::mechanism_name(*mechanism)
     << (hashed_locally ? " (input over 512 KiB: hashed locally, digest signed with ECDSA)" : "")
     << "\napproved:  " << (approved ? "yes" : "no") << "\n";
  if (!o.pubkey_out.empty()) {
    os << "public key written to " << o.pubkey_out << "\n";
  } else if (spki) {
    os << pem;
  }
  if (!have_key) os << "note: " << kSessionKeyNote << "\n";
  return 0;
}

struct VerifyOptions {
  std::string pubkey;
  std::string mechanism;
  std::string in;
  std::string signature;
  std::string format = "der";
};

int cmd_verify(const Globals& g, const VerifyOptions& o) {
  size_t component = 0;
  const Bytes spki = load_public_key(o.pubkey, component);
  const Mechanism mechanism = o.mechanism.empty() ? default_mechanism_for_bits(component * 8)
                                                  : parse_signature_mechanism(o.mechanism);
  const Bytes data = read_file(o.in);
  const Bytes sig_file = read_file(o.signature);
  const Bytes raw = o.format == "raw" ? sig_file
                                      : need(ihsm::ecdsa_der_to_raw(sig_file, component),
                                             "decode the signature in " + o.signature);
  const bool valid = need(ihsm::verify_ecdsa(spki, mechanism, data, raw), "verify the signature");
  if (!valid) {
    throw Failure{"verify the signature", Status::kSignatureInvalid, {}};
  }
  if (g.json) {
    print_json({{"valid", true},
                {"mechanism", std::string(ihsm::mechanism_name(mechanism))},
                {"verified_locally", true}});
  } else {
    std::cout << "signature OK (" << ihsm::mechanism_name(mechanism) << ", verified locally)\n";
  }
  return 0;
}

struct RoundtripOptions {
  SessionOptions session;
  std::string in;
  std::string aad_file;
};

int cmd_cipher_roundtrip(const Globals& g, const RoundtripOptions& o) {
  const Role role = parse_role(o.session.role);
  const Bytes data = read_file(o.in);
  const Bytes aad = o.aad_file.empty() ? Bytes() : read_file(o.aad_file);
  if (aad.size() > ihsm::protocol::kMaxAad) throw UsageError{"--aad-file: AAD is at most 64 KiB"};

  const SecretPin pin = login_pin(o.session, role);
  Client client = connect(g);
  Session session = open_logged_in(client, o.session, role, pin);
  ihsm::KeyTemplate tmpl;
  tmpl.label = "ihsm-cipher-roundtrip";
  tmpl.flags = ihsm::usage::kEncrypt | ihsm::usage::kDecrypt | ihsm::usage::kSensitive;
  const ihsm::KeyHandle key = need(session.generate_aes_key(256, tmpl), "generate an AES-256 key");

  constexpr size_t kChunk = ihsm::protocol::kMaxCipherData;
  size_t offset = 0;
  size_t chunks = 0;
  size_t ciphertext_bytes = 0;
  bool encrypt_approved = true;
  bool decrypt_approved = true;
  bool tamper_detected = false;
  do {
    const size_t n = std::min(kChunk, data.size() - offset);
    const Bytes chunk(data.begin() + static_cast<ptrdiff_t>(offset),
                      data.begin() + static_cast<ptrdiff_t>(offset + n));
    const ihsm::GcmCiphertext ct = need(session.encrypt_gcm(key, chunk, aad), "encrypt");
    encrypt_approved = encrypt_approved && session.last_approved();
    ciphertext_bytes += ct.iv.size() + ct.ciphertext.size() + ct.tag.size();
    const Bytes back = need(session.decrypt_gcm(key, ct, aad), "decrypt");
    decrypt_approved = decrypt_approved && session.last_approved();
    if (back != chunk) {
      throw Failure{"compare the decrypted data", Status::kInternalError,
                    ErrorDetail{"decryption did not return the plaintext", {}, {}}};
    }
    if (chunks == 0) {
      // A flipped tag bit must be refused.
      ihsm::GcmCiphertext bad = ct;
      bad.tag[0] ^= 1;
      auto r = session.decrypt_gcm(key, bad, aad);
      if (r.ok() || r.status() != Status::kTagMismatch) {
        throw Failure{"check tamper detection", r.ok() ? Status::kInternalError : r.status(),
                      ErrorDetail{"a modified tag was not refused with TAG_MISMATCH", {}, {}}};
      }
      tamper_detected = true;
    }
    offset += n;
    ++chunks;
  } while (offset < data.size());

  const bool approved = encrypt_approved && decrypt_approved;
  if (g.json) {
    print_json({{"plaintext_bytes", data.size()},
                {"aad_bytes", aad.size()},
                {"ciphertext_bytes", ciphertext_bytes},
                {"chunks", chunks},
                {"roundtrip_ok", true},
                {"tamper_detected", tamper_detected},
                {"encrypt_approved", encrypt_approved},
                {"decrypt_approved", decrypt_approved},
                {"approved", approved},
                {"note", kSessionKeyNote}});
  } else {
    std::cout << "AES-256-GCM round trip OK: " << data.size() << " bytes plaintext, "
              << ciphertext_bytes << " bytes ciphertext (iv + data + tag) in " << chunks
              << (chunks == 1 ? " call" : " calls") << ", " << aad.size() << " bytes AAD\n"
              << "tampered tag refused: yes\n"
              << "approved: encrypt " << (encrypt_approved ? "yes" : "no") << ", decrypt "
              << (decrypt_approved ? "yes" : "no") << "\n"
              << "note: " << kSessionKeyNote << "\n";
  }
  return 0;
}

struct RandomOptions {
  std::string partition;
  size_t length = 0;
  bool hex_out = false;
  std::string out;
};

int cmd_random(const Globals& g, const RandomOptions& o) {
  if (g.json && o.out == "-") throw UsageError{"--out - cannot be combined with --json"};
  Client client = connect(g);
  const ihsm::PartitionInfo part = resolve_partition(client, o.partition);
  Session session =
      need(client.open_session(part.id), "open a session on partition '" + part.name + "'");
  Bytes data;
  data.reserve(o.length);
  bool approved = true;
  while (data.size() < o.length) {
    const size_t n = std::min(ihsm::protocol::kMaxRandom, o.length - data.size());
    const Bytes chunk = need(session.random(n), "generate random bytes");
    approved = approved && session.last_approved();
    data.insert(data.end(), chunk.begin(), chunk.end());
  }
  if (!o.out.empty()) write_file(o.out, data);
  if (g.json) {
    json j = {{"length", data.size()}, {"approved", approved}};
    if (o.out.empty())
      j["hex"] = hex(data);
    else
      j["file"] = o.out;
    print_json(j);
  } else if (o.out.empty()) {
    if (o.hex_out || isatty(STDOUT_FILENO)) {
      std::cout << hex(data) << "\n";
    } else {
      write_file("-", data);
    }
  }
  return 0;
}

struct PinChangeOptions {
  SessionOptions session;
  PinSource new_pin;
};

int cmd_pin_change(const Globals& g, const PinChangeOptions& o) {
  const Role role = parse_role(o.session.role);
  // The current PIN logs in and, inside SetPin, proves itself again.
  const SecretPin old_pin = login_pin(o.session, role);
  const SecretPin new_pin =
      obtain_pin(o.new_pin, "IHSM_NEW_PIN", "new " + role_label(role) + " PIN", "new-", true);
  Client client = connect(g);
  Session session = open_logged_in(client, o.session, role, old_pin);
  need(session.set_pin(old_pin, new_pin), "change the " + role_label(role) + " PIN");
  if (g.json) {
    print_json({{"changed", role_label(role)}});
  } else {
    std::cout << role_label(role) << " PIN changed\n";
  }
  return 0;
}

struct PinInitUserOptions {
  SessionOptions session;
  PinSource user_pin;
};

int cmd_pin_init_user(const Globals& g, const PinInitUserOptions& o) {
  const SecretPin officer_pin = login_pin(o.session, Role::kCryptoOfficer);
  const SecretPin user_pin = obtain_pin(o.user_pin, "IHSM_USER_PIN", "new user PIN", "user-", true);
  Client client = connect(g);
  Session session = open_logged_in(client, o.session, Role::kCryptoOfficer, officer_pin);
  need(session.init_user_pin(user_pin), "set the user PIN");
  if (g.json) {
    print_json({{"initialized", "user"}});
  } else {
    std::cout << "user PIN set (and its lock cleared)\n";
  }
  return 0;
}

int cmd_pin_unlock_user(const Globals& g, const SessionOptions& o) {
  const SecretPin pin = login_pin(o, Role::kCryptoOfficer);
  Client client = connect(g);
  Session session = open_logged_in(client, o, Role::kCryptoOfficer, pin);
  need(session.unlock_user(), "unlock the user PIN");
  if (g.json) {
    print_json({{"unlocked", "user"}});
  } else {
    std::cout << "user PIN unlocked\n";
  }
  return 0;
}

// ---------------------------------------------------------------- objects

struct KeyHandleOptions {
  SessionOptions session;
  ihsm::KeyHandle key = 0;
  std::string in;
  std::string out;
};

// ---------------------------------------------------------------- attestation

std::string cert_to_pem(const Bytes& der) {
  const unsigned char* p = der.data();
  std::unique_ptr<X509, decltype(&X509_free)> cert(
      d2i_X509(nullptr, &p, static_cast<long>(der.size())), X509_free);
  Bio bio(BIO_new(BIO_s_mem()));
  if (!cert || !bio || PEM_write_bio_X509(bio.get(), cert.get()) != 1) {
    throw LocalError{"encode a certificate", "the device returned an unparsable certificate"};
  }
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

struct AttestOptions {
  SessionOptions session;
  ihsm::KeyHandle key = 0;
  std::string nonce;
  std::string out;
};

int cmd_attest_key(const Globals& g, const AttestOptions& o) {
  const Role role = parse_role(o.session.role);
  const Bytes nonce = unhex(o.nonce, "--nonce");
  const SecretPin pin = login_pin(o.session, role);
  Client client = connect(g);
  Session session = open_logged_in(client, o.session, role, pin);
  const Bytes report = need(session.attest_key(o.key, nonce), "attest the key");
  write_file(o.out, report);
  if (g.json) {
    print_json({{"key", o.key}, {"report_bytes", report.size()}, {"out", o.out}});
  } else if (o.out != "-") {
    std::cout << "key report (" << report.size() << " bytes) written to " << o.out
              << "; check it with `ihsm attest verify`\n";
  }
  return 0;
}

int cmd_attest_device(const Globals& g, const AttestOptions& o) {
  const Bytes nonce = unhex(o.nonce, "--nonce");
  Client client = connect(g);
  const Bytes report = need(client.attest_device(nonce), "get a device report");
  write_file(o.out, report);
  if (g.json) {
    print_json({{"report_bytes", report.size()}, {"out", o.out}});
  } else if (o.out != "-") {
    std::cout << "device report (" << report.size() << " bytes) written to " << o.out << "\n";
  }
  return 0;
}

struct ChainOptions {
  std::string partition;
  std::string out_dir;
};

int cmd_attest_chain(const Globals& g, const ChainOptions& o) {
  Client client = connect(g);
  std::optional<ihsm::PartitionId> id;
  if (!o.partition.empty() || std::getenv("IHSM_PARTITION") != nullptr) {
    id = resolve_partition(client, o.partition).id;
  }
  const auto certs = need(client.certificates(id), "get the certificates");
  std::vector<std::string> names = {"deviceid.pem", "alias.pem"};
  if (id) names.push_back("partition-" + std::to_string(*id) + ".pem");
  std::filesystem::create_directories(o.out_dir);
  json files = json::array();
  for (size_t i = 0; i < certs.size() && i < names.size(); ++i) {
    const std::string path = o.out_dir + "/" + names[i];
    const std::string pem = cert_to_pem(certs[i]);
    write_file(path, Bytes(pem.begin(), pem.end()));
    files.push_back(path);
  }
  if (g.json) {
    print_json({{"files", files}});
  } else {
    for (const auto& f : files) std::cout << f.get<std::string>() << "\n";
  }
  return 0;
}

int cmd_firmware_update(const Globals& g, const std::string& dir) {
  Client client = connect(g);
  const std::string absolute = std::filesystem::absolute(dir).string();
  const ihsm::FirmwareInfo fw = need(client.update_firmware(absolute), "install the firmware");
  if (g.json) {
    print_json({{"firmware_version", fw.version},
                {"security_version", fw.security_version},
                {"measurement", hex(fw.measurement)}});
  } else {
    std::cout << "installed firmware " << fw.version << " (security version " << fw.security_version
              << ", measurement " << hex(fw.measurement)
              << "); it runs from the next start of ihsmd\n";
  }
  return 0;
}

int cmd_key_destroy(const Globals& g, const KeyHandleOptions& o) {
  const Role role = parse_role(o.session.role);
  const SecretPin pin = login_pin(o.session, role);
  Client client = connect(g);
  Session session = open_logged_in(client, o.session, role, pin);
  need(session.destroy_key(o.key), "destroy object " + std::to_string(o.key));
  if (g.json) {
    print_json({{"destroyed", o.key}});
  } else {
    std::cout << "destroyed object " << o.key << "\n";
  }
  return 0;
}

int cmd_key_export_masked(const Globals& g, const KeyHandleOptions& o) {
  const Role role = parse_role(o.session.role);
  const SecretPin pin = login_pin(o.session, role);
  Client client = connect(g);
  Session session = open_logged_in(client, o.session, role, pin);
  const Bytes blob = need(session.export_masked_key(o.key), "export the masked key");
  write_file(o.out, blob);
  if (g.json) {
    print_json({{"key", o.key}, {"masked_key_bytes", blob.size()}, {"out", o.out}});
  } else if (o.out != "-") {
    std::cout << "masked key " << o.key << " (" << blob.size() << " bytes) written to " << o.out
              << "; it loads only into this partition of this device\n";
  }
  return 0;
}

int cmd_key_load_masked(const Globals& g, const KeyHandleOptions& o) {
  const Role role = parse_role(o.session.role);
  const Bytes blob = read_file(o.in);
  const SecretPin pin = login_pin(o.session, role);
  Client client = connect(g);
  Session session = open_logged_in(client, o.session, role, pin);
  const ihsm::KeyHandle h = need(session.load_masked_key(blob), "load the masked key");
  const ihsm::KeyInfo info = need(session.key_info(h), "read key info");
  if (g.json) {
    print_json({{"key", key_json(info)}});
  } else {
    std::cout << "loaded:\n";
    print_key_text(info);
    if (!info.token) std::cout << "note: " << kSessionKeyNote << "\n";
  }
  return 0;
}

struct ObjectCreateOptions {
  SessionOptions session;
  std::string object_class = "certificate";
  std::string in;
  std::string label;
  std::string id;
  std::string application;
  bool token = false;
};

// PEM certificates are stored as DER, the form PKCS#11 keeps.
Bytes certificate_der(const Bytes& file) {
  const std::string_view text(reinterpret_cast<const char*>(file.data()), file.size());
  if (text.find("-----BEGIN CERTIFICATE-----") == std::string_view::npos) return file;
  BIO* bio = BIO_new_mem_buf(file.data(), static_cast<int>(file.size()));
  X509* cert = bio != nullptr ? PEM_read_bio_X509(bio, nullptr, nullptr, nullptr) : nullptr;
  BIO_free(bio);
  if (cert == nullptr) throw LocalError{"read the certificate", "not a PEM certificate"};
  unsigned char* der = nullptr;
  const int len = i2d_X509(cert, &der);
  X509_free(cert);
  if (len <= 0) throw LocalError{"read the certificate", "cannot encode it as DER"};
  Bytes out(der, der + len);
  OPENSSL_free(der);
  return out;
}

int cmd_object_create(const Globals& g, const ObjectCreateOptions& o) {
  const Role role = parse_role(o.session.role);
  ihsm::ObjectSpec spec;
  spec.object_class =
      o.object_class == "data" ? ihsm::ObjectClass::kData : ihsm::ObjectClass::kCertificate;
  const Bytes file = read_file(o.in);
  spec.value = spec.object_class == ihsm::ObjectClass::kCertificate ? certificate_der(file) : file;
  spec.label = o.label;
  spec.id = unhex(o.id, "--id");
  spec.application = o.application;
  spec.token = o.token;
  const SecretPin pin = login_pin(o.session, role);
  Client client = connect(g);
  Session session = open_logged_in(client, o.session, role, pin);
  const ihsm::KeyHandle h = need(session.create_object(spec), "create the object");
  const ihsm::KeyInfo info = need(session.key_info(h), "read object info");
  if (g.json) {
    print_json({{"object", key_json(info)}});
  } else {
    std::cout << "created:\n";
    print_key_text(info);
  }
  return 0;
}

int cmd_object_get(const Globals& g, const KeyHandleOptions& o) {
  const Role role = parse_role(o.session.role);
  const SecretPin pin = login_pin(o.session, role);
  Client client = connect(g);
  Session session = open_logged_in(client, o.session, role, pin);
  const Bytes value = need(session.object_value(o.key), "read the object's value");
  write_file(o.out, value);
  return 0;
}

// ---------------------------------------------------------------- backup

// Backup file (docs/key-hierarchy.md): "IHSMBAK1", then length-prefixed
// (u32 BE) header and records, then a zero length and the record count
// (u64 BE), so a truncated file is told apart from a complete one.
constexpr char kBackupMagic[8] = {'I', 'H', 'S', 'M', 'B', 'A', 'K', '1'};

struct BackupOptions {
  std::string partition;
  std::string file;
  PinSource secret;
  bool no_secret = false;
  PinSource officer_pin;
  PinSource user_pin;
  bool no_user_pin = false;
};

// The backup secret is read like a PIN: --backup-secret-pin-env VAR,
// --backup-secret-pin-file FILE, IHSM_BACKUP_SECRET, or a prompt.
void add_backup_secret_options(CLI::App* cmd, BackupOptions& o) {
  add_pin_options(cmd, o.secret, "backup-secret-", "owner backup secret (8 to 64 bytes)",
                  "IHSM_BACKUP_SECRET");
}

void put_be(std::ostream& out, uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out.put(static_cast<char>(v >> (8 * i)));
}

uint64_t get_be(std::istream& in, int bytes, const std::string& path) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) {
    const int c = in.get();
    if (c == EOF) throw LocalError{"read " + path, "the backup file is truncated"};
    v = (v << 8) | static_cast<uint8_t>(c);
  }
  return v;
}

Bytes get_chunk(std::istream& in, uint64_t len, const std::string& path) {
  Bytes b(len);
  in.read(reinterpret_cast<char*>(b.data()), static_cast<std::streamsize>(len));
  if (static_cast<uint64_t>(in.gcount()) != len) {
    throw LocalError{"read " + path, "the backup file is truncated"};
  }
  return b;
}

int cmd_backup(const Globals& g, const BackupOptions& o) {
  std::optional<SecretPin> secret;
  if (!o.no_secret) {
    secret.emplace(
        obtain_pin(o.secret, "IHSM_BACKUP_SECRET", "backup secret", "backup-secret-", true));
  }
  Client client = connect(g);
  const ihsm::PartitionInfo part = resolve_partition(client, o.partition);
  // Written beside the target and renamed into place once complete.
  const std::string tmp = o.file + ".partial";
  std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
  if (!out) throw LocalError{"write " + tmp, std::strerror(errno)};
  out.write(kBackupMagic, sizeof kBackupMagic);
  uint64_t count = 0;
  const auto d = client.backup_partition(
      part.id, secret ? &*secret : nullptr, [&](const ihsm::BackupPage& page) -> ihsm::Done {
        if (!page.header.empty()) {
          put_be(out, page.header.size(), 4);
          out.write(reinterpret_cast<const char*>(page.header.data()),
                    static_cast<std::streamsize>(page.header.size()));
        }
        for (const Bytes& rec : page.records) {
          put_be(out, rec.size(), 4);
          out.write(reinterpret_cast<const char*>(rec.data()),
                    static_cast<std::streamsize>(rec.size()));
          ++count;
        }
        return ihsm::Unit{};
      });
  if (!d) {
    out.close();
    std::remove(tmp.c_str());
    need(d, "back up partition '" + part.name + "'");
  }
  put_be(out, 0, 4);
  put_be(out, count, 8);
  out.close();
  if (!out) throw LocalError{"write " + tmp, "I/O error"};
  if (std::rename(tmp.c_str(), o.file.c_str()) != 0) {
    throw LocalError{"rename " + tmp, std::strerror(errno)};
  }
  if (g.json) {
    print_json({{"partition", part.id},
                {"records", count},
                {"file", o.file},
                {"backup_secret", secret.has_value()}});
  } else {
    std::cout << "backed up " << count << " objects of partition '" << part.name << "' to "
              << o.file
              << (secret ? ""
                         : " (without a backup secret: it restores only while the "
                           "partition is not reset)")
              << "\n";
  }
  return 0;
}

int cmd_restore(const Globals& g, const BackupOptions& o) {
  std::ifstream in(o.file, std::ios::binary);
  if (!in) throw LocalError{"read " + o.file, std::strerror(errno)};
  char magic[sizeof kBackupMagic];
  in.read(magic, sizeof magic);
  if (in.gcount() != sizeof magic || std::memcmp(magic, kBackupMagic, sizeof magic) != 0) {
    throw LocalError{"read " + o.file, "not an ihsm backup file"};
  }
  const uint64_t header_len = get_be(in, 4, o.file);
  if (header_len == 0 || header_len > 4096) {
    throw LocalError{"read " + o.file, "the backup header is malformed"};
  }
  const Bytes header = get_chunk(in, header_len, o.file);
  std::optional<SecretPin> secret;
  if (!o.no_secret && (!o.secret.env.empty() || !o.secret.file.empty() ||
                       std::getenv("IHSM_BACKUP_SECRET") != nullptr)) {
    secret.emplace(
        obtain_pin(o.secret, "IHSM_BACKUP_SECRET", "backup secret", "backup-secret-", false));
  }
  Client client = connect(g);
  const ihsm::PartitionInfo part = resolve_partition(client, o.partition);
  ihsm::RestoreCount total;
  uint64_t seen = 0;
  std::vector<Bytes> page;
  size_t page_bytes = 0;
  auto flush = [&] {
    if (page.empty()) return;
    const auto r =
        need(client.restore_partition(part.id, header, page, secret ? &*secret : nullptr),
             "restore into partition '" + part.name + "'");
    total.restored += r.restored;
    total.skipped += r.skipped;
    page.clear();
    page_bytes = 0;
  };
  for (;;) {
    const uint64_t len = get_be(in, 4, o.file);
    if (len == 0) break;
    if (len > 64 * 1024) throw LocalError{"read " + o.file, "a record is too large"};
    Bytes rec = get_chunk(in, len, o.file);
    if (page.size() == 512 || page_bytes + rec.size() > 700 * 1024) flush();
    page_bytes += rec.size();
    page.push_back(std::move(rec));
    ++seen;
  }
  const uint64_t count = get_be(in, 8, o.file);
  if (count != seen) {
    throw LocalError{"read " + o.file, "the backup file's record count does not match"};
  }
  flush();
  if (g.json) {
    print_json({{"partition", part.id}, {"restored", total.restored}, {"skipped", total.skipped}});
  } else {
    std::cout << "restored " << total.restored << " objects into partition '" << part.name << "'"
              << (total.skipped ? " (" + std::to_string(total.skipped) + " already present)" : "")
              << "\n";
  }
  return 0;
}

int cmd_partition_reset(const Globals& g, const BackupOptions& o) {
  SecretPin officer = obtain_pin(o.officer_pin, "IHSM_SO_PIN", "new officer PIN", "", true);
  std::optional<SecretPin> user;
  if (!o.no_user_pin) {
    user.emplace(obtain_pin(o.user_pin, "IHSM_USER_PIN", "new user PIN", "user-", true));
  }
  Client client = connect(g);
  const ihsm::PartitionInfo part = resolve_partition(client, o.partition);
  const ihsm::PartitionInfo p =
      need(client.reset_partition(part.id, officer, user ? &*user : nullptr),
           "reset partition '" + part.name + "'");
  if (g.json) {
    print_json(partition_json(p));
  } else {
    std::cout << "reset partition '" << p.name << "' (id " << p.id
              << "): every object destroyed, new PINs and keys\n";
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Globals g;
  CLI::App app{
      "ihsm: manage and use the ihsm software HSM.\n"
      "Keys generated by key commands are session objects: they are destroyed when the command "
      "exits (token keys arrive with persistent storage). PINs are never taken from the command "
      "line: use --pin-env VAR, --pin-file FILE, IHSM_PIN / IHSM_SO_PIN / IHSM_USER_PIN / "
      "IHSM_NEW_PIN, or the prompt on a terminal.",
      "ihsm"};
  app.fallthrough();
  app.require_subcommand(1);
  app.add_option("--socket", g.socket, "device socket (default: $IHSM_SOCKET, then the defaults)")
      ->type_name("PATH");
  app.add_flag("--json", g.json, "machine-readable output (one JSON object on stdout)");

  std::function<int()> action;

  // status
  app.add_subcommand("status", "show device information, with the daemon's hardening")
      ->alias("info")
      ->callback([&] { action = [&] { return cmd_status(g); }; });

  // self-test
  app.add_subcommand("self-test",
                     "run the device's known-answer self-tests again (a failure puts the device in "
                     "its error state)")
      ->callback([&] { action = [&] { return cmd_self_test(g); }; });

  // zeroize, tamper status
  bool zeroize_yes = false;
  std::string zeroize_reason;
  auto* zeroize = app.add_subcommand(
      "zeroize",
      "destroy every key and secret of the device for good (owner); it then serves nothing until "
      "`ihsmd --provision`");
  zeroize->add_flag("--yes", zeroize_yes, "really do it (refused without)");
  zeroize->add_option("--reason", zeroize_reason, "recorded with the zeroization (<= 128 bytes)");
  zeroize->callback([&] { action = [&] { return cmd_zeroize(g, zeroize_yes, zeroize_reason); }; });
  auto* tamper = app.add_subcommand("tamper", "tamper sensors and responses");
  tamper->require_subcommand(1);
  tamper->add_subcommand("status", "the tamper events seen and the policy (owner)")->callback([&] {
    action = [&] { return cmd_tamper_status(g); };
  });

  // partition ...
  auto* partition = app.add_subcommand("partition", "create, list, delete and unlock partitions");
  partition->require_subcommand(1);
  PartitionCreateOptions pc;
  auto* pcreate = partition->add_subcommand(
      "create", "create a partition (owner); asks for the new officer PIN and the user PIN");
  pcreate->add_option("name", pc.name, "partition name (1 to 64 bytes)")->required();
  pc.bind_uid_opt =
      pcreate->add_option("--bind-uid", pc.bind_uid, "only this uid may open sessions");
  pc.bind_gid_opt =
      pcreate->add_option("--bind-gid", pc.bind_gid, "only this gid may open sessions");
  pcreate->add_option("--max-sessions", pc.max_sessions,
                      "session limit (default: the device's, 64)");
  add_pin_options(pcreate, pc.officer_pin, "", "new officer PIN", "IHSM_SO_PIN");
  add_pin_options(pcreate, pc.user_pin, "user-", "new user PIN", "IHSM_USER_PIN");
  pcreate->add_flag("--no-user-pin", pc.no_user_pin,
                    "do not set the user PIN now (the officer sets it with `ihsm pin init-user`)");
  pcreate->callback([&] { action = [&] { return cmd_partition_create(g, pc); }; });

  partition->add_subcommand("list", "list the partitions this user may open")->callback([&] {
    action = [&] { return cmd_partition_list(g); };
  });
  std::string pdelete_spec;
  auto* pdelete = partition->add_subcommand("delete", "delete a partition and its keys (owner)");
  pdelete->add_option("partition", pdelete_spec, "partition name or id")->required();
  pdelete->callback([&] { action = [&] { return cmd_partition_delete(g, pdelete_spec); }; });
  std::string punlock_spec;
  auto* punlock =
      partition->add_subcommand("unlock-officer", "unlock a locked officer PIN (owner)");
  punlock->add_option("partition", punlock_spec, "partition name or id")->required();
  punlock->callback(
      [&] { action = [&] { return cmd_partition_unlock_officer(g, punlock_spec); }; });

  // key ...
  auto* key = app.add_subcommand("key", "generate and list keys");
  key->require_subcommand(1);
  KeyGenerateOptions kg;
  auto* kgen = key->add_subcommand(
      "generate",
      "generate an EC key pair or an AES key and show it; a session key (destroyed when this "
      "command exits) unless --token");
  add_session_options(kgen, kg.session, true);
  kgen->add_option("--type", kg.type, "ec or aes")
      ->check(CLI::IsMember({"ec", "aes"}))
      ->capture_default_str();
  kgen->add_option("--curve", kg.curve, "EC curve: P-256, P-384, P-521")->capture_default_str();
  kgen->add_option("--bits", kg.bits, "AES key size: 128, 192, 256")->capture_default_str();
  kgen->add_option("--label", kg.label, "key label (<= 128 bytes)");
  kgen->add_option("--id", kg.id, "key id, hex (<= 64 bytes)")->type_name("HEX");
  kgen->add_option(
      "--flags", kg.flags,
      "usage flags of the private/secret key, comma separated (default: EC sign,sensitive; "
      "AES encrypt,decrypt,sensitive)");
  kgen->add_option("--public-flags", kg.public_flags,
                   "usage flags of the EC public key (default: verify)");
  kgen->callback([&] { action = [&] { return cmd_key_generate(g, kg); }; });

  KeyListOptions kl;
  auto* klist =
      key->add_subcommand("list", "list the objects a fresh session sees (the token objects)");
  add_session_options(klist, kl.session, true);
  klist->add_option("--label", kl.label, "only keys with this label");
  klist->add_option("--id", kl.id, "only keys with this id (hex)")->type_name("HEX");
  klist->add_option("--class", kl.object_class, "public, private, secret, certificate or data")
      ->check(CLI::IsMember({"public", "private", "secret", "certificate", "data"}));
  klist->callback([&] { action = [&] { return cmd_key_list(g, kl); }; });

  kgen->add_flag("--token", kg.token, "keep the key in the device (a durable token object)");
  KeyHandleOptions kdestroy_o, kexport_o, kload_o, oget_o;
  auto* kdestroy = key->add_subcommand("destroy", "destroy a key or object by handle");
  add_session_options(kdestroy, kdestroy_o.session, true);
  kdestroy->add_option("--key", kdestroy_o.key, "handle")->required();
  kdestroy->callback([&] { action = [&] { return cmd_key_destroy(g, kdestroy_o); }; });
  auto* kexport = key->add_subcommand(
      "export-masked", "write a key's masked blob (loads only into this partition and device)");
  add_session_options(kexport, kexport_o.session, true);
  kexport->add_option("--key", kexport_o.key, "handle")->required();
  kexport->add_option("--out", kexport_o.out, "output file (- for stdout)")->required();
  kexport->callback([&] { action = [&] { return cmd_key_export_masked(g, kexport_o); }; });
  auto* kload = key->add_subcommand("load-masked", "load a masked blob and show the key");
  add_session_options(kload, kload_o.session, true);
  kload->add_option("--in", kload_o.in, "masked blob file (- for stdin)")->required();
  kload->callback([&] { action = [&] { return cmd_key_load_masked(g, kload_o); }; });

  // attest ... and firmware ...
  auto* attest = app.add_subcommand(
      "attest", "attestation reports and the device certificates (docs/attestation.md)");
  attest->require_subcommand(1);
  AttestOptions akey_o, adev_o;
  auto* akey = attest->add_subcommand(
      "key", "a key report: signed by the partition identity key, chained to the DeviceID");
  add_session_options(akey, akey_o.session, true);
  akey->add_option("--key", akey_o.key, "handle")->required();
  akey->add_option("--nonce", akey_o.nonce, "caller data to bind in, hex (<= 128 bytes)");
  akey->add_option("--out", akey_o.out, "report file (- for stdout)")->required();
  akey->callback([&] { action = [&] { return cmd_attest_key(g, akey_o); }; });
  auto* adev = attest->add_subcommand("device", "a device report, signed by the Alias key");
  adev->add_option("--nonce", adev_o.nonce, "caller data to bind in, hex (<= 128 bytes)");
  adev->add_option("--out", adev_o.out, "report file (- for stdout)")->required();
  adev->callback([&] { action = [&] { return cmd_attest_device(g, adev_o); }; });
  ChainOptions achain_o;
  auto* achain = attest->add_subcommand(
      "chain", "write the DeviceID, Alias and (with --partition) partition certificates as PEM");
  add_partition_option(achain, achain_o.partition);
  achain->add_option("--out-dir", achain_o.out_dir, "folder for the PEM files")->required();
  achain->callback([&] { action = [&] { return cmd_attest_chain(g, achain_o); }; });
  add_attest_verify(*attest, action);
  add_audit(app, g.socket, g.json, action);

  auto* firmware = app.add_subcommand("firmware", "install a signed firmware image (owner)");
  firmware->require_subcommand(1);
  std::string firmware_dir;
  auto* fupdate = firmware->add_subcommand(
      "update", "check the image in DIR as secure boot will, and install it for the next start");
  fupdate
      ->add_option("dir", firmware_dir,
                   "folder with ihsm-firmware.so and ihsm-firmware.manifest (the daemon reads it)")
      ->required();
  fupdate->callback([&] { action = [&] { return cmd_firmware_update(g, firmware_dir); }; });

  // object ...
  auto* object = app.add_subcommand("object", "store and read certificates and data objects");
  object->require_subcommand(1);
  ObjectCreateOptions oc;
  auto* ocreate = object->add_subcommand("create", "store a certificate (PEM or DER) or data");
  add_session_options(ocreate, oc.session, true);
  ocreate->add_option("--class", oc.object_class, "certificate or data")
      ->check(CLI::IsMember({"certificate", "data"}))
      ->capture_default_str();
  ocreate->add_option("--in", oc.in, "the value (- for stdin; <= 32 KiB)")->required();
  ocreate->add_option("--label", oc.label, "label (<= 128 bytes)");
  ocreate->add_option("--id", oc.id, "id, hex (<= 64 bytes): the id of the key it belongs to")
      ->type_name("HEX");
  ocreate->add_option("--application", oc.application, "data objects: the application");
  ocreate->add_flag("--token", oc.token, "keep it in the device (a durable token object)");
  ocreate->callback([&] { action = [&] { return cmd_object_create(g, oc); }; });
  auto* oget = object->add_subcommand("get", "write a certificate's or data object's value");
  add_session_options(oget, oget_o.session, true);
  oget->add_option("--key", oget_o.key, "object handle")->required();
  oget->add_option("--out", oget_o.out, "output file (- for stdout)")->capture_default_str();
  oget_o.out = "-";
  oget->callback([&] { action = [&] { return cmd_object_get(g, oget_o); }; });

  // partition reset, backup, restore (owner)
  BackupOptions preset_o, backup_o, restore_o;
  auto* preset = partition->add_subcommand(
      "reset", "destroy every object of a partition and give it new PINs and keys (owner)");
  preset->add_option("partition", preset_o.partition, "partition name or id")->required();
  add_pin_options(preset, preset_o.officer_pin, "", "new officer PIN", "IHSM_SO_PIN");
  add_pin_options(preset, preset_o.user_pin, "user-", "new user PIN", "IHSM_USER_PIN");
  preset->add_flag("--no-user-pin", preset_o.no_user_pin, "leave the user PIN unset");
  preset->callback([&] { action = [&] { return cmd_partition_reset(g, preset_o); }; });
  auto* backup = app.add_subcommand(
      "backup",
      "write a partition's masked objects to a file (owner; restores on this device "
      "only)");
  add_partition_option(backup, backup_o.partition);
  backup->add_option("--out", backup_o.file, "backup file")->required();
  add_backup_secret_options(backup, backup_o);
  backup->add_flag("--no-backup-secret", backup_o.no_secret,
                   "no owner backup secret: the backup cannot restore after a partition reset");
  backup->callback([&] { action = [&] { return cmd_backup(g, backup_o); }; });
  auto* restore =
      app.add_subcommand("restore", "restore a backup of this device into a partition (owner)");
  add_partition_option(restore, restore_o.partition);
  restore->add_option("--in", restore_o.file, "backup file")->required();
  add_backup_secret_options(restore, restore_o);
  restore->callback([&] { action = [&] { return cmd_restore(g, restore_o); }; });

  // sign
  SignOptions so;
  auto* sign = app.add_subcommand(
      "sign",
      "sign a file with ECDSA. Without --key a session key pair is generated, used and destroyed "
      "when the command exits; its public key goes to --pubkey-out (PEM) so that `openssl dgst "
      "-sha256 -verify PUB.pem -signature SIG FILE` checks a DER signature");
  add_session_options(sign, so.session, true);
  sign->add_option("--curve", so.curve, "curve of the session key pair")->capture_default_str();
  sign->add_option("--mechanism", so.mechanism,
                   "ECDSA-SHA256, ECDSA-SHA384, ECDSA-SHA512, or ECDSA (the input is the digest); "
                   "default: the curve's hash");
  so.key_opt = sign->add_option("--key", so.key, "sign with this existing private key handle");
  sign->add_option("--in", so.in, "file to sign (- for stdin)")->required();
  sign->add_option("--out", so.out, "signature output file (- for stdout; default: hex on stdout)");
  sign->add_option("--pubkey-out", so.pubkey_out, "write the public key (PEM) here");
  sign->add_option("--format", so.format, "signature format: der (X9.62) or raw (r||s)")
      ->check(CLI::IsMember({"der", "raw"}))
      ->capture_default_str();
  sign->callback([&] { action = [&] { return cmd_sign(g, so); }; });

  // verify
  VerifyOptions vo;
  auto* verify = app.add_subcommand("verify", "verify an ECDSA signature locally (no device)");
  verify->add_option("--pubkey", vo.pubkey, "public key, PEM or DER SubjectPublicKeyInfo")
      ->required();
  verify->add_option("--mechanism", vo.mechanism, "as for sign; default: the key size's hash");
  verify->add_option("--in", vo.in, "signed file (- for stdin)")->required();
  verify->add_option("--signature", vo.signature, "signature file")->required();
  verify->add_option("--format", vo.format, "der or raw")
      ->check(CLI::IsMember({"der", "raw"}))
      ->capture_default_str();
  verify->callback([&] { action = [&] { return cmd_verify(g, vo); }; });

  // cipher-roundtrip
  RoundtripOptions ro;
  auto* roundtrip = app.add_subcommand(
      "cipher-roundtrip",
      "encrypt a file with AES-256-GCM under a session key, decrypt it again and compare (session "
      "keys vanish with the command, so a separate encrypt/decrypt would be useless for now)");
  add_session_options(roundtrip, ro.session, true);
  roundtrip->add_option("--in", ro.in, "input file (- for stdin)")->required();
  roundtrip->add_option("--aad-file", ro.aad_file, "additional authenticated data (<= 64 KiB)");
  roundtrip->callback([&] { action = [&] { return cmd_cipher_roundtrip(g, ro); }; });

  // random
  RandomOptions rnd;
  auto* random =
      app.add_subcommand("random", "random bytes from the device DRBG (no login needed)");
  add_partition_option(random, rnd.partition);
  random->add_option("length", rnd.length, "number of bytes")
      ->required()
      ->check(CLI::Range(1, 16 << 20));
  auto* rhex = random->add_flag("--hex", rnd.hex_out, "print hex (the default on a terminal)");
  auto* rout = random->add_option("--out", rnd.out, "write the raw bytes to FILE");
  rhex->excludes(rout);
  random->callback([&] { action = [&] { return cmd_random(g, rnd); }; });

  // pin ...
  auto* pin = app.add_subcommand("pin", "change, set and unlock PINs");
  pin->require_subcommand(1);
  PinChangeOptions pch;
  auto* pchange = pin->add_subcommand("change", "change the PIN of the role you log in as");
  add_session_options(pchange, pch.session, true);
  add_pin_options(pchange, pch.new_pin, "new-", "new PIN", "IHSM_NEW_PIN");
  pchange->callback([&] { action = [&] { return cmd_pin_change(g, pch); }; });
  PinInitUserOptions piu;
  auto* pinit =
      pin->add_subcommand("init-user", "officer: set or reset the user PIN (clears its lock)");
  add_session_options(pinit, piu.session, false);
  add_pin_options(pinit, piu.user_pin, "user-", "new user PIN", "IHSM_USER_PIN");
  pinit->callback([&] { action = [&] { return cmd_pin_init_user(g, piu); }; });
  SessionOptions puu;
  auto* punlock_user = pin->add_subcommand("unlock-user", "officer: unlock a locked user PIN");
  add_session_options(punlock_user, puu, false);
  punlock_user->callback([&] { action = [&] { return cmd_pin_unlock_user(g, puu); }; });

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  if (!action) return 2;
  try {
    return action();
  } catch (const Failure& f) {
    return report(g, f);
  } catch (const UsageError& u) {
    return report(g, u);
  } catch (const LocalError& l) {
    return report(g, l);
  } catch (const ihsm::Error& e) {
    return report(g, Failure{"ihsm", e.status(), ErrorDetail{e.detail(), {}, {}}});
  } catch (const std::exception& e) {
    std::cerr << "ihsm: " << e.what() << "\n";
    return 1;
  }
}
