// One client connection to the device: the socket (FrameChannel), and when
// the device gave it one, the shared-memory queue through which several
// threads have requests in flight at once; plus the per-connection state
// the host library keeps (request ids, the FIPS indicator of the last
// responses, the verified PIN transport key). Internal to libihsm.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "common/cbor.h"
#include "ihsm/client.h"
#include "protocol/opcodes.h"
#include "transport/channel.h"
#include "transport/shm_queue.h"

namespace ihsm {

// The device PIN transport key, after its signature by the identity key
// has been checked.
struct PinTransportKey {
  Bytes spki;   // DER SubjectPublicKeyInfo as the device sent it
  Bytes point;  // uncompressed P-384 point, 97 bytes (T in the envelope KDF)
};

class Connection {
 public:
  explicit Connection(std::unique_ptr<transport::FrameChannel> channel);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Asks the device for a shared-memory queue (OpenQueue) and uses it for
  // every later call; before the connection is shared between threads. On
  // failure (a device without queues, in its error state) the socket
  // carries everything, as before.
  Status open_queue();
  bool uses_queue() const { return queue_ != nullptr; }

  // One request/response round trip: through the queue when there is one
  // and a slot is free, else on the socket. Checks the response header against the
  // request (response flag, opcode, request id), maps the header status
  // (unknown codes: kTransportError), parses error bodies into ErrorDetail
  // and returns the decoded body map of a successful response.
  Result<cbor::Value> call(protocol::Opcode opcode, SessionId session, const cbor::Value& body);

  // FIPS indicator of the most recent response on this connection, and of
  // the most recent response to a request that named `session`.
  bool last_approved() const { return last_approved_.load(); }
  bool last_approved(SessionId session) const;
  void forget_session(SessionId session);

  // The verified PIN transport key, fetched with GetDeviceInfo on first use
  // and cached for the life of the connection.
  Result<std::shared_ptr<const PinTransportKey>> pin_transport_key();

  // Held across GetChallenge and the command that consumes the challenge,
  // so two threads sharing the connection cannot spend each other's
  // challenge.
  std::mutex& envelope_mutex() { return envelope_mutex_; }

 private:
  Status exchange(const protocol::FrameHeader& request, const Bytes& body,
                  protocol::Frame& response);

  std::unique_ptr<transport::FrameChannel> channel_;
  std::unique_ptr<transport::QueueClient> queue_;
  std::mutex mutex_;  // one request/response at a time on the socket
  std::atomic<uint64_t> next_request_id_{1};
  // The stream cannot be resynchronised after a framing error, nor a queue
  // trusted after a device that went away.
  std::atomic<bool> broken_{false};
  std::atomic<bool> last_approved_{false};
  mutable std::mutex approved_mutex_;
  std::unordered_map<SessionId, bool> session_approved_;

  std::mutex key_mutex_;
  std::shared_ptr<const PinTransportKey> transport_key_;

  std::mutex envelope_mutex_;
};

// Failure of a response that does not have the shape the protocol promises.
ErrorDetail bad_response(std::string what);

// Parse helpers shared by the client code: map a MapReader status on a
// response field to kTransportError with a detail naming the field.
Status check_field(Status s, uint64_t field, ErrorDetail& detail);

// PIN envelopes (pin_envelope.cpp).
//
// Verifies the transport key SPKI against the signature by the identity
// key and extracts the uncompressed point. kPinEnvelopeInvalid when the
// signature does not verify or a key is not on P-384.
Result<std::shared_ptr<const PinTransportKey>> verify_pin_transport_key(const Bytes& identity_spki,
                                                                        const Bytes& transport_spki,
                                                                        const Bytes& signature);
// Builds {50: E, 51: ct||tag} for one PIN under `challenge`.
Result<cbor::Value> seal_pin(const PinTransportKey& transport_key, const Bytes& challenge,
                             protocol::Opcode opcode, uint64_t field, PartitionId partition,
                             Role role, const SecretPin& pin);
// kPinInvalid unless the PIN is 4..64 bytes.
Status check_pin(const SecretPin& pin);

}  // namespace ihsm
