// Known-answer vectors run through a real ihsmd. Keys are generated inside
// the device, so the known keys of the vectors are imported the BYOK way:
// wrapped by the test (OpenSSL RSA-OAEP or RSA-AES-KEY-WRAP) to an RSA-3072
// key pair made in the device, then unwrapped into it. Every vector is also
// checked against OpenSSL in the test, so a mistyped vector cannot pass.
#include "integration/mechanisms/mech_fixture.h"
#include "vectors/rfc4231.h"

namespace ihsm::test::mech {
namespace {

using namespace usage;

class MechKat : public MechTest {};

// The proofs used throughout ("the HMAC trick": a key holds a value if the
// device's HMAC or AES-CBC with it equals OpenSSL's with the value) tell
// keys apart: one bit off and they fail.
TEST_F(MechKat, KeyValueProofsTellKeysApart) {
  const Bytes value = pattern(32, 0x01);
  Bytes other = value;
  other[31] ^= 0x01;
  const KeyHandle secret = import(value, KeyType::kGenericSecret, kSign);
  EXPECT_TRUE(holds_secret(secret, value));
  EXPECT_FALSE(holds_secret(secret, other));
  EXPECT_FALSE(holds_secret(secret, Bytes(value.begin(), value.end() - 1)));
  const KeyHandle aes = import_aes(value, kEncrypt);
  EXPECT_TRUE(holds_aes(aes, value));
  EXPECT_FALSE(holds_aes(aes, other));
  // A key without the needed usage cannot be proven at all.
  EXPECT_FALSE(holds_aes(import_aes(value, kDecrypt), value));
}

// SP 800-38A appendix F: the common plaintext, F.2.5 CBC-AES256 and F.5.5
// CTR-AES256.
const char* kPlain38a =
    "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51"
    "30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710";
const char* kKey38a = "603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4";
const char* kCbcIv = "000102030405060708090a0b0c0d0e0f";
const char* kCbc256 =
    "f58c4c04d6e5f1ba779eabfb5f7bfbd69cfc4e967edb808d679f777bc6702c7d"
    "39f23369a9d9bacfa530e26304231461b2eb05e2c39be9fcda6c19078c6a9d1b";
const char* kCtrBlock = "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff";
const char* kCtr256 =
    "601ec313775789a5b7a7f504bbf3d228f443e3ca4d62b59aca84e990cacaf5c5"
    "2b0930daa23de94ce87017ba2d84988ddfc9c58db67aada613c2dd08457941a6";

TEST_F(MechKat, AesCbcSp800_38aF25) {
  const Bytes key = from_hex(kKey38a), iv = from_hex(kCbcIv), plain = from_hex(kPlain38a),
              expected = from_hex(kCbc256);
  ASSERT_EQ(ref::cbc(true, false, key, iv, plain), expected) << "vector typo";
  const KeyHandle k = import_aes(key);

  auto ct = s().encrypt(k, cipher(Mechanism::kAesCbc, iv), plain);
  MECH_ASSERT_OK(ct);
  EXPECT_EQ(to_hex(ct->data), kCbc256);
  EXPECT_TRUE(s().last_approved());
  auto pt = s().decrypt(k, cipher(Mechanism::kAesCbc, iv), expected);
  MECH_ASSERT_OK(pt);
  EXPECT_EQ(to_hex(*pt), kPlain38a);
  EXPECT_TRUE(s().last_approved());

  // CBC-PAD: the same four blocks, then one block of PKCS#7 padding.
  auto padded = s().encrypt(k, cipher(Mechanism::kAesCbcPad, iv), plain);
  MECH_ASSERT_OK(padded);
  ASSERT_EQ(padded->data.size(), 80u);
  EXPECT_EQ(Bytes(padded->data.begin(), padded->data.begin() + 64), expected);
  EXPECT_EQ(padded->data, ref::cbc(true, true, key, iv, plain));
  auto unpadded = s().decrypt(k, cipher(Mechanism::kAesCbcPad, iv), padded->data);
  MECH_ASSERT_OK(unpadded);
  EXPECT_EQ(*unpadded, plain);
}

TEST_F(MechKat, AesCtrSp800_38aF55) {
  const Bytes key = from_hex(kKey38a), block = from_hex(kCtrBlock), plain = from_hex(kPlain38a);
  ASSERT_EQ(to_hex(ref::ctr(key, block, plain)), kCtr256) << "vector typo";
  const KeyHandle k = import_aes(key);
  auto ct = s().encrypt(k, cipher(Mechanism::kAesCtr, block), plain);
  MECH_ASSERT_OK(ct);
  EXPECT_EQ(to_hex(ct->data), kCtr256);
  EXPECT_TRUE(s().last_approved());
  // F.5.6: decryption is the same keystream.
  auto pt = s().decrypt(k, cipher(Mechanism::kAesCtr, block), from_hex(kCtr256));
  MECH_ASSERT_OK(pt);
  EXPECT_EQ(to_hex(*pt), kPlain38a);
  // An explicit 128-bit counter is the default.
  CipherSpec explicit_bits = cipher(Mechanism::kAesCtr, block);
  explicit_bits.params.counter_bits = 128;
  auto again = s().encrypt(k, explicit_bits, plain);
  MECH_ASSERT_OK(again);
  EXPECT_EQ(to_hex(again->data), kCtr256);
}

// McGrew & Viega, "The Galois/Counter Mode of Operation", test case 16.
const char* kGcmKey = "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308";
const char* kGcmIv = "cafebabefacedbaddecaf888";
const char* kGcmAad = "feedfacedeadbeeffeedfacedeadbeefabaddad2";
const char* kGcmPlain =
    "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
    "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39";
const char* kGcmCipher =
    "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
    "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662";
const char* kGcmTag = "76fc6ece0f4e1768cddf8853bb2d551b";

TEST_F(MechKat, AesGcmTestCase16) {
  const Bytes key = from_hex(kGcmKey), iv = from_hex(kGcmIv), aad = from_hex(kGcmAad);
  ASSERT_EQ(ossl::gcm_seal(key, iv, aad, from_hex(kGcmPlain)),
            concat(from_hex(kGcmCipher), from_hex(kGcmTag)))
      << "vector typo";
  const KeyHandle k = import_aes(key);

  auto pt =
      s().decrypt(k, cipher(Mechanism::kAesGcm, iv, aad), from_hex(kGcmCipher), from_hex(kGcmTag));
  MECH_ASSERT_OK(pt);
  EXPECT_EQ(to_hex(*pt), kGcmPlain);
  EXPECT_TRUE(s().last_approved()) << "GCM decryption is approved";

  // Encryption with the caller's IV reproduces the vector, but is not an
  // approved service (SP 800-38D: IV uniqueness is not the module's).
  auto ct = s().encrypt(k, cipher(Mechanism::kAesGcm, iv, aad), from_hex(kGcmPlain));
  MECH_ASSERT_OK(ct);
  EXPECT_EQ(to_hex(ct->data), kGcmCipher);
  EXPECT_EQ(to_hex(ct->tag), kGcmTag);
  EXPECT_EQ(ct->iv, iv);
  EXPECT_FALSE(s().last_approved());

  // The old single-purpose API agrees.
  auto legacy = s().decrypt_gcm(k, {iv, from_hex(kGcmCipher), from_hex(kGcmTag)}, aad);
  MECH_ASSERT_OK(legacy);
  EXPECT_EQ(to_hex(*legacy), kGcmPlain);
}

// RFC 3394 section 4.6: 256 bits of key data with a 256-bit KEK.
TEST_F(MechKat, AesKeyWrapRfc3394Section4_6) {
  const Bytes kek = from_hex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
  const Bytes data = from_hex("00112233445566778899aabbccddeeff000102030405060708090a0b0c0d0e0f");
  const char* expected =
      "28c9f404c4b810f4cbccb35cfb87f8263f5786e2d80ed326cbc7f0e71a99f43bfb988b9b7a02dd21";
  ASSERT_EQ(to_hex(ref::key_wrap(true, false, kek, data)), expected) << "vector typo";

  const KeyHandle kek_handle = import_aes(kek, kWrap | kUnwrap | kSensitive);
  const KeyHandle target = import_aes(data, kEncrypt | kSensitive | kExtractable);
  auto wrapped = s().wrap_key(kek_handle, target, Mechanism::kAesKeyWrap);
  MECH_ASSERT_OK(wrapped);
  EXPECT_EQ(to_hex(*wrapped), expected);
  EXPECT_TRUE(s().last_approved());

  // And the vector's blob unwraps to the same key.
  auto back = s().unwrap_key(kek_handle, Mechanism::kAesKeyWrap, from_hex(expected),
                             secret_spec(KeyType::kAes, kEncrypt | kSensitive));
  MECH_ASSERT_OK(back);
  EXPECT_TRUE(holds_aes(*back, data));
}

// RFC 5649 section 6: 20 octets of key data with a 192-bit KEK. The
// 20-byte value is a generic secret (the 7-octet example is too short to
// be any key the device holds).
TEST_F(MechKat, AesKeyWrapPadRfc5649) {
  const Bytes kek = from_hex("5840df6e29b02af1ab493b705bf16ea1ae8338f4dcc176a8");
  const Bytes data = from_hex("c37b7e6492584340bed12207808941155068f738");
  const char* expected = "138bdeaa9b8fa7fc61f97742e72248ee5ae6ae5360d1ae6a5f54f373fa543b6a";
  ASSERT_EQ(to_hex(ref::key_wrap(true, true, kek, data)), expected) << "vector typo";

  const KeyHandle kek_handle = import_aes(kek, kWrap | kUnwrap | kSensitive);
  const KeyHandle target = import(data, KeyType::kGenericSecret, kSign | kSensitive | kExtractable);
  auto wrapped = s().wrap_key(kek_handle, target, Mechanism::kAesKeyWrapKwp);
  MECH_ASSERT_OK(wrapped);
  EXPECT_EQ(to_hex(*wrapped), expected);

  auto back = s().unwrap_key(kek_handle, Mechanism::kAesKeyWrapKwp, from_hex(expected),
                             secret_spec(KeyType::kGenericSecret, kSign | kSensitive));
  MECH_ASSERT_OK(back);
  EXPECT_TRUE(holds_secret(*back, data));
  // AES-KW (no padding) refuses a 20-byte key.
  MECH_EXPECT_STATUS(s().wrap_key(kek_handle, target, Mechanism::kAesKeyWrap),
                     Status::kDataLengthInvalid);
}

TEST_F(MechKat, HmacRfc4231) {
  for (const auto& k : test::vectors::rfc4231()) {
    SCOPED_TRACE(k.name);
    const KeyHandle key = import(k.key, KeyType::kGenericSecret, kSign | kVerify | kSensitive);
    const std::pair<Mechanism, const char*> cases[] = {{Mechanism::kSha256Hmac, k.sha256},
                                                       {Mechanism::kSha384Hmac, k.sha384},
                                                       {Mechanism::kSha512Hmac, k.sha512}};
    for (const auto& [m, mac_hex] : cases) {
      SCOPED_TRACE(mechanism_name(m));
      const Mechanism hash = m == Mechanism::kSha256Hmac   ? Mechanism::kSha256
                             : m == Mechanism::kSha384Hmac ? Mechanism::kSha384
                                                           : Mechanism::kSha512;
      ASSERT_EQ(to_hex(ref::hmac(hash, k.key, k.data)), mac_hex) << "vector typo";
      auto mac = s().sign(key, m, k.data, {});
      MECH_ASSERT_OK(mac);
      EXPECT_EQ(to_hex(*mac), mac_hex);
      EXPECT_TRUE(s().last_approved());
      MECH_EXPECT_OK(s().verify(key, m, k.data, from_hex(mac_hex)));
    }
  }
}

// RFC 4231 case 5: verification of the MAC truncated to 128 bits.
TEST_F(MechKat, HmacRfc4231Case5Truncated) {
  const Bytes data = to_bytes("Test With Truncation");
  const KeyHandle key = import(Bytes(20, 0x0c), KeyType::kGenericSecret, kSign | kVerify);
  MECH_EXPECT_OK(
      s().verify(key, Mechanism::kSha256Hmac, data, from_hex("a3b6167473100ee06e0c796c2955552b")));
  MECH_EXPECT_OK(
      s().verify(key, Mechanism::kSha512Hmac, data, from_hex("415fad6271580a531d4179bc891d87a6")));
  MECH_EXPECT_STATUS(
      s().verify(key, Mechanism::kSha256Hmac, data, from_hex("a3b6167473100ee06e0c796c2955552c")),
      Status::kSignatureInvalid);
}

// HMAC keys below 112 bits are refused (SP 800-131A): RFC 4231 case 2's
// 4-byte "Jefe", and 13 bytes; 14 bytes is the smallest accepted.
TEST_F(MechKat, HmacShortKeyImportRefused) {
  const Bytes jefe = to_bytes("Jefe");
  MECH_EXPECT_STATUS(import_secret(s(), importer(), jefe, KeyType::kGenericSecret, kSign),
                     Status::kKeySizeInvalid);
  MECH_EXPECT_STATUS(import_secret(s(), importer(), Bytes(13, 7), KeyType::kGenericSecret, kSign),
                     Status::kKeySizeInvalid);
  auto ok14 = import_secret(s(), importer(), Bytes(14, 7), KeyType::kGenericSecret, kSign);
  MECH_ASSERT_OK(ok14);
  EXPECT_TRUE(holds_secret(*ok14, Bytes(14, 7)));
  MECH_EXPECT_STATUS(s().generate_secret_key(Mechanism::kGenericSecretKeyGen, 104, basic(kSign)),
                     Status::kKeySizeInvalid);
}

// RFC 5869 A.1 (HKDF-SHA256), through DeriveKey into a generic secret,
// proven by HMAC inside the device against the vector's OKM; also the
// extract-only and expand-only modes.
TEST_F(MechKat, HkdfRfc5869A1) {
  const Bytes ikm(22, 0x0b), salt = from_hex("000102030405060708090a0b0c"),
                             info = from_hex("f0f1f2f3f4f5f6f7f8f9");
  const Bytes prk = from_hex("077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5");
  const Bytes okm = from_hex(
      "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865");
  ASSERT_EQ(ref::hmac(Mechanism::kSha256, salt, ikm), prk) << "vector typo";
  const KeyHandle base = import(ikm, KeyType::kGenericSecret, kDerive | kSensitive);

  MechanismParams p;
  p.hash = Mechanism::kSha256;
  p.salt = salt;
  p.info = info;
  auto derived = s().derive_key(base, Mechanism::kHkdfDerive, p,
                                secret_spec(KeyType::kGenericSecret, kSign | kSensitive, 42));
  MECH_ASSERT_OK(derived);
  EXPECT_TRUE(s().last_approved());
  EXPECT_TRUE(holds_secret(*derived, okm));
  // The derivation is a new key object, never a value.
  auto info_of = s().key_info(*derived);
  MECH_ASSERT_OK(info_of);
  EXPECT_EQ(info_of->key_bits, 42u * 8);

  p.hkdf_mode = 2;  // extract only: the PRK
  auto extracted = s().derive_key(base, Mechanism::kHkdfDerive, p,
                                  secret_spec(KeyType::kGenericSecret, kSign | kDerive, 32));
  MECH_ASSERT_OK(extracted);
  EXPECT_TRUE(holds_secret(*extracted, prk));

  MechanismParams expand;
  expand.hash = Mechanism::kSha256;
  expand.info = info;
  expand.hkdf_mode = 3;  // expand only, from the PRK
  auto expanded = s().derive_key(*extracted, Mechanism::kHkdfDerive, expand,
                                 secret_spec(KeyType::kGenericSecret, kSign, 42));
  MECH_ASSERT_OK(expanded);
  EXPECT_TRUE(holds_secret(*expanded, okm));
}

// SP 800-108 counter mode with HMAC: the expected value is computed here
// from the formula, PRF(K, [i]_32 || Label || 0x00 || Context || [L]_32).
TEST_F(MechKat, Sp800_108CounterKdf) {
  const Bytes key = pattern(32, 0x11);
  const Bytes label = to_bytes("ihsm kbkdf label"), context = to_bytes("context bytes");
  const KeyHandle base = import(key, KeyType::kGenericSecret, kDerive | kSensitive);
  struct Case {
    Mechanism prf;
    uint32_t length;
  } cases[] = {{Mechanism::kSha256, 32},
               {Mechanism::kSha256, 80},  // three PRF blocks
               {Mechanism::kSha384, 48},
               {Mechanism::kSha512, 100}};
  for (const auto& c : cases) {
    SCOPED_TRACE(std::string(mechanism_name(c.prf)) + " L=" + std::to_string(c.length));
    MechanismParams p;
    p.prf_hash = c.prf;
    p.kdf_label = label;
    p.kdf_context = context;
    auto derived = s().derive_key(base, Mechanism::kSp800108CounterKdf, p,
                                  secret_spec(KeyType::kGenericSecret, kSign, c.length));
    MECH_ASSERT_OK(derived);
    EXPECT_TRUE(s().last_approved());
    EXPECT_TRUE(holds_secret(*derived, ref::kbkdf_counter(c.prf, key, label, context, c.length)));
  }
  // Into an AES key, checked by encryption.
  MechanismParams p;
  p.prf_hash = Mechanism::kSha256;
  p.kdf_label = label;
  p.kdf_counter_bits = 32;
  auto aes = s().derive_key(base, Mechanism::kSp800108CounterKdf, p,
                            secret_spec(KeyType::kAes, kEncrypt, 16));
  MECH_ASSERT_OK(aes);
  EXPECT_TRUE(holds_aes(*aes, ref::kbkdf_counter(Mechanism::kSha256, key, label, {}, 16)));

  // The caller's own fixed input: no separator, with and without [L]_32.
  for (const bool with_length : {true, false}) {
    SCOPED_TRACE(with_length ? "fixed input || L" : "fixed input only");
    MechanismParams own;
    own.prf_hash = Mechanism::kSha384;
    own.kdf_label = label;
    own.kdf_separator = false;
    own.kdf_length = with_length;
    auto derived = s().derive_key(base, Mechanism::kSp800108CounterKdf, own,
                                  secret_spec(KeyType::kGenericSecret, kSign, 64));
    MECH_ASSERT_OK(derived);
    EXPECT_TRUE(holds_secret(
        *derived, ref::kbkdf_counter(Mechanism::kSha384, key, label, {}, 64, false, with_length)));
  }
}

// PKCS#1 v1.5 signatures are deterministic: a known RSA key imported as
// PKCS#8 (RSA-AES-KEY-WRAP) must give exactly OpenSSL's signature.
TEST_F(MechKat, RsaPkcs1DeterministicWithImportedKey) {
  ref::Pkey known = ref::rsa_keygen(2048);
  const KeyHandle k = import_key_pair_private(known.get(), KeyType::kRsa, kSign | kSensitive);
  auto info = s().key_info(k);
  MECH_ASSERT_OK(info);
  EXPECT_EQ(info->key_type, KeyType::kRsa);
  EXPECT_EQ(info->key_bits, 2048u);
  EXPECT_FALSE(info->local);

  const Bytes message = to_bytes("PKCS#1 v1.5 is deterministic");
  const struct {
    Mechanism mechanism;
    Mechanism hash;
  } cases[] = {{Mechanism::kSha256RsaPkcs, Mechanism::kSha256},
               {Mechanism::kSha384RsaPkcs, Mechanism::kSha384},
               {Mechanism::kSha512RsaPkcs, Mechanism::kSha512}};
  for (const auto& c : cases) {
    SCOPED_TRACE(mechanism_name(c.mechanism));
    const Bytes expected = ref::sign(known.get(), ref::md_of(c.hash), message, RSA_PKCS1_PADDING);
    auto sig = s().sign(k, c.mechanism, message, {});
    MECH_ASSERT_OK(sig);
    EXPECT_EQ(*sig, expected);
    // CKM_RSA_PKCS over the DigestInfo gives the same bytes.
    auto raw = s().sign(k, Mechanism::kRsaPkcs, ref::digest_info(c.hash, message), {});
    MECH_ASSERT_OK(raw);
    EXPECT_EQ(*raw, expected);
  }
}

// RFC 8032 section 7.1 TEST 1 (empty message) and TEST 2, with the private
// keys imported as PKCS#8.
TEST_F(MechKat, Ed25519Rfc8032) {
  const struct {
    const char* name;
    const char* secret;
    const char* pub;
    const char* message;
    const char* signature;
  } cases[] = {
      {"TEST 1", "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
       "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
       "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e3970"
       "1cf9b46bd25bf5f0595bbe24655141438e7a100b"},
      {"TEST 2", "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
       "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
       "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613"
       "d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    ref::Pkey known = ref::raw_private(EVP_PKEY_ED25519, from_hex(c.secret));
    ASSERT_EQ(to_hex(ref::raw_public(known.get())), c.pub) << "vector typo";
    ASSERT_EQ(to_hex(ref::sign(known.get(), nullptr, from_hex(c.message))), c.signature)
        << "vector typo";
    const KeyHandle k =
        import_key_pair_private(known.get(), KeyType::kEcEdwards, kSign | kSensitive);
    auto sig = s().sign(k, Mechanism::kEddsa, from_hex(c.message), {});
    MECH_ASSERT_OK(sig);
    EXPECT_EQ(to_hex(*sig), c.signature);
    EXPECT_TRUE(s().last_approved());
  }
}

// RFC 7748 section 6.1: Alice's private key imported, derived with Bob's
// public key into a 32-byte generic secret, proven equal to K by HMAC.
TEST_F(MechKat, X25519Rfc7748) {
  const Bytes alice = from_hex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
  const Bytes bob_pub =
      from_hex("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
  const Bytes shared = from_hex("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");
  ref::Pkey known = ref::raw_private(EVP_PKEY_X25519, alice);
  ASSERT_EQ(to_hex(ref::raw_public(known.get())),
            "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
      << "vector typo";
  const KeyHandle k = import_key_pair_private(known.get(), KeyType::kEcMontgomery, kDerive);
  MechanismParams p;
  p.peer_public = bob_pub;
  auto derived = s().derive_key(k, Mechanism::kEcdh1Derive, p,
                                secret_spec(KeyType::kGenericSecret, kSign, 32));
  MECH_ASSERT_OK(derived);
  EXPECT_FALSE(s().last_approved()) << "X25519 is not an approved scheme";
  EXPECT_TRUE(holds_secret(*derived, shared));
}

// FIPS 180-4 'abc', one-shot and multi-part (split inside the block).
TEST_F(MechKat, ShaAbcDigests) {
  const struct {
    Mechanism m;
    const char* abc;
  } cases[] = {
      {Mechanism::kSha256, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
      {Mechanism::kSha384,
       "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed"
       "8086072ba1e7cc2358baeca134c825a7"},
      {Mechanism::kSha512,
       "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
       "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(mechanism_name(c.m));
    ASSERT_EQ(to_hex(ossl::digest(ref::md_of(c.m), to_bytes("abc"))), c.abc) << "vector typo";
    auto d = s().digest(c.m, to_bytes("abc"));
    MECH_ASSERT_OK(d);
    EXPECT_EQ(to_hex(*d), c.abc);
    EXPECT_TRUE(s().last_approved());
    MECH_ASSERT_OK(s().digest_init(c.m));
    MECH_ASSERT_OK(s().digest_update(to_bytes("a")));
    MECH_ASSERT_OK(s().digest_update({}));
    MECH_ASSERT_OK(s().digest_update(to_bytes("bc")));
    auto multi = s().digest_final();
    MECH_ASSERT_OK(multi);
    EXPECT_EQ(to_hex(*multi), c.abc);
  }
}

}  // namespace
}  // namespace ihsm::test::mech
