// The key policy of docs/mechanisms.md ("Key policy (PKCS#11 semantics)"),
// one test per rule, each named after the attack the rule stops and
// showing that the attack's first step is refused with the documented
// status (and, for Clulow's attack, that it works when the rule is lifted).
#include "integration/mechanisms/mech_fixture.h"

namespace ihsm::test::mech {
namespace {

using namespace usage;

class MechPolicy : public MechTest {
 protected:
  KeyHandle aes(uint32_t flags, uint32_t bits = 256, uint32_t extra_mask = 0) {
    auto k = s().generate_secret_key(Mechanism::kAesKeyGen, bits, masked(flags, extra_mask));
    if (!k) {
      throw std::runtime_error("generate AES: " + std::string(status_name(k.status())) + " " +
                               k.detail().message);
    }
    return *k;
  }
  uint32_t flags_of(KeyHandle k) {
    auto info = s().key_info(k);
    if (!info) throw std::runtime_error("key_info");
    return info->flags;
  }
};

// Attack: read CKA_VALUE of a key. There is no command that returns a key
// value in clear; the only way out is wrapped, and a sensitive key's value
// never appears in any reply. (Checked by looking for the value in every
// output the key can produce.)
TEST_F(MechPolicy, ReadingTheKeyValueInClear) {
  const Bytes value = pattern(32, 0x21);
  const KeyHandle k = import_aes(value, kEncrypt | kDecrypt | kSensitive);
  auto info = s().key_info(k);
  MECH_ASSERT_OK(info);
  MECH_EXPECT_STATUS(s().public_key(k), Status::kKeyTypeMismatch);
  // Not extractable by default: it cannot even be wrapped.
  EXPECT_EQ(info->flags & kExtractable, 0u);
  const KeyHandle kek = import_aes(pattern(32, 0x22), kWrap);
  MECH_EXPECT_STATUS(s().wrap_key(kek, k, Mechanism::kAesKeyWrapKwp), Status::kKeyNotExtractable);
}

// Attack: un-sensitise a key to read it. `sensitive` once set stays set;
// always-sensitive records that it was never off.
TEST_F(MechPolicy, UnsensitisingAKeyToReadIt) {
  const KeyHandle k = aes(kEncrypt | kSensitive);
  EXPECT_TRUE(has_flag(k, kAlwaysSensitive));
  MECH_EXPECT_STATUS(s().set_key_attributes(k, 0, kSensitive), Status::kAttributeReadOnly);
  EXPECT_TRUE(has_flag(k, kSensitive | kAlwaysSensitive));
  // A key made non-sensitive may become sensitive, but it was not always so.
  const KeyHandle loose = aes(kEncrypt);
  EXPECT_FALSE(has_flag(loose, kAlwaysSensitive));
  MECH_EXPECT_OK(s().set_key_attributes(loose, kSensitive, kSensitive));
  EXPECT_TRUE(has_flag(loose, kSensitive));
  EXPECT_FALSE(has_flag(loose, kAlwaysSensitive));
  MECH_EXPECT_STATUS(s().set_key_attributes(loose, 0, kSensitive), Status::kAttributeReadOnly);
}

// Attack: re-enable export of a key. `extractable` once cleared stays
// cleared; never-extractable records that it was never on.
TEST_F(MechPolicy, ReEnablingExportOfAKey) {
  const KeyHandle k = aes(kEncrypt | kSensitive);
  EXPECT_TRUE(has_flag(k, kNeverExtractable));
  MECH_EXPECT_STATUS(s().set_key_attributes(k, kExtractable, kExtractable),
                     Status::kAttributeReadOnly);
  EXPECT_FALSE(has_flag(k, kExtractable));
  const KeyHandle kek = aes(kWrap);
  MECH_EXPECT_STATUS(s().wrap_key(kek, k, Mechanism::kAesKeyWrap), Status::kKeyNotExtractable);

  const KeyHandle was = aes(kEncrypt | kSensitive | kExtractable);
  EXPECT_FALSE(has_flag(was, kNeverExtractable));
  MECH_EXPECT_OK(s().wrap_key(kek, was, Mechanism::kAesKeyWrap));
  MECH_EXPECT_OK(s().set_key_attributes(was, 0, kExtractable));
  MECH_EXPECT_STATUS(s().wrap_key(kek, was, Mechanism::kAesKeyWrap), Status::kKeyNotExtractable);
  MECH_EXPECT_STATUS(s().set_key_attributes(was, kExtractable, kExtractable),
                     Status::kAttributeReadOnly);
  EXPECT_FALSE(has_flag(was, kNeverExtractable)) << "it was extractable once";
}

// Attack: forge provenance by setting always-sensitive / never-extractable
// on a key that was exposed. Only the device sets them.
TEST_F(MechPolicy, ForgingAlwaysSensitiveOrNeverExtractable) {
  for (uint32_t bit : {kAlwaysSensitive, kNeverExtractable}) {
    SCOPED_TRACE(flags_to_string(bit));
    MECH_EXPECT_STATUS(s().generate_secret_key(Mechanism::kAesKeyGen, 128,
                                               masked(kEncrypt | kSensitive | bit, bit)),
                       Status::kAttributeReadOnly);
    const KeyHandle k = aes(kEncrypt | kExtractable);
    EXPECT_FALSE(has_flag(k, bit));
    MECH_EXPECT_STATUS(s().set_key_attributes(k, bit, bit), Status::kAttributeReadOnly);
    EXPECT_FALSE(has_flag(k, bit));
    // Nor cleared on a key that has it.
    const KeyHandle strict = aes(kEncrypt | kSensitive);
    ASSERT_TRUE(has_flag(strict, bit));
    MECH_EXPECT_STATUS(s().set_key_attributes(strict, 0, bit), Status::kAttributeReadOnly);
  }
  // Generated key pairs get them too.
  auto pair = s().generate_key_pair(Mechanism::kEcKeyPairGen, Curve::kP256, 0, basic(kVerify),
                                    basic(kSign | kSensitive));
  MECH_ASSERT_OK(pair);
  EXPECT_TRUE(has_flag(pair->private_handle, kAlwaysSensitive | kNeverExtractable));
}

// Attack: export a non-extractable key by wrapping it.
TEST_F(MechPolicy, WrappingANonExtractableKey) {
  const KeyHandle kek = aes(kWrap);
  const KeyHandle k = aes(kEncrypt | kSensitive);
  auto pair = s().generate_key_pair(Mechanism::kEcKeyPairGen, Curve::kP256, 0, basic(kVerify),
                                    basic(kSign | kSensitive));
  MECH_ASSERT_OK(pair);
  for (Mechanism m : {Mechanism::kAesKeyWrap, Mechanism::kAesKeyWrapKwp, Mechanism::kAesGcm}) {
    SCOPED_TRACE(mechanism_name(m));
    MECH_EXPECT_STATUS(s().wrap_key(kek, k, m), Status::kKeyNotExtractable);
    MECH_EXPECT_STATUS(s().wrap_key(kek, pair->private_handle, m), Status::kKeyNotExtractable);
  }
}

// Attack: wrap a protected key under a key the attacker controls (and
// then unwrap it elsewhere). A wrap-with-trusted key may only be wrapped
// by a trusted key, and only the officer marks keys trusted.
TEST_F(MechPolicy, WrappingUnderAnAttackersKey) {
  const KeyHandle target =
      aes(kEncrypt | kSensitive | kExtractable | kWrapWithTrusted, 256, kWrapWithTrusted);
  ASSERT_TRUE(has_flag(target, kWrapWithTrusted));
  const KeyHandle kek = aes(kWrap | kUnwrap);
  MECH_EXPECT_STATUS(s().wrap_key(kek, target, Mechanism::kAesKeyWrapKwp),
                     Status::kKeyNotWrappable);
  // The user cannot make the KEK trusted, at creation or later.
  MECH_EXPECT_STATUS(
      s().generate_secret_key(Mechanism::kAesKeyGen, 256, masked(kWrap | kTrusted, kTrusted)),
      Status::kAttributeReadOnly);
  MECH_EXPECT_STATUS(s().set_key_attributes(kek, kTrusted, kTrusted), Status::kAttributeReadOnly);
  EXPECT_FALSE(has_flag(kek, kTrusted));
  // Nor remove wrap-with-trusted from the target.
  MECH_EXPECT_STATUS(s().set_key_attributes(target, 0, kWrapWithTrusted),
                     Status::kAttributeReadOnly);

  // The officer, in another session of the same connection (session keys
  // are visible to the connection's sessions), may set trusted - and
  // nothing else.
  auto officer = device().login(Role::kCryptoOfficer);
  MECH_ASSERT_OK(officer);
  MECH_EXPECT_STATUS(officer->set_key_attributes(kek, kTrusted | kEncrypt, kTrusted | kEncrypt),
                     Status::kAttributeReadOnly);
  MECH_EXPECT_STATUS(officer->set_key_attributes(kek, kTrusted, kTrusted, "renamed"),
                     Status::kAttributeReadOnly);
  MECH_ASSERT_OK(officer->set_key_attributes(kek, kTrusted, kTrusted));
  EXPECT_TRUE(has_flag(kek, kTrusted));
  // The officer cannot use keys.
  MECH_EXPECT_STATUS(officer->wrap_key(kek, target, Mechanism::kAesKeyWrapKwp),
                     Status::kRoleNotAllowed);

  auto wrapped = s().wrap_key(kek, target, Mechanism::kAesKeyWrapKwp);
  MECH_ASSERT_OK(wrapped);
  // The user cannot clear trusted either.
  MECH_EXPECT_STATUS(s().set_key_attributes(kek, 0, kTrusted), Status::kAttributeReadOnly);
}

// Attack: launder a wrap-with-trusted key by unwrapping it and wrapping it
// again under an untrusted key. What a trusted key unwraps becomes
// wrap-with-trusted.
TEST_F(MechPolicy, UnwrapThenRewrapLaundering) {
  const KeyHandle trusted_kek = aes(kWrap | kUnwrap);
  auto officer = device().login(Role::kCryptoOfficer);
  MECH_ASSERT_OK(officer);
  MECH_ASSERT_OK(officer->set_key_attributes(trusted_kek, kTrusted, kTrusted));

  const KeyHandle target =
      aes(kEncrypt | kSensitive | kExtractable | kWrapWithTrusted, 256, kWrapWithTrusted);
  auto blob = s().wrap_key(trusted_kek, target, Mechanism::kAesKeyWrap);
  MECH_ASSERT_OK(blob);
  // Unwrapped without asking for wrap-with-trusted...
  auto copy = s().unwrap_key(trusted_kek, Mechanism::kAesKeyWrap, *blob,
                             secret_spec(KeyType::kAes, kEncrypt | kSensitive | kExtractable));
  MECH_ASSERT_OK(copy);
  // ...it still is.
  EXPECT_TRUE(has_flag(*copy, kWrapWithTrusted));
  const KeyHandle untrusted = aes(kWrap);
  MECH_EXPECT_STATUS(s().wrap_key(untrusted, *copy, Mechanism::kAesKeyWrapKwp),
                     Status::kKeyNotWrappable);
  MECH_EXPECT_STATUS(s().set_key_attributes(*copy, 0, kWrapWithTrusted),
                     Status::kAttributeReadOnly);
  // An untrusted unwrapping key does not add it.
  const Bytes kek = pattern(32, 0x31), v = pattern(32, 0x30);
  auto plain = s().unwrap_key(import_aes(kek, kUnwrap), Mechanism::kAesKeyWrap,
                              ref::key_wrap(true, false, kek, v),
                              secret_spec(KeyType::kAes, kEncrypt | kExtractable));
  MECH_ASSERT_OK(plain);
  EXPECT_FALSE(has_flag(*plain, kWrapWithTrusted));
  MECH_EXPECT_OK(s().wrap_key(untrusted, *plain, Mechanism::kAesKeyWrapKwp));
}

// Clulow's attack: wrap K under W, then *decrypt* the blob with W (or
// encrypt a chosen value and unwrap it as a key). Refused by default: no
// key may both wrap/unwrap and encrypt/decrypt.
TEST_F(MechPolicy, ClulowWrapThenDecryptRefusedByDefault) {
  for (uint32_t flags : {kWrap | kDecrypt, kUnwrap | kEncrypt, kWrap | kUnwrap | kEncrypt,
                         kWrap | kEncrypt, kUnwrap | kDecrypt}) {
    SCOPED_TRACE(flags_to_string(flags));
    MECH_EXPECT_STATUS(s().generate_secret_key(Mechanism::kAesKeyGen, 256, basic(flags)),
                       Status::kAttributeInvalid);
  }
  // Not by adding the usage later either.
  const KeyHandle w = aes(kWrap | kUnwrap);
  MECH_EXPECT_STATUS(s().set_key_attributes(w, kDecrypt, kDecrypt), Status::kAttributeInvalid);
  const KeyHandle c = aes(kEncrypt | kDecrypt);
  MECH_EXPECT_STATUS(s().set_key_attributes(c, kWrap, kWrap), Status::kAttributeInvalid);
  // Nor for unwrapped or derived keys.
  MECH_EXPECT_STATUS(
      import_secret(s(), importer(), pattern(32, 1), KeyType::kAes, kWrap | kDecrypt),
      Status::kAttributeInvalid);
  auto base = s().generate_secret_key(Mechanism::kGenericSecretKeyGen, 256, basic(kDerive));
  MECH_ASSERT_OK(base);
  MechanismParams p;
  p.hash = Mechanism::kSha256;
  MECH_EXPECT_STATUS(s().derive_key(*base, Mechanism::kHkdfDerive, p,
                                    secret_spec(KeyType::kAes, kUnwrap | kEncrypt)),
                     Status::kAttributeInvalid);
  // The RSA private key: unwrap and decrypt together.
  MECH_EXPECT_STATUS(s().generate_key_pair(Mechanism::kRsaKeyPairGen, std::nullopt, 2048,
                                           basic(kVerify), basic(kUnwrap | kDecrypt)),
                     Status::kAttributeInvalid);
}

// Attack: Clulow across copies. Copy a key, then give one copy wrap and
// the other decrypt (or copy straight into more usages): wrap a target
// with the first, decrypt the blob with the second. A key is copied only
// once it cannot change, a copy gains no usage, and a key pair's halves
// are not copied (the pair rule could not follow the copy).
TEST_F(MechPolicy, ClulowAcrossCopies) {
  const KeyHandle changeable = aes(kWrap | kUnwrap);
  MECH_EXPECT_STATUS(s().copy_object(changeable), Status::kActionProhibited);

  const KeyHandle frozen = aes(kWrap | kUnwrap | kSensitive, 256, kModifiable);
  ASSERT_FALSE(has_flag(frozen, kModifiable));
  ObjectCopy more;
  more.flags = kDecrypt;
  more.mask = kDecrypt;
  MECH_EXPECT_STATUS(s().copy_object(frozen, more), Status::kAttributeReadOnly);
  ObjectCopy loosen;
  loosen.mask = kSensitive;  // flags 0: clear sensitive
  MECH_EXPECT_STATUS(s().copy_object(frozen, loosen), Status::kAttributeReadOnly);
  ObjectCopy forge;
  forge.mask = kNeverExtractable;  // clear what the device recorded
  MECH_EXPECT_STATUS(s().copy_object(frozen, forge), Status::kAttributeReadOnly);
  // Fewer usages is allowed: the copies together still hold only wrap+unwrap.
  ObjectCopy wrap_only;
  wrap_only.label = "wrap-only copy";
  wrap_only.mask = kUnwrap;
  auto copy = s().copy_object(frozen, wrap_only);
  MECH_ASSERT_OK(copy);
  EXPECT_NE(*copy, frozen);
  EXPECT_TRUE(has_flag(*copy, kWrap | kSensitive | kAlwaysSensitive));
  EXPECT_FALSE(has_flag(*copy, kUnwrap));
  EXPECT_FALSE(has_flag(*copy, kModifiable));
  // And stays so: a copy is frozen like its source.
  MECH_EXPECT_STATUS(s().set_key_attributes(*copy, kDecrypt, kDecrypt), Status::kActionProhibited);

  auto pair = s().generate_key_pair(Mechanism::kRsaKeyPairGen, std::nullopt, 2048,
                                    masked(kEncrypt, kModifiable), masked(kDecrypt, kModifiable));
  MECH_ASSERT_OK(pair);
  MECH_EXPECT_STATUS(s().copy_object(pair->public_handle), Status::kActionProhibited);
  MECH_EXPECT_STATUS(s().copy_object(pair->private_handle), Status::kActionProhibited);
}

// ...and the attack, shown on a device started with
// --allow-wrap-and-cipher-keys: the wrapped key decrypts to its value.
TEST_F(MechPolicy, ClulowAttackWorksWhenTheRuleIsLifted) {
  Device lax({"--allow-wrap-and-cipher-keys"});
  ASSERT_TRUE(lax.start());
  Session& u = lax.user();
  auto w = u.generate_secret_key(Mechanism::kAesKeyGen, 256,
                                 basic(kWrap | kUnwrap | kEncrypt | kDecrypt | kSensitive));
  MECH_ASSERT_OK(w);
  auto k = u.generate_secret_key(Mechanism::kAesKeyGen, 256,
                                 basic(kEncrypt | kSensitive | kExtractable));
  MECH_ASSERT_OK(k);
  // Wrap K under W with AES-GCM (IV || ciphertext || tag), then decrypt the
  // blob with W as if it were data.
  auto blob = u.wrap_key(*w, *k, Mechanism::kAesGcm);
  MECH_ASSERT_OK(blob);
  const Bytes iv(blob->begin(), blob->begin() + 12), ct(blob->begin() + 12, blob->end() - 16),
      tag(blob->end() - 16, blob->end());
  auto revealed = u.decrypt(*w, cipher(Mechanism::kAesGcm, iv), ct, tag);
  MECH_ASSERT_OK(revealed);
  ASSERT_EQ(revealed->size(), 32u);
  // The revealed bytes are K: encryption with them matches K's.
  EXPECT_TRUE(holds_aes(u, *k, *revealed));
  // And the planting direction: encrypt a chosen value with W, unwrap it as
  // a key whose value the attacker knows.
  const Bytes chosen = pattern(32, 0x99);
  auto sealed = u.encrypt(*w, cipher(Mechanism::kAesGcm), chosen);
  MECH_ASSERT_OK(sealed);
  auto planted =
      u.unwrap_key(*w, Mechanism::kAesGcm, concat(concat(sealed->iv, sealed->data), sealed->tag),
                   secret_spec(KeyType::kAes, kEncrypt | kSensitive));
  MECH_ASSERT_OK(planted);
  EXPECT_TRUE(holds_aes(u, *planted, chosen));
}

// Clulow's attack across an RSA key pair: the public key wraps, the private
// key decrypts. Each object alone passes the one-key rule, but together
// they are the attack: wrap K to the public key with RSA-OAEP, decrypt the
// blob with the private key, read K. The pair must count as one key.
TEST_F(MechPolicy, ClulowAcrossAnRsaKeyPair) {
  auto pair = s().generate_key_pair(Mechanism::kRsaKeyPairGen, std::nullopt, 2048, basic(kWrap),
                                    basic(kDecrypt | kSensitive));
  EXPECT_TRUE(has_status(pair, Status::kAttributeInvalid));
  if (pair.ok()) {
    // Show what the refusal prevents.
    const Bytes value = pattern(14, 0x44);
    const KeyHandle k = import(value, KeyType::kGenericSecret, kSign | kSensitive | kExtractable);
    const MechanismParams p = oaep();
    auto blob = s().wrap_key(pair->public_handle, k, Mechanism::kRsaPkcsOaep, p);
    MECH_ASSERT_OK(blob);
    auto revealed = s().decrypt(pair->private_handle, {Mechanism::kRsaPkcsOaep, p, {}, {}}, *blob);
    if (revealed.ok() && *revealed == value) {
      ADD_FAILURE() << "a sensitive key's value was read in clear: " << to_hex(*revealed);
    }
  }
  // Adding the usage later to either half is refused too.
  auto signer = s().generate_key_pair(Mechanism::kRsaKeyPairGen, std::nullopt, 2048,
                                      basic(kVerify | kWrap), basic(kSign | kSensitive));
  MECH_ASSERT_OK(signer);
  MECH_EXPECT_STATUS(
      s().set_key_attributes(signer->private_handle, kSign | kDecrypt, kSign | kDecrypt),
      Status::kAttributeInvalid);
  auto decrypter = s().generate_key_pair(Mechanism::kRsaKeyPairGen, std::nullopt, 2048,
                                         basic(kVerify), basic(kDecrypt | kSensitive));
  MECH_ASSERT_OK(decrypter);
  MECH_EXPECT_STATUS(
      s().set_key_attributes(decrypter->public_handle, kVerify | kWrap, kVerify | kWrap),
      Status::kAttributeInvalid);
}

// Attack: export a strong key under a weak one and brute-force that. The
// wrapping key must be at least as strong (SP 800-57).
TEST_F(MechPolicy, WrappingAStrongKeyUnderAWeakOne) {
  const KeyHandle aes128_kek = aes(kWrap, 128);
  const KeyHandle aes256_kek = aes(kWrap, 256);
  const KeyHandle k256 = aes(kEncrypt | kExtractable, 256);
  const KeyHandle k128 = aes(kEncrypt | kExtractable, 128);
  MECH_EXPECT_STATUS(s().wrap_key(aes128_kek, k256, Mechanism::kAesKeyWrapKwp),
                     Status::kWrappingKeyTooWeak);
  MECH_EXPECT_OK(s().wrap_key(aes128_kek, k128, Mechanism::kAesKeyWrapKwp));
  MECH_EXPECT_OK(s().wrap_key(aes256_kek, k256, Mechanism::kAesKeyWrapKwp));

  // RSA-2048 is 112 bits: not enough for AES-128 or AES-256.
  auto rsa = s().generate_key_pair(Mechanism::kRsaKeyPairGen, std::nullopt, 2048, basic(kWrap),
                                   basic(kUnwrap | kSensitive));
  MECH_ASSERT_OK(rsa);
  for (Mechanism m : {Mechanism::kRsaPkcsOaep, Mechanism::kRsaAesKeyWrap}) {
    SCOPED_TRACE(mechanism_name(m));
    MECH_EXPECT_STATUS(s().wrap_key(rsa->public_handle, k256, m, oaep()),
                       Status::kWrappingKeyTooWeak);
    MECH_EXPECT_STATUS(s().wrap_key(rsa->public_handle, k128, m, oaep()),
                       Status::kWrappingKeyTooWeak);
  }
  // A P-384 private key (192 bits) under AES-128 is too weak; under AES-256 fine.
  auto ec = s().generate_key_pair(Mechanism::kEcKeyPairGen, Curve::kP384, 0, basic(kVerify),
                                  basic(kSign | kSensitive | kExtractable));
  MECH_ASSERT_OK(ec);
  MECH_EXPECT_STATUS(s().wrap_key(aes128_kek, ec->private_handle, Mechanism::kAesKeyWrapKwp),
                     Status::kWrappingKeyTooWeak);
  MECH_EXPECT_OK(s().wrap_key(aes256_kek, ec->private_handle, Mechanism::kAesKeyWrapKwp));
}

// Attack: use a key with a mechanism its owner did not intend
// (CKA_ALLOWED_MECHANISMS), e.g. an AES-GCM-only key in CBC mode.
TEST_F(MechPolicy, UsingAKeyWithAMechanismItsOwnerDidNotIntend) {
  KeyTemplate t = basic(kEncrypt | kDecrypt | kSensitive);
  t.allowed_mechanisms = {Mechanism::kAesGcm};
  auto k = s().generate_secret_key(Mechanism::kAesKeyGen, 256, t);
  MECH_ASSERT_OK(k);
  auto info = s().key_info(*k);
  MECH_ASSERT_OK(info);
  EXPECT_EQ(info->allowed_mechanisms, std::vector<Mechanism>{Mechanism::kAesGcm});
  MECH_EXPECT_OK(s().encrypt(*k, cipher(Mechanism::kAesGcm), to_bytes("fine")));
  const Bytes iv(16, 1);
  for (Mechanism m : {Mechanism::kAesCbc, Mechanism::kAesCbcPad, Mechanism::kAesCtr}) {
    SCOPED_TRACE(mechanism_name(m));
    MECH_EXPECT_STATUS(s().encrypt(*k, cipher(m, iv), Bytes(16, 2)), Status::kKeyUsageNotAllowed);
    MECH_EXPECT_STATUS(s().decrypt(*k, cipher(m, iv), Bytes(16, 2)), Status::kKeyUsageNotAllowed);
    MECH_EXPECT_STATUS(s().encrypt_init(*k, cipher(m, iv)), Status::kKeyUsageNotAllowed);
  }
  // A KEK allowed only KWP cannot wrap with KW or GCM.
  KeyTemplate kt = basic(kWrap);
  kt.allowed_mechanisms = {Mechanism::kAesKeyWrapKwp};
  auto kek = s().generate_secret_key(Mechanism::kAesKeyGen, 256, kt);
  MECH_ASSERT_OK(kek);
  const KeyHandle target = aes(kEncrypt | kExtractable);
  MECH_EXPECT_OK(s().wrap_key(*kek, target, Mechanism::kAesKeyWrapKwp));
  MECH_EXPECT_STATUS(s().wrap_key(*kek, target, Mechanism::kAesKeyWrap),
                     Status::kKeyUsageNotAllowed);
  MECH_EXPECT_STATUS(s().wrap_key(*kek, target, Mechanism::kAesGcm), Status::kKeyUsageNotAllowed);
  // A signing key allowed only ECDSA-SHA384.
  KeyTemplate st = basic(kSign | kSensitive);
  st.allowed_mechanisms = {Mechanism::kEcdsaSha384};
  auto pair = s().generate_key_pair(Mechanism::kEcKeyPairGen, Curve::kP384, 0, basic(kVerify), st);
  MECH_ASSERT_OK(pair);
  MECH_EXPECT_OK(s().sign(pair->private_handle, Mechanism::kEcdsaSha384, to_bytes("m"), {}));
  MECH_EXPECT_STATUS(s().sign(pair->private_handle, Mechanism::kEcdsa, Bytes(48, 1), {}),
                     Status::kKeyUsageNotAllowed);
}

// Attack: tamper with a protected key's attributes. modifiable = false
// fixes them all, and modifiable itself is fixed at creation.
TEST_F(MechPolicy, TamperingWithAProtectedKey) {
  const KeyHandle k = aes(kEncrypt | kSensitive | kExtractable, 256, kModifiable);
  EXPECT_FALSE(has_flag(k, kModifiable));
  MECH_EXPECT_STATUS(s().set_key_attributes(k, 0, kExtractable), Status::kActionProhibited);
  MECH_EXPECT_STATUS(s().set_key_attributes(k, kDecrypt, kDecrypt), Status::kActionProhibited);
  MECH_EXPECT_STATUS(s().set_key_attributes(k, 0, 0, "new label"), Status::kActionProhibited);
  MECH_EXPECT_STATUS(s().set_key_attributes(k, kModifiable, kModifiable),
                     Status::kAttributeReadOnly);
  EXPECT_FALSE(has_flag(k, kDecrypt));
  // A modifiable key may change within the rules, but not lose modifiable.
  const KeyHandle m = aes(kEncrypt | kSensitive);
  MECH_EXPECT_OK(s().set_key_attributes(m, kDecrypt, kDecrypt, "renamed"));
  EXPECT_TRUE(has_flag(m, kDecrypt));
  MECH_EXPECT_STATUS(s().set_key_attributes(m, 0, kModifiable), Status::kAttributeReadOnly);
}

// Attack: delete a protected key (denial of service, or forcing a
// re-import). destroyable = false refuses DestroyKey.
TEST_F(MechPolicy, DeletingAProtectedKey) {
  const KeyHandle k = aes(kEncrypt, 256, kDestroyable);
  EXPECT_FALSE(has_flag(k, kDestroyable));
  MECH_EXPECT_STATUS(s().destroy_key(k), Status::kActionProhibited);
  MECH_EXPECT_OK(s().key_info(k));
  MECH_EXPECT_STATUS(s().set_key_attributes(k, kDestroyable, kDestroyable),
                     Status::kAttributeReadOnly);
  const KeyHandle d = aes(kEncrypt);
  MECH_EXPECT_OK(s().destroy_key(d));
  MECH_EXPECT_STATUS(s().key_info(d), Status::kNoSuchKey);
}

// Attack: use a key outside its purpose. The gate refuses every operation
// without its usage flag, and each kind of key carries only sensible ones.
TEST_F(MechPolicy, UsingAKeyOutsideItsPurpose) {
  const KeyHandle enc_only = aes(kEncrypt);
  const KeyHandle dec_only = aes(kDecrypt);
  const Bytes iv(16, 3);
  MECH_EXPECT_STATUS(s().decrypt(enc_only, cipher(Mechanism::kAesCbc, iv), Bytes(16, 1)),
                     Status::kKeyUsageNotAllowed);
  MECH_EXPECT_STATUS(s().decrypt_init(enc_only, cipher(Mechanism::kAesCbc, iv)),
                     Status::kKeyUsageNotAllowed);
  MECH_EXPECT_STATUS(s().encrypt(dec_only, cipher(Mechanism::kAesCbc, iv), Bytes(16, 1)),
                     Status::kKeyUsageNotAllowed);
  const KeyHandle target = aes(kEncrypt | kExtractable);
  MECH_EXPECT_STATUS(s().wrap_key(enc_only, target, Mechanism::kAesKeyWrap),
                     Status::kKeyUsageNotAllowed);
  MECH_EXPECT_STATUS(s().unwrap_key(enc_only, Mechanism::kAesKeyWrap, Bytes(40, 1),
                                    secret_spec(KeyType::kAes, kEncrypt)),
                     Status::kKeyUsageNotAllowed);
  // Derive without the derive flag.
  auto secret = s().generate_secret_key(Mechanism::kGenericSecretKeyGen, 256, basic(kSign));
  MECH_ASSERT_OK(secret);
  MechanismParams hk;
  hk.hash = Mechanism::kSha256;
  MECH_EXPECT_STATUS(s().derive_key(*secret, Mechanism::kHkdfDerive, hk,
                                    secret_spec(KeyType::kGenericSecret, kSign)),
                     Status::kKeyUsageNotAllowed);
  auto ec = s().generate_key_pair(Mechanism::kEcKeyPairGen, Curve::kP256, 0, basic(kVerify),
                                  basic(kSign | kSensitive));
  MECH_ASSERT_OK(ec);
  MechanismParams dh;
  dh.peer_public = ossl::uncompressed_point(ossl::spki_of(ossl::generate_ec("P-256").get()));
  MECH_EXPECT_STATUS(s().derive_key(ec->private_handle, Mechanism::kEcdh1Derive, dh,
                                    secret_spec(KeyType::kGenericSecret, kSign)),
                     Status::kKeyUsageNotAllowed);
  // Sign/verify without the flag; HMAC verify with a sign-only key.
  MECH_EXPECT_STATUS(s().verify(*secret, Mechanism::kSha256Hmac, Bytes(3, 1), Bytes(32, 0)),
                     Status::kKeyUsageNotAllowed);
  MECH_EXPECT_STATUS(s().sign(ec->public_handle, Mechanism::kEcdsaSha256, Bytes(3, 1), {}),
                     Status::kKeyUsageNotAllowed);
  // Usages a kind of key cannot carry are refused at creation.
  MECH_EXPECT_STATUS(
      s().generate_secret_key(Mechanism::kGenericSecretKeyGen, 256, basic(kSign | kEncrypt)),
      Status::kAttributeInvalid);
  MECH_EXPECT_STATUS(s().generate_secret_key(Mechanism::kAesKeyGen, 256, basic(kSign)),
                     Status::kAttributeInvalid);
  MECH_EXPECT_STATUS(s().generate_key_pair(Mechanism::kEcKeyPairGen, Curve::kP256, 0,
                                           basic(kVerify), basic(kSign | kDecrypt)),
                     Status::kAttributeInvalid);
  MECH_EXPECT_STATUS(s().generate_key_pair(Mechanism::kEcEdwardsKeyPairGen, std::nullopt, 0,
                                           basic(kVerify), basic(kSign | kDerive)),
                     Status::kAttributeInvalid);
  MECH_EXPECT_STATUS(s().generate_key_pair(Mechanism::kEcMontgomeryKeyPairGen, std::nullopt, 0,
                                           basic(0), basic(kSign)),
                     Status::kAttributeInvalid);
  MECH_EXPECT_STATUS(s().generate_key_pair(Mechanism::kRsaKeyPairGen, std::nullopt, 2048,
                                           basic(kVerify | kSign), basic(kSign)),
                     Status::kAttributeInvalid);
  // Unwrap into a private key with the wrong usage for its kind.
  ref::Pkey ed(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
  MECH_EXPECT_STATUS(import_private(s(), importer(), ed.get(), KeyType::kEcEdwards, kDecrypt),
                     Status::kAttributeInvalid);
  // And the template's key type must be the wrapped key's.
  MECH_EXPECT_STATUS(import_private(s(), importer(), ed.get(), KeyType::kEc, kSign),
                     Status::kAttributeInvalid);
}

// Attack: a key pretending it never left the device. Unwrapped keys are not
// local, never always-sensitive or never-extractable; derived keys inherit
// those from their base.
TEST_F(MechPolicy, AKeyPretendingItNeverLeftTheDevice) {
  const Bytes value = pattern(32, 0x50);
  const KeyHandle unwrapped = import_aes(value, kEncrypt | kSensitive);  // not extractable
  auto info = s().key_info(unwrapped);
  MECH_ASSERT_OK(info);
  EXPECT_FALSE(info->local);
  EXPECT_EQ(info->flags & kAlwaysSensitive, 0u);
  EXPECT_EQ(info->flags & kNeverExtractable, 0u);
  EXPECT_EQ(info->flags & kSensitive, kSensitive);

  const KeyHandle generated = aes(kEncrypt | kSensitive);
  auto ginfo = s().key_info(generated);
  MECH_ASSERT_OK(ginfo);
  EXPECT_TRUE(ginfo->local);
  EXPECT_EQ(ginfo->flags & (kAlwaysSensitive | kNeverExtractable),
            kAlwaysSensitive | kNeverExtractable);

  // Derived from a generated, always-sensitive, never-extractable base:
  // inherits both (if itself sensitive and not extractable), not local.
  auto base =
      s().generate_secret_key(Mechanism::kGenericSecretKeyGen, 256, basic(kDerive | kSensitive));
  MECH_ASSERT_OK(base);
  MechanismParams p;
  p.hash = Mechanism::kSha256;
  auto derived = s().derive_key(*base, Mechanism::kHkdfDerive, p,
                                secret_spec(KeyType::kAes, kEncrypt | kSensitive));
  MECH_ASSERT_OK(derived);
  auto dinfo = s().key_info(*derived);
  MECH_ASSERT_OK(dinfo);
  EXPECT_FALSE(dinfo->local);
  EXPECT_EQ(dinfo->flags & (kAlwaysSensitive | kNeverExtractable),
            kAlwaysSensitive | kNeverExtractable);
  // A derived key that is itself extractable is not never-extractable.
  auto loose = s().derive_key(*base, Mechanism::kHkdfDerive, p,
                              secret_spec(KeyType::kAes, kEncrypt | kSensitive | kExtractable));
  MECH_ASSERT_OK(loose);
  EXPECT_TRUE(has_flag(*loose, kAlwaysSensitive));
  EXPECT_FALSE(has_flag(*loose, kNeverExtractable));

  // Derived from an unwrapped base: nothing to inherit.
  const KeyHandle imported_base =
      import(pattern(32, 0x51), KeyType::kGenericSecret, kDerive | kSensitive);
  auto from_imported = s().derive_key(imported_base, Mechanism::kHkdfDerive, p,
                                      secret_spec(KeyType::kAes, kEncrypt | kSensitive));
  MECH_ASSERT_OK(from_imported);
  EXPECT_FALSE(has_flag(*from_imported, kAlwaysSensitive));
  EXPECT_FALSE(has_flag(*from_imported, kNeverExtractable));

  // Unwrapped private keys, too.
  ref::Pkey ed(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
  auto priv = import_private(s(), importer(), ed.get(), KeyType::kEcEdwards, kSign | kSensitive);
  MECH_ASSERT_OK(priv);
  auto pinfo = s().key_info(*priv);
  MECH_ASSERT_OK(pinfo);
  EXPECT_FALSE(pinfo->local);
  EXPECT_EQ(pinfo->flags & (kAlwaysSensitive | kNeverExtractable), 0u);
}

}  // namespace
}  // namespace ihsm::test::mech
