// The fast path: a queue pair in shared memory between one client
// connection and the device (docs/wire-protocol.md, "Shared-memory queue").
//
// The device creates a sealed memfd (OpenQueue on the socket) and hands it
// over with SCM_RIGHTS. It holds `depth` slots; each slot carries one frame
// (the same 40-byte header and CBOR body as the socket) from the client and
// then the response in place. A client thread owns a free slot, writes its
// request, publishes the slot's index on the submission ring and waits on
// the slot's own state word, which is the completion: spinning briefly,
// then sleeping on a futex. Device workers take submissions in order,
// spinning briefly when idle before they sleep too, so a steady stream of
// requests never pays a cross-core wake-up. Several requests are in flight
// at once, one per slot; the socket stays the control path and the
// fallback (no free slot, no queue).
//
// The client can write anything into the mapping at any time. The device
// therefore keeps its own copy of everything it relies on (depth, ring
// position), copies a request out of its slot before reading it, and
// treats an impossible ring position as the end of the queue.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "ihsm/status.h"
#include "protocol/frame.h"

namespace ihsm::transport {

constexpr uint32_t kMaxQueueDepth = 64;

// The mapping, as both sides see it.
class SharedQueueMemory {
 public:
  ~SharedQueueMemory();
  SharedQueueMemory(const SharedQueueMemory&) = delete;
  SharedQueueMemory& operator=(const SharedQueueMemory&) = delete;

  // Bytes one slot takes: its state words and one frame of the largest size.
  static size_t slot_stride();
  static size_t size_for(uint32_t depth);

  struct Control;  // shm_queue.cpp has the layout
  struct Slot;

 protected:
  SharedQueueMemory() = default;
  Control& control() const;
  Slot& slot(uint32_t index) const;
  static uint8_t* frame_bytes(Slot& s);
  // One frame into a slot (header, body and the slot's length word).
  static void write_frame(Slot& s, const protocol::FrameHeader& header,
                          std::span<const uint8_t> body);
  // The slot's frame copied out, then checked on the copy: the header as on
  // the socket, and the length word against the header's body length.
  static Status read_frame(Slot& s, protocol::Frame& out);

  uint8_t* base_ = nullptr;
  size_t size_ = 0;
  uint32_t depth_ = 0;  // this side's own copy, never read back from the mapping
};

// The device's end.
class QueueServer final : public SharedQueueMemory {
 public:
  // A sealed memfd of `depth` slots (1..kMaxQueueDepth), mapped.
  static Status create(uint32_t depth, std::unique_ptr<QueueServer>& out);
  ~QueueServer();

  // The memfd, to send to the client; the server closes its own copy
  // after that (the mapping stays).
  int fd() const { return fd_; }
  void close_fd();
  uint32_t depth() const { return depth_; }

  // Waits for the next submission and copies its frame into `out` (whose
  // body keeps its capacity between calls). Returns the slot to complete,
  // with `header_status` the result of checking the frame header (a
  // request with a bad header is still answered, in its slot). Returns
  // UINT32_MAX when stop() was called or the client broke the ring.
  uint32_t take(protocol::Frame& out, Status& header_status);
  // Writes the response into the slot and wakes its waiter.
  void complete(uint32_t slot, const protocol::FrameHeader& header, std::span<const uint8_t> body);
  // Wakes every take(); they return UINT32_MAX from then on.
  void stop();
  bool stopped() const { return stopping_.load(); }

 private:
  QueueServer() = default;
  bool try_take(uint32_t& slot);

  int fd_ = -1;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> broken_{false};
  std::mutex take_mutex_;  // one worker moves the ring head at a time
  // The device's own ring position: written under take_mutex_, read by
  // idle workers without it.
  std::atomic<uint32_t> head_{0};
  std::atomic<bool> someone_spinning_{false};  // only one idle worker spins; the rest sleep
};

// The client's end.
class QueueClient final : public SharedQueueMemory {
 public:
  // Maps the memfd the device sent (taking ownership of `fd`) after
  // checking its size, seals and header.
  static Status attach(int fd, std::unique_ptr<QueueClient>& out);
  ~QueueClient();

  uint32_t depth() const { return depth_; }

  // One request and its response through a free slot. kBusy when every
  // slot is in flight (the caller uses the socket instead); kTransportError
  // when `device_alive` says the device went away while this waited.
  Status call(const protocol::FrameHeader& request, std::span<const uint8_t> body,
              protocol::Frame& response, const std::function<bool()>& device_alive);

 private:
  QueueClient() = default;

  std::mutex mutex_;  // free_ and the ring tail
  std::vector<uint32_t> free_;
  std::atomic<uint32_t> in_flight_{0};
  // Until when (steady clock, ns) a waiter sleeps at once: two requests
  // were in flight recently (shm_queue.cpp, kQuietFor).
  std::atomic<int64_t> no_spin_until_ns_{0};
};

}  // namespace ihsm::transport
