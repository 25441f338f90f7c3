// Negative vectors: every way an input can be wrong gets its documented
// status, and never a result. Inputs are built from correct ones (made
// with OpenSSL or the device) by changing one thing.
#include "integration/mechanisms/mech_fixture.h"

namespace ihsm::test::mech {
namespace {

using namespace usage;

class MechNegative : public MechTest {};

TEST_F(MechNegative, GcmBadTagCiphertextOrAadIsTagMismatch) {
  const Bytes key = pattern(32, 1), iv = pattern(12, 2), aad = to_bytes("header"),
              plain = pattern(45, 3);
  const KeyHandle k = import_aes(key);
  const Bytes sealed = ossl::gcm_seal(key, iv, aad, plain);
  const Bytes ct(sealed.begin(), sealed.end() - 16), tag(sealed.end() - 16, sealed.end());
  // The untouched input decrypts (so the failures below are the changes).
  auto good = s().decrypt(k, cipher(Mechanism::kAesGcm, iv, aad), ct, tag);
  MECH_ASSERT_OK(good);
  EXPECT_EQ(*good, plain);

  Bytes bad_tag = tag;
  bad_tag[7] ^= 0x01;
  MECH_EXPECT_STATUS(s().decrypt(k, cipher(Mechanism::kAesGcm, iv, aad), ct, bad_tag),
                     Status::kTagMismatch);
  EXPECT_FALSE(s().last_approved()) << "an error is never an approved service";
  Bytes bad_ct = ct;
  bad_ct[0] ^= 0x80;
  MECH_EXPECT_STATUS(s().decrypt(k, cipher(Mechanism::kAesGcm, iv, aad), bad_ct, tag),
                     Status::kTagMismatch);
  MECH_EXPECT_STATUS(s().decrypt(k, cipher(Mechanism::kAesGcm, iv, to_bytes("Header")), ct, tag),
                     Status::kTagMismatch);
  Bytes bad_iv = iv;
  bad_iv[11] ^= 1;
  MECH_EXPECT_STATUS(s().decrypt(k, cipher(Mechanism::kAesGcm, bad_iv, aad), ct, tag),
                     Status::kTagMismatch);
  // A truncated tag is a parameter error, not a shorter check.
  MECH_EXPECT_STATUS(
      s().decrypt(k, cipher(Mechanism::kAesGcm, iv, aad), ct, Bytes(tag.begin(), tag.begin() + 12)),
      Status::kMechanismParamInvalid);
}

// PKCS#7 padding that does not check out. PKCS#11 answers
// CKR_ENCRYPTED_DATA_INVALID, which is CIPHERTEXT_INVALID here.
TEST_F(MechNegative, CbcPadBadPaddingIsCiphertextInvalid) {
  const Bytes key = pattern(16, 4), iv = pattern(16, 5);
  const KeyHandle k = import_aes(key);
  // Whole blocks whose last plaintext byte is not valid padding.
  const Bytes bad_last = concat(pattern(15, 6), Bytes{0x00});                 // pad byte 0
  const Bytes too_long = concat(pattern(15, 7), Bytes{0x11});                 // 17 > block
  const Bytes mixed = concat(pattern(12, 8), Bytes{0x04, 0x04, 0x03, 0x04});  // inconsistent
  for (const Bytes& plain : {bad_last, too_long, mixed}) {
    SCOPED_TRACE(to_hex(plain));
    const Bytes ct = ref::cbc(true, false, key, iv, plain);
    MECH_EXPECT_STATUS(s().decrypt(k, cipher(Mechanism::kAesCbcPad, iv), ct),
                       Status::kCiphertextInvalid);
    // Multi-part: the error comes at DecryptFinal, nothing before it.
    MECH_ASSERT_OK(s().decrypt_init(k, cipher(Mechanism::kAesCbcPad, iv)));
    auto part = s().decrypt_update(ct);
    MECH_ASSERT_OK(part);
    EXPECT_TRUE(part->empty()) << "CBC-PAD holds back the last block";
    MECH_EXPECT_STATUS(s().decrypt_final(), Status::kCiphertextInvalid);
  }
  // A padded ciphertext is whole blocks, at least one.
  MECH_EXPECT_STATUS(s().decrypt(k, cipher(Mechanism::kAesCbcPad, iv), Bytes(17, 1)),
                     Status::kDataLengthInvalid);
  MECH_EXPECT_STATUS(s().decrypt(k, cipher(Mechanism::kAesCbcPad, iv), Bytes{}),
                     Status::kDataLengthInvalid);
}

TEST_F(MechNegative, CbcWithoutPaddingNeedsWholeBlocks) {
  auto k = s().generate_secret_key(Mechanism::kAesKeyGen, 256, basic(kEncrypt | kDecrypt));
  MECH_ASSERT_OK(k);
  const Bytes iv(16, 9);
  for (size_t n : {1u, 15u, 17u, 33u}) {
    SCOPED_TRACE(n);
    MECH_EXPECT_STATUS(s().encrypt(*k, cipher(Mechanism::kAesCbc, iv), Bytes(n, 1)),
                       Status::kDataLengthInvalid);
    MECH_EXPECT_STATUS(s().decrypt(*k, cipher(Mechanism::kAesCbc, iv), Bytes(n, 1)),
                       Status::kDataLengthInvalid);
  }
  // Multi-part: known only at final.
  MECH_ASSERT_OK(s().encrypt_init(*k, cipher(Mechanism::kAesCbc, iv)));
  MECH_ASSERT_OK(s().encrypt_update(Bytes(20, 1)));
  MECH_EXPECT_STATUS(s().encrypt_final(), Status::kDataLengthInvalid);
  // Wrong IV sizes.
  MECH_EXPECT_STATUS(s().encrypt(*k, cipher(Mechanism::kAesCbc, Bytes(12, 1)), Bytes(16, 1)),
                     Status::kMechanismParamInvalid);
  MECH_EXPECT_STATUS(s().encrypt(*k, cipher(Mechanism::kAesCbc), Bytes(16, 1)),
                     Status::kMechanismParamInvalid);
  MECH_EXPECT_STATUS(s().encrypt(*k, cipher(Mechanism::kAesCtr, Bytes(8, 1)), Bytes(16, 1)),
                     Status::kMechanismParamInvalid);
}

TEST_F(MechNegative, CtrInputMayNotWrapTheCounter) {
  const Bytes key = pattern(16, 10);
  const KeyHandle k = import_aes(key);
  // An 8-bit counter at 0xfe has room for two blocks.
  Bytes block(16, 0xab);
  block[15] = 0xfe;
  CipherSpec spec = cipher(Mechanism::kAesCtr, block);
  spec.params.counter_bits = 8;
  auto two = s().encrypt(k, spec, Bytes(32, 1));
  MECH_ASSERT_OK(two);
  EXPECT_EQ(two->data, ref::ctr(key, block, Bytes(32, 1)));
  MECH_EXPECT_STATUS(s().encrypt(k, spec, Bytes(33, 1)), Status::kDataLengthInvalid);
  spec.params.counter_bits = 0;
  MECH_EXPECT_STATUS(s().encrypt(k, spec, Bytes(16, 1)), Status::kMechanismParamInvalid);
}

TEST_F(MechNegative, EcdhWithOffCurveOrMalformedPointIsParamInvalid) {
  auto pair = s().generate_key_pair(Mechanism::kEcKeyPairGen, Curve::kP256, 0, basic(kVerify),
                                    basic(kDerive | kSensitive));
  MECH_ASSERT_OK(pair);
  ossl::Pkey peer = ossl::generate_ec("P-256");
  const Bytes point = ossl::uncompressed_point(ossl::spki_of(peer.get()));
  ASSERT_EQ(point.size(), 65u);
  const NewKeySpec spec = secret_spec(KeyType::kGenericSecret, kSign, 32);
  MechanismParams p;
  p.peer_public = point;
  MECH_ASSERT_OK(s().derive_key(pair->private_handle, Mechanism::kEcdh1Derive, p, spec));

  Bytes off_curve = point;
  off_curve[64] ^= 0x01;  // y no longer matches x
  Bytes hybrid = point;
  hybrid[0] = 0x06;
  Bytes wrong_curve = ossl::uncompressed_point(ossl::spki_of(ossl::generate_ec("P-384").get()));
  const std::pair<const char*, Bytes> cases[] = {
      {"off-curve", off_curve},     {"hybrid encoding", hybrid},
      {"P-384 point", wrong_curve}, {"truncated", Bytes(point.begin(), point.end() - 1)},
      {"infinity", Bytes{0x00}},    {"empty", Bytes{}},
  };
  for (const auto& [what, bad] : cases) {
    SCOPED_TRACE(what);
    p.peer_public = bad;
    MECH_EXPECT_STATUS(s().derive_key(pair->private_handle, Mechanism::kEcdh1Derive, p, spec),
                       Status::kMechanismParamInvalid);
  }
}

TEST_F(MechNegative, X25519LowOrderPointIsParamInvalid) {
  auto pair = s().generate_key_pair(Mechanism::kEcMontgomeryKeyPairGen, std::nullopt, 0, basic(0),
                                    basic(kDerive | kSensitive));
  MECH_ASSERT_OK(pair);
  MechanismParams p;
  p.peer_public = Bytes(32, 0);  // the all-zero point has order 1
  const NewKeySpec spec = secret_spec(KeyType::kGenericSecret, kSign, 32);
  MECH_EXPECT_STATUS(s().derive_key(pair->private_handle, Mechanism::kEcdh1Derive, p, spec),
                     Status::kMechanismParamInvalid);
  p.peer_public = Bytes(31, 9);
  MECH_EXPECT_STATUS(s().derive_key(pair->private_handle, Mechanism::kEcdh1Derive, p, spec),
                     Status::kMechanismParamInvalid);
}

TEST_F(MechNegative, WrongAesKeySizes) {
  for (uint32_t bits : {0u, 64u, 120u, 160u, 257u, 384u, 512u}) {
    SCOPED_TRACE(bits);
    MECH_EXPECT_STATUS(s().generate_secret_key(Mechanism::kAesKeyGen, bits, basic(kEncrypt)),
                       Status::kKeySizeInvalid);
  }
  // Imported and derived AES keys: 16, 24 or 32 bytes only.
  for (size_t len : {8u, 20u, 31u, 33u, 64u}) {
    SCOPED_TRACE(len);
    MECH_EXPECT_STATUS(import_secret(s(), importer(), Bytes(len, 3), KeyType::kAes, kEncrypt),
                       Status::kKeySizeInvalid);
  }
  auto base = s().generate_secret_key(Mechanism::kGenericSecretKeyGen, 256, basic(kDerive));
  MECH_ASSERT_OK(base);
  MechanismParams p;
  p.hash = Mechanism::kSha256;
  MECH_EXPECT_STATUS(
      s().derive_key(*base, Mechanism::kHkdfDerive, p, secret_spec(KeyType::kAes, kEncrypt, 20)),
      Status::kKeySizeInvalid);
  MECH_EXPECT_OK(
      s().derive_key(*base, Mechanism::kHkdfDerive, p, secret_spec(KeyType::kAes, kEncrypt, 24)));
}

TEST_F(MechNegative, TamperedWrappedKeysAreWrappedKeyInvalid) {
  const Bytes kek = pattern(32, 12), value = pattern(32, 13);
  const KeyHandle kek_handle = import_aes(kek, kUnwrap);
  const NewKeySpec spec = secret_spec(KeyType::kAes, kEncrypt);
  const Bytes kw = ref::key_wrap(true, false, kek, value);
  const Bytes kwp = ref::key_wrap(true, true, kek, value);
  MECH_ASSERT_OK(s().unwrap_key(kek_handle, Mechanism::kAesKeyWrap, kw, spec));
  MECH_ASSERT_OK(s().unwrap_key(kek_handle, Mechanism::kAesKeyWrapKwp, kwp, spec));
  for (size_t at : {size_t{0}, size_t{8}, kw.size() - 1}) {
    SCOPED_TRACE(at);
    Bytes bad = kw;
    bad[at] ^= 0x04;
    MECH_EXPECT_STATUS(s().unwrap_key(kek_handle, Mechanism::kAesKeyWrap, bad, spec),
                       Status::kWrappedKeyInvalid);
    Bytes bad_kwp = kwp;
    bad_kwp[at] ^= 0x04;
    MECH_EXPECT_STATUS(s().unwrap_key(kek_handle, Mechanism::kAesKeyWrapKwp, bad_kwp, spec),
                       Status::kWrappedKeyInvalid);
  }
  // Wrong lengths, and a KWP blob given to KW.
  MECH_EXPECT_STATUS(
      s().unwrap_key(kek_handle, Mechanism::kAesKeyWrap, Bytes(kw.begin(), kw.end() - 8), spec),
      Status::kWrappedKeyInvalid);
  MECH_EXPECT_STATUS(
      s().unwrap_key(kek_handle, Mechanism::kAesKeyWrap, Bytes(kw.begin(), kw.end() - 1), spec),
      Status::kWrappedKeyInvalid);
  MECH_EXPECT_STATUS(s().unwrap_key(kek_handle, Mechanism::kAesKeyWrap, kwp, spec),
                     Status::kWrappedKeyInvalid);
  // AES-GCM wrapping: IV || ciphertext || tag.
  const Bytes iv = pattern(12, 14);
  const Bytes gcm = concat(iv, ossl::gcm_seal(kek, iv, {}, value));
  MECH_ASSERT_OK(s().unwrap_key(kek_handle, Mechanism::kAesGcm, gcm, spec));
  Bytes bad_gcm = gcm;
  bad_gcm[20] ^= 1;
  MECH_EXPECT_STATUS(s().unwrap_key(kek_handle, Mechanism::kAesGcm, bad_gcm, spec),
                     Status::kWrappedKeyInvalid);
  MECH_EXPECT_STATUS(s().unwrap_key(kek_handle, Mechanism::kAesGcm, Bytes(27, 0), spec),
                     Status::kWrappedKeyInvalid);
  // RSA-OAEP and RSA-AES-KEY-WRAP to the import key.
  const Importer& imp = importer();
  Bytes oaep_blob =
      ref::oaep_encrypt(imp.pub.get(), Mechanism::kSha256, Mechanism::kSha256, {}, value);
  oaep_blob[100] ^= 1;
  MECH_EXPECT_STATUS(
      s().unwrap_key(imp.pair.private_handle, Mechanism::kRsaPkcsOaep, oaep_blob, spec, oaep()),
      Status::kWrappedKeyInvalid);
  Bytes rsa_aes = ref::rsa_aes_wrap(imp.pub.get(), Mechanism::kSha256, value);
  MECH_ASSERT_OK(
      s().unwrap_key(imp.pair.private_handle, Mechanism::kRsaAesKeyWrap, rsa_aes, spec, oaep()));
  for (size_t at : {size_t{5}, rsa_aes.size() - 3}) {
    Bytes bad = rsa_aes;
    bad[at] ^= 0x20;
    MECH_EXPECT_STATUS(
        s().unwrap_key(imp.pair.private_handle, Mechanism::kRsaAesKeyWrap, bad, spec, oaep()),
        Status::kWrappedKeyInvalid);
  }
  // A value that is not a key of the template's type: a valid blob of
  // garbage as a private key.
  MECH_EXPECT_STATUS(
      s().unwrap_key(imp.pair.private_handle, Mechanism::kRsaAesKeyWrap,
                     ref::rsa_aes_wrap(imp.pub.get(), Mechanism::kSha256, pattern(100, 1)),
                     private_spec(KeyType::kEc, kSign), oaep()),
      Status::kWrappedKeyInvalid);
}

TEST_F(MechNegative, OaepDecryptOfCorruptedCiphertextIsCiphertextInvalid) {
  auto pair = s().generate_key_pair(Mechanism::kRsaKeyPairGen, std::nullopt, 2048, basic(kEncrypt),
                                    basic(kDecrypt | kSensitive));
  MECH_ASSERT_OK(pair);
  auto spki = s().public_key(pair->public_handle);
  MECH_ASSERT_OK(spki);
  ossl::Pkey pub = ossl::load_spki(*spki);
  const Bytes label = to_bytes("label");
  const Bytes ct = ref::oaep_encrypt(pub.get(), Mechanism::kSha256, Mechanism::kSha256, label,
                                     to_bytes("secret"));
  const MechanismParams p = oaep(Mechanism::kSha256, Mechanism::kSha256, label);
  auto good = s().decrypt(pair->private_handle, {Mechanism::kRsaPkcsOaep, p, {}, {}}, ct);
  MECH_ASSERT_OK(good);
  EXPECT_EQ(*good, to_bytes("secret"));

  // One status for every failure: no OAEP padding oracle (Manger).
  Bytes flipped = ct;
  flipped[17] ^= 0x40;
  const CipherSpec spec{Mechanism::kRsaPkcsOaep, p, {}, {}};
  MECH_EXPECT_STATUS(s().decrypt(pair->private_handle, spec, flipped), Status::kCiphertextInvalid);
  MECH_EXPECT_STATUS(s().decrypt(pair->private_handle, spec, Bytes(ct.begin(), ct.end() - 1)),
                     Status::kCiphertextInvalid);
  MECH_EXPECT_STATUS(s().decrypt(pair->private_handle, spec, Bytes(256, 0xff)),
                     Status::kCiphertextInvalid);
  const CipherSpec wrong_label{Mechanism::kRsaPkcsOaep,
                               oaep(Mechanism::kSha256, Mechanism::kSha256, to_bytes("lab3l")),
                               {},
                               {}};
  MECH_EXPECT_STATUS(s().decrypt(pair->private_handle, wrong_label, ct),
                     Status::kCiphertextInvalid);
  const CipherSpec wrong_hash{
      Mechanism::kRsaPkcsOaep, oaep(Mechanism::kSha384, Mechanism::kSha256, label), {}, {}};
  MECH_EXPECT_STATUS(s().decrypt(pair->private_handle, wrong_hash, ct), Status::kCiphertextInvalid);
  // OAEP without its parameters is a parameter error.
  MECH_EXPECT_STATUS(s().decrypt(pair->private_handle, cipher(Mechanism::kRsaPkcsOaep), ct),
                     Status::kMechanismParamInvalid);
}

// PKCS#1 v1.5 decryption is a Bleichenbacher padding oracle on OpenSSL 3.0:
// refused outright, whatever the ciphertext; encryption too.
TEST_F(MechNegative, RsaPkcs1DecryptionAndEncryptionRefused) {
  auto pair = s().generate_key_pair(Mechanism::kRsaKeyPairGen, std::nullopt, 2048, basic(kEncrypt),
                                    basic(kDecrypt | kSensitive));
  MECH_ASSERT_OK(pair);
  auto spki = s().public_key(pair->public_handle);
  MECH_ASSERT_OK(spki);
  ossl::Pkey pub = ossl::load_spki(*spki);
  // A valid PKCS#1 v1.5 ciphertext made by OpenSSL.
  ossl::PkeyCtx ctx(EVP_PKEY_CTX_new(pub.get(), nullptr));
  ASSERT_TRUE(ctx && EVP_PKEY_encrypt_init(ctx.get()) == 1 &&
              EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_PADDING) == 1);
  Bytes ct(256);
  size_t len = ct.size();
  const Bytes msg = to_bytes("bleichenbacher");
  ASSERT_EQ(EVP_PKEY_encrypt(ctx.get(), ct.data(), &len, msg.data(), msg.size()), 1);
  ct.resize(len);
  MECH_EXPECT_STATUS(s().decrypt(pair->private_handle, cipher(Mechanism::kRsaPkcs), ct),
                     Status::kMechanismRefused);
  MECH_EXPECT_STATUS(s().decrypt(pair->private_handle, cipher(Mechanism::kRsaPkcs), Bytes(256, 7)),
                     Status::kMechanismRefused);
  MECH_EXPECT_STATUS(s().encrypt(pair->public_handle, cipher(Mechanism::kRsaPkcs), msg),
                     Status::kMechanismRefused);
}

TEST_F(MechNegative, RsaKeySizesOtherThan2048To4096Refused) {
  for (uint32_t bits : {1024u, 1536u, 2047u, 2560u, 8192u}) {
    SCOPED_TRACE(bits);
    MECH_EXPECT_STATUS(s().generate_key_pair(Mechanism::kRsaKeyPairGen, std::nullopt, bits,
                                             basic(kVerify), basic(kSign)),
                       Status::kKeySizeInvalid);
  }
  // An imported RSA-1024 key is no better.
  ref::Pkey small = ref::rsa_keygen(1024);
  MECH_EXPECT_STATUS(import_private(s(), importer(), small.get(), KeyType::kRsa, kSign),
                     Status::kWrappedKeyInvalid);
}

TEST_F(MechNegative, Ed25519VerifyOfModifiedMessageIsSignatureInvalid) {
  auto pair = s().generate_key_pair(Mechanism::kEcEdwardsKeyPairGen, std::nullopt, 0,
                                    basic(kVerify), basic(kSign | kSensitive));
  MECH_ASSERT_OK(pair);
  const Bytes message = to_bytes("an Ed25519 message");
  auto sig = s().sign(pair->private_handle, Mechanism::kEddsa, message, {});
  MECH_ASSERT_OK(sig);
  MECH_EXPECT_OK(s().verify(pair->public_handle, Mechanism::kEddsa, message, *sig));
  Bytes modified = message;
  modified[3] ^= 0x01;
  MECH_EXPECT_STATUS(s().verify(pair->public_handle, Mechanism::kEddsa, modified, *sig),
                     Status::kSignatureInvalid);
  Bytes bad_sig = *sig;
  bad_sig[40] ^= 0x01;
  MECH_EXPECT_STATUS(s().verify(pair->public_handle, Mechanism::kEddsa, message, bad_sig),
                     Status::kSignatureInvalid);
  MECH_EXPECT_STATUS(s().verify(pair->public_handle, Mechanism::kEddsa, message,
                                Bytes(sig->begin(), sig->end() - 1)),
                     Status::kSignatureInvalid);
}

TEST_F(MechNegative, HmacVerifyWithWrongMacIsSignatureInvalid) {
  const Bytes key = pattern(32, 20), data = to_bytes("mac me");
  const KeyHandle k = import(key, KeyType::kGenericSecret, kSign | kVerify);
  for (Mechanism hash : {Mechanism::kSha256, Mechanism::kSha384, Mechanism::kSha512}) {
    const Mechanism m = hash == Mechanism::kSha256   ? Mechanism::kSha256Hmac
                        : hash == Mechanism::kSha384 ? Mechanism::kSha384Hmac
                                                     : Mechanism::kSha512Hmac;
    SCOPED_TRACE(mechanism_name(m));
    const Bytes mac = ref::hmac(hash, key, data);
    MECH_EXPECT_OK(s().verify(k, m, data, mac));
    Bytes wrong = mac;
    wrong.back() ^= 0x01;
    MECH_EXPECT_STATUS(s().verify(k, m, data, wrong), Status::kSignatureInvalid);
    MECH_EXPECT_STATUS(s().verify(k, m, to_bytes("mac mE"), mac), Status::kSignatureInvalid);
    MECH_EXPECT_STATUS(s().verify(k, m, data, Bytes(mac.begin(), mac.begin() + 15)),
                       Status::kSignatureInvalid);
  }
}

TEST_F(MechNegative, SignatureVerifyFailuresOnEcdsaAndRsa) {
  auto ec = s().generate_key_pair(Mechanism::kEcKeyPairGen, Curve::kP384, 0, basic(kVerify),
                                  basic(kSign));
  MECH_ASSERT_OK(ec);
  const Bytes message = to_bytes("verify me");
  auto sig = s().sign(ec->private_handle, Mechanism::kEcdsaSha384, message, {});
  MECH_ASSERT_OK(sig);
  Bytes bad = *sig;
  bad[10] ^= 1;
  MECH_EXPECT_STATUS(s().verify(ec->public_handle, Mechanism::kEcdsaSha384, message, bad),
                     Status::kSignatureInvalid);
  // The wrong hash is a different message.
  MECH_EXPECT_STATUS(s().verify(ec->public_handle, Mechanism::kEcdsaSha256, message, *sig),
                     Status::kSignatureInvalid);
  // SHAx-RSA-PSS: the params' hash must be the mechanism's, and PSS needs
  // its parameters.
  auto rsa = s().generate_key_pair(Mechanism::kRsaKeyPairGen, std::nullopt, 2048, basic(kVerify),
                                   basic(kSign));
  MECH_ASSERT_OK(rsa);
  MECH_EXPECT_STATUS(s().sign(rsa->private_handle, Mechanism::kSha256RsaPkcsPss, message,
                              pss(Mechanism::kSha384, 32)),
                     Status::kMechanismParamInvalid);
  MECH_EXPECT_STATUS(s().sign(rsa->private_handle, Mechanism::kSha256RsaPkcsPss, message, {}),
                     Status::kMechanismParamInvalid);
  // RSA-PKCS over raw input: at most modulus - 11 bytes (and never empty).
  MECH_EXPECT_STATUS(s().sign(rsa->private_handle, Mechanism::kRsaPkcs, Bytes(256 - 10, 1), {}),
                     Status::kDataLengthInvalid);
  MECH_EXPECT_STATUS(s().sign(rsa->private_handle, Mechanism::kRsaPkcs, Bytes{}, {}),
                     Status::kDataLengthInvalid);
  auto rsig = s().sign(rsa->private_handle, Mechanism::kSha256RsaPkcs, message, {});
  MECH_ASSERT_OK(rsig);
  Bytes rbad = *rsig;
  rbad[0] ^= 1;
  MECH_EXPECT_STATUS(s().verify(rsa->public_handle, Mechanism::kSha256RsaPkcs, message, rbad),
                     Status::kSignatureInvalid);
}

}  // namespace
}  // namespace ihsm::test::mech
