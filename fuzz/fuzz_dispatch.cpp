// fuzz_dispatch: whole requests through the device's front door.
//
// One real device::Device is provisioned once, in LLVMFuzzerInitialize, on a
// temporary state directory. Each input is one connection (see frames.h for
// the format): the harness opens a user, an officer and a public session on
// a partition and makes three keys (through dispatch itself), then feeds the
// input's frames to device::dispatch exactly as the server would: a header
// that does not decode gets its error response and ends the connection, a
// short body is end of stream. At the end the connection's sessions close,
// as when a client disconnects.
//
// Besides sanitizer reports, every response is checked against the protocol's
// promises (docs/protocol.md): response flag set, opcode and request id
// echoed, a status from the closed set, a CBOR map body within the frame
// limit, and error bodies that carry only message / retry-after /
// retries-left and never the approved flag.
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "device/boot/prepare.h"
#include "device/dispatch.h"
#include "frames.h"
#include "protocol/fields.h"

using namespace ihsm;

namespace {

constexpr size_t kMaxFramesPerInput = 64;
constexpr uint32_t kOtherUid = 4242;

device::Device* g_device = nullptr;
device::BootHandoff* g_boot = nullptr;
std::string g_state_dir;
PartitionId g_partition = 0;

[[noreturn]] void fail(const char* what, const protocol::FrameHeader& h, Status status) {
  std::fprintf(stderr, "fuzz_dispatch: property violated: %s (opcode 0x%04x, status %s)\n", what,
               h.opcode, std::string(status_name(status)).c_str());
  std::abort();
}

void remove_state_dir() {
  std::error_code ec;
  if (!g_state_dir.empty()) std::filesystem::remove_all(g_state_dir, ec);
}

std::string make_temp_dir() {
  struct stat st {};
  std::string base = "/tmp";
  if (const char* t = std::getenv("TMPDIR"); t != nullptr && t[0] == '/') base = t;
  // tmpfs when there is one: every state change is written with fsync.
  if (::stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) && ::access("/dev/shm", W_OK) == 0) {
    base = "/dev/shm";
  }
  std::string templ = base + "/ihsm-fuzz-XXXXXX";
  if (::mkdtemp(templ.data()) == nullptr) {
    std::perror("fuzz_dispatch: mkdtemp");
    std::abort();
  }
  return templ;
}

// The partition every input works in. An input may delete it (the owner may);
// the next input then gets a new one.
void ensure_partition() {
  if (g_partition != 0 && g_device->find_partition(g_partition)) return;
  const SecretBytes officer = SecretBytes::from_string("officer-pin");
  const SecretBytes user = SecretBytes::from_string("user-pin");
  std::shared_ptr<device::Partition> p;
  const Status s =
      g_device->create_partition("fuzz", std::nullopt, std::nullopt, 0, officer, &user, p);
  if (!ok(s)) {
    std::fprintf(stderr, "fuzz_dispatch: cannot create the partition: %s\n",
                 std::string(status_name(s)).c_str());
    std::abort();
  }
  g_partition = p->id;
}

std::shared_ptr<device::SessionState> open_session(const device::ConnectionState& conn, Role role) {
  std::shared_ptr<device::SessionState> s;
  const Status st = g_device->open_session(g_partition, conn.id, conn.peer.uid, conn.peer.gid, s);
  if (!ok(st)) {
    std::fprintf(stderr, "fuzz_dispatch: cannot open a session: %s\n",
                 std::string(status_name(st)).c_str());
    std::abort();
  }
  // Login needs a PIN envelope under a fresh random challenge, which no
  // fuzzer can forge; the harness raises the role itself so the handlers
  // behind the role checks are reached.
  s->role = role;
  return s;
}

void check_response(const protocol::FrameHeader& request, const device::DispatchResult& r) {
  const protocol::FrameHeader& h = r.header;
  const Status status = static_cast<Status>(h.status);
  if (!status_is_known(h.status)) fail("status outside the closed set", request, status);
  if ((h.flags & protocol::frame_flag::kResponse) == 0)
    fail("response flag clear", request, status);
  if ((h.flags & ~protocol::frame_flag::kAll) != 0) fail("unknown flag bits", request, status);
  if (h.opcode != request.opcode || h.request_id != request.request_id) {
    fail("opcode or request id not echoed", request, status);
  }
  if (r.body.size() > protocol::kMaxBody)
    fail("response body over the frame limit", request, status);
  cbor::Value body;
  if (!ok(cbor::decode(r.body, body)) || !body.is(cbor::Value::Type::kMap)) {
    fail("response body is not a CBOR map", request, status);
  }
  if (!ok(status)) {
    if ((h.flags & protocol::frame_flag::kApproved) != 0) {
      fail("an error carries the approved flag", request, status);
    }
    for (const auto& [k, v] : body.entries()) {
      if (!k.is(cbor::Value::Type::kUint) ||
          (k.as_uint() != protocol::kMessage && k.as_uint() != protocol::kRetryAfterMs &&
           k.as_uint() != protocol::kRetriesLeft)) {
        fail("an error body carries a field other than message/retry", request, status);
      }
    }
  }
}

// Remembers the handles a successful response hands out.
void collect_handles(const device::DispatchResult& r, std::vector<KeyHandle>& handles) {
  if (r.header.status != 0) return;
  cbor::Value body;
  if (!ok(cbor::decode(r.body, body))) return;
  for (const uint64_t field : {protocol::kKey, protocol::kPublicHandle, protocol::kPrivateHandle}) {
    const cbor::Value* v = body.find(field);
    if (v != nullptr && v->is(cbor::Value::Type::kUint)) handles.push_back(v->as_uint());
  }
}

// Rewrites small `key` and `target` fields (1-based indexes into `handles`)
// to the real handles.
Bytes remap_keys(std::span<const uint8_t> body, const std::vector<KeyHandle>& handles) {
  Bytes out(body.begin(), body.end());
  cbor::Value v;
  if (body.empty() || !ok(cbor::decode(body, v)) || !v.is(cbor::Value::Type::kMap)) return out;
  bool changed = false;
  for (auto& [k, val] : v.mutable_entries()) {
    if (k.is(cbor::Value::Type::kUint) &&
        (k.as_uint() == protocol::kKey || k.as_uint() == protocol::kTarget) &&
        val.is(cbor::Value::Type::kUint) && val.as_uint() >= 1 && val.as_uint() <= handles.size()) {
      val = cbor::Value::uint(handles[val.as_uint() - 1]);
      changed = true;
    }
  }
  if (changed) out = cbor::encode(v);
  return out;
}

// IHSM_FUZZ_TRACE=1 prints every request and its status (to check seeds).
const bool g_trace = std::getenv("IHSM_FUZZ_TRACE") != nullptr;

device::DispatchResult run(device::ConnectionState& conn, protocol::FrameHeader header,
                           std::span<const uint8_t> body) {
  device::DispatchResult r = device::dispatch(*g_device, conn, header, body);
  check_response(header, r);
  if (g_trace) {
    const protocol::OpcodeInfo* op = protocol::find_opcode(header.opcode);
    std::fprintf(stderr, "fuzz_dispatch: %-18s -> %s\n",
                 op != nullptr ? std::string(op->name).c_str() : "(unknown)",
                 std::string(status_name(static_cast<Status>(r.header.status))).c_str());
  }
  return r;
}

// The three keys every input starts with, made the way a client makes them.
void make_keys(device::ConnectionState& conn, SessionId user, std::vector<KeyHandle>& handles) {
  protocol::FrameHeader h;
  h.session = user;
  h.request_id = 1;
  h.opcode = static_cast<uint16_t>(protocol::Opcode::kGenerateKeyPair);
  auto pair = cbor::Value::map();
  pair.set(protocol::kMechanism,
           cbor::Value::uint(static_cast<uint64_t>(Mechanism::kEcKeyPairGen)));
  pair.set(protocol::kCurve, cbor::Value::uint(static_cast<uint64_t>(Curve::kP256)));
  device::DispatchResult r = run(conn, h, cbor::encode(pair));
  if (r.header.status != 0)
    fail("GenerateKeyPair failed in the harness", h, Status(r.header.status));
  collect_handles(r, handles);  // public, private

  h.opcode = static_cast<uint16_t>(protocol::Opcode::kGenerateKey);
  auto aes = cbor::Value::map();
  aes.set(protocol::kMechanism, cbor::Value::uint(static_cast<uint64_t>(Mechanism::kAesKeyGen)));
  aes.set(protocol::kKeyBits, cbor::Value::uint(256));
  r = run(conn, h, cbor::encode(aes));
  if (r.header.status != 0) fail("GenerateKey failed in the harness", h, Status(r.header.status));
  collect_handles(r, handles);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  g_state_dir = make_temp_dir();
  std::atexit(remove_state_dir);
  // What the boot stage would hand over, for a stand-in measurement: the
  // harness tests dispatch, not boot (tests/integration covers that).
  g_boot = new device::BootHandoff();  // lives for the whole run
  device::DeviceConfig& config = g_boot->config;
  config.state_dir = g_state_dir;
  config.socket_path = g_state_dir + "/unused.sock";
  config.login.scrypt_n = 1u << 10;  // the harness sets PINs; keep that cheap
  // A tamper event would latch the one device for every later input.
  config.tamper.officer_failures = 0;
  device::boot::BootRecord record;
  device::boot::VerifiedFirmware firmware;
  firmware.version = "fuzz";
  firmware.security_version = 1;
  firmware.measurement = Bytes(48, 0xf2);
  bool provisioned = false;
  Status s = g_boot->state.open(config.state_dir);
  if (ok(s)) s = device::boot::load_or_provision(g_boot->state, Bytes{}, record, provisioned);
  if (ok(s)) s = device::boot::prepare_handoff(record, firmware, *g_boot);
  g_device = new device::Device();
  if (ok(s)) s = g_device->start(*g_boot);
  if (!ok(s)) {
    std::fprintf(stderr, "fuzz_dispatch: device start failed: %s\n",
                 std::string(status_name(s)).c_str());
    std::abort();
  }
  // Audit records queued without waiting commit before the exit handlers
  // remove the state directory and clean up OpenSSL (the device itself is
  // never destroyed).
  std::atexit([] { (void)g_device->store().write({}); });
  ensure_partition();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  std::span<const uint8_t> in(data, size);
  const uint8_t flags = in[0];
  in = in.subspan(1);

  ensure_partition();
  device::ConnectionState conn;
  conn.id = g_device->next_connection_id();
  const bool owner = (flags & fuzz::kFlagOwner) != 0;
  conn.peer = transport::PeerCredentials{owner ? 0u : kOtherUid, owner ? 0u : kOtherUid, 1};

  std::vector<SessionId> sessions = {open_session(conn, Role::kCryptoUser)->id,
                                     open_session(conn, Role::kCryptoOfficer)->id,
                                     open_session(conn, Role::kPublic)->id};
  std::vector<KeyHandle> handles;
  make_keys(conn, sessions[0], handles);

  for (size_t frames = 0; frames < kMaxFramesPerInput && in.size() >= protocol::kHeaderSize;
       ++frames) {
    protocol::FrameHeader header;
    const Status hs = protocol::decode_header(in.first<protocol::kHeaderSize>(), header);
    in = in.subspan(protocol::kHeaderSize);
    if (!ok(hs)) {
      // The server answers and hangs up: the stream cannot be resynchronised.
      const device::DispatchResult r = device::error_response(header, hs);
      check_response(header, r);
      break;
    }
    if (header.body_length > in.size()) break;  // end of stream mid-frame
    const auto body = in.first(header.body_length);
    in = in.subspan(header.body_length);

    // Zeroize ends the one device for every later input (nothing is served
    // afterwards, and that is the point); tests/integration/tamper_test.cpp
    // covers it against a real ihsmd.
    if (header.opcode == static_cast<uint16_t>(protocol::Opcode::kZeroize)) continue;
    if (header.session >= 1 && header.session <= sessions.size()) {
      header.session = sessions[header.session - 1];
    }
    const Bytes request = remap_keys(body, handles);
    const device::DispatchResult r = run(conn, header, request);
    collect_handles(r, handles);
    if (header.opcode == static_cast<uint16_t>(protocol::Opcode::kSessionOpen) &&
        r.header.status == 0) {
      cbor::Value v;
      if (ok(cbor::decode(r.body, v))) {
        if (const cbor::Value* id = v.find(protocol::kSession)) sessions.push_back(id->as_uint());
      }
    }
  }
  g_device->close_connection_sessions(conn.id);
  return 0;
}
