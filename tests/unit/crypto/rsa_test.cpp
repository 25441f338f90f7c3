// RSA: key generation, PKCS#1 v1.5 and PSS signatures (checked against
// OpenSSL's EVP_DigestVerify used directly), a deterministic PKCS#1 v1.5
// known answer, and OAEP (including a ciphertext made by the openssl CLI).
#include <gtest/gtest.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "device/crypto/algorithms.h"
#include "kat_util.h"

namespace ihsm::device::crypto {
namespace {

using namespace ihsm::crypto_test;

// TEST VECTOR ONLY - not a key of any deployment. An RSA-2048 key made
// with `openssl genrsa 2048` (OpenSSL 3.0) for the known answers below.
const char* kTestKeyPem = R"(
-----BEGIN PRIVATE KEY-----
MIIEvAIBADANBgkqhkiG9w0BAQEFAASCBKYwggSiAgEAAoIBAQCzYNXMVOf3Zcf6
qzvzuLKnMyZwkOoDqqr/jjFPKfn7W/6jgsktPZdgdSDX/xdU84vdsba9ryivsqL6
XaLwh0Z6mdThnsYBrgHcJ4F0PKR2y5o3T5AdYmumcx5NJ6inEjAaCrygbz5GqTpZ
950ly2BUCSIw1DEaEREMVsRKQO+ydwzLiSfphzVDNajoRpRvi9e13pw/J+1JljcI
SBxbitt89kToJCYegE7h2173PZNC5I/kwRHq254OzPkwLfkdImJYIYmJrJqdeMOs
Ld8mUCCxUOiDIWbjo5E299tPBQcbqGzpdoMHEcChD2UzSOx5S00RRg+e0FI5H4P/
SGhaqSRZAgMBAAECggEAAjeOLOpXu50MbbK0GP0NaDefoACKg+UWG/Z78YiJSGwI
p6i0J9T9C/omn8TNWwVvkxvhMFL748AHd6S0oNhrLJS+JtO5isfFyhzK4s7lEXrO
uyRGmbZfsjz2AOoekYIOCiRb1HfLg0AQMpB25sKuvBsoywW0XagcV9SytGA9Fi2R
NNNdAf6+pcHgppWt93OCEVBJd8XR1L7a21Isi8cSW+JJMbUJv3rKkumbeVGEeeL/
TG7Ul6Kvvmuz4W/sxf1OHVH5BKj1vX0uRanOCTnzXIUrF9+tMH6Eij0DUP0MCvoH
qvS8LfDQ2kbTgj+P2MLq6A1nLmIlH8ABK2LT6y4JaQKBgQDXri6kFtLvO4LS5lVW
28JfEv5fqQaTH7dwNNZ/LjLtTncLfFtkDDIfWHL6V5X6WKSzoph2ht0N7MKU8tT4
8avANjb707yk4PclzQTfr4cAzllpyQH9bAUlUjFdWJgyL1oQnbRSmZVCnRGojp8C
cPr+QQ4W2C31DuMH9n2dOn2g4wKBgQDU6VdoNqdtsZE0rSMAidblusiaHkG250h2
fmqz8q3aSNdgnQO3KYXLIGwQQw4P8BrS9QB18xOeUkFJ9p0zZZd4N2FH+tfQTPdD
Nv9f2WWzBEzzVgH/2lGcU4iv5eAuCp+ylPRl8UfG/mddfSKdckPFV2PULoLqJ/u4
Rr0bZljWkwKBgCN63udVbdu3AX1qMK26Nw5m1HuuFYvMUuPdfU+srOoG12SHT410
yCYJ6dgu4lgtjuKSI9yTsPeidBwGmmxdbTCQepkQqt7At0d7o4qcmGvUhjb1vyMO
SwZpr/84HMlcqsdC+jAAXeJ4bjg5RgUjytZao1O0ulKu4UAlF2LvBU2bAoGAW1Z7
M+72Zr2dcH6yHGIFueomcs92G5Qe5w6WkfoTESjclMrnNCVxC1Iuac+KcdXsfAG1
H+SWzv20mplcmRcFIwKHDk0TVn4eOUyXw7PMyD6ZEG8eTneHOUwwwF0ajkXqer8i
FbWruDedemLbfbXuUvOJlRYa/X8Houdd6yo+BFcCgYBCdIjQobe+WT8KXID2TVp4
BqaQUWFSBrPKaRA7XsNWAw6RXd0vKMtZfSGmtqiWZSJ5gkWx68TfuOTC4ZSe1ceO
1XpJ+VSRrCcYmsUwTzIPEpHDvugkdMqXDz8MS6a93ga/aiKESxsNp/qaheUkIFf5
2t5DrisI31zUhYdXAXgCEw==
-----END PRIVATE KEY-----
)";

// `printf 'ihsm RSA known-answer message' | openssl dgst -sha256 -sign key.pem`
// (PKCS#1 v1.5 padding is deterministic).
const char* kKatMessage = "ihsm RSA known-answer message";
const char* kKatSignature =
    "652c4c0e1fde12ebb2e3d92240c9987ceab8cc2eb4ab7978d670e4d0ff56a95b"
    "7b67814b084ce213e4df00361310ac4bb107d9c9061914f27f064e7eb3f0f4f2"
    "086ee05e21b7a1877cf5b7d84bb28e05c64852765579ebc6fd79784aeb5a4aef"
    "3f67c01776dbfcaa407caade3c0665a4dd802324d0626b59a1f878911d083a7b"
    "ff0604fc30e24e18fa1205e91cc4adf07e20fafb3ea85523dcf3f573bcf53f4d"
    "a850c96bc84798adfbaf273b71a18e7bd3ad49c284a14aa4c33f58a9e3d7245b"
    "3c05d4e183af6d9f6f9cba2da24fc9967705f864aad6c896620e4bc950b65822"
    "99d11313777273c5b1a7dd5cc94ca8192a2995cf39bf409d65340f888c39f0e7";

// `printf 'OAEP plaintext for ihsm' | openssl pkeyutl -encrypt -pubin -inkey pub.pem
//   -pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha256
//   -pkeyopt rsa_mgf1_md:sha256 -pkeyopt rsa_oaep_label:6c6162656c` (label "label").
const char* kOaepPlain = "OAEP plaintext for ihsm";
const char* kOaepCiphertext =
    "7cf6bb08719ffc96ced6a205c777a73fa87f59fa9b3b172283ffb2aeda8bd962"
    "26bbd93a19226b6ae5065913fa661a309eaf9bdd2333456fce761277cc2036f5"
    "da2756f1a67944e06ac96689871dc8b3ef230a979f1a2a6d56dea7cc5a4a4016"
    "2f168f62c451b608f0f89ae49817eb91c705e3e439f5c5811d48399b39a25734"
    "7140d6ce8a66c54fc07420f9a343abb83479bfff843715e07c9591dd27e9d267"
    "71338e3621dc18c00262e1e24f61f8c0bf712ddee40b298c7221c23bd3f6bfcf"
    "da1fd22f74b184eeb1e00b8147ed14702f8111cb0906458a3cfe203e26d0dba4"
    "f4409644691b49acd2bed00b06ca11b02dfd9e63df63325354523d8ae3353606";

Pkey load_test_key() {
  BIO* bio = BIO_new_mem_buf(kTestKeyPem, -1);
  Pkey key(PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr));
  BIO_free(bio);
  return key;
}

const char* md_name(Hash h) {
  switch (h) {
    case Hash::kSha1:
      return "SHA1";
    case Hash::kSha224:
      return "SHA224";
    case Hash::kSha256:
      return "SHA256";
    case Hash::kSha384:
      return "SHA384";
    case Hash::kSha512:
      return "SHA512";
  }
  return "";
}

// Independent check: EVP_DigestVerify over the message, configured here.
bool ref_verify(EVP_PKEY* key, const RsaSignParams& p, const Bytes& message, const Bytes& sig) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_PKEY_CTX* pctx = nullptr;
  bool good =
      EVP_DigestVerifyInit_ex(ctx, &pctx, md_name(p.hash), nullptr, nullptr, key, nullptr) == 1;
  if (good && p.padding == RsaPadding::kPss) {
    good = EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1 &&
           EVP_PKEY_CTX_set_rsa_mgf1_md_name(pctx, md_name(p.mgf1), nullptr) == 1 &&
           EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, static_cast<int>(p.salt_length)) == 1;
  } else if (good) {
    good = EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) == 1;
  }
  good = good && EVP_DigestVerify(ctx, sig.data(), sig.size(), message.data(), message.size()) == 1;
  EVP_MD_CTX_free(ctx);
  return good;
}

Bytes sha(Hash h, const Bytes& m) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(m.data(), m.size(), out, &len, EVP_get_digestbyname(md_name(h)), nullptr);
  return Bytes(out, out + len);
}

TEST(Rsa, KeyGenerationSizes) {
  Pkey key;
  for (uint32_t bits : {0u, 512u, 1024u, 2047u, 2049u, 8192u}) {
    EXPECT_EQ(generate_rsa_key(bits, key), Status::kKeySizeInvalid) << bits;
  }
  EXPECT_FALSE(key);
  for (uint32_t bits : {2048u, 3072u, 4096u}) {
    ASSERT_EQ(generate_rsa_key(bits, key), Status::kOk) << bits;
    EXPECT_EQ(rsa_bits(key.get()), bits);
    BIGNUM* e = nullptr;
    ASSERT_EQ(EVP_PKEY_get_bn_param(key.get(), OSSL_PKEY_PARAM_RSA_E, &e), 1);
    EXPECT_EQ(BN_get_word(e), 65537u);
    BN_free(e);
    // The generated key signs; OpenSSL verifies it independently.
    RsaSignParams p;
    Bytes sig;
    ASSERT_EQ(rsa_sign(key.get(), p, text("fresh key"), sig), Status::kOk);
    EXPECT_EQ(sig.size(), bits / 8);
    EXPECT_TRUE(ref_verify(key.get(), p, text("fresh key"), sig));
  }
}

TEST(Rsa, Pkcs1KnownAnswer) {
  Pkey key = load_test_key();
  ASSERT_TRUE(key);
  EXPECT_EQ(rsa_bits(key.get()), 2048u);
  RsaSignParams p;  // PKCS#1 v1.5, SHA-256, message input
  Bytes sig;
  ASSERT_EQ(rsa_sign(key.get(), p, text(kKatMessage), sig), Status::kOk);
  EXPECT_EQ(to_hex(sig), kKatSignature);
  // The same signature from the digest.
  p.hash_input = false;
  ASSERT_EQ(rsa_sign(key.get(), p, sha(Hash::kSha256, text(kKatMessage)), sig), Status::kOk);
  EXPECT_EQ(to_hex(sig), kKatSignature);
  EXPECT_EQ(rsa_verify(key.get(), p, sha(Hash::kSha256, text(kKatMessage)), hex(kKatSignature)),
            Status::kOk);
  p.hash_input = true;
  EXPECT_EQ(rsa_verify(key.get(), p, text(kKatMessage), hex(kKatSignature)), Status::kOk);
  Bytes bad = hex(kKatSignature);
  bad[100] ^= 0x10;
  EXPECT_EQ(rsa_verify(key.get(), p, text(kKatMessage), bad), Status::kSignatureInvalid);
}

TEST(Rsa, SignaturesVerifyIndependently) {
  Pkey key = load_test_key();
  ASSERT_TRUE(key);
  const Bytes message = text("the quick brown fox jumps over the lazy dog");
  for (RsaPadding pad : {RsaPadding::kPkcs1, RsaPadding::kPss}) {
    for (Hash h : {Hash::kSha256, Hash::kSha384, Hash::kSha512}) {
      for (bool hash_input : {true, false}) {
        RsaSignParams p;
        p.padding = pad;
        p.hash = h;
        p.mgf1 = h;
        p.salt_length = static_cast<uint32_t>(hash_size(h));
        p.hash_input = hash_input;
        SCOPED_TRACE(std::string(md_name(h)) + (pad == RsaPadding::kPss ? " PSS" : " PKCS1") +
                     (hash_input ? " message" : " digest"));
        const Bytes data = hash_input ? message : sha(h, message);
        Bytes sig;
        ASSERT_EQ(rsa_sign(key.get(), p, data, sig), Status::kOk);
        ASSERT_EQ(sig.size(), 256u);
        EXPECT_TRUE(ref_verify(key.get(), p, message, sig));
        EXPECT_EQ(rsa_verify(key.get(), p, data, sig), Status::kOk);
        Bytes bad = sig;
        bad[7] ^= 1;
        EXPECT_FALSE(ref_verify(key.get(), p, message, bad));
        EXPECT_EQ(rsa_verify(key.get(), p, data, bad), Status::kSignatureInvalid);
        const Bytes other = hash_input ? text("other") : sha(h, text("other"));
        EXPECT_EQ(rsa_verify(key.get(), p, other, sig), Status::kSignatureInvalid);
        // The other padding does not accept it.
        RsaSignParams q = p;
        q.padding = pad == RsaPadding::kPss ? RsaPadding::kPkcs1 : RsaPadding::kPss;
        EXPECT_EQ(rsa_verify(key.get(), q, data, sig), Status::kSignatureInvalid);
      }
    }
  }
}

TEST(Rsa, PssSaltLengthsAndMgf1) {
  Pkey key = load_test_key();
  ASSERT_TRUE(key);
  const Bytes message = text("pss parameters");
  // 2048-bit modulus: emLen 256, so SHA-256 allows salts up to 222 bytes.
  for (uint32_t salt : {0u, 20u, 32u, 64u, 222u}) {
    RsaSignParams p;
    p.padding = RsaPadding::kPss;
    p.hash = Hash::kSha256;
    p.mgf1 = Hash::kSha512;
    p.salt_length = salt;
    SCOPED_TRACE(salt);
    Bytes sig;
    ASSERT_EQ(rsa_sign(key.get(), p, message, sig), Status::kOk);
    EXPECT_TRUE(ref_verify(key.get(), p, message, sig));
    EXPECT_EQ(rsa_verify(key.get(), p, message, sig), Status::kOk);
    RsaSignParams other_mgf = p;
    other_mgf.mgf1 = Hash::kSha256;
    EXPECT_EQ(rsa_verify(key.get(), other_mgf, message, sig), Status::kSignatureInvalid);
    if (salt > 0) {
      Bytes sig2;
      ASSERT_EQ(rsa_sign(key.get(), p, message, sig2), Status::kOk);
      EXPECT_NE(sig, sig2);  // salted: randomised
    }
  }
  RsaSignParams p;
  p.padding = RsaPadding::kPss;
  p.salt_length = 223;
  Bytes sig;
  EXPECT_EQ(rsa_sign(key.get(), p, message, sig), Status::kMechanismParamInvalid);
  p.hash = Hash::kSha512;
  p.salt_length = 191;  // 256 - 64 - 2 = 190
  EXPECT_EQ(rsa_sign(key.get(), p, message, sig), Status::kMechanismParamInvalid);
  p.salt_length = 0xFFFFFFFFu;
  EXPECT_EQ(rsa_sign(key.get(), p, message, sig), Status::kMechanismParamInvalid);
}

TEST(Rsa, SignErrors) {
  Pkey key = load_test_key();
  ASSERT_TRUE(key);
  RsaSignParams p;
  p.hash_input = false;
  Bytes sig;
  EXPECT_EQ(rsa_sign(key.get(), p, Bytes(31, 0), sig), Status::kDataLengthInvalid);
  EXPECT_EQ(rsa_sign(key.get(), p, Bytes(48, 0), sig), Status::kDataLengthInvalid);
  EXPECT_EQ(rsa_verify(key.get(), p, Bytes(20, 0), Bytes(256, 0)), Status::kDataLengthInvalid);
  p.hash_input = true;
  EXPECT_EQ(rsa_verify(key.get(), p, text("x"), Bytes(255, 0)), Status::kSignatureInvalid);
  EXPECT_EQ(rsa_verify(key.get(), p, text("x"), Bytes{}), Status::kSignatureInvalid);
  p.hash = static_cast<Hash>(42);
  EXPECT_EQ(rsa_sign(key.get(), p, text("x"), sig), Status::kMechanismParamInvalid);
  Pkey ec;
  ASSERT_EQ(generate_ec_key(Curve::kP256, ec), Status::kOk);
  EXPECT_EQ(rsa_sign(ec.get(), RsaSignParams{}, text("x"), sig), Status::kKeyTypeMismatch);
  EXPECT_EQ(rsa_verify(ec.get(), RsaSignParams{}, text("x"), Bytes(64, 0)),
            Status::kKeyTypeMismatch);
  EXPECT_EQ(rsa_bits(ec.get()), 0u);
}

// ---------------------------------------------------------------- OAEP

OaepParams label_params() {
  OaepParams p;
  p.label = text("label");
  return p;
}

TEST(RsaOaep, DecryptsOpenSslCliCiphertext) {
  Pkey key = load_test_key();
  ASSERT_TRUE(key);
  SecretBytes out;
  ASSERT_EQ(rsa_oaep_decrypt(key.get(), label_params(), hex(kOaepCiphertext), out), Status::kOk);
  EXPECT_EQ(reveal(out), text(kOaepPlain));
}

TEST(RsaOaep, EveryFailureIsCiphertextInvalidAndClearsOutput) {
  Pkey key = load_test_key();
  ASSERT_TRUE(key);
  const Bytes ct = hex(kOaepCiphertext);
  OaepParams wrong_label = label_params();
  wrong_label.label = text("lab3l");
  OaepParams no_label;
  OaepParams wrong_hash = label_params();
  wrong_hash.hash = Hash::kSha384;
  OaepParams wrong_mgf = label_params();
  wrong_mgf.mgf1 = Hash::kSha1;
  Bytes flipped_first = ct, flipped_middle = ct, flipped_last = ct;
  flipped_first[0] ^= 0x01;
  flipped_middle[128] ^= 0x40;
  flipped_last[255] ^= 0x80;
  const struct {
    const char* what;
    OaepParams p;
    Bytes ct;
  } cases[] = {
      {"wrong label", wrong_label, ct},
      {"no label", no_label, ct},
      {"wrong hash", wrong_hash, ct},
      {"wrong mgf1", wrong_mgf, ct},
      {"corrupted first byte", label_params(), flipped_first},
      {"corrupted middle", label_params(), flipped_middle},
      {"corrupted last byte", label_params(), flipped_last},
      {"short", label_params(), Bytes(ct.begin(), ct.end() - 1)},
      {"long", label_params(), concat({ct, Bytes{0}})},
      {"empty", label_params(), Bytes{}},
      {"not below the modulus", label_params(), Bytes(256, 0xff)},
      {"zero", label_params(), Bytes(256, 0)},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    ERR_clear_error();
    SecretBytes out = SecretBytes::from_string("previous contents");
    EXPECT_EQ(rsa_oaep_decrypt(key.get(), c.p, c.ct, out), Status::kCiphertextInvalid);
    EXPECT_TRUE(out.empty());
    EXPECT_EQ(ERR_peek_error(), 0u);  // nothing left behind to tell causes apart
  }
}

TEST(RsaOaep, RoundTripsAndIndependentDecrypt) {
  Pkey key = load_test_key();
  ASSERT_TRUE(key);
  for (Hash h : {Hash::kSha1, Hash::kSha256, Hash::kSha384, Hash::kSha512}) {
    for (Hash mgf : {Hash::kSha1, Hash::kSha256}) {
      SCOPED_TRACE(std::string(md_name(h)) + "/" + md_name(mgf));
      OaepParams p;
      p.hash = h;
      p.mgf1 = mgf;
      p.label = text("a label");
      const size_t max = 256 - 2 * hash_size(h) - 2;
      for (size_t n : {size_t{0}, size_t{1}, size_t{32}, max}) {
        Bytes plain(n, 0x5a);
        Bytes ct;
        ASSERT_EQ(rsa_oaep_encrypt(key.get(), p, plain, ct), Status::kOk);
        ASSERT_EQ(ct.size(), 256u);
        SecretBytes back;
        ASSERT_EQ(rsa_oaep_decrypt(key.get(), p, ct, back), Status::kOk);
        EXPECT_EQ(reveal(back), plain);

        // OpenSSL, configured here, decrypts it too.
        EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_pkey(nullptr, key.get(), nullptr);
        ASSERT_NE(ctx, nullptr);
        ASSERT_EQ(EVP_PKEY_decrypt_init(ctx), 1);
        ASSERT_EQ(EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING), 1);
        ASSERT_EQ(EVP_PKEY_CTX_set_rsa_oaep_md_name(ctx, md_name(h), nullptr), 1);
        ASSERT_EQ(EVP_PKEY_CTX_set_rsa_mgf1_md_name(ctx, md_name(mgf), nullptr), 1);
        void* label = OPENSSL_memdup(p.label.data(), p.label.size());
        ASSERT_EQ(EVP_PKEY_CTX_set0_rsa_oaep_label(ctx, label, static_cast<int>(p.label.size())),
                  1);
        Bytes ref(256);
        size_t len = ref.size();
        EXPECT_EQ(EVP_PKEY_decrypt(ctx, ref.data(), &len, ct.data(), ct.size()), 1);
        EVP_PKEY_CTX_free(ctx);
        ref.resize(len);
        EXPECT_EQ(ref, plain);
      }
      Bytes ct;
      EXPECT_EQ(rsa_oaep_encrypt(key.get(), p, Bytes(max + 1, 0), ct), Status::kDataLengthInvalid);
    }
  }
}

TEST(RsaOaep, ParameterErrors) {
  Pkey key = load_test_key();
  ASSERT_TRUE(key);
  OaepParams p;
  p.hash = static_cast<Hash>(7);
  Bytes ct;
  SecretBytes out;
  EXPECT_EQ(rsa_oaep_encrypt(key.get(), p, text("x"), ct), Status::kMechanismParamInvalid);
  EXPECT_EQ(rsa_oaep_decrypt(key.get(), p, Bytes(256, 1), out), Status::kMechanismParamInvalid);
  Pkey ec;
  ASSERT_EQ(generate_ec_key(Curve::kP384, ec), Status::kOk);
  EXPECT_EQ(rsa_oaep_encrypt(ec.get(), OaepParams{}, text("x"), ct), Status::kKeyTypeMismatch);
  EXPECT_EQ(rsa_oaep_decrypt(ec.get(), OaepParams{}, Bytes(96, 1), out), Status::kKeyTypeMismatch);
}

}  // namespace
}  // namespace ihsm::device::crypto
