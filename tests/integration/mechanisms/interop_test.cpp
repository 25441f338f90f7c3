// Interoperability both ways with OpenSSL, for every mechanism: what the
// device makes, OpenSSL accepts, and what OpenSSL makes, the device accepts.
//
// Public keys cannot be imported (unwrap makes secret and private keys
// only), so "OpenSSL signs, the device verifies" and "the device encrypts
// or wraps to a public key, OpenSSL decrypts" use device-generated key
// pairs whose private key is extractable: the device wraps it with AES-KWP
// under a KEK the test imported, OpenSSL unwraps it, and from then on both
// sides hold the same key pair.
#include "integration/mechanisms/mech_fixture.h"

namespace ihsm::test::mech {
namespace {

using namespace usage;

class MechInterop : public MechTest {
 protected:
  // The test's KEK for exporting private keys (AES-256: strong enough for
  // every key the device makes).
  KeyHandle export_kek() {
    if (export_kek_ == 0) export_kek_ = import_aes(kExportKek, kWrap | kSensitive);
    return export_kek_;
  }

  // Generates a key pair whose private half is extractable and exports it.
  Exported generate_exported(Mechanism gen, std::optional<Curve> curve, uint32_t rsa_bits,
                             uint32_t public_flags, uint32_t private_flags) {
    Exported e;
    auto pair = s().generate_key_pair(gen, curve, rsa_bits, basic(public_flags),
                                      basic(private_flags | kSensitive | kExtractable));
    if (!pair)
      throw std::runtime_error("generate_key_pair: " + std::string(status_name(pair.status())));
    e.pair = *pair;
    auto spki = s().public_key(pair->public_handle);
    if (!spki) throw std::runtime_error("public_key");
    e.spki = *spki;
    auto wrapped = s().wrap_key(export_kek(), pair->private_handle, Mechanism::kAesKeyWrapKwp);
    if (!wrapped) {
      throw std::runtime_error("wrap_key: " + std::string(status_name(wrapped.status())) + " " +
                               wrapped.detail().message);
    }
    e.wrapped = *wrapped;
    const Bytes der = ref::key_wrap(false, true, kExportKek, e.wrapped);
    if (der.empty()) throw std::runtime_error("OpenSSL cannot unwrap the device's KWP blob");
    e.priv = ref::from_any_der(der);
    if (!e.priv) throw std::runtime_error("the wrapped private key is not a DER private key");
    // Both halves are the same key pair.
    if (ossl::spki_of(e.priv.get()) != e.spki) throw std::runtime_error("exported key mismatch");
    return e;
  }

  static inline const Bytes kExportKek = pattern(32, 0x5a);
  KeyHandle export_kek_ = 0;
};

const struct {
  Curve curve;
  const char* group;
} kCurves[] = {{Curve::kP256, "P-256"}, {Curve::kP384, "P-384"}, {Curve::kP521, "P-521"}};

const struct {
  Mechanism ecdsa;
  Mechanism hash;
} kEcdsaHashes[] = {{Mechanism::kEcdsaSha256, Mechanism::kSha256},
                    {Mechanism::kEcdsaSha384, Mechanism::kSha384},
                    {Mechanism::kEcdsaSha512, Mechanism::kSha512}};

TEST_F(MechInterop, EcdsaBothWaysOnEveryCurveAndHash) {
  const Bytes message = to_bytes("ECDSA interop message");
  for (const auto& c : kCurves) {
    SCOPED_TRACE(c.group);
    const Exported e = generate_exported(Mechanism::kEcKeyPairGen, c.curve, 0, kVerify, kSign);
    for (const auto& h : kEcdsaHashes) {
      SCOPED_TRACE(mechanism_name(h.ecdsa));
      const EVP_MD* md = ref::md_of(h.hash);
      // Device signs (hash-then-sign) -> OpenSSL verifies; the device too.
      auto sig = s().sign(e.pair.private_handle, h.ecdsa, message, {});
      MECH_ASSERT_OK(sig);
      EXPECT_TRUE(ossl::verify_ecdsa_raw(e.spki, md, message, *sig));
      MECH_EXPECT_OK(s().verify(e.pair.public_handle, h.ecdsa, message, *sig));
      Bytes tampered = *sig;
      tampered[3] ^= 1;
      EXPECT_FALSE(ossl::verify_ecdsa_raw(e.spki, md, message, tampered));
      MECH_EXPECT_STATUS(s().verify(e.pair.public_handle, h.ecdsa, message, tampered),
                         Status::kSignatureInvalid);
      // Device signs a digest (CKM_ECDSA).
      const Bytes digest = ossl::digest(md, message);
      auto dsig = s().sign(e.pair.private_handle, Mechanism::kEcdsa, digest, {});
      MECH_ASSERT_OK(dsig);
      EXPECT_TRUE(ossl::verify_ecdsa_raw(e.spki, md, message, *dsig));
      MECH_EXPECT_OK(s().verify(e.pair.public_handle, Mechanism::kEcdsa, digest, *dsig));
      // OpenSSL signs with the same key -> the device verifies.
      const Bytes theirs = ref::ecdsa_sign_raw(e.priv.get(), md, message);
      MECH_EXPECT_OK(s().verify(e.pair.public_handle, h.ecdsa, message, theirs));
      MECH_EXPECT_OK(s().verify(e.pair.public_handle, Mechanism::kEcdsa, digest, theirs));
      MECH_EXPECT_STATUS(
          s().verify(e.pair.public_handle, h.ecdsa, to_bytes("another message"), theirs),
          Status::kSignatureInvalid);
    }
  }
}

// One RSA size: PKCS#1 v1.5 and PSS, hash-then-sign and digest input,
// device -> OpenSSL and OpenSSL -> device.
void rsa_both_ways(Session& session, const Exported& e) {
  const Bytes message = to_bytes("RSA interop message");
  const struct {
    Mechanism pkcs1, pss;
    Mechanism hash;
    int salt;
  } cases[] = {{Mechanism::kSha256RsaPkcs, Mechanism::kSha256RsaPkcsPss, Mechanism::kSha256, 32},
               {Mechanism::kSha384RsaPkcs, Mechanism::kSha384RsaPkcsPss, Mechanism::kSha384, 48},
               {Mechanism::kSha512RsaPkcs, Mechanism::kSha512RsaPkcsPss, Mechanism::kSha512, 64}};
  const size_t modulus = static_cast<size_t>(EVP_PKEY_get_size(e.priv.get()));
  for (const auto& c : cases) {
    SCOPED_TRACE(mechanism_name(c.hash));
    const EVP_MD* md = ref::md_of(c.hash);
    const Bytes digest = ossl::digest(md, message);
    const MechanismParams pss_params = pss(c.hash, static_cast<uint32_t>(c.salt));

    // PKCS#1 v1.5, hash-then-sign and over a DigestInfo: deterministic.
    auto sig = session.sign(e.pair.private_handle, c.pkcs1, message, {});
    MECH_ASSERT_OK(sig);
    EXPECT_EQ(sig->size(), modulus);
    EXPECT_TRUE(ref::verify(e.spki, md, message, *sig, RSA_PKCS1_PADDING));
    EXPECT_EQ(*sig, ref::sign(e.priv.get(), md, message, RSA_PKCS1_PADDING));
    auto raw = session.sign(e.pair.private_handle, Mechanism::kRsaPkcs,
                            ref::digest_info(c.hash, message), {});
    MECH_ASSERT_OK(raw);
    EXPECT_EQ(*raw, *sig);
    MECH_EXPECT_OK(session.verify(e.pair.public_handle, c.pkcs1, message, *sig));
    MECH_EXPECT_OK(session.verify(e.pair.public_handle, Mechanism::kRsaPkcs,
                                  ref::digest_info(c.hash, message), *sig));

    // RSA-PKCS over input that is no SHA-2 DigestInfo (36 bytes, TLS 1.1's
    // MD5+SHA-1 shape): padded and signed as given, not approved. PKCS#1
    // v1.5 is deterministic, so OpenSSL's own raw signature must match.
    const Bytes tls11 = Bytes(36, 0x5c);
    auto plain = session.sign(e.pair.private_handle, Mechanism::kRsaPkcs, tls11, {});
    MECH_ASSERT_OK(plain);
    EXPECT_FALSE(session.last_approved());
    {
      EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_pkey(nullptr, e.priv.get(), nullptr);
      ASSERT_NE(ctx, nullptr);
      size_t len = modulus;
      Bytes expected(modulus);
      ASSERT_EQ(EVP_PKEY_sign_init(ctx), 1);
      ASSERT_EQ(EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING), 1);
      ASSERT_EQ(EVP_PKEY_sign(ctx, expected.data(), &len, tls11.data(), tls11.size()), 1);
      EVP_PKEY_CTX_free(ctx);
      EXPECT_EQ(*plain, expected);
    }
    MECH_EXPECT_OK(session.verify(e.pair.public_handle, Mechanism::kRsaPkcs, tls11, *plain));

    // PSS, hash-then-sign and digest input (CKM_RSA_PKCS_PSS): randomised.
    auto psig = session.sign(e.pair.private_handle, c.pss, message, pss_params);
    MECH_ASSERT_OK(psig);
    EXPECT_TRUE(session.last_approved());
    EXPECT_TRUE(ref::verify(e.spki, md, message, *psig, RSA_PKCS1_PSS_PADDING, c.salt));
    EXPECT_FALSE(ref::verify(e.spki, md, to_bytes("other"), *psig, RSA_PKCS1_PSS_PADDING, c.salt));
    MECH_EXPECT_OK(session.verify(e.pair.public_handle, c.pss, message, *psig, pss_params));
    auto dsig = session.sign(e.pair.private_handle, Mechanism::kRsaPkcsPss, digest, pss_params);
    MECH_ASSERT_OK(dsig);
    EXPECT_TRUE(ref::verify(e.spki, md, message, *dsig, RSA_PKCS1_PSS_PADDING, c.salt));
    MECH_EXPECT_OK(
        session.verify(e.pair.public_handle, Mechanism::kRsaPkcsPss, digest, *dsig, pss_params));
    // Salt length 0 (deterministic PSS) interoperates too.
    auto zero = session.sign(e.pair.private_handle, c.pss, message, pss(c.hash, 0));
    MECH_ASSERT_OK(zero);
    EXPECT_TRUE(ref::verify(e.spki, md, message, *zero, RSA_PKCS1_PSS_PADDING, 0));

    // OpenSSL signs -> the device verifies.
    const Bytes theirs_pkcs1 = ref::sign(e.priv.get(), md, message, RSA_PKCS1_PADDING);
    MECH_EXPECT_OK(session.verify(e.pair.public_handle, c.pkcs1, message, theirs_pkcs1));
    const Bytes theirs_pss = ref::sign(e.priv.get(), md, message, RSA_PKCS1_PSS_PADDING, c.salt);
    MECH_EXPECT_OK(session.verify(e.pair.public_handle, c.pss, message, theirs_pss, pss_params));
    MECH_EXPECT_OK(session.verify(e.pair.public_handle, Mechanism::kRsaPkcsPss, digest, theirs_pss,
                                  pss_params));
    Bytes bad = theirs_pss;
    bad[bad.size() / 2] ^= 0x10;
    MECH_EXPECT_STATUS(session.verify(e.pair.public_handle, c.pss, message, bad, pss_params),
                       Status::kSignatureInvalid);
  }
}

TEST_F(MechInterop, Rsa2048Pkcs1AndPssBothWays) {
  rsa_both_ways(s(),
                generate_exported(Mechanism::kRsaKeyPairGen, std::nullopt, 2048, kVerify, kSign));
}

TEST_F(MechInterop, Rsa3072Pkcs1AndPssBothWays) {
  rsa_both_ways(s(),
                generate_exported(Mechanism::kRsaKeyPairGen, std::nullopt, 3072, kVerify, kSign));
}

// RSA-4096 generation takes seconds: this is the suite's only one.
TEST_F(MechInterop, Rsa4096Pkcs1AndPssBothWays) {
  rsa_both_ways(s(),
                generate_exported(Mechanism::kRsaKeyPairGen, std::nullopt, 4096, kVerify, kSign));
}

TEST_F(MechInterop, Ed25519BothWays) {
  const Exported e =
      generate_exported(Mechanism::kEcEdwardsKeyPairGen, std::nullopt, 0, kVerify, kSign);
  for (const Bytes& message : {Bytes{}, to_bytes("Ed25519 interop"), pattern(1000, 3)}) {
    SCOPED_TRACE(message.size());
    auto sig = s().sign(e.pair.private_handle, Mechanism::kEddsa, message, {});
    MECH_ASSERT_OK(sig);
    ASSERT_EQ(sig->size(), 64u);
    EXPECT_TRUE(ref::verify(e.spki, nullptr, message, *sig));
    // Pure Ed25519 is deterministic: OpenSSL's signature is the same bytes.
    const Bytes theirs = ref::sign(e.priv.get(), nullptr, message);
    EXPECT_EQ(*sig, theirs);
    MECH_EXPECT_OK(s().verify(e.pair.public_handle, Mechanism::kEddsa, message, theirs));
  }
}

TEST_F(MechInterop, RsaOaepBothWays) {
  const Exported e =
      generate_exported(Mechanism::kRsaKeyPairGen, std::nullopt, 2048, kEncrypt, kDecrypt);
  ossl::Pkey pub = ossl::load_spki(e.spki);
  const struct {
    Mechanism hash, mgf;
    Bytes label;
  } cases[] = {{Mechanism::kSha384, Mechanism::kSha384, to_bytes("an OAEP label")},
               {Mechanism::kSha256, Mechanism::kSha256, {}},
               {Mechanism::kSha512, Mechanism::kSha256, to_bytes("mixed hashes")},
               {Mechanism::kSha384, Mechanism::kSha384, Bytes(1024, 0x4c)}};
  for (const auto& c : cases) {
    SCOPED_TRACE(std::string(mechanism_name(c.hash)) + "/" + std::string(mechanism_name(c.mgf)));
    const CipherSpec spec{Mechanism::kRsaPkcsOaep, oaep(c.hash, c.mgf, c.label), {}, {}};
    const Bytes secret = pattern(48, 0x33);
    // OpenSSL encrypts to the device's public key -> the device decrypts.
    const Bytes ct = ref::oaep_encrypt(pub.get(), c.hash, c.mgf, c.label, secret);
    auto pt = s().decrypt(e.pair.private_handle, spec, ct);
    MECH_ASSERT_OK(pt);
    EXPECT_EQ(*pt, secret);
    EXPECT_TRUE(s().last_approved());
    // The device encrypts with the public key -> OpenSSL decrypts with the
    // exported private key (and the device decrypts it too).
    auto dct = s().encrypt(e.pair.public_handle, spec, secret);
    MECH_ASSERT_OK(dct);
    EXPECT_EQ(dct->data.size(), 256u);
    EXPECT_EQ(ref::oaep_decrypt(e.priv.get(), c.hash, c.mgf, c.label, dct->data), secret);
    auto back = s().decrypt(e.pair.private_handle, spec, dct->data);
    MECH_ASSERT_OK(back);
    EXPECT_EQ(*back, secret);
  }
}

TEST_F(MechInterop, AesModesBothWays) {
  for (size_t key_len : {16u, 24u, 32u}) {
    SCOPED_TRACE(key_len * 8);
    const Bytes key = pattern(key_len, static_cast<uint8_t>(key_len));
    const KeyHandle k = import_aes(key);
    for (size_t n : {0u, 1u, 16u, 31u, 100u}) {
      SCOPED_TRACE(n);
      const Bytes plain = pattern(n, 0x77);
      const Bytes iv16 = pattern(16, 0x10), iv12 = pattern(12, 0x12), aad = to_bytes("aad");

      // GCM: device IV -> OpenSSL opens; OpenSSL seals -> device opens.
      auto g = s().encrypt(k, cipher(Mechanism::kAesGcm, std::nullopt, aad), plain);
      MECH_ASSERT_OK(g);
      ASSERT_EQ(g->iv.size(), 12u);
      EXPECT_EQ(ref::gcm_open(key, g->iv, aad, g->data, g->tag), plain);
      const Bytes sealed = ossl::gcm_seal(key, iv12, aad, plain);
      auto gp = s().decrypt(k, cipher(Mechanism::kAesGcm, iv12, aad),
                            Bytes(sealed.begin(), sealed.end() - 16),
                            Bytes(sealed.end() - 16, sealed.end()));
      MECH_ASSERT_OK(gp);
      EXPECT_EQ(*gp, plain);

      // CBC-PAD and CTR, any length.
      auto cp = s().encrypt(k, cipher(Mechanism::kAesCbcPad, iv16), plain);
      MECH_ASSERT_OK(cp);
      EXPECT_EQ(ref::cbc(false, true, key, iv16, cp->data), plain);
      auto cpp = s().decrypt(k, cipher(Mechanism::kAesCbcPad, iv16),
                             ref::cbc(true, true, key, iv16, plain));
      MECH_ASSERT_OK(cpp);
      EXPECT_EQ(*cpp, plain);
      auto ct = s().encrypt(k, cipher(Mechanism::kAesCtr, iv16), plain);
      MECH_ASSERT_OK(ct);
      EXPECT_EQ(ref::ctr(key, iv16, ct->data), plain);
      auto ctp = s().decrypt(k, cipher(Mechanism::kAesCtr, iv16), ref::ctr(key, iv16, plain));
      MECH_ASSERT_OK(ctp);
      EXPECT_EQ(*ctp, plain);

      // CBC without padding: whole blocks only.
      if (n % 16 == 0) {
        auto cb = s().encrypt(k, cipher(Mechanism::kAesCbc, iv16), plain);
        MECH_ASSERT_OK(cb);
        EXPECT_EQ(ref::cbc(false, false, key, iv16, cb->data), plain);
        auto cbp = s().decrypt(k, cipher(Mechanism::kAesCbc, iv16),
                               ref::cbc(true, false, key, iv16, plain));
        MECH_ASSERT_OK(cbp);
        EXPECT_EQ(*cbp, plain);
      }
    }
  }
}

TEST_F(MechInterop, AesWrapBothWays) {
  const Bytes kek = pattern(32, 0x61), value = pattern(32, 0x62), value128 = pattern(16, 0x63);
  const KeyHandle kek_handle = import_aes(kek, kWrap | kUnwrap | kSensitive);
  const KeyHandle target = import_aes(value, kEncrypt | kSensitive | kExtractable);
  const KeyHandle target128 = import_aes(value128, kEncrypt | kSensitive | kExtractable);

  // Device wraps -> OpenSSL unwraps and gets the key value.
  for (const auto& [handle, v] : {std::pair{target, value}, std::pair{target128, value128}}) {
    SCOPED_TRACE(v.size());
    auto kwp = s().wrap_key(kek_handle, handle, Mechanism::kAesKeyWrapKwp);
    MECH_ASSERT_OK(kwp);
    EXPECT_EQ(ref::key_wrap(false, true, kek, *kwp), v);
    auto kw = s().wrap_key(kek_handle, handle, Mechanism::kAesKeyWrap);
    MECH_ASSERT_OK(kw);
    EXPECT_EQ(ref::key_wrap(false, false, kek, *kw), v);
    const Bytes aad = to_bytes("wrap aad");
    auto gcm = s().wrap_key(kek_handle, handle, Mechanism::kAesGcm, {}, aad);
    MECH_ASSERT_OK(gcm);
    ASSERT_EQ(gcm->size(), 12 + v.size() + 16);
    EXPECT_EQ(ref::gcm_open(kek, Bytes(gcm->begin(), gcm->begin() + 12), aad,
                            Bytes(gcm->begin() + 12, gcm->end() - 16),
                            Bytes(gcm->end() - 16, gcm->end())),
              v);
    // Two GCM wraps use two device IVs.
    auto gcm2 = s().wrap_key(kek_handle, handle, Mechanism::kAesGcm, {}, aad);
    MECH_ASSERT_OK(gcm2);
    EXPECT_NE(Bytes(gcm->begin(), gcm->begin() + 12), Bytes(gcm2->begin(), gcm2->begin() + 12));
  }

  // OpenSSL wraps -> the device unwraps to the same key.
  const Bytes fresh = pattern(32, 0x64);
  const NewKeySpec spec = secret_spec(KeyType::kAes, kEncrypt | kSensitive);
  auto from_kwp = s().unwrap_key(kek_handle, Mechanism::kAesKeyWrapKwp,
                                 ref::key_wrap(true, true, kek, fresh), spec);
  MECH_ASSERT_OK(from_kwp);
  EXPECT_TRUE(holds_aes(*from_kwp, fresh));
  auto from_kw = s().unwrap_key(kek_handle, Mechanism::kAesKeyWrap,
                                ref::key_wrap(true, false, kek, fresh), spec);
  MECH_ASSERT_OK(from_kw);
  EXPECT_TRUE(holds_aes(*from_kw, fresh));
  const Bytes iv = pattern(12, 0x65), aad = to_bytes("gcm aad");
  auto from_gcm = s().unwrap_key(kek_handle, Mechanism::kAesGcm,
                                 concat(iv, ossl::gcm_seal(kek, iv, aad, fresh)), spec, {}, aad);
  MECH_ASSERT_OK(from_gcm);
  EXPECT_TRUE(holds_aes(*from_gcm, fresh));
}

// RSA-OAEP and RSA-AES-KEY-WRAP: the device wraps to an RSA public key whose
// private key the test holds (exported as above) -> OpenSSL decrypts; and
// OpenSSL wraps -> the device unwraps. RSA-2048 has 112-bit strength, so it
// may only wrap keys of at most 112 bits: a 14-byte generic secret.
TEST_F(MechInterop, RsaWrapBothWays) {
  const Exported e =
      generate_exported(Mechanism::kRsaKeyPairGen, std::nullopt, 2048, kWrap, kUnwrap);
  const Bytes value = pattern(14, 0x71);
  const KeyHandle target = import(value, KeyType::kGenericSecret, kSign | kExtractable);
  const MechanismParams p384 = oaep(Mechanism::kSha384, Mechanism::kSha384);

  auto wrapped = s().wrap_key(e.pair.public_handle, target, Mechanism::kRsaPkcsOaep, p384);
  MECH_ASSERT_OK(wrapped);
  EXPECT_EQ(ref::oaep_decrypt(e.priv.get(), Mechanism::kSha384, Mechanism::kSha384, {}, *wrapped),
            value);
  for (uint32_t bits : {128u, 256u}) {
    SCOPED_TRACE(bits);
    MechanismParams p = p384;
    p.aes_key_bits = bits;
    auto hybrid = s().wrap_key(e.pair.public_handle, target, Mechanism::kRsaAesKeyWrap, p);
    MECH_ASSERT_OK(hybrid);
    ASSERT_GT(hybrid->size(), 256u);
    auto ephemeral = ref::oaep_decrypt(e.priv.get(), Mechanism::kSha384, Mechanism::kSha384, {},
                                       Bytes(hybrid->begin(), hybrid->begin() + 256));
    ASSERT_TRUE(ephemeral.has_value());
    EXPECT_EQ(ephemeral->size(), bits / 8);
    EXPECT_EQ(ref::key_wrap(false, true, *ephemeral, Bytes(hybrid->begin() + 256, hybrid->end())),
              value);
  }

  // OpenSSL wraps to the device's public key -> the device unwraps.
  ossl::Pkey pub = ossl::load_spki(e.spki);
  const Bytes fresh = pattern(40, 0x72);
  const NewKeySpec spec = secret_spec(KeyType::kGenericSecret, kSign, 40);
  auto from_oaep = s().unwrap_key(
      e.pair.private_handle, Mechanism::kRsaPkcsOaep,
      ref::oaep_encrypt(pub.get(), Mechanism::kSha384, Mechanism::kSha384, {}, fresh), spec, p384);
  MECH_ASSERT_OK(from_oaep);
  EXPECT_TRUE(holds_secret(*from_oaep, fresh));
  auto from_hybrid =
      s().unwrap_key(e.pair.private_handle, Mechanism::kRsaAesKeyWrap,
                     ref::rsa_aes_wrap(pub.get(), Mechanism::kSha384, fresh), spec, p384);
  MECH_ASSERT_OK(from_hybrid);
  EXPECT_TRUE(holds_secret(*from_hybrid, fresh));
}

// docs/mechanisms.md: "private keys [are wrapped] as PKCS#8 DER". A
// PrivateKeyInfo, not the type-specific PKCS#1 / SEC1 structure.
TEST_F(MechInterop, WrappedPrivateKeysArePkcs8) {
  const struct {
    const char* name;
    Mechanism gen;
    std::optional<Curve> curve;
    uint32_t bits;
    uint32_t priv_flags;
  } cases[] = {
      {"RSA-2048", Mechanism::kRsaKeyPairGen, std::nullopt, 2048, kSign},
      {"P-256", Mechanism::kEcKeyPairGen, Curve::kP256, 0, kSign},
      {"P-521", Mechanism::kEcKeyPairGen, Curve::kP521, 0, kSign},
      {"Ed25519", Mechanism::kEcEdwardsKeyPairGen, std::nullopt, 0, kSign},
      {"X25519", Mechanism::kEcMontgomeryKeyPairGen, std::nullopt, 0, kDerive},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const uint32_t pub_flags = c.gen == Mechanism::kEcMontgomeryKeyPairGen ? 0 : kVerify;
    const Exported e = generate_exported(c.gen, c.curve, c.bits, pub_flags, c.priv_flags);
    const Bytes der = ref::key_wrap(false, true, kExportKek, e.wrapped);
    ossl::Pkey strict = ref::from_pkcs8(der);
    EXPECT_TRUE(strict != nullptr) << "not a PrivateKeyInfo: " << to_hex(der).substr(0, 64);
    if (!strict) continue;
    EXPECT_EQ(ossl::spki_of(strict.get()), e.spki);
  }
}

// ECDH: the device derives with an OpenSSL-made peer key; OpenSSL derives Z
// from the device's public key; the derived key is shown to hold Z by HMAC.
TEST_F(MechInterop, EcdhWithOpenSslPeers) {
  for (const auto& c : kCurves) {
    SCOPED_TRACE(c.group);
    auto pair = s().generate_key_pair(Mechanism::kEcKeyPairGen, c.curve, 0, basic(kVerify),
                                      basic(kDerive | kSensitive));
    MECH_ASSERT_OK(pair);
    auto spki = s().public_key(pair->public_handle);
    MECH_ASSERT_OK(spki);
    ossl::Pkey device_pub = ossl::load_spki(*spki);
    ossl::Pkey peer = ossl::generate_ec(c.group);
    const Bytes z = ossl::ecdh(peer.get(), device_pub.get());
    const Bytes point = ossl::uncompressed_point(ossl::spki_of(peer.get()));

    MechanismParams p;
    p.peer_public = point;
    auto derived = s().derive_key(
        pair->private_handle, Mechanism::kEcdh1Derive, p,
        secret_spec(KeyType::kGenericSecret, kSign, static_cast<uint32_t>(z.size())));
    MECH_ASSERT_OK(derived);
    EXPECT_TRUE(s().last_approved());
    EXPECT_TRUE(holds_secret(*derived, z));

    // The compressed form of the same point gives the same Z.
    Bytes compressed(point.begin(), point.begin() + 1 + (point.size() - 1) / 2);
    compressed[0] = (point.back() & 1) ? 0x03 : 0x02;
    p.peer_public = compressed;
    auto again = s().derive_key(pair->private_handle, Mechanism::kEcdh1Derive, p,
                                secret_spec(KeyType::kGenericSecret, kSign, 32));
    MECH_ASSERT_OK(again);
    EXPECT_TRUE(holds_secret(*again, Bytes(z.begin(), z.begin() + 32)));

    // CKD_NULL into an AES key: the leading bytes of Z.
    p.peer_public = point;
    auto aes = s().derive_key(pair->private_handle, Mechanism::kEcdh1Derive, p,
                              secret_spec(KeyType::kAes, kEncrypt, 16));
    MECH_ASSERT_OK(aes);
    EXPECT_TRUE(holds_aes(*aes, Bytes(z.begin(), z.begin() + 16)));
  }
}

TEST_F(MechInterop, X25519WithOpenSslPeer) {
  auto pair = s().generate_key_pair(Mechanism::kEcMontgomeryKeyPairGen, std::nullopt, 0, basic(0),
                                    basic(kDerive | kSensitive));
  MECH_ASSERT_OK(pair);
  auto spki = s().public_key(pair->public_handle);
  MECH_ASSERT_OK(spki);
  ossl::Pkey device_pub = ossl::load_spki(*spki);
  ASSERT_TRUE(device_pub != nullptr);
  ossl::Pkey peer(EVP_PKEY_Q_keygen(nullptr, nullptr, "X25519"));
  const Bytes z = ossl::ecdh(peer.get(), device_pub.get());
  MechanismParams p;
  p.peer_public = ref::raw_public(peer.get());
  auto derived = s().derive_key(pair->private_handle, Mechanism::kEcdh1Derive, p,
                                secret_spec(KeyType::kGenericSecret, kSign, 32));
  MECH_ASSERT_OK(derived);
  EXPECT_TRUE(holds_secret(*derived, z));
}

}  // namespace
}  // namespace ihsm::test::mech
