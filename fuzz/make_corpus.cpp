// Writes the seed corpora at build time, so the seeds always match the
// protocol in this tree: tiny, valid requests.
//   make_corpus DIR  ->  DIR/frame/*     one frame each (fuzz_frame)
//                        DIR/dispatch/*  a flags byte + a short conversation (fuzz_dispatch)
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <span>
#include <string>
#include <utility>

#include "frames.h"
#include "protocol/fields.h"

using namespace ihsm;
using protocol::Opcode;
using V = cbor::Value;

namespace {

bool write_file(const std::filesystem::path& path, const Bytes& data) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
  return static_cast<bool>(f);
}

V map() { return V::map(); }
V u(uint64_t v) { return V::uint(v); }
V bytes(size_t n, uint8_t fill) { return V::bytes(Bytes(n, fill)); }
uint64_t mech(Mechanism m) { return static_cast<uint64_t>(m); }

// A syntactically complete PIN envelope that cannot open.
V bogus_envelope() {
  auto env = map();
  Bytes point(97, 0x11);
  point[0] = 0x04;
  env.set(protocol::kEphemeralKey, V::bytes(point));
  env.set(protocol::kEnvelopeCiphertext, bytes(8 + 16, 0x22));
  return env;
}

struct Seed {
  std::string name;
  Bytes data;
};

Bytes one(Opcode op, uint64_t session, const V& body) {
  Bytes out;
  fuzz::append_frame(out, op, session, body);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_corpus DIR\n");
    return 2;
  }
  const std::filesystem::path root(argv[1]);

  auto open_body = map();
  open_body.set(protocol::kPartition, u(1));
  auto sign_digest = map();
  sign_digest.set(protocol::kKey, u(fuzz::kKeyPrivate));
  sign_digest.set(protocol::kMechanism, u(mech(Mechanism::kEcdsa)));
  sign_digest.set(protocol::kData, bytes(32, 0x5a));
  auto sign_data = map();
  sign_data.set(protocol::kKey, u(fuzz::kKeyPrivate));
  sign_data.set(protocol::kMechanism, u(mech(Mechanism::kEcdsaSha256)));
  sign_data.set(protocol::kData, V::bytes(Bytes{'h', 'e', 'l', 'l', 'o'}));
  auto encrypt = map();
  encrypt.set(protocol::kKey, u(fuzz::kKeyAes));
  encrypt.set(protocol::kMechanism, u(mech(Mechanism::kAesGcm)));
  encrypt.set(protocol::kPlaintext, bytes(16, 0x70));
  encrypt.set(protocol::kAad, bytes(4, 0x61));
  auto decrypt = map();
  decrypt.set(protocol::kKey, u(fuzz::kKeyAes));
  decrypt.set(protocol::kMechanism, u(mech(Mechanism::kAesGcm)));
  decrypt.set(protocol::kIv, bytes(12, 0x01));
  decrypt.set(protocol::kCiphertext, bytes(16, 0x02));
  decrypt.set(protocol::kTag, bytes(16, 0x03));
  auto keypair = map();
  keypair.set(protocol::kMechanism, u(mech(Mechanism::kEcKeyPairGen)));
  keypair.set(protocol::kCurve, u(static_cast<uint64_t>(Curve::kP384)));
  auto priv_tmpl = map();
  priv_tmpl.set(protocol::kLabel, V::text("signer"));
  priv_tmpl.set(protocol::kId, bytes(2, 0x01));
  keypair.set(protocol::kPrivateTemplate, std::move(priv_tmpl));
  auto aes = map();
  aes.set(protocol::kMechanism, u(mech(Mechanism::kAesKeyGen)));
  aes.set(protocol::kKeyBits, u(128));
  aes.set(protocol::kLabel, V::text("k"));
  auto key_only = [](uint64_t key) {
    auto m = map();
    m.set(protocol::kKey, u(key));
    return m;
  };
  auto random = map();
  random.set(protocol::kLength, u(32));
  auto create = map();
  create.set(protocol::kName, V::text("p"));
  create.set(protocol::kPinEnvelope, bogus_envelope());
  auto login = map();
  login.set(protocol::kRole, u(static_cast<uint64_t>(Role::kCryptoUser)));
  login.set(protocol::kPinEnvelope, bogus_envelope());

  // Issue-3 services: verify, digests, multi-part ciphers, derive, wrap, attributes.
  auto sig_verify = map();
  sig_verify.set(protocol::kKey, u(fuzz::kKeyPublic));
  sig_verify.set(protocol::kMechanism, u(mech(Mechanism::kEcdsaSha256)));
  sig_verify.set(protocol::kData, V::bytes(Bytes{'h', 'e', 'l', 'l', 'o'}));
  sig_verify.set(protocol::kSignature, bytes(64, 0x42));
  auto digest = map();
  digest.set(protocol::kMechanism, u(mech(Mechanism::kSha256)));
  digest.set(protocol::kData, bytes(3, 0x61));
  auto digest_init = map();
  digest_init.set(protocol::kMechanism, u(mech(Mechanism::kSha384)));
  auto data_only = map();
  data_only.set(protocol::kData, bytes(40, 0x64));
  auto enc_init = map();
  enc_init.set(protocol::kKey, u(fuzz::kKeyAes));
  enc_init.set(protocol::kMechanism, u(mech(Mechanism::kAesCbcPad)));
  enc_init.set(protocol::kIv, bytes(16, 0x07));
  auto enc_update = map();
  enc_update.set(protocol::kPlaintext, bytes(20, 0x70));
  auto dec_init = map();
  dec_init.set(protocol::kKey, u(fuzz::kKeyAes));
  dec_init.set(protocol::kMechanism, u(mech(Mechanism::kAesGcm)));
  dec_init.set(protocol::kIv, bytes(12, 0x01));
  auto dec_update = map();
  dec_update.set(protocol::kCiphertext, bytes(16, 0x02));
  auto dec_final = map();
  dec_final.set(protocol::kTag, bytes(16, 0x03));
  auto secret = map();  // handle 4 in its conversation
  secret.set(protocol::kMechanism, u(mech(Mechanism::kGenericSecretKeyGen)));
  secret.set(protocol::kKeyBits, u(256));
  secret.set(protocol::kFlags, u(usage::kDerive | usage::kSensitive));
  auto hkdf_params = map();
  hkdf_params.set(protocol::kHash, u(mech(Mechanism::kSha256)));
  hkdf_params.set(protocol::kSalt, bytes(16, 0x73));
  hkdf_params.set(protocol::kInfo, bytes(8, 0x69));
  hkdf_params.set(protocol::kHkdfMode, u(1));
  auto derived = map();
  derived.set(protocol::kKeyType, u(static_cast<uint64_t>(KeyType::kAes)));
  derived.set(protocol::kValueLength, u(32));
  auto derive = map();
  derive.set(protocol::kKey, u(4));
  derive.set(protocol::kMechanism, u(mech(Mechanism::kHkdfDerive)));
  derive.set(protocol::kParams, std::move(hkdf_params));
  derive.set(protocol::kTemplate, derived);
  auto kek = map();  // handle 4 in its conversation
  kek.set(protocol::kMechanism, u(mech(Mechanism::kAesKeyGen)));
  kek.set(protocol::kKeyBits, u(256));
  kek.set(protocol::kFlags, u(usage::kWrap | usage::kUnwrap | usage::kSensitive));
  auto exportable = map();  // handle 5
  exportable.set(protocol::kMechanism, u(mech(Mechanism::kAesKeyGen)));
  exportable.set(protocol::kKeyBits, u(128));
  exportable.set(protocol::kFlags,
                 u(usage::kEncrypt | usage::kDecrypt | usage::kExtractable | usage::kSensitive));
  auto wrap = map();
  wrap.set(protocol::kKey, u(4));
  wrap.set(protocol::kMechanism, u(mech(Mechanism::kAesKeyWrapKwp)));
  wrap.set(protocol::kTarget, u(5));
  auto unwrapped = map();
  unwrapped.set(protocol::kClass, u(static_cast<uint64_t>(ObjectClass::kSecretKey)));
  unwrapped.set(protocol::kKeyType, u(static_cast<uint64_t>(KeyType::kAes)));
  unwrapped.set(protocol::kValueLength, u(16));
  auto unwrap = map();
  unwrap.set(protocol::kKey, u(4));
  unwrap.set(protocol::kMechanism, u(mech(Mechanism::kAesKeyWrapKwp)));
  unwrap.set(protocol::kWrapped, bytes(24, 0x57));
  unwrap.set(protocol::kTemplate, std::move(unwrapped));
  auto attributes = map();
  attributes.set(protocol::kKey, u(fuzz::kKeyAes));
  attributes.set(protocol::kFlags, u(usage::kEncrypt));
  attributes.set(protocol::kFlagsMask, u(usage::kDecrypt));
  attributes.set(protocol::kLabel, V::text("renamed"));

  // fuzz_frame: single frames.
  const Seed frames[] = {
      {"get_device_info", one(Opcode::kGetDeviceInfo, 0, map())},
      {"get_challenge", one(Opcode::kGetChallenge, 0, map())},
      {"partition_list", one(Opcode::kPartitionList, 0, map())},
      {"session_open", one(Opcode::kSessionOpen, 0, open_body)},
      {"sign", one(Opcode::kSign, 7, sign_digest)},
      {"encrypt", one(Opcode::kEncrypt, 7, encrypt)},
      {"generate_key_pair", one(Opcode::kGenerateKeyPair, 7, keypair)},
      {"partition_create", one(Opcode::kPartitionCreate, 0, create)},
      {"derive", one(Opcode::kDeriveKey, 7, derive)},
      {"unwrap", one(Opcode::kUnwrapKey, 7, unwrap)},
  };

  // fuzz_dispatch: a flags byte, then a short conversation.
  auto conversation = [](uint8_t flags, std::initializer_list<Bytes> parts) {
    Bytes out{flags};
    for (const Bytes& p : parts) out.insert(out.end(), p.begin(), p.end());
    return out;
  };
  const uint64_t user = fuzz::kSlotUser, officer = fuzz::kSlotOfficer, pub = fuzz::kSlotPublic;
  const Seed dispatch[] = {
      {"anyone",
       conversation(
           0, {one(Opcode::kGetDeviceInfo, 0, map()), one(Opcode::kGetChallenge, 0, map()),
               one(Opcode::kPartitionList, 0, map()), one(Opcode::kSessionOpen, 0, open_body)})},
      {"owner", conversation(fuzz::kFlagOwner, {one(Opcode::kGetChallenge, 0, map()),
                                                one(Opcode::kPartitionCreate, 0, create),
                                                one(Opcode::kPartitionList, 0, map())})},
      {"sign",
       conversation(0, {one(Opcode::kSign, user, sign_digest), one(Opcode::kSign, user, sign_data),
                        one(Opcode::kGetPublicKey, user, key_only(fuzz::kKeyPublic))})},
      {"cipher", conversation(0, {one(Opcode::kEncrypt, user, encrypt),
                                  one(Opcode::kDecrypt, user, decrypt)})},
      {"keys",
       conversation(
           0, {one(Opcode::kGenerateKeyPair, user, keypair), one(Opcode::kGenerateKey, user, aes),
               one(Opcode::kFindKeys, user, map()), one(Opcode::kGetKeyInfo, user, key_only(4)),
               one(Opcode::kDestroyKey, user, key_only(fuzz::kKeyAes))})},
      {"session",
       conversation(
           0, {one(Opcode::kSessionInfo, pub, map()), one(Opcode::kGenerateRandom, pub, random),
               one(Opcode::kGetChallenge, 0, map()), one(Opcode::kLogin, pub, login),
               one(Opcode::kLogout, user, map()), one(Opcode::kSessionClose, user, map())})},
      {"verify", conversation(0, {one(Opcode::kVerify, user, sig_verify),
                                  one(Opcode::kSign, user, sign_data)})},
      {"digest",
       conversation(
           0, {one(Opcode::kDigest, pub, digest), one(Opcode::kDigestInit, pub, digest_init),
               one(Opcode::kDigestUpdate, pub, data_only), one(Opcode::kDigestFinal, pub, map())})},
      {"multipart", conversation(0, {one(Opcode::kEncryptInit, user, enc_init),
                                     one(Opcode::kEncryptUpdate, user, enc_update),
                                     one(Opcode::kEncryptFinal, user, map()),
                                     one(Opcode::kDecryptInit, user, dec_init),
                                     one(Opcode::kDecryptUpdate, user, dec_update),
                                     one(Opcode::kDecryptFinal, user, dec_final)})},
      {"derive", conversation(0, {one(Opcode::kGenerateKey, user, secret),
                                  one(Opcode::kDeriveKey, user, derive)})},
      {"wrap",
       conversation(
           0, {one(Opcode::kGenerateKey, user, kek), one(Opcode::kGenerateKey, user, exportable),
               one(Opcode::kWrapKey, user, wrap), one(Opcode::kUnwrapKey, user, unwrap)})},
      {"attributes", conversation(0, {one(Opcode::kSetKeyAttributes, user, attributes),
                                      one(Opcode::kGetKeyInfo, user, key_only(fuzz::kKeyAes))})},
      {"officer", conversation(0, {one(Opcode::kUnlockUser, officer, map()),
                                   one(Opcode::kGetChallenge, 0, map()),
                                   one(Opcode::kInitUserPin, officer, login)})},
  };

  for (const auto& [dir, seeds] : {std::pair{"frame", std::span<const Seed>(frames)},
                                   std::pair{"dispatch", std::span<const Seed>(dispatch)}}) {
    std::error_code ec;
    std::filesystem::create_directories(root / dir, ec);
    if (ec) {
      std::fprintf(stderr, "make_corpus: cannot create %s\n", (root / dir).c_str());
      return 1;
    }
    for (const Seed& s : seeds) {
      if (!write_file(root / dir / s.name, s.data)) {
        std::fprintf(stderr, "make_corpus: cannot write %s\n", s.name.c_str());
        return 1;
      }
    }
  }
  return 0;
}
