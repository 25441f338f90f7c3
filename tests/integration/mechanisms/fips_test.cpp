// The FIPS service indicator (the approved flag of every response,
// last_approved() in libihsm) against the "approved" columns of
// docs/mechanisms.md. Each check follows a successful call whose result is
// itself verified, so the indicator is about a service that really ran.
#include "integration/mechanisms/mech_fixture.h"

namespace ihsm::test::mech {
namespace {

using namespace usage;

class MechFips : public MechTest {};

TEST_F(MechFips, ApprovedServices) {
  // RSA-PSS signature.
  auto rsa = s().generate_key_pair(Mechanism::kRsaKeyPairGen, std::nullopt, 2048, basic(kVerify),
                                   basic(kSign | kSensitive));
  MECH_ASSERT_OK(rsa);
  EXPECT_TRUE(s().last_approved()) << "RSA key generation";
  auto spki = s().public_key(rsa->public_handle);
  MECH_ASSERT_OK(spki);
  const Bytes message = to_bytes("approved?");
  auto sig = s().sign(rsa->private_handle, Mechanism::kSha256RsaPkcsPss, message,
                      pss(Mechanism::kSha256, 32));
  MECH_ASSERT_OK(sig);
  EXPECT_TRUE(ref::verify(*spki, EVP_sha256(), message, *sig, RSA_PKCS1_PSS_PADDING, 32));
  EXPECT_TRUE(s().last_approved()) << "RSA-PSS";

  // HKDF.
  const Bytes ikm = pattern(32, 0x70);
  const KeyHandle base = import(ikm, KeyType::kGenericSecret, kDerive);
  MechanismParams p;
  p.hash = Mechanism::kSha384;
  p.info = to_bytes("fips");
  auto derived = s().derive_key(base, Mechanism::kHkdfDerive, p,
                                secret_spec(KeyType::kGenericSecret, kSign, 32));
  MECH_ASSERT_OK(derived);
  EXPECT_TRUE(s().last_approved()) << "HKDF";

  // AES-GCM with a device IV; GCM decryption.
  const Bytes key = pattern(32, 0x71);
  const KeyHandle k = import_aes(key);
  auto g = s().encrypt(k, cipher(Mechanism::kAesGcm), message);
  MECH_ASSERT_OK(g);
  EXPECT_TRUE(s().last_approved()) << "GCM, device IV";
  EXPECT_EQ(ref::gcm_open(key, g->iv, {}, g->data, g->tag), message);
  MECH_ASSERT_OK(s().decrypt(k, cipher(Mechanism::kAesGcm, g->iv), g->data, g->tag));
  EXPECT_TRUE(s().last_approved()) << "GCM decryption";

  // ECDSA on a SHA-256 digest, Ed25519, HMAC, digests, key wrap.
  auto ec = s().generate_key_pair(Mechanism::kEcKeyPairGen, Curve::kP256, 0, basic(kVerify),
                                  basic(kSign | kSensitive));
  MECH_ASSERT_OK(ec);
  MECH_ASSERT_OK(s().sign(ec->private_handle, Mechanism::kEcdsa, Bytes(32, 0x12), {}));
  EXPECT_TRUE(s().last_approved()) << "ECDSA, 32-byte digest";
  auto ed = s().generate_key_pair(Mechanism::kEcEdwardsKeyPairGen, std::nullopt, 0, basic(kVerify),
                                  basic(kSign));
  MECH_ASSERT_OK(ed);
  EXPECT_TRUE(s().last_approved()) << "Ed25519 generation (FIPS 186-5)";
  MECH_ASSERT_OK(s().sign(ed->private_handle, Mechanism::kEddsa, message, {}));
  EXPECT_TRUE(s().last_approved()) << "EdDSA";
  MECH_ASSERT_OK(s().sign(*derived, Mechanism::kSha512Hmac, message, {}));
  EXPECT_TRUE(s().last_approved()) << "HMAC";
  MECH_ASSERT_OK(s().digest(Mechanism::kSha384, message));
  EXPECT_TRUE(s().last_approved()) << "SHA-384";
  const KeyHandle kek = import_aes(pattern(32, 0x72), kWrap);
  const KeyHandle target = import_aes(pattern(16, 0x73), kEncrypt | kExtractable);
  MECH_ASSERT_OK(s().wrap_key(kek, target, Mechanism::kAesKeyWrapKwp));
  EXPECT_TRUE(s().last_approved()) << "AES-KWP";
  MECH_ASSERT_OK(s().encrypt(k, cipher(Mechanism::kAesCbcPad, Bytes(16, 0)), message));
  EXPECT_TRUE(s().last_approved()) << "AES-CBC-PAD";
}

TEST_F(MechFips, NonApprovedServices) {
  const Bytes message = to_bytes("not approved");
  // AES-GCM encryption with the caller's IV, one-shot and multi-part.
  const Bytes key = pattern(32, 0x74), iv = pattern(12, 0x75);
  const KeyHandle k = import_aes(key);
  auto g = s().encrypt(k, cipher(Mechanism::kAesGcm, iv), message);
  MECH_ASSERT_OK(g);
  EXPECT_EQ(concat(g->data, g->tag), ossl::gcm_seal(key, iv, {}, message));
  EXPECT_FALSE(s().last_approved()) << "GCM, caller IV";
  MECH_ASSERT_OK(s().encrypt_init(k, cipher(Mechanism::kAesGcm, iv)));
  EXPECT_FALSE(s().last_approved());
  MECH_ASSERT_OK(s().encrypt_update(message));
  EXPECT_FALSE(s().last_approved());
  auto fin = s().encrypt_final();
  MECH_ASSERT_OK(fin);
  EXPECT_FALSE(s().last_approved()) << "multi-part GCM, caller IV";
  EXPECT_EQ(fin->tag, g->tag);

  // ECDSA over a 20-byte (SHA-1 sized) digest: served, not approved.
  auto ec = s().generate_key_pair(Mechanism::kEcKeyPairGen, Curve::kP256, 0, basic(kVerify),
                                  basic(kSign | kDerive | kSensitive));
  MECH_ASSERT_OK(ec);
  auto spki = s().public_key(ec->public_handle);
  MECH_ASSERT_OK(spki);
  const Bytes sha1_sized(20, 0x5e);
  auto sig = s().sign(ec->private_handle, Mechanism::kEcdsa, sha1_sized, {});
  MECH_ASSERT_OK(sig);
  EXPECT_TRUE(ossl::verify_ecdsa_raw(*spki, nullptr, sha1_sized, *sig));
  EXPECT_FALSE(s().last_approved()) << "ECDSA, 20-byte digest";

  // X25519 key agreement.
  auto x = s().generate_key_pair(Mechanism::kEcMontgomeryKeyPairGen, std::nullopt, 0, basic(0),
                                 basic(kDerive));
  MECH_ASSERT_OK(x);
  EXPECT_FALSE(s().last_approved()) << "X25519 generation";
  ossl::Pkey xpeer(EVP_PKEY_Q_keygen(nullptr, nullptr, "X25519"));
  MechanismParams xp;
  xp.peer_public = ref::raw_public(xpeer.get());
  auto xd = s().derive_key(x->private_handle, Mechanism::kEcdh1Derive, xp,
                           secret_spec(KeyType::kGenericSecret, kSign, 32));
  MECH_ASSERT_OK(xd);
  EXPECT_FALSE(s().last_approved()) << "X25519 derive";

  // ECDH (P-256): Z straight into an AES key is not approved; into a
  // generic secret (for a following KDF) it is.
  ossl::Pkey peer = ossl::generate_ec("P-256");
  const Bytes z = ossl::ecdh(peer.get(), ossl::load_spki(*spki).get());
  MechanismParams ep;
  ep.peer_public = ossl::uncompressed_point(ossl::spki_of(peer.get()));
  auto into_aes = s().derive_key(ec->private_handle, Mechanism::kEcdh1Derive, ep,
                                 secret_spec(KeyType::kAes, kEncrypt, 32));
  MECH_ASSERT_OK(into_aes);
  EXPECT_FALSE(s().last_approved()) << "ECDH into AES";
  EXPECT_TRUE(holds_aes(*into_aes, z));
  auto into_secret = s().derive_key(ec->private_handle, Mechanism::kEcdh1Derive, ep,
                                    secret_spec(KeyType::kGenericSecret, kSign, 32));
  MECH_ASSERT_OK(into_secret);
  EXPECT_TRUE(s().last_approved()) << "ECDH into a generic secret";
  EXPECT_TRUE(holds_secret(*into_secret, z));

  // Errors are never approved services.
  MECH_ASSERT_OK(s().digest(Mechanism::kSha256, message));
  ASSERT_TRUE(s().last_approved());
  MECH_EXPECT_STATUS(s().decrypt(k, cipher(Mechanism::kAesGcm, iv), g->data, Bytes(16, 0)),
                     Status::kTagMismatch);
  EXPECT_FALSE(s().last_approved()) << "an error";
}

}  // namespace
}  // namespace ihsm::test::mech
