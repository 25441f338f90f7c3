// ECDSA verification and ECDH on P-256/384/521, X25519 (RFC 7748) and
// Ed25519 (RFC 8032).
#include <gtest/gtest.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/obj_mac.h>

#include "device/crypto/algorithms.h"
#include "kat_util.h"

namespace ihsm::device::crypto {
namespace {

using namespace ihsm::crypto_test;

struct CurveCase {
  Curve curve;
  const char* name;
  int nid;
  size_t scalar;
};

const CurveCase kCurves[] = {
    {Curve::kP256, "P-256", NID_X9_62_prime256v1, 32},
    {Curve::kP384, "P-384", NID_secp384r1, 48},
    {Curve::kP521, "P-521", NID_secp521r1, 66},
};

// Independent ECDSA: EVP_DigestSign (DER), converted to r || s here.
Bytes ref_sign_raw(EVP_PKEY* key, const char* md, const Bytes& msg, size_t scalar) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  Bytes der(256);
  size_t len = der.size();
  EXPECT_EQ(EVP_DigestSignInit_ex(ctx, nullptr, md, nullptr, nullptr, key, nullptr), 1);
  EXPECT_EQ(EVP_DigestSign(ctx, der.data(), &len, msg.data(), msg.size()), 1);
  EVP_MD_CTX_free(ctx);
  const unsigned char* p = der.data();
  ECDSA_SIG* sig = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(len));
  Bytes raw(2 * scalar);
  BN_bn2binpad(ECDSA_SIG_get0_r(sig), raw.data(), static_cast<int>(scalar));
  BN_bn2binpad(ECDSA_SIG_get0_s(sig), raw.data() + scalar, static_cast<int>(scalar));
  ECDSA_SIG_free(sig);
  return raw;
}

// Independent ECDH with a ready peer key.
Bytes ref_derive(EVP_PKEY* own, EVP_PKEY* peer) {
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_pkey(nullptr, own, nullptr);
  size_t len = 0;
  EXPECT_EQ(EVP_PKEY_derive_init(ctx), 1);
  EXPECT_EQ(EVP_PKEY_derive_set_peer(ctx, peer), 1);
  EXPECT_EQ(EVP_PKEY_derive(ctx, nullptr, &len), 1);
  Bytes z(len);
  EXPECT_EQ(EVP_PKEY_derive(ctx, z.data(), &len), 1);
  EVP_PKEY_CTX_free(ctx);
  z.resize(len);
  return z;
}

// 04 || X || Y -> 02/03 || X.
Bytes compress(const Bytes& point) {
  const size_t n = (point.size() - 1) / 2;
  Bytes c(point.begin(), point.begin() + 1 + static_cast<long>(n));
  c[0] = (point.back() & 1) ? 0x03 : 0x02;
  return c;
}

TEST(Curves, SizesIncludingEdwardsAndMontgomery) {
  EXPECT_EQ(curve_bits(Curve::kEd25519), 255u);
  EXPECT_EQ(curve_bits(Curve::kX25519), 255u);
  EXPECT_EQ(curve_scalar_size(Curve::kEd25519), 32u);
  Pkey key;
  EXPECT_EQ(generate_ec_key(Curve::kEd25519, key), Status::kInvalidArgument);
  EXPECT_EQ(generate_ec_key(Curve::kX25519, key), Status::kInvalidArgument);
}

// ---------------------------------------------------------------- ECDSA

TEST(EcdsaVerify, GoodAndBadSignaturesOnAllCurves) {
  const Bytes msg = text("ecdsa verify test message");
  const std::pair<Mechanism, const char*> hashes[] = {{Mechanism::kEcdsaSha256, "SHA256"},
                                                      {Mechanism::kEcdsaSha384, "SHA384"},
                                                      {Mechanism::kEcdsaSha512, "SHA512"}};
  for (const auto& c : kCurves) {
    SCOPED_TRACE(c.name);
    Pkey key;
    ASSERT_EQ(generate_ec_key(c.curve, key), Status::kOk);
    // A public-only copy, as a verifier would hold it.
    Bytes spki;
    ASSERT_EQ(public_key_der(key.get(), spki), Status::kOk);
    Pkey pub;
    ASSERT_EQ(public_key_from_der(spki, pub), Status::kOk);
    for (const auto& [mech, md] : hashes) {
      SCOPED_TRACE(md);
      Bytes sig;
      ASSERT_EQ(ecdsa_sign(key.get(), c.curve, mech, msg, sig), Status::kOk);
      EXPECT_EQ(ecdsa_verify(pub.get(), c.curve, mech, msg, sig), Status::kOk);
      // A signature made by OpenSSL directly.
      const Bytes ref = ref_sign_raw(key.get(), md, msg, c.scalar);
      EXPECT_EQ(ecdsa_verify(pub.get(), c.curve, mech, msg, ref), Status::kOk);
      // Bad ones.
      for (size_t i : {size_t{0}, c.scalar - 1, c.scalar, 2 * c.scalar - 1}) {
        Bytes bad = sig;
        bad[i] ^= 0x01;
        EXPECT_EQ(ecdsa_verify(pub.get(), c.curve, mech, msg, bad), Status::kSignatureInvalid) << i;
      }
      EXPECT_EQ(ecdsa_verify(pub.get(), c.curve, mech, text("other message"), sig),
                Status::kSignatureInvalid);
      EXPECT_EQ(ecdsa_verify(pub.get(), c.curve, mech, msg, Bytes(sig.begin(), sig.end() - 1)),
                Status::kSignatureInvalid);
      EXPECT_EQ(ecdsa_verify(pub.get(), c.curve, mech, msg, Bytes(2 * c.scalar, 0)),
                Status::kSignatureInvalid);
      EXPECT_EQ(ecdsa_verify(pub.get(), c.curve, mech, msg, Bytes{}), Status::kSignatureInvalid);
    }
    // Raw ECDSA over a caller-supplied digest.
    unsigned char digest[48];
    unsigned int dlen = 0;
    ASSERT_EQ(EVP_Digest(msg.data(), msg.size(), digest, &dlen, EVP_sha384(), nullptr), 1);
    const Bytes d(digest, digest + dlen);
    Bytes sig;
    ASSERT_EQ(ecdsa_sign(key.get(), c.curve, Mechanism::kEcdsa, d, sig), Status::kOk);
    EXPECT_EQ(ecdsa_verify(pub.get(), c.curve, Mechanism::kEcdsa, d, sig), Status::kOk);
    EXPECT_EQ(ecdsa_verify(pub.get(), c.curve, Mechanism::kEcdsaSha384, msg, sig), Status::kOk);
    Bytes other_digest = d;
    other_digest[0] ^= 1;
    EXPECT_EQ(ecdsa_verify(pub.get(), c.curve, Mechanism::kEcdsa, other_digest, sig),
              Status::kSignatureInvalid);
    EXPECT_EQ(ecdsa_verify(pub.get(), c.curve, Mechanism::kEcdsa, Bytes(19, 1), sig),
              Status::kDataLengthInvalid);
    EXPECT_EQ(ecdsa_verify(pub.get(), c.curve, Mechanism::kAesGcm, msg, sig),
              Status::kMechanismInvalid);
  }
}

TEST(EcdsaVerify, KeyMustBeOnTheNamedCurve) {
  Pkey key;
  ASSERT_EQ(generate_ec_key(Curve::kP256, key), Status::kOk);
  Bytes sig;
  ASSERT_EQ(ecdsa_sign(key.get(), Curve::kP256, Mechanism::kEcdsaSha256, text("m"), sig),
            Status::kOk);
  EXPECT_EQ(ecdsa_verify(key.get(), Curve::kP384, Mechanism::kEcdsaSha256, text("m"), sig),
            Status::kKeyTypeMismatch);
  Pkey ed;
  ASSERT_EQ(generate_ed25519_key(ed), Status::kOk);
  EXPECT_EQ(ecdsa_verify(ed.get(), Curve::kP256, Mechanism::kEcdsaSha256, text("m"), sig),
            Status::kKeyTypeMismatch);
}

// ---------------------------------------------------------------- ECDH

TEST(Ecdh, WeierstrassCurvesAgreeWithOpenSsl) {
  for (const auto& c : kCurves) {
    SCOPED_TRACE(c.name);
    Pkey a, b;
    ASSERT_EQ(generate_ec_key(c.curve, a), Status::kOk);
    ASSERT_EQ(generate_ec_key(c.curve, b), Status::kOk);
    Bytes pa, pb;
    ASSERT_EQ(public_point(a.get(), pa), Status::kOk);
    ASSERT_EQ(public_point(b.get(), pb), Status::kOk);
    ASSERT_EQ(pb.size(), 1 + 2 * c.scalar);
    const Bytes expected = ref_derive(a.get(), b.get());
    ASSERT_EQ(expected.size(), c.scalar);

    SecretBytes z1, z2, z3, z4;
    ASSERT_EQ(ecdh_derive(a.get(), pb, z1), Status::kOk);
    ASSERT_EQ(ecdh_derive(b.get(), pa, z2), Status::kOk);
    ASSERT_EQ(ecdh_derive(a.get(), compress(pb), z3), Status::kOk);
    ASSERT_EQ(ecdh(a.get(), c.curve, pb, z4), Status::kOk);  // backend.h's wrapper
    EXPECT_EQ(reveal(z1), expected);
    EXPECT_EQ(reveal(z2), expected);
    EXPECT_EQ(reveal(z3), expected);
    EXPECT_EQ(reveal(z4), expected);
  }
}

TEST(Ecdh, InvalidPeerPointsAreInvalidArgument) {
  Pkey a, b, other;
  ASSERT_EQ(generate_ec_key(Curve::kP256, a), Status::kOk);
  ASSERT_EQ(generate_ec_key(Curve::kP256, b), Status::kOk);
  ASSERT_EQ(generate_ec_key(Curve::kP384, other), Status::kOk);
  Bytes pb, p384;
  ASSERT_EQ(public_point(b.get(), pb), Status::kOk);
  ASSERT_EQ(public_point(other.get(), p384), Status::kOk);

  Bytes off_curve = pb;
  off_curve.back() ^= 0x01;  // y + 1 (or - 1): not on the curve
  Bytes zero_xy(65, 0);
  zero_xy[0] = 0x04;
  Bytes hybrid = pb;
  hybrid[0] = (pb.back() & 1) ? 0x07 : 0x06;
  Bytes bad_prefix = compress(pb);
  bad_prefix[0] = 0x05;
  // An x with no y on P-256: the first small x whose compressed form
  // OpenSSL cannot decode.
  Bytes no_y;
  {
    EC_GROUP* group = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
    EC_POINT* pt = EC_POINT_new(group);
    for (uint8_t x = 1; x < 100 && no_y.empty(); ++x) {
      Bytes cand(33, 0);
      cand[0] = 0x02;
      cand[32] = x;
      if (EC_POINT_oct2point(group, pt, cand.data(), cand.size(), nullptr) != 1) no_y = cand;
    }
    EC_POINT_free(pt);
    EC_GROUP_free(group);
    ERR_clear_error();
  }
  ASSERT_FALSE(no_y.empty());

  const std::pair<const char*, Bytes> cases[] = {
      {"off-curve point", off_curve},
      {"(0, 0)", zero_xy},
      {"point at infinity", Bytes{0x00}},
      {"hybrid encoding", hybrid},
      {"bad prefix", bad_prefix},
      {"compressed x without y", no_y},
      {"P-384 point", p384},
      {"truncated", Bytes(pb.begin(), pb.end() - 1)},
      {"empty", Bytes{}},
  };
  for (const auto& [what, point] : cases) {
    SCOPED_TRACE(what);
    SecretBytes z = SecretBytes::from_string("untouched");
    EXPECT_EQ(ecdh_derive(a.get(), point, z), Status::kInvalidArgument);
    EXPECT_EQ(z.reveal_as_text(), "untouched");
  }
  // backend.h's ecdh: the same checks, and the own key must be on `curve`.
  SecretBytes z;
  EXPECT_EQ(ecdh(a.get(), Curve::kP256, off_curve, z), Status::kInvalidArgument);
  EXPECT_EQ(ecdh(a.get(), Curve::kP384, p384, z), Status::kCryptoFailure);
}

// RFC 7748 section 6.1.
const char* kAlicePriv = "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a";
const char* kAlicePub = "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a";
const char* kBobPriv = "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb";
const char* kBobPub = "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f";
const char* kSharedK = "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742";

Pkey raw_private(int type, const char* hex_key) {
  const Bytes k = hex(hex_key);
  return Pkey(EVP_PKEY_new_raw_private_key(type, nullptr, k.data(), k.size()));
}

TEST(X25519, Rfc7748AliceAndBob) {
  Pkey alice = raw_private(EVP_PKEY_X25519, kAlicePriv);
  Pkey bob = raw_private(EVP_PKEY_X25519, kBobPriv);
  ASSERT_TRUE(alice && bob);
  Bytes pub;
  ASSERT_EQ(raw_public_key(alice.get(), pub), Status::kOk);
  EXPECT_EQ(to_hex(pub), kAlicePub);
  ASSERT_EQ(raw_public_key(bob.get(), pub), Status::kOk);
  EXPECT_EQ(to_hex(pub), kBobPub);
  SecretBytes k1, k2;
  ASSERT_EQ(ecdh_derive(alice.get(), hex(kBobPub), k1), Status::kOk);
  ASSERT_EQ(ecdh_derive(bob.get(), hex(kAlicePub), k2), Status::kOk);
  EXPECT_EQ(to_hex(reveal(k1)), kSharedK);
  EXPECT_EQ(to_hex(reveal(k2)), kSharedK);
}

TEST(X25519, LowOrderAndMalformedPeersAreInvalidArgument) {
  Pkey alice = raw_private(EVP_PKEY_X25519, kAlicePriv);
  ASSERT_TRUE(alice);
  Bytes u1(32, 0);
  u1[0] = 1;  // u = 1: order 4, the shared secret is zero
  const std::pair<const char*, Bytes> cases[] = {
      {"all-zero point", Bytes(32, 0)}, {"u = 1", u1},      {"31 bytes", Bytes(31, 9)},
      {"33 bytes", Bytes(33, 9)},       {"empty", Bytes{}},
  };
  for (const auto& [what, point] : cases) {
    SCOPED_TRACE(what);
    SecretBytes z = SecretBytes::from_string("untouched");
    EXPECT_EQ(ecdh_derive(alice.get(), point, z), Status::kInvalidArgument);
    EXPECT_EQ(z.reveal_as_text(), "untouched");
  }
}

TEST(X25519, GeneratedKeysAgree) {
  Pkey a, b;
  ASSERT_EQ(generate_x25519_key(a), Status::kOk);
  ASSERT_EQ(generate_x25519_key(b), Status::kOk);
  Bytes pa, pb;
  ASSERT_EQ(raw_public_key(a.get(), pa), Status::kOk);
  ASSERT_EQ(raw_public_key(b.get(), pb), Status::kOk);
  SecretBytes z1, z2;
  ASSERT_EQ(ecdh_derive(a.get(), pb, z1), Status::kOk);
  ASSERT_EQ(ecdh_derive(b.get(), pa, z2), Status::kOk);
  EXPECT_EQ(reveal(z1), reveal(z2));
  EXPECT_EQ(reveal(z1), ref_derive(a.get(), b.get()));
  EXPECT_EQ(z1.size(), 32u);
}

// ---------------------------------------------------------------- Ed25519

struct EdKat {
  const char* name;
  const char* secret;
  const char* pub;
  const char* message;
  const char* signature;
};

// RFC 8032 section 7.1, TEST 1-3.
const EdKat kRfc8032[] = {
    {"TEST 1", "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
     "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
     "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b"
     "46bd25bf5f0595bbe24655141438e7a100b"},
    {"TEST 2", "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
     "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
     "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11"
     "d8c387b2eaeb4302aeeb00d291612bb0c00"},
    {"TEST 3", "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
     "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025", "af82",
     "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc"
     "6594a7c15e9716ed28dc027beceea1ec40a"},
};

TEST(Ed25519, Rfc8032) {
  for (const auto& k : kRfc8032) {
    SCOPED_TRACE(k.name);
    Pkey key = raw_private(EVP_PKEY_ED25519, k.secret);
    ASSERT_TRUE(key);
    Bytes pub;
    ASSERT_EQ(raw_public_key(key.get(), pub), Status::kOk);
    EXPECT_EQ(to_hex(pub), k.pub);
    const Bytes msg = hex(k.message);
    Bytes sig;
    ASSERT_EQ(ed25519_sign(key.get(), msg, sig), Status::kOk);
    EXPECT_EQ(to_hex(sig), k.signature);

    // Verify with only the published public key.
    const Bytes pub_bytes = hex(k.pub);
    Pkey pub_key(
        EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, pub_bytes.data(), pub_bytes.size()));
    ASSERT_TRUE(pub_key);
    EXPECT_EQ(ed25519_verify(pub_key.get(), msg, hex(k.signature)), Status::kOk);
    Bytes bad = hex(k.signature);
    bad[0] ^= 0x01;
    EXPECT_EQ(ed25519_verify(pub_key.get(), msg, bad), Status::kSignatureInvalid);
    bad = hex(k.signature);
    bad[63] ^= 0x40;
    EXPECT_EQ(ed25519_verify(pub_key.get(), msg, bad), Status::kSignatureInvalid);
    EXPECT_EQ(ed25519_verify(pub_key.get(), concat({msg, Bytes{0}}), hex(k.signature)),
              Status::kSignatureInvalid);
    EXPECT_EQ(ed25519_verify(pub_key.get(), msg, Bytes(63, 0)), Status::kSignatureInvalid);
    EXPECT_EQ(ed25519_verify(pub_key.get(), msg, Bytes{}), Status::kSignatureInvalid);
  }
}

TEST(Ed25519, GeneratedKeyVerifiesIndependently) {
  Pkey key;
  ASSERT_EQ(generate_ed25519_key(key), Status::kOk);
  const Bytes msg = text("generated ed25519 key");
  Bytes sig, pub;
  ASSERT_EQ(ed25519_sign(key.get(), msg, sig), Status::kOk);
  ASSERT_EQ(raw_public_key(key.get(), pub), Status::kOk);
  Pkey pub_key(EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, pub.data(), pub.size()));
  ASSERT_TRUE(pub_key);
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  ASSERT_EQ(EVP_DigestVerifyInit(ctx, nullptr, nullptr, nullptr, pub_key.get()), 1);
  EXPECT_EQ(EVP_DigestVerify(ctx, sig.data(), sig.size(), msg.data(), msg.size()), 1);
  EVP_MD_CTX_free(ctx);
  // Ed25519 is deterministic.
  Bytes again;
  ASSERT_EQ(ed25519_sign(key.get(), msg, again), Status::kOk);
  EXPECT_EQ(sig, again);
}

TEST(Edwards, KeyTypeMismatches) {
  Pkey ed, x, ec;
  ASSERT_EQ(generate_ed25519_key(ed), Status::kOk);
  ASSERT_EQ(generate_x25519_key(x), Status::kOk);
  ASSERT_EQ(generate_ec_key(Curve::kP256, ec), Status::kOk);
  Bytes sig, pub;
  SecretBytes z;
  EXPECT_EQ(ed25519_sign(x.get(), text("m"), sig), Status::kKeyTypeMismatch);
  EXPECT_EQ(ed25519_sign(ec.get(), text("m"), sig), Status::kKeyTypeMismatch);
  EXPECT_EQ(ed25519_verify(x.get(), text("m"), Bytes(64, 0)), Status::kKeyTypeMismatch);
  EXPECT_EQ(raw_public_key(ec.get(), pub), Status::kKeyTypeMismatch);
  EXPECT_EQ(ecdh_derive(ed.get(), Bytes(32, 9), z), Status::kKeyTypeMismatch);
}

}  // namespace
}  // namespace ihsm::device::crypto
