// The device crypto backend (src/device/crypto/backend.h) against published
// test vectors and against independent OpenSSL code in support/ossl.h.
#include "device/crypto/backend.h"

#include <gtest/gtest.h>
#include <openssl/core_names.h>
#include <openssl/kdf.h>

#include "support/ossl.h"
#include "support/util.h"

namespace ihsm::device::crypto {
namespace {

using test::Bytes;
using test::from_hex;
using test::to_hex;
namespace ossl = test::ossl;

Bytes reveal(const SecretBytes& s) { return Bytes(s.reveal().begin(), s.reveal().end()); }

struct CurveCase {
  Curve curve;
  const char* group;  // OpenSSL's name
  size_t scalar;
};

const CurveCase kCurves[] = {
    {Curve::kP256, "prime256v1", 32},
    {Curve::kP384, "secp384r1", 48},
    {Curve::kP521, "secp521r1", 66},
};

// ---------------------------------------------------------------- ECDSA

TEST(Backend, CurveSizes) {
  EXPECT_EQ(curve_bits(Curve::kP256), 256u);
  EXPECT_EQ(curve_bits(Curve::kP384), 384u);
  EXPECT_EQ(curve_bits(Curve::kP521), 521u);
  for (const auto& c : kCurves) EXPECT_EQ(curve_scalar_size(c.curve), c.scalar);
}

TEST(Backend, EcdsaSignaturesVerifyIndependently) {
  const Bytes message = test::to_bytes("the quick brown fox jumps over the lazy dog");
  for (const auto& c : kCurves) {
    SCOPED_TRACE(c.group);
    Pkey key;
    ASSERT_EQ(generate_ec_key(c.curve, key), Status::kOk);
    Bytes spki;
    ASSERT_EQ(public_key_der(key.get(), spki), Status::kOk);
    auto loaded = ossl::load_spki(spki);
    ASSERT_TRUE(loaded);
    EXPECT_EQ(ossl::group_of(loaded.get()), c.group);

    const struct {
      Mechanism mechanism;
      const EVP_MD* md;
    } hashes[] = {{Mechanism::kEcdsaSha256, EVP_sha256()},
                  {Mechanism::kEcdsaSha384, EVP_sha384()},
                  {Mechanism::kEcdsaSha512, EVP_sha512()}};
    for (const auto& h : hashes) {
      Bytes sig;
      ASSERT_EQ(ecdsa_sign(key.get(), c.curve, h.mechanism, message, sig), Status::kOk);
      EXPECT_EQ(sig.size(), 2 * c.scalar);
      EXPECT_TRUE(ossl::verify_ecdsa_raw(spki, h.md, message, sig)) << mechanism_name(h.mechanism);
      // The verifier is not vacuous.
      Bytes other = message;
      other[0] ^= 1;
      EXPECT_FALSE(ossl::verify_ecdsa_raw(spki, h.md, other, sig));
      Bytes bad = sig;
      bad[bad.size() / 2] ^= 0x80;
      EXPECT_FALSE(ossl::verify_ecdsa_raw(spki, h.md, message, bad));
    }
    // Caller-supplied digests of every accepted size.
    for (size_t len : {20u, 28u, 32u, 48u, 64u}) {
      Bytes digest(len);
      ASSERT_EQ(random_bytes(digest), Status::kOk);
      Bytes sig;
      ASSERT_EQ(ecdsa_sign(key.get(), c.curve, Mechanism::kEcdsa, digest, sig), Status::kOk);
      EXPECT_EQ(sig.size(), 2 * c.scalar);
      EXPECT_TRUE(ossl::verify_ecdsa_raw(spki, nullptr, digest, sig)) << len;
    }
  }
}

TEST(Backend, EcdsaDigestLengthIsChecked) {
  Pkey key;
  ASSERT_EQ(generate_ec_key(Curve::kP256, key), Status::kOk);
  for (size_t len : {0u, 1u, 19u, 65u, 128u}) {
    Bytes sig;
    EXPECT_EQ(ecdsa_sign(key.get(), Curve::kP256, Mechanism::kEcdsa, Bytes(len, 7), sig),
              Status::kDataLengthInvalid)
        << len;
  }
  // Not a signature mechanism.
  Bytes sig;
  EXPECT_NE(ecdsa_sign(key.get(), Curve::kP256, Mechanism::kAesGcm, Bytes(32, 7), sig),
            Status::kOk);
  // Hash-then-sign accepts any length, including empty input.
  EXPECT_EQ(ecdsa_sign(key.get(), Curve::kP256, Mechanism::kEcdsaSha256, Bytes{}, sig),
            Status::kOk);
  Bytes spki;
  ASSERT_EQ(public_key_der(key.get(), spki), Status::kOk);
  EXPECT_TRUE(ossl::verify_ecdsa_raw(spki, EVP_sha256(), Bytes{}, sig));
}

TEST(Backend, DerSha384StatementsVerifyIndependently) {
  Pkey key;
  ASSERT_EQ(generate_ec_key(Curve::kP384, key), Status::kOk);
  Bytes spki, sig;
  ASSERT_EQ(public_key_der(key.get(), spki), Status::kOk);
  const Bytes data = test::to_bytes("statement");
  ASSERT_EQ(ecdsa_sign_sha384_der(key.get(), data, sig), Status::kOk);
  EXPECT_TRUE(ossl::verify_ecdsa_der(spki, EVP_sha384(), data, sig));
  EXPECT_TRUE(ecdsa_verify_sha384_der(key.get(), data, sig));
  EXPECT_FALSE(ecdsa_verify_sha384_der(key.get(), test::to_bytes("statemenT"), sig));
}

TEST(Backend, KeyEncodings) {
  for (const auto& c : kCurves) {
    Pkey key;
    ASSERT_EQ(generate_ec_key(c.curve, key), Status::kOk);
    Bytes spki, point;
    ASSERT_EQ(public_key_der(key.get(), spki), Status::kOk);
    ASSERT_EQ(public_point(key.get(), point), Status::kOk);
    EXPECT_EQ(point.size(), 1 + 2 * c.scalar);
    EXPECT_EQ(point, ossl::uncompressed_point(spki));

    // SPKI round trip; trailing bytes and garbage are refused.
    Pkey pub;
    ASSERT_EQ(public_key_from_der(spki, pub), Status::kOk);
    Bytes spki2;
    ASSERT_EQ(public_key_der(pub.get(), spki2), Status::kOk);
    EXPECT_EQ(spki, spki2);
    Bytes trailing = spki;
    trailing.push_back(0);
    EXPECT_EQ(public_key_from_der(trailing, pub), Status::kInvalidArgument);
    EXPECT_EQ(public_key_from_der(Bytes{0x30, 0x03, 0x02, 0x01, 0x00}, pub),
              Status::kInvalidArgument);

    // PKCS#8 round trip keeps the key.
    SecretBytes pkcs8;
    ASSERT_EQ(private_key_der(key.get(), pkcs8), Status::kOk);
    Pkey back;
    ASSERT_EQ(private_key_from_der(pkcs8.reveal(), back), Status::kOk);
    Bytes spki3;
    ASSERT_EQ(public_key_der(back.get(), spki3), Status::kOk);
    EXPECT_EQ(spki, spki3);
    Bytes sig;
    ASSERT_EQ(ecdsa_sign(back.get(), c.curve, Mechanism::kEcdsaSha256, spki, sig), Status::kOk);
    EXPECT_TRUE(ossl::verify_ecdsa_raw(spki, EVP_sha256(), spki, sig));
  }
}

// ---------------------------------------------------------------- ECDH

TEST(Backend, EcdhAgreesWithIndependentDerivation) {
  Pkey own;
  ASSERT_EQ(generate_ec_key(Curve::kP384, own), Status::kOk);
  Bytes own_spki;
  ASSERT_EQ(public_key_der(own.get(), own_spki), Status::kOk);
  auto peer = ossl::generate_ec("P-384");
  const Bytes peer_point = ossl::uncompressed_point(ossl::spki_of(peer.get()));
  ASSERT_EQ(peer_point.size(), 97u);
  SecretBytes z;
  ASSERT_EQ(ecdh(own.get(), Curve::kP384, peer_point, z), Status::kOk);
  EXPECT_EQ(z.size(), 48u);
  auto own_pub = ossl::load_spki(own_spki);
  EXPECT_EQ(reveal(z), ossl::ecdh(peer.get(), own_pub.get()));
}

TEST(Backend, EcdhRejectsInvalidPeerPoints) {
  Pkey own;
  ASSERT_EQ(generate_ec_key(Curve::kP384, own), Status::kOk);
  auto peer = ossl::generate_ec("P-384");
  const Bytes good = ossl::uncompressed_point(ossl::spki_of(peer.get()));
  SecretBytes z;

  Bytes off_curve = good;
  off_curve.back() ^= 0x01;  // y no longer matches x
  EXPECT_NE(ecdh(own.get(), Curve::kP384, off_curve, z), Status::kOk);
  EXPECT_TRUE(z.empty());

  Bytes all_ff(97, 0xff);
  all_ff[0] = 0x04;  // coordinates beyond the field prime
  EXPECT_NE(ecdh(own.get(), Curve::kP384, all_ff, z), Status::kOk);

  Bytes zeros(97, 0);
  zeros[0] = 0x04;
  EXPECT_NE(ecdh(own.get(), Curve::kP384, zeros, z), Status::kOk);
  EXPECT_NE(ecdh(own.get(), Curve::kP384, Bytes{0x00}, z), Status::kOk);  // infinity
  Bytes bad_prefix = good;
  bad_prefix[0] = 0x05;
  EXPECT_NE(ecdh(own.get(), Curve::kP384, bad_prefix, z), Status::kOk);
  EXPECT_NE(ecdh(own.get(), Curve::kP384, Bytes(good.begin(), good.end() - 1), z), Status::kOk);
  EXPECT_NE(ecdh(own.get(), Curve::kP384, Bytes{}, z), Status::kOk);
  // A valid point of another curve.
  auto p256 = ossl::generate_ec("P-256");
  EXPECT_NE(ecdh(own.get(), Curve::kP384, ossl::uncompressed_point(ossl::spki_of(p256.get())), z),
            Status::kOk);
}

// ---------------------------------------------------------------- HKDF

Bytes evp_kdf_hkdf_sha384(const Bytes& ikm, const Bytes& salt, const Bytes& info, size_t len) {
  EVP_KDF* kdf = EVP_KDF_fetch(nullptr, "HKDF", nullptr);
  EVP_KDF_CTX* ctx = EVP_KDF_CTX_new(kdf);
  char md[] = "SHA384";
  static uint8_t dummy = 0;
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, md, 0),
      OSSL_PARAM_construct_octet_string(
          OSSL_KDF_PARAM_KEY, ikm.empty() ? &dummy : const_cast<uint8_t*>(ikm.data()), ikm.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT,
                                        salt.empty() ? &dummy : const_cast<uint8_t*>(salt.data()),
                                        salt.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO,
                                        info.empty() ? &dummy : const_cast<uint8_t*>(info.data()),
                                        info.size()),
      OSSL_PARAM_construct_end()};
  Bytes out(len);
  const int rc = EVP_KDF_derive(ctx, out.data(), out.size(), params);
  EVP_KDF_CTX_free(ctx);
  EVP_KDF_free(kdf);
  if (rc != 1) return {};
  return out;
}

TEST(Backend, HkdfSha384MatchesTwoIndependentImplementations) {
  const Bytes ikm = from_hex("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b");
  const Bytes salt = from_hex("000102030405060708090a0b0c");
  const Bytes info = from_hex("f0f1f2f3f4f5f6f7f8f9");
  for (size_t len : {1u, 32u, 44u, 48u, 49u, 100u, 255u * 48u}) {
    SecretBytes out(len);
    ASSERT_EQ(hkdf_sha384(ikm, salt, info, out), Status::kOk) << len;
    EXPECT_EQ(reveal(out), ossl::hkdf_sha384(ikm, salt, info, len)) << len;
    EXPECT_EQ(reveal(out), evp_kdf_hkdf_sha384(ikm, salt, info, len)) << len;
  }
  // RFC 5869 section 2.2: an absent salt is HashLen zero bytes.
  SecretBytes no_salt(42);
  ASSERT_EQ(hkdf_sha384(ikm, {}, info, no_salt), Status::kOk);
  EXPECT_EQ(reveal(no_salt), ossl::hkdf_sha384(ikm, Bytes(48, 0), info, 42));
  EXPECT_EQ(reveal(no_salt), evp_kdf_hkdf_sha384(ikm, Bytes(48, 0), info, 42));
  // Empty info.
  SecretBytes no_info(48);
  ASSERT_EQ(hkdf_sha384(ikm, salt, {}, no_info), Status::kOk);
  EXPECT_EQ(reveal(no_info), ossl::hkdf_sha384(ikm, salt, {}, 48));
}

TEST(Backend, HkdfRejectsImpossibleLengths) {
  const Bytes ikm(32, 1);
  SecretBytes empty;
  EXPECT_NE(hkdf_sha384(ikm, {}, {}, empty), Status::kOk);
  SecretBytes too_long(255 * 48 + 1);
  EXPECT_NE(hkdf_sha384(ikm, {}, {}, too_long), Status::kOk);
}

// ---------------------------------------------------------------- scrypt

TEST(Backend, ScryptRfc7914Vectors) {
  // RFC 7914 section 12, second vector.
  SecretBytes out(64);
  ASSERT_EQ(scrypt(test::to_bytes("password"), test::to_bytes("NaCl"), 1024, 8, 16, out),
            Status::kOk);
  EXPECT_EQ(to_hex(out.reveal()),
            "fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b373162"
            "2eaf30d92e22a3886ff109279d9830dac727afb94a83ee6d8360cbdfa2cc0640");
  // Third vector: N = 2^14, r = 8, p = 1 (the device's shape, half its N).
  SecretBytes out3(64);
  ASSERT_EQ(
      scrypt(test::to_bytes("pleaseletmein"), test::to_bytes("SodiumChloride"), 16384, 8, 1, out3),
      Status::kOk);
  EXPECT_EQ(to_hex(out3.reveal()),
            "7023bdcb3afd7348461c06cd81fd38ebfda8fbba904f8e3ea9b543f6545da1f2"
            "d5432955613f0fcf62d49705242a9af9e61e85dc0d651e40dfcf017b45575887");
  // The output length follows out.size().
  SecretBytes short_out(32);
  ASSERT_EQ(scrypt(test::to_bytes("password"), test::to_bytes("NaCl"), 1024, 8, 16, short_out),
            Status::kOk);
  EXPECT_EQ(to_hex(short_out.reveal()),
            "fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b373162");
}

TEST(Backend, ScryptRejectsBadParameters) {
  SecretBytes out(32);
  EXPECT_NE(scrypt(test::to_bytes("pin"), test::to_bytes("salt"), 1000, 8, 1, out),
            Status::kOk);  // N not a power of two
  SecretBytes empty;
  EXPECT_NE(scrypt(test::to_bytes("pin"), test::to_bytes("salt"), 16, 1, 1, empty), Status::kOk);
}

// ---------------------------------------------------------------- AES-GCM

struct GcmVector {
  const char* name;
  const char* key;
  const char* iv;
  const char* aad;
  const char* plaintext;
  const char* ciphertext;
  const char* tag;
};

// McGrew and Viega, "The Galois/Counter Mode of Operation (GCM)", the
// test cases also used by NIST's GCM validation (SP 800-38D).
constexpr const char* kMvPlain =
    "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
    "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39";
constexpr const char* kMvAad = "feedfacedeadbeeffeedfacedeadbeefabaddad2";
const GcmVector kGcmVectors[] = {
    {"test case 4 (AES-128, AAD)", "feffe9928665731c6d6a8f9467308308", "cafebabefacedbaddecaf888",
     kMvAad, kMvPlain,
     "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e"
     "21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091",
     "5bc94fbc3221a5db94fae95ae7121a47"},
    {"test case 10 (AES-192, AAD)", "feffe9928665731c6d6a8f9467308308feffe9928665731c",
     "cafebabefacedbaddecaf888", kMvAad, kMvPlain,
     "3980ca0b3c00e841eb06fac4872a2757859e1ceaa6efd984628593b40ca1e19c"
     "7d773d00c144c525ac619d18c84a3f4718e2448b2fe324d9ccda2710",
     "2519498e80f1478f37ba55bd6d27618c"},
    {"test case 13 (AES-256, empty)",
     "0000000000000000000000000000000000000000000000000000000000000000", "000000000000000000000000",
     "", "", "", "530f8afbc74536b9a963b4f1c4cb738b"},
    {"test case 14 (AES-256, one block)",
     "0000000000000000000000000000000000000000000000000000000000000000", "000000000000000000000000",
     "", "00000000000000000000000000000000", "cea7403d4d606b6e074ec5d3baf39d18",
     "d0d1c8a799996bf0265b98b5d48ab919"},
    {"test case 16 (AES-256, AAD)",
     "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308", "cafebabefacedbaddecaf888",
     kMvAad, kMvPlain,
     "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
     "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662",
     "76fc6ece0f4e1768cddf8853bb2d551b"},
};

TEST(Backend, AesGcmKnownAnswers) {
  for (const auto& v : kGcmVectors) {
    SCOPED_TRACE(v.name);
    const Bytes key = from_hex(v.key), iv = from_hex(v.iv), aad = from_hex(v.aad),
                plain = from_hex(v.plaintext);
    Bytes ct, tag;
    ASSERT_EQ(aes_gcm_encrypt(key, iv, aad, plain, ct, tag), Status::kOk);
    EXPECT_EQ(to_hex(ct), v.ciphertext);
    EXPECT_EQ(to_hex(tag), v.tag);
    SecretBytes back;
    ASSERT_EQ(aes_gcm_decrypt(key, iv, aad, from_hex(v.ciphertext), from_hex(v.tag), back),
              Status::kOk);
    EXPECT_EQ(to_hex(back.reveal()), v.plaintext);
  }
}

TEST(Backend, AesGcmRejectsTampering) {
  const GcmVector& v = kGcmVectors[4];
  const Bytes key = from_hex(v.key), iv = from_hex(v.iv), aad = from_hex(v.aad),
              ct = from_hex(v.ciphertext), tag = from_hex(v.tag);
  SecretBytes out;
  for (size_t bit = 0; bit < 128; bit += 9) {
    Bytes bad_tag = tag;
    bad_tag[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
    EXPECT_EQ(aes_gcm_decrypt(key, iv, aad, ct, bad_tag, out), Status::kTagMismatch) << bit;
    EXPECT_TRUE(out.empty());
  }
  Bytes bad_ct = ct;
  bad_ct[10] ^= 0x40;
  EXPECT_EQ(aes_gcm_decrypt(key, iv, aad, bad_ct, tag, out), Status::kTagMismatch);
  EXPECT_TRUE(out.empty());
  Bytes bad_aad = aad;
  bad_aad.back() ^= 1;
  EXPECT_EQ(aes_gcm_decrypt(key, iv, bad_aad, ct, tag, out), Status::kTagMismatch);
  EXPECT_EQ(aes_gcm_decrypt(key, iv, {}, ct, tag, out), Status::kTagMismatch);
  Bytes bad_iv = iv;
  bad_iv[0] ^= 1;
  EXPECT_EQ(aes_gcm_decrypt(key, bad_iv, aad, ct, tag, out), Status::kTagMismatch);
  Bytes bad_key = key;
  bad_key[31] ^= 1;
  EXPECT_EQ(aes_gcm_decrypt(bad_key, iv, aad, ct, tag, out), Status::kTagMismatch);
  EXPECT_EQ(aes_gcm_decrypt(key, iv, aad, Bytes(ct.begin(), ct.end() - 1), tag, out),
            Status::kTagMismatch);
  EXPECT_TRUE(out.empty());
}

TEST(Backend, AesGcmParameterChecks) {
  const Bytes iv(12, 0), tag(16, 0), data(16, 0);
  Bytes ct, t;
  SecretBytes out;
  for (size_t bad_key : {0u, 8u, 15u, 17u, 33u, 64u}) {
    EXPECT_EQ(aes_gcm_encrypt(Bytes(bad_key, 1), iv, {}, data, ct, t), Status::kKeySizeInvalid);
    EXPECT_EQ(aes_gcm_decrypt(Bytes(bad_key, 1), iv, {}, data, tag, out), Status::kKeySizeInvalid);
  }
  for (size_t bad_iv : {0u, 8u, 11u, 13u, 16u}) {
    EXPECT_EQ(aes_gcm_encrypt(Bytes(32, 1), Bytes(bad_iv, 0), {}, data, ct, t),
              Status::kMechanismParamInvalid);
    EXPECT_EQ(aes_gcm_decrypt(Bytes(32, 1), Bytes(bad_iv, 0), {}, data, tag, out),
              Status::kMechanismParamInvalid);
  }
  for (size_t bad_tag : {0u, 4u, 12u, 15u, 17u}) {
    EXPECT_EQ(aes_gcm_decrypt(Bytes(32, 1), iv, {}, data, Bytes(bad_tag, 0), out),
              Status::kMechanismParamInvalid);
  }
}

TEST(Backend, AesGcmMatchesIndependentEncryption) {
  for (size_t key_len : {16u, 24u, 32u}) {
    Bytes key(key_len), iv(12), aad(37), plain(1000);
    ASSERT_EQ(random_bytes(key), Status::kOk);
    ASSERT_EQ(random_bytes(iv), Status::kOk);
    ASSERT_EQ(random_bytes(aad), Status::kOk);
    ASSERT_EQ(random_bytes(plain), Status::kOk);
    Bytes ct, tag;
    ASSERT_EQ(aes_gcm_encrypt(key, iv, aad, plain, ct, tag), Status::kOk);
    Bytes joined = ct;
    joined.insert(joined.end(), tag.begin(), tag.end());
    EXPECT_EQ(joined, ossl::gcm_seal(key, iv, aad, plain)) << key_len;
  }
}

// ---------------------------------------------------------------- DRBG

TEST(Backend, RandomBytes) {
  Bytes a(32), b(32);
  ASSERT_EQ(random_bytes(a), Status::kOk);
  ASSERT_EQ(random_bytes(b), Status::kOk);
  EXPECT_NE(a, b);
  EXPECT_NE(a, Bytes(32, 0));
  EXPECT_EQ(random_bytes(std::span<uint8_t>()), Status::kOk);
}

}  // namespace
}  // namespace ihsm::device::crypto
