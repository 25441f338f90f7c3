// Zeroization and the tamper sensors (docs/security-policy.md,
// "Zeroization", "Tamper response"), against a real ihsmd:
//   - the Zeroize command (libihsm and the CLI) destroys every key: a
//     masked blob exported before does not load into the device provisioned
//     afterwards, stored keys and partitions are gone, no file of the state
//     directory holds the key bytes, and a scan of the running daemon's
//     memory (/proc/<pid>/mem, as root) finds none of the key bytes it held;
//   - a restart serves only the zeroized state until `ihsmd --provision`;
//   - each sensor raises its event and the configured response follows:
//     the intrusion input, a debugger attaching (ptrace from the test), a
//     state file edited behind the device's back, failed officer logins.
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/cbor.h"
#include "ihsm/audit.h"
#include "integration/lib_fixture.h"

namespace ihsm::test {
namespace {

namespace fs = std::filesystem;

// How often `needle` occurs in the readable memory of process `pid`.
// Regions the kernel refuses (EIO) are skipped; `scanned` counts the bytes
// read, so a scan that read nothing cannot pass for a clean one.
// The events of audit records, in order.
std::vector<std::string> events_of(const std::vector<AuditRecord>& records) {
  std::vector<std::string> out;
  for (const AuditRecord& r : records) out.push_back(r.event);
  return out;
}

// Under AddressSanitizer the daemon maps terabytes of readable shadow and
// allocator space: a scan would not end. The normal build runs it.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kScanMemory = false;
#else
constexpr bool kScanMemory = true;
#endif

size_t count_in_memory(pid_t pid, const Bytes& needle, size_t& scanned) {
  scanned = 0;
  std::ifstream maps("/proc/" + std::to_string(pid) + "/maps");
  const int mem = ::open(("/proc/" + std::to_string(pid) + "/mem").c_str(), O_RDONLY | O_CLOEXEC);
  if (mem < 0 || !maps) return 0;
  size_t found = 0;
  std::string line;
  constexpr size_t kChunk = 1 << 20;
  std::vector<uint8_t> buf(kChunk + needle.size());
  while (std::getline(maps, line)) {
    std::istringstream in(line);
    std::string range, perms;
    in >> range >> perms;
    if (perms.empty() || perms[0] != 'r' || line.find("[vvar") != std::string::npos ||
        line.find("[vsyscall]") != std::string::npos) {
      continue;
    }
    const size_t dash = range.find('-');
    const uint64_t start = std::stoull(range.substr(0, dash), nullptr, 16);
    const uint64_t end = std::stoull(range.substr(dash + 1), nullptr, 16);
    for (uint64_t at = start; at < end; at += kChunk) {
      // Overlap the next chunk by needle-1 bytes, so no occurrence is cut.
      const size_t want =
          static_cast<size_t>(std::min<uint64_t>(end - at, kChunk + needle.size() - 1));
      const ssize_t n = ::pread(mem, buf.data(), want, static_cast<off_t>(at));
      if (n <= 0) continue;
      scanned += static_cast<size_t>(n);
      const uint8_t* p = buf.data();
      const uint8_t* const stop = buf.data() + n;
      const size_t own = std::min<size_t>(static_cast<size_t>(n), kChunk);
      while (p < stop) {
        const void* hit = ::memmem(p, static_cast<size_t>(stop - p), needle.data(), needle.size());
        if (hit == nullptr) break;
        const auto* h = static_cast<const uint8_t*>(hit);
        if (static_cast<size_t>(h - buf.data()) < own) ++found;  // the overlap is the next chunk's
        p = h + 1;
      }
    }
  }
  ::close(mem);
  return found;
}

bool contains(const Bytes& hay, const Bytes& needle) {
  return std::search(hay.begin(), hay.end(), needle.begin(), needle.end()) != hay.end();
}

Bytes read_all(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

// RSA-OAEP (SHA-256, MGF1-SHA-256) on the host, to a public key of the device.
Bytes oaep_encrypt_to(const Bytes& spki, const Bytes& plaintext) {
  const unsigned char* p = spki.data();
  EVP_PKEY* pub = d2i_PUBKEY(nullptr, &p, static_cast<long>(spki.size()));
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new(pub, nullptr);
  size_t len = 0;
  Bytes out;
  if (ctx != nullptr && EVP_PKEY_encrypt_init(ctx) == 1 &&
      EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) == 1 &&
      EVP_PKEY_CTX_set_rsa_oaep_md(ctx, EVP_sha256()) == 1 &&
      EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, EVP_sha256()) == 1 &&
      EVP_PKEY_encrypt(ctx, nullptr, &len, plaintext.data(), plaintext.size()) == 1) {
    out.resize(len);
    if (EVP_PKEY_encrypt(ctx, out.data(), &len, plaintext.data(), plaintext.size()) != 1) {
      out.clear();
    }
    out.resize(len);
  }
  EVP_PKEY_CTX_free(ctx);
  EVP_PKEY_free(pub);
  return out;
}

class Tamper : public LibTest {
 protected:
  std::vector<std::string> daemon_args() const override {
    return {"--tamper-integrity-interval-ms", "100", "--pin-backoff-ms", "0",
            "--pin-backoff-max-ms",           "0"};
  }

  std::string state_of(Client& c) {
    auto info = c.device_info();
    return info ? info->state : "(" + std::string(status_name(info.status())) + ")";
  }

  // Polls GetDeviceInfo until the state is `want` (or `limit` passes).
  ::testing::AssertionResult wait_for_state(
      const std::string& want, std::chrono::milliseconds limit = std::chrono::milliseconds(3000)) {
    Client c = connect();
    const auto deadline = std::chrono::steady_clock::now() + limit;
    std::string now;
    while (std::chrono::steady_clock::now() < deadline) {
      if ((now = state_of(c)) == want) return ::testing::AssertionSuccess();
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return ::testing::AssertionFailure() << "state is " << now << ", not " << want;
  }

  // The single event the device reports, by sensor and response.
  void expect_one_event(const std::string& sensor, const std::string& response) {
    Client c = connect();
    auto status = c.tamper_status();
    ASSERT_OK(status);
    ASSERT_EQ(status->events.size(), 1u);
    EXPECT_EQ(status->events[0].sensor, sensor);
    EXPECT_EQ(status->events[0].response, response);
    EXPECT_FALSE(status->events[0].detail.empty());
    EXPECT_GT(status->events[0].time, 0u);
    auto info = c.device_info();
    ASSERT_OK(info);
    ASSERT_EQ(info->tamper_events.size(), 1u);
    EXPECT_EQ(info->tamper_events[0].sensor, sensor);
    EXPECT_TRUE(info->tamper_events[0].detail.empty()) << "details are the owner's";
  }

  bool exists(const std::string& name) { return fs::exists(state_dir() + "/" + name); }

  // The socket accepts before the start-up is over: the firmware records
  // its security version in boot.cbor just after. An edit racing that
  // write would be overwritten by it (legitimately), so edits wait.
  void wait_until_ready() {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (daemon().log().find("ihsmd: ready") == std::string::npos &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
};

// The default policy, as TamperStatus reports it.
TEST_F(Tamper, DefaultPolicyIsReported) {
  Client c = connect();
  auto status = c.tamper_status();
  ASSERT_OK(status);
  EXPECT_EQ(status->state, "operational");
  EXPECT_TRUE(status->events.empty());
  std::map<std::string, std::string> policy(status->policy.begin(), status->policy.end());
  EXPECT_EQ(policy, (std::map<std::string, std::string>{{"intrusion", "zeroize"},
                                                        {"debugger", "zeroize"},
                                                        {"integrity", "lock"},
                                                        {"officer-login", "lock"}}));
  struct stat st {};
  ASSERT_EQ(::stat((state_dir() + "/intrusion").c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(Tamper, PolicySyntaxIsChecked) {
  for (const char* bad : {"intrusion", "intrusion=explode", "door=zeroize", "debugger=lock,",
                          "debugger=lock,debugger=zeroize", ""}) {
    const ProcessResult r =
        run_process({ihsmd_path(), "--state-dir", dir().file("bad-state"), "--socket",
                     dir().file("bad.sock"), "--tamper-response", bad},
                    {}, "", std::chrono::seconds(10));
    EXPECT_EQ(r.exit_code, 2) << "--tamper-response '" << bad << "': " << r.describe();
  }
}

// The whole story: key bytes the device holds (unwrapped from a value the
// test knows, a session and a token copy, each used once) are found in its
// memory; after Zeroize they are nowhere: not in memory, not on disk, and
// nothing made before loads into the device provisioned afterwards.
TEST_F(Tamper, ZeroizeDestroysEveryKeyInMemoryAndOnDisk) {
  ASSERT_EQ(::geteuid(), 0u) << "the memory scan reads /proc/<pid>/mem as root";
  Client c = connect();
  const PartitionId partition = make_partition(c, "doomed").id;
  const Bytes old_identity = c.device_info()->identity_public_key;
  Session s = login(c, partition);

  KeyTemplate pub_t = tmpl(usage::kWrap);
  KeyTemplate priv_t = tmpl(usage::kUnwrap | usage::kSensitive);
  auto rsa = s.generate_key_pair(Mechanism::kRsaKeyPairGen, std::nullopt, 2048, pub_t, priv_t);
  ASSERT_OK(rsa);
  auto spki = s.public_key(rsa->public_handle);
  ASSERT_OK(spki);

  Bytes secret(32);
  ASSERT_EQ(RAND_bytes(secret.data(), 32), 1);
  const Bytes wrapped = oaep_encrypt_to(*spki, secret);
  ASSERT_FALSE(wrapped.empty());
  MechanismParams oaep;
  oaep.hash = Mechanism::kSha256;
  oaep.mgf_hash = Mechanism::kSha256;
  NewKeySpec spec;
  spec.key_type = KeyType::kAes;
  spec.value_length = 32;
  spec.tmpl = aes_flags("session-copy");
  auto session_key =
      s.unwrap_key(rsa->private_handle, Mechanism::kRsaPkcsOaep, wrapped, spec, oaep);
  ASSERT_OK(session_key);
  spec.tmpl = aes_flags("token-copy");
  spec.tmpl.token = true;
  auto token_key = s.unwrap_key(rsa->private_handle, Mechanism::kRsaPkcsOaep, wrapped, spec, oaep);
  ASSERT_OK(token_key);
  for (KeyHandle k : {*session_key, *token_key}) {
    ASSERT_OK(s.encrypt_gcm(k, Bytes(64, 0x5a), Bytes{}));
  }
  auto blob = s.export_masked_key(*token_key);
  ASSERT_OK(blob);

  // The device unique secret (boot.cbor field 2), the root of every key.
  Bytes device_secret;
  {
    cbor::Value boot;
    ASSERT_TRUE(ok(cbor::decode(read_all(state_dir() + "/boot.cbor"), boot)));
    ASSERT_TRUE(ok(cbor::MapReader(boot).get_bytes(2, device_secret, 32)));
    ASSERT_EQ(device_secret.size(), 32u);
  }

  // The DeviceID certificate, which outlives the device for its auditor.
  auto chain = c.certificates();
  ASSERT_OK(chain);
  const std::string deviceid_pem = pem_of_cert(chain->at(0));

  // Positive control: the scan finds the key bytes while the device holds them.
  size_t scanned = 0;
  if (kScanMemory) {
    EXPECT_GT(count_in_memory(daemon().pid(), secret, scanned), 0u)
        << "the scan cannot see the key the device holds: it could not fail";
    EXPECT_GT(scanned, 1u << 20);
  }

  auto zeroized = c.zeroize("tamper_test");
  ASSERT_OK(zeroized);
  EXPECT_NE(zeroized->find("tamper_test"), std::string::npos) << *zeroized;

  // The device reports it, refuses every key service, and is still running.
  auto info = c.device_info();
  ASSERT_OK(info);
  EXPECT_EQ(info->state, "zeroized");
  EXPECT_NE(info->reason.find("tamper_test"), std::string::npos) << info->reason;
  EXPECT_EQ(info->partition_count, 0u);
  EXPECT_TRUE(info->identity_public_key.empty());
  EXPECT_STATUS(s.encrypt_gcm(*session_key, Bytes(16, 1), Bytes{}), Status::kZeroized);
  EXPECT_STATUS(c.list_partitions(), Status::kZeroized);
  EXPECT_STATUS(c.open_session(partition), Status::kZeroized);
  EXPECT_STATUS(c.attest_device(Bytes(16, 2)), Status::kZeroized);
  EXPECT_STATUS(c.certificates(), Status::kZeroized);
  EXPECT_OK(c.self_test());
  EXPECT_OK(c.zeroize());  // again: nothing left, still fine

  // Memory: none of the key bytes anywhere in the running daemon.
  ASSERT_TRUE(daemon().running());
  if (kScanMemory) {
    EXPECT_EQ(count_in_memory(daemon().pid(), secret, scanned), 0u)
        << "the daemon still holds the key bytes after zeroization";
    EXPECT_GT(scanned, 1u << 20);
    EXPECT_EQ(count_in_memory(daemon().pid(), device_secret, scanned), 0u)
        << "the daemon still holds the device unique secret after zeroization";
  }

  // Disk: the state files are gone, the marker is there, and no remaining
  // file holds the key bytes.
  for (const char* gone : {"boot.cbor", "device.cbor", "partitions.cbor", "objects.db",
                           "objects.db-wal", "objects.db-shm"}) {
    EXPECT_FALSE(exists(gone)) << gone;
  }
  EXPECT_TRUE(exists("ZEROIZED"));
  for (const auto& e : fs::recursive_directory_iterator(state_dir())) {
    if (!e.is_regular_file()) continue;
    const Bytes content = read_all(e.path().string());
    EXPECT_FALSE(contains(content, secret)) << e.path();
    EXPECT_FALSE(contains(content, device_secret)) << e.path();
    EXPECT_FALSE(contains(content, *blob)) << e.path();
  }
  EXPECT_NE(read_file(state_dir() + "/ZEROIZED").find("tamper_test"), std::string::npos);

  // The audit log outlives the device: archived, with the zeroize record
  // last, and still verifiable against the device's DeviceID certificate.
  std::vector<AuditLog> archives;
  for (const auto& e : fs::directory_iterator(state_dir())) {
    const std::string name = e.path().filename();
    if (!name.starts_with("audit-") || !name.ends_with(".cbor")) continue;
    const Bytes raw = read_all(e.path().string());
    AuditLog log;
    ASSERT_EQ(decode_audit_log(raw, log), Status::kOk) << name;
    archives.push_back(std::move(log));
  }
  ASSERT_EQ(archives.size(), 1u);
  const std::vector<std::string> events = events_of(archives[0].records);
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back(), "zeroize");
  EXPECT_NE(std::find(events.begin(), events.end(), "key-create"), events.end());
  AuditVerifyOptions verify;
  verify.trusted_root_pem = deviceid_pem;
  const AuditVerdict verdict = verify_audit(archives, verify);
  EXPECT_TRUE(verdict.valid) << verdict.reason << " at " << verdict.seq;

  // A restart without --provision serves only the zeroized state.
  ASSERT_TRUE(restart_daemon());
  {
    Client again = connect();
    auto after = again.device_info();
    ASSERT_OK(after);
    EXPECT_EQ(after->state, "zeroized");
    EXPECT_NE(after->reason.find("tamper_test"), std::string::npos) << after->reason;
    EXPECT_STATUS(again.list_partitions(), Status::kZeroized);
    EXPECT_STATUS(again.open_session(partition), Status::kZeroized);
    EXPECT_FALSE(exists("boot.cbor")) << "a zeroized device must not provision itself";
  }

  // --provision makes a new device: nothing of the old one works there.
  ASSERT_TRUE(daemon().stop());
  daemon().args().push_back("--provision");
  ASSERT_TRUE(daemon().start());
  daemon().args().pop_back();
  Client fresh = connect();
  auto now = fresh.device_info();
  ASSERT_OK(now);
  EXPECT_EQ(now->state, "operational");
  EXPECT_NE(now->identity_public_key, old_identity);
  EXPECT_FALSE(exists("ZEROIZED"));
  auto partitions = fresh.list_partitions();
  ASSERT_OK(partitions);
  EXPECT_TRUE(partitions->empty()) << "the old partition survived";
  const PartitionId reborn = make_partition(fresh, "doomed").id;
  Session s2 = login(fresh, reborn);
  auto found = s2.find_keys(query(std::nullopt));
  ASSERT_OK(found);
  EXPECT_TRUE(found->empty()) << "a token key survived";
  auto loaded = s2.load_masked_key(*blob);
  EXPECT_FALSE(loaded.ok()) << "a masked blob from before the zeroization loaded";
  EXPECT_TRUE(loaded.status() == Status::kMaskedKeyWrongDevice ||
              loaded.status() == Status::kMaskedKeyInvalid)
      << status_name(loaded.status());

  // --provision on a device that is not zeroized is refused.
  ASSERT_TRUE(daemon().stop());
  const ProcessResult refused = run_process(
      {ihsmd_path(), "--state-dir", state_dir(), "--socket", socket_path(), "--provision"}, {}, "",
      std::chrono::seconds(20));
  EXPECT_EQ(refused.exit_code, 2) << refused.describe();
  ASSERT_TRUE(daemon().start());
}

TEST_F(Tamper, CliZeroizeNeedsYes) {
  const std::string cli = IHSM_CLI_PATH;
  const ProcessResult no = run_process({cli, "--socket", socket_path(), "zeroize"});
  EXPECT_EQ(no.exit_code, 2) << no.describe();
  Client c = connect();
  EXPECT_EQ(state_of(c), "operational");
  EXPECT_TRUE(exists("boot.cbor"));
  const ProcessResult yes =
      run_process({cli, "--socket", socket_path(), "--json", "zeroize", "--yes"});
  EXPECT_EQ(yes.exit_code, 0) << yes.describe();
  EXPECT_NE(yes.out.find("zeroized"), std::string::npos) << yes.out;
  EXPECT_EQ(state_of(c), "zeroized");
  EXPECT_FALSE(exists("boot.cbor"));
  const ProcessResult status = run_process({cli, "--socket", socket_path(), "tamper", "status"});
  EXPECT_EQ(status.exit_code, 0) << status.describe();
  EXPECT_NE(status.out.find("state: zeroized"), std::string::npos) << status.out;
}

// The intrusion input: a byte written to the FIFO (as a platform's chassis
// switch would) zeroizes by default.
TEST_F(Tamper, IntrusionInputZeroizes) {
  Client c = connect();
  make_partition(c, "p");
  {
    std::ofstream fifo(state_dir() + "/intrusion");
    fifo << "1\n";
  }
  ASSERT_TRUE(wait_for_state("zeroized"));
  expect_one_event("intrusion", "zeroize");
  // The destruction runs just after the state latches.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  while (exists("boot.cbor") && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_FALSE(exists("boot.cbor"));
  EXPECT_FALSE(exists("partitions.cbor"));
  EXPECT_TRUE(exists("ZEROIZED"));
}

class TamperLockIntrusion : public Tamper {
 protected:
  std::vector<std::string> daemon_args() const override {
    return {"--tamper-response", "intrusion=lock", "--intrusion-input", dir().path() + "/chassis"};
  }
};

// The configured response: lock instead of zeroize; a configured path.
TEST_F(TamperLockIntrusion, ConfiguredResponseLocks) {
  Client c = connect();
  const PartitionId p = make_partition(c, "p").id;
  Session s = login(c, p);
  auto key = s.generate_aes_key(256, aes_flags());
  ASSERT_OK(key);
  {
    std::ofstream fifo(dir().path() + "/chassis");
    fifo << "x";
  }
  ASSERT_TRUE(wait_for_state("tamper-locked"));
  expect_one_event("intrusion", "lock");
  EXPECT_STATUS(s.encrypt_gcm(*key, Bytes(16, 1), Bytes{}), Status::kTamperLocked);
  EXPECT_STATUS(c.list_partitions(), Status::kTamperLocked);
  EXPECT_OK(c.certificates());  // status services answer
  EXPECT_TRUE(exists("boot.cbor")) << "lock must not zeroize";
  // The event is in the audit log, which the owner can still read.
  auto log = c.read_audit();
  ASSERT_OK(log);
  const std::vector<std::string> events = events_of(log->records);
  EXPECT_NE(std::find(events.begin(), events.end(), "tamper"), events.end());
  // Until a restart.
  s.release();
  ASSERT_TRUE(restart_daemon());
  Client again = connect();
  EXPECT_EQ(state_of(again), "operational");
  EXPECT_OK(again.list_partitions());
}

// A debugger attaching to ihsmd (ptrace from the test, as root) zeroizes.
TEST_F(Tamper, DebuggerAttachZeroizes) {
  ASSERT_EQ(::geteuid(), 0u);
  Client c = connect();
  make_partition(c, "p");
  const pid_t pid = daemon().pid();
  ASSERT_EQ(::ptrace(PTRACE_SEIZE, pid, nullptr, nullptr), 0) << std::strerror(errno);
  const ::testing::AssertionResult zeroized = wait_for_state("zeroized");
  // Detach: interrupt (seized tracees run on), wait for the stop, let go.
  ASSERT_EQ(::ptrace(PTRACE_INTERRUPT, pid, nullptr, nullptr), 0) << std::strerror(errno);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, __WALL), pid);
  ASSERT_EQ(::ptrace(PTRACE_DETACH, pid, nullptr, nullptr), 0) << std::strerror(errno);
  ASSERT_TRUE(zeroized);
  expect_one_event("debugger", "zeroize");
  EXPECT_EQ(state_of(c), "zeroized");
}

// A state file edited behind the device's back: the periodic check (and
// the check at load) locks by default.
TEST_F(Tamper, EditedPartitionRecordsLock) {
  Client c = connect();
  const PartitionId p = make_partition(c, "p").id;
  wait_until_ready();
  {
    std::ofstream f(state_dir() + "/partitions.cbor", std::ios::app | std::ios::binary);
    f << '\0';
  }
  ASSERT_TRUE(wait_for_state("tamper-locked"));
  expect_one_event("integrity", "lock");
  EXPECT_STATUS(c.open_session(p), Status::kTamperLocked);
  EXPECT_TRUE(exists("partitions.cbor")) << "the evidence stays";
  // At the next start the records fail to parse: the integrity sensor at load.
  ASSERT_TRUE(restart_daemon());
  Client again = connect();
  EXPECT_EQ(state_of(again), "tamper-locked");
  auto status = again.tamper_status();
  ASSERT_OK(status);
  ASSERT_EQ(status->events.size(), 1u);
  EXPECT_EQ(status->events[0].sensor, "integrity");
}

TEST_F(Tamper, EditedBootRecordLocks) {
  Client c = connect();
  wait_until_ready();
  Bytes boot = read_all(state_dir() + "/boot.cbor");
  ASSERT_FALSE(boot.empty());
  boot.back() ^= 1;
  {
    std::ofstream f(state_dir() + "/boot.cbor", std::ios::binary | std::ios::trunc);
    f.write(reinterpret_cast<const char*>(boot.data()), static_cast<std::streamsize>(boot.size()));
  }
  ASSERT_TRUE(wait_for_state("tamper-locked"));
  expect_one_event("integrity", "lock");
}

class TamperOfficer : public Tamper {
 protected:
  std::vector<std::string> daemon_args() const override {
    auto args = Tamper::daemon_args();
    args.insert(args.end(), {"--tamper-officer-failures", "3"});
    return args;
  }
};

// Failed officer logins count device-wide; a good one resets the count.
TEST_F(TamperOfficer, FailedOfficerLoginsLock) {
  Client c = connect();
  const PartitionId a = make_partition(c, "a").id, b = make_partition(c, "b").id;
  auto fail_login = [&](PartitionId p) {
    Session s = open(c, p);
    EXPECT_STATUS(s.login(Role::kCryptoOfficer, SecretPin("wrong-pin-0")), Status::kPinIncorrect);
  };
  fail_login(a);
  fail_login(b);
  login(c, a, Role::kCryptoOfficer);  // resets the count
  fail_login(a);
  fail_login(b);
  EXPECT_EQ(state_of(c), "operational");
  fail_login(b);  // the third in a row, across partitions
  EXPECT_EQ(state_of(c), "tamper-locked");
  expect_one_event("officer-login", "lock");
  EXPECT_STATUS(c.open_session(a), Status::kTamperLocked);
}

class TamperOfficerZeroize : public Tamper {
 protected:
  std::vector<std::string> daemon_args() const override {
    auto args = Tamper::daemon_args();
    args.insert(args.end(),
                {"--tamper-officer-failures", "1", "--tamper-response", "officer-login=zeroize"});
    return args;
  }
};

// An event raised inside a command (Login) that asks for zeroization: the
// state latches at once and the destruction follows outside the command.
TEST_F(TamperOfficerZeroize, OfficerLoginCanZeroize) {
  Client c = connect();
  const PartitionId a = make_partition(c, "a").id;
  Session s = open(c, a);
  EXPECT_STATUS(s.login(Role::kCryptoOfficer, SecretPin("wrong-pin-0")), Status::kPinIncorrect);
  EXPECT_EQ(state_of(c), "zeroized");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  while (exists("boot.cbor") && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_FALSE(exists("boot.cbor"));
  expect_one_event("officer-login", "zeroize");
}

}  // namespace
}  // namespace ihsm::test
