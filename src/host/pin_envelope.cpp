// PIN envelopes, exactly as docs/protocol.md ("PIN envelopes") specifies:
// ephemeral P-384 ECDH with the device PIN transport key, HKDF-SHA384 bound
// to the challenge, the two points, the opcode and the field number, then
// AES-256-GCM over the PIN with aad = be32(partition) || be32(role).
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/x509.h>

#include <array>
#include <cstring>
#include <memory>
#include <string_view>

#include "common/secret.h"
#include "host/connection.h"
#include "host/ossl.h"
#include "protocol/fields.h"

namespace ihsm {
namespace {

constexpr std::string_view kInfoLabel = "ihsm-pin-envelope-v1";
constexpr size_t kCoordinateSize = 48;                  // P-384
constexpr size_t kPointSize = 1 + 2 * kCoordinateSize;  // 97, uncompressed
constexpr size_t kKeySize = 32;
constexpr size_t kIvSize = 12;
constexpr size_t kTagSize = 16;

ErrorDetail detail(std::string message) {
  ErrorDetail d;
  d.message = std::move(message);
  return d;
}

bool is_p384(EVP_PKEY* key) {
  if (EVP_PKEY_is_a(key, "EC") != 1) return false;
  std::array<char, 64> name{};
  size_t len = 0;
  if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, name.data(), name.size(),
                                     &len) != 1) {
    return false;
  }
  return std::string_view(name.data(), len) == "secp384r1";
}

// 0x04 || x || y, each coordinate left-padded to 48 bytes.
// The point inside a DER SubjectPublicKeyInfo, read from the structure
// itself: no key object (whose methods an application's ENGINE may have
// replaced) is involved.
bool spki_point(const Bytes& spki, Bytes& out) {
  const unsigned char* p = spki.data();
  std::unique_ptr<X509_PUBKEY, decltype(&X509_PUBKEY_free)> pub(
      d2i_X509_PUBKEY(nullptr, &p, static_cast<long>(spki.size())), &X509_PUBKEY_free);
  const unsigned char* point = nullptr;
  int len = 0;
  if (!pub || X509_PUBKEY_get0_param(nullptr, &point, &len, nullptr, pub.get()) != 1 ||
      len != static_cast<int>(kPointSize) || point[0] != 0x04) {
    ossl::clear_errors();
    return false;
  }
  out.assign(point, point + len);
  return true;
}

// A key's point, through its SubjectPublicKeyInfo encoding (which works
// for every EC key, whichever methods back it).
bool public_point(EVP_PKEY* key, Bytes& out) {
  unsigned char* der = nullptr;
  const int len = i2d_PUBKEY(key, &der);
  if (len <= 0) {
    ossl::clear_errors();
    return false;
  }
  const Bytes spki(der, der + len);
  OPENSSL_free(der);
  return spki_point(spki, out);
}

template <typename T>
void put_be(Bytes& out, T v) {
  for (size_t i = 0; i < sizeof(T); ++i) {
    out.push_back(static_cast<uint8_t>(v >> (8 * (sizeof(T) - 1 - i))));
  }
}

}  // namespace

Status check_pin(const SecretPin& pin) {
  const size_t n = pin.reveal().size();
  return (n >= protocol::kMinPin && n <= protocol::kMaxPin) ? Status::kOk : Status::kPinInvalid;
}

Result<std::shared_ptr<const PinTransportKey>> verify_pin_transport_key(const Bytes& identity_spki,
                                                                        const Bytes& transport_spki,
                                                                        const Bytes& signature) {
  ossl::Pkey identity = ossl::parse_spki(identity_spki);
  if (!identity || !is_p384(identity.get())) {
    return {Status::kPinEnvelopeInvalid, detail("device identity key is not an ECC P-384 key")};
  }
  ossl::Pkey transport = ossl::parse_spki(transport_spki);
  if (!transport || !is_p384(transport.get())) {
    return {Status::kPinEnvelopeInvalid, detail("PIN transport key is not an ECC P-384 key")};
  }
  ossl::MdCtx md(EVP_MD_CTX_new());
  if (!md || EVP_DigestVerifyInit_ex(md.get(), nullptr, "SHA384", ossl::libctx(), nullptr,
                                     identity.get(), nullptr) != 1) {
    return {Status::kCryptoFailure, detail("cannot set up signature verification")};
  }
  if (EVP_DigestVerify(md.get(), signature.data(), signature.size(), transport_spki.data(),
                       transport_spki.size()) != 1) {
    ossl::clear_errors();
    return {Status::kPinEnvelopeInvalid,
            detail("PIN transport key signature by the device identity key does not verify")};
  }
  auto key = std::make_shared<PinTransportKey>();
  key->spki = transport_spki;
  if (!spki_point(transport_spki, key->point)) {
    return {Status::kPinEnvelopeInvalid, detail("cannot read the PIN transport key point")};
  }
  return std::shared_ptr<const PinTransportKey>(std::move(key));
}

Result<cbor::Value> seal_pin(const PinTransportKey& transport_key, const Bytes& challenge,
                             protocol::Opcode opcode, uint64_t field, PartitionId partition,
                             Role role, const SecretPin& pin) {
  if (const Status s = check_pin(pin); !ok(s)) return s;
  const std::string_view pin_text = pin.reveal();

  ossl::Pkey peer = ossl::parse_spki(transport_key.spki);
  if (!peer) return {Status::kPinEnvelopeInvalid, detail("cannot parse the PIN transport key")};

  // 1. Ephemeral key and Z = ECDH(e, T).
  // Generated from the transport key's own group through a context on
  // that (provider) key: a context made by algorithm name would go to an
  // ENGINE the application set as default for EC, if any.
  ossl::Pkey ephemeral;
  {
    ossl::PkeyCtx gctx(EVP_PKEY_CTX_new_from_pkey(ossl::libctx(), peer.get(), nullptr));
    EVP_PKEY* generated = nullptr;
    if (gctx && EVP_PKEY_keygen_init(gctx.get()) == 1 &&
        EVP_PKEY_keygen(gctx.get(), &generated) == 1) {
      ephemeral.reset(generated);
    }
  }
  Bytes e_point;
  if (!ephemeral) {
    ossl::clear_errors();
    return {Status::kCryptoFailure, detail("ephemeral P-384 key generation failed")};
  }
  if (!public_point(ephemeral.get(), e_point)) {
    ossl::clear_errors();
    return {Status::kCryptoFailure, detail("cannot read the ephemeral P-384 point")};
  }
  ossl::PkeyCtx dctx(EVP_PKEY_CTX_new_from_pkey(ossl::libctx(), ephemeral.get(), nullptr));
  size_t z_len = 0;
  if (!dctx || EVP_PKEY_derive_init(dctx.get()) != 1 ||
      EVP_PKEY_derive_set_peer_ex(dctx.get(), peer.get(), 1) != 1 ||
      EVP_PKEY_derive(dctx.get(), nullptr, &z_len) != 1 || z_len != kCoordinateSize) {
    ossl::clear_errors();
    return {Status::kCryptoFailure, detail("ECDH with the PIN transport key failed")};
  }
  SecretBytes z(z_len);
  if (EVP_PKEY_derive(dctx.get(), z.reveal_mutable().data(), &z_len) != 1 ||
      z_len != kCoordinateSize) {
    ossl::clear_errors();
    return {Status::kCryptoFailure, detail("ECDH with the PIN transport key failed")};
  }

  // 2. okm = HKDF-SHA384(Z, salt = challenge, info = label || E || T || be16(op) || be64(field)).
  Bytes info(kInfoLabel.begin(), kInfoLabel.end());
  info.insert(info.end(), e_point.begin(), e_point.end());
  info.insert(info.end(), transport_key.point.begin(), transport_key.point.end());
  put_be<uint16_t>(info, static_cast<uint16_t>(opcode));
  put_be<uint64_t>(info, field);

  SecretBytes okm(kKeySize + kIvSize);
  {
    std::unique_ptr<EVP_KDF, decltype(&EVP_KDF_free)> kdf(
        EVP_KDF_fetch(ossl::libctx(), "HKDF", nullptr), &EVP_KDF_free);
    std::unique_ptr<EVP_KDF_CTX, decltype(&EVP_KDF_CTX_free)> kctx(
        kdf ? EVP_KDF_CTX_new(kdf.get()) : nullptr, &EVP_KDF_CTX_free);
    char digest[] = "SHA384";
    const OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY,
                                          const_cast<uint8_t*>(z.reveal().data()), z.size()),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT,
                                          const_cast<uint8_t*>(challenge.data()), challenge.size()),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info.data(), info.size()),
        OSSL_PARAM_construct_end(),
    };
    if (!kctx || EVP_KDF_derive(kctx.get(), okm.reveal_mutable().data(), okm.size(), params) != 1) {
      ossl::clear_errors();
      return {Status::kCryptoFailure, detail("HKDF-SHA384 failed")};
    }
  }
  const uint8_t* key = okm.reveal().data();
  const uint8_t* iv = key + kKeySize;

  // 3. ciphertext || tag = AES-256-GCM(key, iv, aad = be32(partition) || be32(role), PIN).
  Bytes aad;
  put_be<uint32_t>(aad, partition);
  put_be<uint32_t>(aad, static_cast<uint32_t>(role));

  ossl::CipherCtx c(EVP_CIPHER_CTX_new());
  std::unique_ptr<EVP_CIPHER, decltype(&EVP_CIPHER_free)> gcm(
      EVP_CIPHER_fetch(ossl::libctx(), "AES-256-GCM", nullptr), &EVP_CIPHER_free);
  Bytes sealed(pin_text.size() + kTagSize);
  int len = 0;
  int final_len = 0;
  if (!c || !gcm || EVP_EncryptInit_ex2(c.get(), gcm.get(), nullptr, nullptr, nullptr) != 1 ||
      EVP_CIPHER_CTX_ctrl(c.get(), EVP_CTRL_GCM_SET_IVLEN, static_cast<int>(kIvSize), nullptr) !=
          1 ||
      EVP_EncryptInit_ex2(c.get(), nullptr, key, iv, nullptr) != 1 ||
      EVP_EncryptUpdate(c.get(), nullptr, &len, aad.data(), static_cast<int>(aad.size())) != 1 ||
      EVP_EncryptUpdate(c.get(), sealed.data(), &len,
                        reinterpret_cast<const unsigned char*>(pin_text.data()),
                        static_cast<int>(pin_text.size())) != 1 ||
      static_cast<size_t>(len) != pin_text.size() ||
      EVP_EncryptFinal_ex(c.get(), sealed.data() + len, &final_len) != 1 || final_len != 0 ||
      EVP_CIPHER_CTX_ctrl(c.get(), EVP_CTRL_GCM_GET_TAG, static_cast<int>(kTagSize),
                          sealed.data() + pin_text.size()) != 1) {
    ossl::clear_errors();
    return {Status::kCryptoFailure, detail("AES-256-GCM failed")};
  }

  cbor::Value envelope = cbor::Value::map();
  envelope.set(protocol::kEphemeralKey, cbor::Value::bytes(e_point));
  envelope.set(protocol::kEnvelopeCiphertext, cbor::Value::bytes(sealed));
  return envelope;
}

}  // namespace ihsm
