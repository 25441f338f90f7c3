// Keys through libihsm: generation, ECDSA verified with independent
// OpenSSL code, AES-GCM, usage flags, lookup, destruction, and who can
// see a key.
#include <gtest/gtest.h>

#include <set>

#include "integration/lib_fixture.h"
#include "support/ossl.h"

namespace ihsm::test {
namespace {

class LibKeys : public LibSessionTest {
 protected:
  std::string partition_name() const override { return "keys"; }
};

struct CurveCase {
  Curve curve;
  const char* group;
  uint32_t bits;
  size_t half;
};
const CurveCase kCurves[] = {{Curve::kP256, "prime256v1", 256, 32},
                             {Curve::kP384, "secp384r1", 384, 48},
                             {Curve::kP521, "secp521r1", 521, 66}};

TEST_F(LibKeys, EcdsaOnEveryCurveVerifiesWithOpenSsl) {
  const Bytes message = to_bytes("attack at dawn - signed inside the device");
  for (const auto& c : kCurves) {
    SCOPED_TRACE(c.group);
    auto pair = s().generate_ec_key_pair(c.curve, verify_public("pub"), sign_private("priv"));
    ASSERT_OK(pair);
    EXPECT_NE(pair->public_handle, pair->private_handle);
    auto spki = s().public_key(pair->public_handle);
    ASSERT_OK(spki);
    auto key = ossl::load_spki(*spki);
    ASSERT_TRUE(key) << "public_key() is not a DER SPKI";
    EXPECT_EQ(ossl::group_of(key.get()), c.group);
    // The private handle reports the same public key.
    auto spki_from_private = s().public_key(pair->private_handle);
    ASSERT_OK(spki_from_private);
    EXPECT_EQ(*spki_from_private, *spki);

    const struct {
      Mechanism mechanism;
      const EVP_MD* md;
    } hashes[] = {{Mechanism::kEcdsaSha256, EVP_sha256()},
                  {Mechanism::kEcdsaSha384, EVP_sha384()},
                  {Mechanism::kEcdsaSha512, EVP_sha512()}};
    for (const auto& h : hashes) {
      auto sig = s().sign(pair->private_handle, h.mechanism, message);
      ASSERT_OK(sig);
      EXPECT_EQ(sig->size(), 2 * c.half);
      EXPECT_TRUE(ossl::verify_ecdsa_raw(*spki, h.md, message, *sig))
          << mechanism_name(h.mechanism);
      Bytes tampered = message;
      tampered.back() ^= 1;
      EXPECT_FALSE(ossl::verify_ecdsa_raw(*spki, h.md, tampered, *sig));
      EXPECT_TRUE(s().last_approved());
      // ECDSA is randomised: two signatures differ, both verify.
      auto again = s().sign(pair->private_handle, h.mechanism, message);
      ASSERT_OK(again);
      EXPECT_NE(*again, *sig);
      EXPECT_TRUE(ossl::verify_ecdsa_raw(*spki, h.md, message, *again));
    }
    // Caller-supplied digests.
    for (const EVP_MD* md : {EVP_sha256(), EVP_sha384(), EVP_sha512()}) {
      const Bytes digest = ossl::digest(md, message);
      auto sig = s().sign(pair->private_handle, Mechanism::kEcdsa, digest);
      ASSERT_OK(sig);
      EXPECT_TRUE(ossl::verify_ecdsa_raw(*spki, nullptr, digest, *sig));
      EXPECT_TRUE(ossl::verify_ecdsa_raw(*spki, md, message, *sig));
      EXPECT_TRUE(s().last_approved());
    }
    // Large input to hash-then-sign.
    const Bytes big(512 * 1024, 0x5c);
    auto big_sig = s().sign(pair->private_handle, Mechanism::kEcdsaSha384, big);
    ASSERT_OK(big_sig);
    EXPECT_TRUE(ossl::verify_ecdsa_raw(*spki, EVP_sha384(), big, *big_sig));
  }
}

TEST_F(LibKeys, EcdsaDigestLengthsAndApproval) {
  auto pair = s().generate_ec_key_pair(Curve::kP256, verify_public(), sign_private());
  ASSERT_OK(pair);
  auto spki = s().public_key(pair->public_handle);
  ASSERT_OK(spki);
  // SHA-1-sized digest: signed, but not an approved service.
  const Bytes sha1_sized(20, 0x11);
  auto sig = s().sign(pair->private_handle, Mechanism::kEcdsa, sha1_sized);
  ASSERT_OK(sig);
  EXPECT_TRUE(ossl::verify_ecdsa_raw(*spki, nullptr, sha1_sized, *sig));
  EXPECT_FALSE(s().last_approved());
  EXPECT_OK(s().sign(pair->private_handle, Mechanism::kEcdsa, Bytes(64, 0x22)));
  EXPECT_TRUE(s().last_approved());
  EXPECT_STATUS(s().sign(pair->private_handle, Mechanism::kEcdsa, Bytes(19, 1)),
                Status::kDataLengthInvalid);
  EXPECT_STATUS(s().sign(pair->private_handle, Mechanism::kEcdsa, Bytes(65, 1)),
                Status::kDataLengthInvalid);
  EXPECT_STATUS(s().sign(pair->private_handle, Mechanism::kAesGcm, Bytes(32, 1)),
                Status::kMechanismInvalid);
}

TEST_F(LibKeys, KeyInfoAndTemplates) {
  const Bytes id = {0xca, 0xfe, 0x01};
  auto pair = s().generate_ec_key_pair(Curve::kP384, tmpl(usage::kVerify, "pub-label", id),
                                       tmpl(usage::kSign | usage::kSensitive, "priv-label", id));
  ASSERT_OK(pair);
  auto pub = s().key_info(pair->public_handle);
  auto priv = s().key_info(pair->private_handle);
  ASSERT_OK(pub);
  ASSERT_OK(priv);
  EXPECT_EQ(pub->handle, pair->public_handle);
  EXPECT_EQ(pub->object_class, ObjectClass::kPublicKey);
  EXPECT_EQ(priv->object_class, ObjectClass::kPrivateKey);
  EXPECT_EQ(pub->key_type, KeyType::kEc);
  EXPECT_EQ(pub->key_bits, 384u);
  EXPECT_EQ(pub->curve, Curve::kP384);
  EXPECT_EQ(pub->label, "pub-label");
  EXPECT_EQ(priv->label, "priv-label");
  EXPECT_EQ(pub->id, id);
  EXPECT_EQ(caller_bits(pub->flags), usage::kVerify);
  EXPECT_EQ(caller_bits(priv->flags), usage::kSign | usage::kSensitive);
  EXPECT_TRUE(priv->local);
  EXPECT_EQ(pub->pair_handle, pair->private_handle);
  EXPECT_EQ(priv->pair_handle, pair->public_handle);

  for (uint32_t bits : {128u, 192u, 256u}) {
    auto k = s().generate_aes_key(bits, aes_flags("aes"));
    ASSERT_OK(k) << bits;
    auto info = s().key_info(*k);
    ASSERT_OK(info);
    EXPECT_EQ(info->object_class, ObjectClass::kSecretKey);
    EXPECT_EQ(info->key_type, KeyType::kAes);
    EXPECT_EQ(info->key_bits, bits);
    EXPECT_FALSE(info->curve.has_value());
    EXPECT_EQ(info->pair_handle, 0u);
    // Secret keys have no public half to give out.
    EXPECT_STATUS(s().public_key(*k), Status::kKeyTypeMismatch);
  }
  for (uint32_t bits : {0u, 64u, 127u, 512u}) {
    EXPECT_STATUS(s().generate_aes_key(bits, aes_flags()), Status::kKeySizeInvalid) << bits;
  }
  // Flags a key kind cannot carry.
  EXPECT_STATUS(s().generate_ec_key_pair(Curve::kP256, tmpl(usage::kSign), sign_private()),
                Status::kAttributeInvalid);
  EXPECT_STATUS(
      s().generate_ec_key_pair(Curve::kP256, verify_public(), tmpl(usage::kSign | usage::kEncrypt)),
      Status::kAttributeInvalid);
  // Oversized label and id.
  EXPECT_STATUS(s().generate_aes_key(128, tmpl(usage::kEncrypt, std::string(129, 'l'))),
                Status::kFieldTooLarge);
  EXPECT_STATUS(s().generate_aes_key(128, tmpl(usage::kEncrypt, "", Bytes(65, 1))),
                Status::kFieldTooLarge);
  EXPECT_OK(s().generate_aes_key(128, tmpl(usage::kEncrypt, std::string(128, 'l'), Bytes(64, 1))));
}

TEST_F(LibKeys, DefaultTemplatesGiveTheDocumentedDefaults) {
  // docs/protocol.md: absent flags take the defaults (AES: encrypt,
  // decrypt, sensitive; EC private: sign, sensitive; EC public: verify).
  auto aes = s().generate_aes_key(128, KeyTemplate{});
  ASSERT_OK(aes);
  EXPECT_EQ(caller_bits(s().key_info(*aes)->flags),
            usage::kEncrypt | usage::kDecrypt | usage::kSensitive);
  auto pair = s().generate_ec_key_pair(Curve::kP256, KeyTemplate{}, KeyTemplate{});
  ASSERT_OK(pair);
  EXPECT_EQ(caller_bits(s().key_info(pair->private_handle)->flags),
            usage::kSign | usage::kSensitive);
  EXPECT_EQ(caller_bits(s().key_info(pair->public_handle)->flags), usage::kVerify);
  // And those keys do what the defaults promise.
  EXPECT_OK(s().encrypt_gcm(*aes, Bytes(4, 1), {}));
  EXPECT_OK(s().sign(pair->private_handle, Mechanism::kEcdsaSha256, Bytes(4, 1)));
}

TEST_F(LibKeys, UsageFlagsAreEnforced) {
  auto no_sign = s().generate_ec_key_pair(Curve::kP256, verify_public(),
                                          tmpl(usage::kDerive | usage::kSensitive));
  ASSERT_OK(no_sign);
  EXPECT_STATUS(s().sign(no_sign->private_handle, Mechanism::kEcdsaSha256, Bytes(4, 1)),
                Status::kKeyUsageNotAllowed);
  // The public half cannot sign.
  EXPECT_STATUS(s().sign(no_sign->public_handle, Mechanism::kEcdsaSha256, Bytes(4, 1)),
                Status::kKeyUsageNotAllowed);
  // An AES key without sign cannot sign; with the flag it is the wrong type.
  auto aes = s().generate_aes_key(256, aes_flags());
  ASSERT_OK(aes);
  EXPECT_STATUS(s().sign(*aes, Mechanism::kEcdsaSha256, Bytes(4, 1)), Status::kKeyUsageNotAllowed);
  // An AES key with the sign flag is refused at creation or cannot sign
  // ECDSA (either way it never produces a signature).
  auto aes_sign = s().generate_aes_key(256, tmpl(usage::kSign | usage::kEncrypt));
  if (aes_sign.ok()) {
    EXPECT_STATUS(s().sign(*aes_sign, Mechanism::kEcdsaSha256, Bytes(4, 1)),
                  Status::kKeyTypeMismatch);
  } else {
    EXPECT_STATUS(aes_sign, Status::kAttributeInvalid);
  }
  // Encrypt-only and decrypt-only AES keys.
  auto enc_only = s().generate_aes_key(128, tmpl(usage::kEncrypt));
  auto dec_only = s().generate_aes_key(128, tmpl(usage::kDecrypt));
  ASSERT_OK(enc_only);
  ASSERT_OK(dec_only);
  auto ct = s().encrypt_gcm(*enc_only, Bytes(10, 1), {});
  ASSERT_OK(ct);
  EXPECT_STATUS(s().decrypt_gcm(*enc_only, *ct, {}), Status::kKeyUsageNotAllowed);
  EXPECT_STATUS(s().encrypt_gcm(*dec_only, Bytes(10, 1), {}), Status::kKeyUsageNotAllowed);
  // An EC key cannot encrypt.
  auto signer = s().generate_ec_key_pair(Curve::kP256, verify_public(), sign_private());
  ASSERT_OK(signer);
  EXPECT_STATUS(s().encrypt_gcm(signer->private_handle, Bytes(10, 1), {}),
                Status::kKeyUsageNotAllowed);
}

TEST_F(LibKeys, AesGcmRoundTripsAndIvs) {
  auto key = s().generate_aes_key(256, aes_flags());
  ASSERT_OK(key);
  const Bytes plain = to_bytes("forty-two bytes of very secret plaintext!!");
  const Bytes aad = to_bytes("header: v1");

  // Device-chosen IV: an approved service.
  auto a = s().encrypt_gcm(*key, plain, aad);
  ASSERT_OK(a);
  EXPECT_TRUE(s().last_approved());
  EXPECT_EQ(a->iv.size(), 12u);
  EXPECT_EQ(a->tag.size(), 16u);
  EXPECT_EQ(a->ciphertext.size(), plain.size());
  EXPECT_NE(a->ciphertext, plain);
  auto b = s().encrypt_gcm(*key, plain, aad);
  ASSERT_OK(b);
  EXPECT_NE(a->iv, b->iv);
  EXPECT_NE(a->ciphertext, b->ciphertext);
  auto back = s().decrypt_gcm(*key, *a, aad);
  ASSERT_OK(back);
  EXPECT_EQ(*back, plain);
  EXPECT_EQ(*s().decrypt_gcm(*key, *b, aad), plain);

  // Caller-chosen IV: works, is echoed, is deterministic, is not approved.
  const Bytes iv = from_hex("000102030405060708090a0b");
  auto c = s().encrypt_gcm(*key, plain, aad, iv);
  ASSERT_OK(c);
  EXPECT_FALSE(s().last_approved());
  EXPECT_EQ(c->iv, iv);
  auto d = s().encrypt_gcm(*key, plain, aad, iv);
  ASSERT_OK(d);
  EXPECT_EQ(d->ciphertext, c->ciphertext);
  EXPECT_EQ(d->tag, c->tag);
  EXPECT_EQ(*s().decrypt_gcm(*key, *c, aad), plain);
  // GCM is CTR underneath: same key and IV, XOR of ciphertexts = XOR of plaintexts.
  Bytes plain2 = plain;
  plain2[3] ^= 0x5a;
  auto e = s().encrypt_gcm(*key, plain2, aad, iv);
  ASSERT_OK(e);
  for (size_t i = 0; i < plain.size(); ++i) {
    EXPECT_EQ(c->ciphertext[i] ^ e->ciphertext[i], plain[i] ^ plain2[i]) << i;
  }

  // Tampering is detected.
  GcmCiphertext bad = *a;
  bad.tag[0] ^= 1;
  EXPECT_STATUS(s().decrypt_gcm(*key, bad, aad), Status::kTagMismatch);
  bad = *a;
  bad.ciphertext[5] ^= 1;
  EXPECT_STATUS(s().decrypt_gcm(*key, bad, aad), Status::kTagMismatch);
  bad = *a;
  bad.iv[11] ^= 1;
  EXPECT_STATUS(s().decrypt_gcm(*key, bad, aad), Status::kTagMismatch);
  EXPECT_STATUS(s().decrypt_gcm(*key, *a, to_bytes("header: v2")), Status::kTagMismatch);
  EXPECT_STATUS(s().decrypt_gcm(*key, *a, {}), Status::kTagMismatch);
  // Another key of the same size does not open it.
  auto other = s().generate_aes_key(256, aes_flags());
  ASSERT_OK(other);
  EXPECT_STATUS(s().decrypt_gcm(*other, *a, aad), Status::kTagMismatch);
  // Bad IV and tag sizes.
  EXPECT_STATUS(s().encrypt_gcm(*key, plain, aad, Bytes(16, 0)), Status::kMechanismParamInvalid);
  bad = *a;
  bad.tag.resize(12);
  EXPECT_STATUS(s().decrypt_gcm(*key, bad, aad), Status::kMechanismParamInvalid);
}

TEST_F(LibKeys, AesGcmSizesAndEveryKeyLength) {
  for (uint32_t bits : {128u, 192u, 256u}) {
    auto key = s().generate_aes_key(bits, aes_flags());
    ASSERT_OK(key);
    for (size_t len : {size_t{0}, size_t{1}, size_t{16}, size_t{1000}, size_t{512 * 1024}}) {
      Bytes plain(len);
      for (size_t i = 0; i < len; ++i) plain[i] = static_cast<uint8_t>(i * 7 + bits);
      auto ct = s().encrypt_gcm(*key, plain, {});
      ASSERT_OK(ct) << bits << "/" << len;
      EXPECT_EQ(ct->ciphertext.size(), len);
      auto back = s().decrypt_gcm(*key, *ct, {});
      ASSERT_OK(back) << bits << "/" << len;
      EXPECT_EQ(*back, plain);
    }
  }
  auto key = s().generate_aes_key(128, aes_flags());
  ASSERT_OK(key);
  EXPECT_STATUS(s().encrypt_gcm(*key, Bytes(512 * 1024 + 1, 0), {}), Status::kDataLengthInvalid);
  EXPECT_OK(s().encrypt_gcm(*key, Bytes(4, 0), Bytes(64 * 1024, 1)));
  EXPECT_STATUS(s().encrypt_gcm(*key, Bytes(4, 0), Bytes(64 * 1024 + 1, 1)),
                Status::kDataLengthInvalid);
}

TEST_F(LibKeys, FindKeysByLabelIdAndClass) {
  auto pair = s().generate_ec_key_pair(Curve::kP256, tmpl(usage::kVerify, "signing", {1}),
                                       tmpl(usage::kSign, "signing", {1}));
  auto aes1 = s().generate_aes_key(128, tmpl(usage::kEncrypt, "wrapping", {2}));
  auto aes2 = s().generate_aes_key(256, tmpl(usage::kEncrypt, "signing", {3}));
  ASSERT_OK(pair);
  ASSERT_OK(aes1);
  ASSERT_OK(aes2);
  auto handles = [&](const KeyQuery& q) {
    std::set<KeyHandle> out;
    auto r = s().find_keys(q);
    EXPECT_OK(r);
    if (r) {
      for (const auto& k : *r) out.insert(k.handle);
    }
    return out;
  };
  using H = std::set<KeyHandle>;
  EXPECT_EQ(handles({}), (H{pair->public_handle, pair->private_handle, *aes1, *aes2}));
  EXPECT_EQ(handles(query("signing")), (H{pair->public_handle, pair->private_handle, *aes2}));
  EXPECT_EQ(handles(query("wrapping")), (H{*aes1}));
  EXPECT_EQ(handles(query("nothing")), H{});
  EXPECT_EQ(handles(query(std::nullopt, Bytes{1})), (H{pair->public_handle, pair->private_handle}));
  EXPECT_EQ(handles(query(std::nullopt, Bytes{3})), (H{*aes2}));
  EXPECT_EQ(handles(query(std::nullopt, Bytes{})), H{});
  EXPECT_EQ(handles(query(std::nullopt, std::nullopt, ObjectClass::kPrivateKey)),
            (H{pair->private_handle}));
  EXPECT_EQ(handles(query(std::nullopt, std::nullopt, ObjectClass::kPublicKey)),
            (H{pair->public_handle}));
  EXPECT_EQ(handles(query(std::nullopt, std::nullopt, ObjectClass::kSecretKey)), (H{*aes1, *aes2}));
  EXPECT_EQ(handles(query("signing", std::nullopt, ObjectClass::kSecretKey)), (H{*aes2}));
  EXPECT_EQ(handles(query("signing", Bytes{3}, ObjectClass::kPublicKey)), H{});
  // The returned infos are complete.
  auto found = s().find_keys(query(std::nullopt, Bytes{2}));
  ASSERT_OK(found);
  ASSERT_EQ(found->size(), 1u);
  EXPECT_EQ(found->front().label, "wrapping");
  EXPECT_EQ(found->front().key_bits, 128u);
}

TEST_F(LibKeys, DestroyKey) {
  auto pair = s().generate_ec_key_pair(Curve::kP256, verify_public(), sign_private());
  ASSERT_OK(pair);
  ASSERT_OK(s().destroy_key(pair->private_handle));
  EXPECT_STATUS(s().key_info(pair->private_handle), Status::kNoSuchKey);
  EXPECT_STATUS(s().sign(pair->private_handle, Mechanism::kEcdsaSha256, Bytes(3, 3)),
                Status::kNoSuchKey);
  EXPECT_STATUS(s().destroy_key(pair->private_handle), Status::kNoSuchKey);
  // The other half is independent.
  EXPECT_OK(s().key_info(pair->public_handle));
  auto left = s().find_keys({});
  ASSERT_OK(left);
  ASSERT_EQ(left->size(), 1u);
  EXPECT_EQ(left->front().handle, pair->public_handle);
  // Handles are not reused.
  auto next = s().generate_aes_key(128, aes_flags());
  ASSERT_OK(next);
  EXPECT_NE(*next, pair->private_handle);
  EXPECT_STATUS(s().destroy_key(987654), Status::kNoSuchKey);
}

TEST_F(LibKeys, RolesForKeyOperations) {
  auto key = s().generate_aes_key(128, aes_flags());
  auto pair = s().generate_ec_key_pair(Curve::kP256, verify_public(), sign_private());
  ASSERT_OK(key);
  ASSERT_OK(pair);
  // Not logged in.
  Session pub = open(*client_, partition_);
  EXPECT_STATUS(pub.generate_aes_key(128, aes_flags()), Status::kNotLoggedIn);
  EXPECT_STATUS(pub.generate_ec_key_pair(Curve::kP256, verify_public(), sign_private()),
                Status::kNotLoggedIn);
  EXPECT_STATUS(pub.sign(pair->private_handle, Mechanism::kEcdsaSha256, Bytes(1, 1)),
                Status::kNotLoggedIn);
  EXPECT_STATUS(pub.find_keys({}), Status::kNotLoggedIn);
  EXPECT_STATUS(pub.encrypt_gcm(*key, Bytes(1, 1), {}), Status::kNotLoggedIn);
  EXPECT_OK(pub.random(16));  // any session
  // The officer administers; it does not use keys.
  Session officer = login(*client_, partition_, Role::kCryptoOfficer);
  EXPECT_STATUS(officer.sign(pair->private_handle, Mechanism::kEcdsaSha256, Bytes(1, 1)),
                Status::kRoleNotAllowed);
  EXPECT_STATUS(officer.generate_aes_key(128, aes_flags()), Status::kRoleNotAllowed);
  EXPECT_STATUS(officer.encrypt_gcm(*key, Bytes(1, 1), {}), Status::kRoleNotAllowed);
  EXPECT_STATUS(officer.destroy_key(*key), Status::kRoleNotAllowed);
  EXPECT_OK(s().key_info(*key));
  // After logout the same session is public again.
  ASSERT_OK(s().logout());
  EXPECT_STATUS(s().sign(pair->private_handle, Mechanism::kEcdsaSha256, Bytes(1, 1)),
                Status::kNotLoggedIn);
}

TEST_F(LibKeys, HandlesDoNotCrossPartitions) {
  const PartitionId other = make_partition(*client_, "other").id;
  Session t = login(*client_, other);
  // Give the other partition more keys than this one, so its handles are
  // numbers this partition has never issued.
  std::vector<KeyPair> theirs;
  for (int i = 0; i < 3; ++i) {
    auto p = t.generate_ec_key_pair(Curve::kP256, verify_public(), sign_private());
    ASSERT_OK(p);
    theirs.push_back(*p);
  }
  auto mine = s().generate_aes_key(128, aes_flags());
  ASSERT_OK(mine);
  const KeyHandle foreign = theirs.back().private_handle;
  ASSERT_NE(foreign, *mine);
  EXPECT_STATUS(s().sign(foreign, Mechanism::kEcdsaSha256, Bytes(8, 1)), Status::kNoSuchKey);
  EXPECT_STATUS(s().key_info(foreign), Status::kNoSuchKey);
  EXPECT_STATUS(s().public_key(theirs.back().public_handle), Status::kNoSuchKey);
  EXPECT_STATUS(s().destroy_key(foreign), Status::kNoSuchKey);
  auto listed = s().find_keys({});
  ASSERT_OK(listed);
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ(listed->front().handle, *mine);
  // Still intact in its own partition.
  EXPECT_OK(t.sign(foreign, Mechanism::kEcdsaSha256, Bytes(8, 1)));
}

TEST_F(LibKeys, SessionKeysOfAnotherConnectionAreInvisible) {
  auto pair = s().generate_ec_key_pair(Curve::kP256, verify_public("mine"), sign_private("mine"));
  ASSERT_OK(pair);
  Client other = connect();
  Session t = login(other, partition_);  // same partition, same user PIN
  EXPECT_STATUS(t.sign(pair->private_handle, Mechanism::kEcdsaSha256, Bytes(8, 1)),
                Status::kNoSuchKey);
  EXPECT_STATUS(t.key_info(pair->private_handle), Status::kNoSuchKey);
  EXPECT_STATUS(t.destroy_key(pair->private_handle), Status::kNoSuchKey);
  auto found = t.find_keys(query("mine"));
  ASSERT_OK(found);
  EXPECT_TRUE(found->empty());
  // Another session of the first connection does see it.
  Session same_conn = login(*client_, partition_);
  EXPECT_OK(same_conn.sign(pair->private_handle, Mechanism::kEcdsaSha256, Bytes(8, 1)));
  EXPECT_OK(s().key_info(pair->private_handle));
}

// libihsm's local helpers (verify_ecdsa, r||s <-> DER) against device
// signatures and the independent conversions in support/ossl.h.
TEST_F(LibKeys, LocalVerificationHelpers) {
  for (const auto& c : kCurves) {
    SCOPED_TRACE(c.group);
    auto pair = s().generate_ec_key_pair(c.curve, verify_public(), sign_private());
    ASSERT_OK(pair);
    auto spki = s().public_key(pair->public_handle);
    ASSERT_OK(spki);
    const Bytes data = to_bytes("verify me locally");
    auto sig = s().sign(pair->private_handle, Mechanism::kEcdsaSha256, data);
    ASSERT_OK(sig);
    auto ok_result = verify_ecdsa(*spki, Mechanism::kEcdsaSha256, data, *sig);
    ASSERT_OK(ok_result);
    EXPECT_TRUE(*ok_result);
    auto wrong_hash = verify_ecdsa(*spki, Mechanism::kEcdsaSha384, data, *sig);
    ASSERT_OK(wrong_hash);
    EXPECT_FALSE(*wrong_hash);
    Bytes bad = *sig;
    bad[0] ^= 1;
    EXPECT_FALSE(*verify_ecdsa(*spki, Mechanism::kEcdsaSha256, data, bad));
    EXPECT_FALSE(
        *verify_ecdsa(*spki, Mechanism::kEcdsaSha256, data, Bytes(sig->begin(), sig->end() - 1)));

    auto der = ecdsa_raw_to_der(*sig);
    ASSERT_OK(der);
    EXPECT_EQ(*der, ossl::raw_sig_to_der(*sig));
    EXPECT_TRUE(ossl::verify_ecdsa_der(*spki, EVP_sha256(), data, *der));
    auto raw = ecdsa_der_to_raw(*der, c.half);
    ASSERT_OK(raw);
    EXPECT_EQ(*raw, *sig);
    // A DER signature with trailing bytes or a padded integer is not canonical.
    Bytes trailing = *der;
    trailing.push_back(0);
    EXPECT_STATUS(ecdsa_der_to_raw(trailing, c.half), Status::kSignatureInvalid);
    EXPECT_STATUS(ecdsa_der_to_raw(Bytes{0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01}, 0),
                  Status::kInvalidArgument);
    EXPECT_STATUS(
        ecdsa_der_to_raw(Bytes{0x30, 0x07, 0x02, 0x02, 0x00, 0x01, 0x02, 0x01, 0x01}, c.half),
        Status::kSignatureInvalid);
    // Components wider than the given size do not fit (r and s below
    // 2^(4 * half) happen with negligible probability).
    EXPECT_STATUS(ecdsa_der_to_raw(*der, c.half / 2), Status::kSignatureInvalid);
  }
  EXPECT_STATUS(verify_ecdsa(Bytes{1, 2, 3}, Mechanism::kEcdsaSha256, {}, Bytes(64, 1)),
                Status::kInvalidArgument);
}

}  // namespace
}  // namespace ihsm::test
