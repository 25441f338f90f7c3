// PIN envelopes built by the test itself, straight from docs/protocol.md
// ("PIN envelopes"), with the independent OpenSSL code in ossl.h. Raw-frame
// tests use it to log in without libihsm, and by doing so check that the
// device implements the documented construction.
#pragma once

#include <string_view>

#include "common/cbor.h"
#include "protocol/fields.h"
#include "support/ossl.h"

namespace ihsm::test {

struct EnvelopeParts {
  Bytes ephemeral_point;  // E, 97 bytes
  Bytes sealed;           // ciphertext || tag
};

inline EnvelopeParts seal_pin_parts(const Bytes& transport_spki, const Bytes& challenge,
                                    uint16_t opcode, uint64_t field, uint32_t partition,
                                    uint32_t role, std::string_view pin) {
  ossl::Pkey transport = ossl::load_spki(transport_spki);
  if (!transport) throw std::runtime_error("transport key is not a DER SPKI");
  ossl::Pkey eph = ossl::generate_ec("P-384");
  const Bytes z = ossl::ecdh(eph.get(), transport.get());
  const Bytes e_point = ossl::uncompressed_point(ossl::spki_of(eph.get()));
  const Bytes t_point = ossl::uncompressed_point(transport_spki);
  if (z.size() != 48 || e_point.size() != 97 || t_point.size() != 97) {
    throw std::runtime_error("unexpected P-384 sizes");
  }
  const std::string_view label = "ihsm-pin-envelope-v1";
  Bytes info(label.begin(), label.end());
  info.insert(info.end(), e_point.begin(), e_point.end());
  info.insert(info.end(), t_point.begin(), t_point.end());
  info.push_back(static_cast<uint8_t>(opcode >> 8));
  info.push_back(static_cast<uint8_t>(opcode));
  for (int i = 7; i >= 0; --i) info.push_back(static_cast<uint8_t>(field >> (8 * i)));
  const Bytes okm = ossl::hkdf_sha384(z, challenge, info, 44);
  const Bytes key(okm.begin(), okm.begin() + 32);
  const Bytes iv(okm.begin() + 32, okm.end());
  Bytes aad;
  for (int i = 3; i >= 0; --i) aad.push_back(static_cast<uint8_t>(partition >> (8 * i)));
  for (int i = 3; i >= 0; --i) aad.push_back(static_cast<uint8_t>(role >> (8 * i)));
  return {e_point, ossl::gcm_seal(key, iv, aad, to_bytes(pin))};
}

inline cbor::Value envelope_value(const EnvelopeParts& parts) {
  auto v = cbor::Value::map();
  v.set(uint64_t{protocol::kEphemeralKey}, cbor::Value::bytes(parts.ephemeral_point));
  v.set(uint64_t{protocol::kEnvelopeCiphertext}, cbor::Value::bytes(parts.sealed));
  return v;
}

inline cbor::Value seal_pin(const Bytes& transport_spki, const Bytes& challenge, uint16_t opcode,
                            uint64_t field, uint32_t partition, uint32_t role,
                            std::string_view pin) {
  return envelope_value(
      seal_pin_parts(transport_spki, challenge, opcode, field, partition, role, pin));
}

}  // namespace ihsm::test
