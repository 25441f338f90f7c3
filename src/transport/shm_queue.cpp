#include "transport/shm_queue.h"

#include <fcntl.h>
#include <linux/futex.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstring>

namespace ihsm::transport {

// ---------------------------------------------------------------- layout

namespace {

constexpr uint32_t kQueueMagic = 0x49485351;  // "IHSQ"
constexpr uint32_t kQueueVersion = 1;
constexpr size_t kPage = 4096;
constexpr size_t kControlSize = kPage;
constexpr size_t kSlotHeaderSize = 64;
constexpr size_t kFrameCapacity = protocol::kHeaderSize + protocol::kMaxBody;

// A slot's state word, which is also its completion futex.
enum SlotState : uint32_t {
  kFree = 0,       // the client's
  kSubmitted = 1,  // written by the client, on the ring
  kTaken = 2,      // a device worker copied it out and runs it
  kDone = 3,       // the response is in the slot
};

// Spinning instead of sleeping saves a wake-up (tens of microseconds when
// the other side's CPU went idle), but only while the two sides have a CPU
// each: with more threads than CPUs, a spinning waiter delays the very
// thread it waits for, and yielding hands the CPU to whatever else runs (on
// a loaded machine, for a whole time slice). Measured on two vCPUs, ECDSA
// P-256 through one connection: one client thread 11 k/s without spinning,
// 39 k/s with; two client threads 52 k/s without, 33 k/s with. So a waiter
// spins only while its side has seen no concurrency for kQuietFor (a
// client: no second request of its connection in flight; the device: no
// second worker busy anywhere) and its counterpart was last seen on another
// CPU; otherwise it sleeps at once. Spin lengths:
//  - a client, through a typical operation (ECDSA ~30 us, RSA-2048 ~500
//    us), sleeping through long ones (RSA key generation);
//  - an idle device worker, for the next request of a busy client;
//  - a client whose request no worker took yet, only briefly: the worker
//    is asleep or has no CPU.
constexpr auto kClientSpin = std::chrono::microseconds(1000);
constexpr auto kDeviceIdleSpin = std::chrono::microseconds(100);
constexpr auto kUntakenSpin = std::chrono::microseconds(20);
constexpr auto kQuietFor = std::chrono::milliseconds(20);
// A sleeper wakes this often anyway: the device to notice stop(), the
// client to notice that the device went away.
constexpr long kSleepSliceMs = 100;
constexpr uint32_t kNoCpu = UINT32_MAX;

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

uint32_t current_cpu() {
  const int cpu = ::sched_getcpu();
  return cpu < 0 ? kNoCpu : static_cast<uint32_t>(cpu);
}

// Spins until `ready()` (true), or until `go_on(elapsed)` says stop (false).
// The clock and `go_on` are consulted every 64 turns.
template <typename Ready, typename GoOn>
bool spin_until(Ready&& ready, GoOn&& go_on) {
  const auto start = std::chrono::steady_clock::now();
  for (uint32_t i = 1;; ++i) {
    if (ready()) return true;
    if ((i & 63) != 0) {
      cpu_relax();
      continue;
    }
    if (!go_on(std::chrono::steady_clock::now() - start)) return false;
  }
}

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Device workers of every queue that are running a request, and until when
// idle workers do not spin because two were.
std::atomic<uint32_t> g_busy_workers{0};
std::atomic<int64_t> g_no_spin_until_ns{0};

// Futexes on a shared mapping: not FUTEX_PRIVATE.
void futex_wait(uint32_t* word, uint32_t expected, long timeout_ms) {
  timespec ts{timeout_ms / 1000, (timeout_ms % 1000) * 1000000};
  (void)::syscall(SYS_futex, word, FUTEX_WAIT, expected, &ts, nullptr, 0);
}

void futex_wake(uint32_t* word, int count) {
  (void)::syscall(SYS_futex, word, FUTEX_WAKE, count, nullptr, nullptr, 0);
}

using Word = std::atomic_ref<uint32_t>;
static_assert(Word::is_always_lock_free, "the queue needs lock-free 32-bit atomics");

}  // namespace

struct SharedQueueMemory::Control {
  uint32_t magic;
  uint32_t version;
  uint32_t depth;
  uint32_t slot_stride;
  alignas(64) uint32_t sq_tail;   // submissions published by the client
  alignas(64) uint32_t sleepers;  // device workers asleep on sq_tail
  alignas(64) uint32_t spinning;  // a device worker watches sq_tail: no wake-up needed
  uint32_t client_cpu;            // where the last request was submitted (a hint)
  alignas(64) uint32_t ring[kMaxQueueDepth];
};
static_assert(sizeof(SharedQueueMemory::Control) <= kControlSize);

struct SharedQueueMemory::Slot {
  uint32_t state;       // SlotState; the client sleeps on it
  uint32_t waiting;     // the client is (about to be) asleep: wake it
  uint32_t length;      // bytes of the frame that follows the slot header
  uint32_t worker_cpu;  // where the worker that took it runs (a hint)
};
static_assert(sizeof(SharedQueueMemory::Slot) <= kSlotHeaderSize);

size_t SharedQueueMemory::slot_stride() {
  return (kSlotHeaderSize + kFrameCapacity + kPage - 1) / kPage * kPage;
}

size_t SharedQueueMemory::size_for(uint32_t depth) { return kControlSize + depth * slot_stride(); }

SharedQueueMemory::~SharedQueueMemory() {
  if (base_ != nullptr) ::munmap(base_, size_);
}

SharedQueueMemory::Control& SharedQueueMemory::control() const {
  return *reinterpret_cast<Control*>(base_);
}

SharedQueueMemory::Slot& SharedQueueMemory::slot(uint32_t index) const {
  return *reinterpret_cast<Slot*>(base_ + kControlSize + index * slot_stride());
}

uint8_t* SharedQueueMemory::frame_bytes(Slot& s) {
  return reinterpret_cast<uint8_t*>(&s) + kSlotHeaderSize;
}

void SharedQueueMemory::write_frame(Slot& s, const protocol::FrameHeader& header,
                                    std::span<const uint8_t> body) {
  uint8_t* bytes = frame_bytes(s);
  protocol::FrameHeader h = header;
  h.body_length = static_cast<uint32_t>(body.size());
  protocol::encode_header(h,
                          std::span<uint8_t, protocol::kHeaderSize>(bytes, protocol::kHeaderSize));
  if (!body.empty()) std::memcpy(bytes + protocol::kHeaderSize, body.data(), body.size());
  Word(s.length).store(static_cast<uint32_t>(protocol::kHeaderSize + body.size()),
                       std::memory_order_relaxed);
}

Status SharedQueueMemory::read_frame(Slot& s, protocol::Frame& out) {
  const uint8_t* bytes = frame_bytes(s);
  const uint32_t length = Word(s.length).load(std::memory_order_relaxed);
  std::array<uint8_t, protocol::kHeaderSize> head{};
  std::memcpy(head.data(), bytes, head.size());
  Status st = protocol::decode_header(head, out.header);
  if (ok(st) && length != protocol::kHeaderSize + out.header.body_length) {
    st = Status::kMalformedFrame;
  }
  if (!ok(st)) {
    out.body.clear();
    return st;
  }
  // <= kMaxBody (decode_header checked), so inside the slot; resize keeps
  // the buffer's capacity from one request to the next.
  out.body.resize(out.header.body_length);
  std::memcpy(out.body.data(), bytes + protocol::kHeaderSize, out.body.size());
  return Status::kOk;
}

// ---------------------------------------------------------------- device

Status QueueServer::create(uint32_t depth, std::unique_ptr<QueueServer>& out) {
  if (depth == 0 || depth > kMaxQueueDepth) return Status::kInvalidArgument;
  std::unique_ptr<QueueServer> q(new QueueServer());
  q->depth_ = depth;
  q->size_ = size_for(depth);
  q->fd_ = ::memfd_create("ihsm-queue", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (q->fd_ < 0) return Status::kResourceExhausted;
  // Sealed against shrinking: a client that truncated the file would make
  // the device's next access to a slot a SIGBUS.
  if (::ftruncate(q->fd_, static_cast<off_t>(q->size_)) != 0 ||
      ::fcntl(q->fd_, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) {
    return Status::kResourceExhausted;
  }
  void* p = ::mmap(nullptr, q->size_, PROT_READ | PROT_WRITE, MAP_SHARED, q->fd_, 0);
  if (p == MAP_FAILED) return Status::kResourceExhausted;
  q->base_ = static_cast<uint8_t*>(p);
  Control& c = q->control();
  c.magic = kQueueMagic;
  c.version = kQueueVersion;
  c.depth = depth;
  c.slot_stride = static_cast<uint32_t>(slot_stride());
  out = std::move(q);
  return Status::kOk;
}

QueueServer::~QueueServer() { close_fd(); }

void QueueServer::close_fd() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

bool QueueServer::try_take(uint32_t& taken) {
  std::lock_guard lock(take_mutex_);
  const uint32_t tail = Word(control().sq_tail).load(std::memory_order_acquire);
  const uint32_t head = head_.load();
  if (tail == head) return false;
  // More outstanding than there are slots: the client is not following
  // the protocol, and nothing it wrote can be trusted to mean anything.
  if (tail - head > depth_) {
    broken_ = true;
    return false;
  }
  const uint32_t index = Word(control().ring[head % depth_]).load(std::memory_order_relaxed);
  head_.store(head + 1);
  uint32_t expected = kSubmitted;
  if (index >= depth_ ||
      !Word(slot(index).state)
           .compare_exchange_strong(expected, kTaken, std::memory_order_acquire)) {
    broken_ = true;
    return false;
  }
  taken = index;
  return true;
}

uint32_t QueueServer::take(protocol::Frame& out, Status& header_status) {
  uint32_t index = 0;
  for (;;) {
    if (stopping_ || broken_) return UINT32_MAX;
    if (try_take(index)) break;
    if (broken_) return UINT32_MAX;
    const auto has_work = [this] {
      return stopping_.load() ||
             Word(control().sq_tail).load(std::memory_order_acquire) != head_.load();
    };
    // One idle worker spins for the next request, while no other worker
    // runs and the client is on another CPU; the others sleep. The client
    // does not wake anyone while a worker spins.
    const uint32_t cpu = current_cpu();
    if (now_ns() >= g_no_spin_until_ns.load(std::memory_order_relaxed) &&
        !someone_spinning_.exchange(true)) {
      Word(control().spinning).store(1);
      const bool got = spin_until(has_work, [&](auto elapsed) {
        return elapsed < kDeviceIdleSpin && g_busy_workers.load() == 0 &&
               Word(control().client_cpu).load(std::memory_order_relaxed) != cpu;
      });
      Word(control().spinning).store(0);
      someone_spinning_ = false;
      if (got) continue;
    }
    // Announce the sleep before the last look at the tail; the client
    // publishes the tail before it looks at the spinner and the sleepers,
    // so one of the two always sees the other.
    Word sleepers(control().sleepers);
    sleepers.fetch_add(1);
    const uint32_t tail = Word(control().sq_tail).load();
    if (!stopping_ && tail == head_.load()) {
      futex_wait(&control().sq_tail, tail, kSleepSliceMs);
    }
    sleepers.fetch_sub(1);
  }

  if (++g_busy_workers > 1) {  // until complete()
    g_no_spin_until_ns.store(now_ns() + std::chrono::nanoseconds(kQuietFor).count(),
                             std::memory_order_relaxed);
  }
  // The client may still be writing into the slot: copy it out once, then
  // look only at the copy.
  Slot& s = slot(index);
  Word(s.worker_cpu).store(current_cpu(), std::memory_order_relaxed);
  header_status = read_frame(s, out);
  return index;
}

void QueueServer::complete(uint32_t index, const protocol::FrameHeader& header,
                           std::span<const uint8_t> body) {
  if (index >= depth_) return;
  --g_busy_workers;
  Slot& s = slot(index);
  // dispatch() never makes a body over the limit; were one to come, the
  // client still gets an answer, with no body.
  if (body.size() > protocol::kMaxBody) {
    protocol::FrameHeader h = header;
    h.status = static_cast<uint16_t>(Status::kInternalError);
    write_frame(s, h, {});
  } else {
    write_frame(s, header, body);
  }
  Word(s.state).store(kDone);
  if (Word(s.waiting).load() != 0) futex_wake(&s.state, 1);
}

void QueueServer::stop() {
  stopping_ = true;
  futex_wake(&control().sq_tail, INT32_MAX);
}

// ---------------------------------------------------------------- client

Status QueueClient::attach(int fd, std::unique_ptr<QueueClient>& out) {
  struct stat st {};
  const int seals = ::fcntl(fd, F_GET_SEALS);
  if (::fstat(fd, &st) != 0 || seals < 0 ||
      (seals & (F_SEAL_SHRINK | F_SEAL_GROW)) != (F_SEAL_SHRINK | F_SEAL_GROW) ||
      static_cast<size_t>(st.st_size) < kControlSize ||
      static_cast<size_t>(st.st_size) > size_for(kMaxQueueDepth)) {
    ::close(fd);
    return Status::kTransportError;
  }
  std::unique_ptr<QueueClient> q(new QueueClient());
  q->size_ = static_cast<size_t>(st.st_size);
  void* p = ::mmap(nullptr, q->size_, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  ::close(fd);
  if (p == MAP_FAILED) return Status::kTransportError;
  q->base_ = static_cast<uint8_t*>(p);
  const Control& c = q->control();
  if (c.magic != kQueueMagic || c.version != kQueueVersion || c.depth == 0 ||
      c.depth > kMaxQueueDepth || c.slot_stride != slot_stride() || q->size_ != size_for(c.depth)) {
    return Status::kTransportError;
  }
  q->depth_ = c.depth;
  q->free_.reserve(q->depth_);
  for (uint32_t i = q->depth_; i > 0; --i) q->free_.push_back(i - 1);
  out = std::move(q);
  return Status::kOk;
}

QueueClient::~QueueClient() = default;

Status QueueClient::call(const protocol::FrameHeader& request, std::span<const uint8_t> body,
                         protocol::Frame& response, const std::function<bool()>& device_alive) {
  if (body.size() > protocol::kMaxBody) return Status::kFrameTooLarge;
  uint32_t index = 0;
  {
    std::lock_guard lock(mutex_);
    if (free_.empty()) return Status::kBusy;
    index = free_.back();
    free_.pop_back();
  }
  if (++in_flight_ > 1) {
    no_spin_until_ns_.store(now_ns() + std::chrono::nanoseconds(kQuietFor).count(),
                            std::memory_order_relaxed);
  }
  const uint32_t cpu = current_cpu();
  const bool may_spin = now_ns() >= no_spin_until_ns_.load(std::memory_order_relaxed);
  Slot& s = slot(index);
  write_frame(s, request, body);
  Word(s.waiting).store(0, std::memory_order_relaxed);
  Word(s.worker_cpu).store(kNoCpu, std::memory_order_relaxed);
  Word(control().client_cpu).store(cpu, std::memory_order_relaxed);
  Word state(s.state);
  state.store(kSubmitted, std::memory_order_release);
  {
    std::lock_guard lock(mutex_);
    Word tail(control().sq_tail);
    const uint32_t t = tail.load(std::memory_order_relaxed);
    Word(control().ring[t % depth_]).store(index, std::memory_order_relaxed);
    tail.store(t + 1);
  }
  if (Word(control().spinning).load() == 0 && Word(control().sleepers).load() != 0) {
    futex_wake(&control().sq_tail, 1);
  }

  const auto done = [&state] { return state.load(std::memory_order_acquire) == kDone; };
  // Spin only as the connection's one request in flight, on another CPU
  // than the worker's (see kClientSpin).
  const auto go_on = [&](auto elapsed) {
    if (in_flight_.load(std::memory_order_relaxed) != 1) return false;
    if (state.load(std::memory_order_relaxed) == kSubmitted) return elapsed < kUntakenSpin;
    return elapsed < kClientSpin && Word(s.worker_cpu).load(std::memory_order_relaxed) != cpu;
  };
  if (!(may_spin && spin_until(done, go_on)) && !done()) {
    Word(s.waiting).store(1);
    for (;;) {
      const uint32_t v = state.load();
      if (v == kDone) break;
      futex_wait(&s.state, v, kSleepSliceMs);
      // The slot stays in flight: this connection is finished anyway.
      if (!done() && !device_alive()) {
        --in_flight_;
        return Status::kTransportError;
      }
    }
  }

  const Status st = read_frame(s, response);
  state.store(kFree, std::memory_order_relaxed);
  --in_flight_;
  {
    std::lock_guard lock(mutex_);
    free_.push_back(index);
  }
  return st;
}

}  // namespace ihsm::transport
