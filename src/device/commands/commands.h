// Declarations of every command handler, generated from the one opcode list
// so that an opcode without a handler does not link.
#pragma once

#include "device/command.h"

namespace ihsm::device::commands {

#define IHSM_DECLARE_HANDLER(name, code, access, usage) \
  Status name(CommandContext& ctx, const cbor::MapReader& in, Reply& out);
IHSM_OPCODE_LIST(IHSM_DECLARE_HANDLER)
#undef IHSM_DECLARE_HANDLER

// Helpers shared by the command families.
// Opens the PIN envelope in `field` (see docs/protocol.md) against this
// connection's challenge. kStaleChallenge, kPinEnvelopeInvalid, kPinInvalid.
Status open_pin_envelope(CommandContext& ctx, const cbor::MapReader& in, uint64_t field,
                         PartitionId partition, Role role, SecretBytes& pin);
// Checks `pin` against the role's credential with back-off and lockout,
// persisting the counters. Fills retry/lock detail into `out` on failure.
Status verify_pin(CommandContext& ctx, Partition& partition, Role role, const SecretBytes& pin,
                  Reply& out);
cbor::Value partition_info_to_cbor(const PartitionInfo& info);
// The tamper events seen, oldest first: {kSensor, kTime, kResponse} and,
// for the owner's TamperStatus, the sensor's detail in kMessage.
cbor::Value tamper_events_to_cbor(const Device& device, bool with_detail);
cbor::Value key_info_to_cbor(const KeyInfo& info);
// The partition named by Field::kPartition (owner commands); nullptr with
// `status` kNoSuchPartition or the field's error.
std::shared_ptr<Partition> partition_named(CommandContext& ctx, const cbor::MapReader& in,
                                           Status& status);
// Sets the human-readable detail of an error reply.
Status fail(Reply& out, Status status, std::string_view message);

// CKM_SHA256/384/512 -> crypto::Hash; anything else kMechanismParamInvalid.
Status hash_from_mechanism(uint64_t mechanism, crypto::Hash& out);
// The params map of a request (empty map when absent).
const cbor::Value& params_of(const cbor::MapReader& in);
// Publishes a new object in the session's partition (a token object
// durably, a session object for this connection) and puts its handle
// into the reply as kKey.
Status add_object(CommandContext& ctx, std::shared_ptr<KeyObject> object, Reply& out);
// Builds a secret key (AES or generic secret) from raw bytes and a template
// map (kKeyType, label, id, flags, mask, allowed mechanisms), checking its
// length; origin and base as for set_origin().
Status make_secret_key(CommandContext& ctx, const cbor::MapReader& tmpl, SecretBytes value,
                       KeyOrigin origin, const KeyObject* base, std::shared_ptr<KeyObject>& out,
                       Reply& reply);

}  // namespace ihsm::device::commands
