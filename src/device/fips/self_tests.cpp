#include "device/fips/self_tests.h"

#include <algorithm>
#include <array>
#include <cstdio>

#include "device/crypto/algorithms.h"
#include "device/crypto/backend.h"
#include "device/fips/fault.h"
#include "device/fips/state.h"

namespace ihsm::device::fips {
namespace {

using namespace crypto;

Bytes hex(std::string_view h) {
  auto nibble = [](char c) {
    return static_cast<uint8_t>(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
  };
  Bytes out(h.size() / 2);
  for (size_t i = 0; i < out.size(); ++i) {
    out[i] = static_cast<uint8_t>(nibble(h[2 * i]) << 4 | nibble(h[2 * i + 1]));
  }
  return out;
}

Bytes text(std::string_view s) { return Bytes(s.begin(), s.end()); }

bool same(std::span<const uint8_t> a, std::span<const uint8_t> b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin());
}

// The known answers of one test, as the test compares them. Only in the
// fault-injection image can IHSM_FAULT_INJECT=<test> flip a bit of them.
class Known {
 public:
  explicit Known(std::string_view test) : corrupt_(fault_injected(test)) {}
  Bytes operator()(std::string_view hex_value) const {
    Bytes b = hex(hex_value);
    if (corrupt_ && !b.empty()) b[0] ^= 0x01;
    return b;
  }

 private:
  bool corrupt_;
};

// ---------------------------------------------------------------- AES

bool aes_gcm_kat(std::string_view name) {
  // McGrew & Viega test case 16: AES-256, 96-bit IV, 20 bytes of AAD.
  const Bytes key = hex("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308");
  const Bytes iv = hex("cafebabefacedbaddecaf888");
  const Bytes aad = hex("feedfacedeadbeeffeedfacedeadbeefabaddad2");
  const Bytes plain =
      hex("d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
          "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39");
  const Bytes cipher = Known(name)(
      "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
      "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662"
      "76fc6ece0f4e1768cddf8853bb2d551b");  // ciphertext || tag
  Bytes ct, tag;
  if (!ok(aes_gcm_encrypt(key, iv, aad, plain, ct, tag))) return false;
  ct.insert(ct.end(), tag.begin(), tag.end());
  if (!same(ct, cipher)) return false;
  const std::span<const uint8_t> c(cipher);
  SecretBytes pt;
  return ok(aes_gcm_decrypt(key, iv, aad, c.first(c.size() - 16), c.last(16), pt)) &&
         same(pt.reveal(), plain);
}

// SP 800-38A appendix F: the AES-256 key and the plaintext of F.2 and F.5.
constexpr std::string_view kSp800_38aKey =
    "603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4";
constexpr std::string_view kSp800_38aPlain =
    "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51"
    "30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710";

bool aes_cbc_kat(std::string_view name) {
  const Bytes key = hex(kSp800_38aKey), plain = hex(kSp800_38aPlain);
  const Bytes iv = hex("000102030405060708090a0b0c0d0e0f");
  const Bytes cipher = Known(name)(
      "f58c4c04d6e5f1ba779eabfb5f7bfbd69cfc4e967edb808d679f777bc6702c7d"
      "39f23369a9d9bacfa530e26304231461b2eb05e2c39be9fcda6c19078c6a9d1b");
  SecretBytes ct, pt;
  return ok(aes_cbc(true, false, key, iv, plain, ct)) && same(ct.reveal(), cipher) &&
         ok(aes_cbc(false, false, key, iv, cipher, pt)) && same(pt.reveal(), plain);
}

bool aes_ctr_kat(std::string_view name) {
  const Bytes key = hex(kSp800_38aKey), plain = hex(kSp800_38aPlain);
  const Bytes counter = hex("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff");
  const Bytes cipher = Known(name)(
      "601ec313775789a5b7a7f504bbf3d228f443e3ca4d62b59aca84e990cacaf5c5"
      "2b0930daa23de94ce87017ba2d84988ddfc9c58db67aada613c2dd08457941a6");
  SecretBytes ct, pt;
  return ok(aes_ctr(key, counter, 128, plain, ct)) && same(ct.reveal(), cipher) &&
         ok(aes_ctr(key, counter, 128, cipher, pt)) && same(pt.reveal(), plain);
}

bool aes_kw_kat(std::string_view name) {
  // RFC 3394 4.6: 256 bits of key data with a 256-bit KEK.
  const Bytes kek = hex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
  const Bytes key = hex("00112233445566778899aabbccddeeff000102030405060708090a0b0c0d0e0f");
  const Bytes wrapped = Known(name)(
      "28c9f404c4b810f4cbccb35cfb87f8263f5786e2d80ed326cbc7f0e71a99f43bfb988b9b7a02dd21");
  Bytes out;
  SecretBytes unwrapped;
  return ok(aes_kw_wrap(kek, key, out)) && same(out, wrapped) &&
         ok(aes_kw_unwrap(kek, wrapped, unwrapped)) && same(unwrapped.reveal(), key);
}

bool aes_kwp_kat(std::string_view name) {
  // RFC 5649 section 6: 20 octets of key data with a 192-bit KEK.
  const Bytes kek = hex("5840df6e29b02af1ab493b705bf16ea1ae8338f4dcc176a8");
  const Bytes key = hex("c37b7e6492584340bed12207808941155068f738");
  const Bytes wrapped =
      Known(name)("138bdeaa9b8fa7fc61f97742e72248ee5ae6ae5360d1ae6a5f54f373fa543b6a");
  Bytes out;
  SecretBytes unwrapped;
  return ok(aes_kwp_wrap(kek, key, out)) && same(out, wrapped) &&
         ok(aes_kwp_unwrap(kek, wrapped, unwrapped)) && same(unwrapped.reveal(), key);
}

// ---------------------------------------------------------------- SHA-2, HMAC, KDFs

// FIPS 180-4 examples: the one-block message "abc".
bool sha(std::string_view name, Hash h, std::string_view expected) {
  Bytes out;
  return ok(digest(h, text("abc"), out)) && same(out, Known(name)(expected));
}
bool sha256_kat(std::string_view n) {
  return sha(n, Hash::kSha256, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}
bool sha384_kat(std::string_view n) {
  return sha(n, Hash::kSha384,
             "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed"
             "8086072ba1e7cc2358baeca134c825a7");
}
bool sha512_kat(std::string_view n) {
  return sha(n, Hash::kSha512,
             "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
             "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f");
}

// RFC 4231 test case 1: a 20-byte key of 0x0b, "Hi There".
bool hmac_kat(std::string_view name, Hash h, std::string_view expected) {
  Bytes mac;
  return ok(hmac(h, Bytes(20, 0x0b), text("Hi There"), mac)) && same(mac, Known(name)(expected));
}
bool hmac_sha256_kat(std::string_view n) {
  return hmac_kat(n, Hash::kSha256,
                  "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
}
bool hmac_sha384_kat(std::string_view n) {
  return hmac_kat(n, Hash::kSha384,
                  "afd03944d84895626b0825f4ab46907f15f9dadbe4101ec682aa034c7cebc59c"
                  "faea9ea9076ede7f4af152e8b2fa9cb6");
}
bool hmac_sha512_kat(std::string_view n) {
  return hmac_kat(n, Hash::kSha512,
                  "87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cde"
                  "daa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854");
}

bool hkdf_kat(std::string_view name) {
  // RFC 5869 A.1.
  const Bytes okm = Known(name)(
      "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865");
  SecretBytes out(okm.size());
  return ok(hkdf(Hash::kSha256, HkdfMode::kExtractAndExpand, Bytes(22, 0x0b),
                 hex("000102030405060708090a0b0c"), hex("f0f1f2f3f4f5f6f7f8f9"), out)) &&
         same(out.reveal(), okm);
}

bool kbkdf_kat(std::string_view name) {
  // NIST CAVP KDFCTR_gen.rsp, [PRF=HMAC_SHA256] [CTRLOCATION=BEFORE_FIXED]
  // [RLEN=32_BITS] COUNT=0: the fixed input data goes in whole, as label.
  const Bytes ki = hex("dd1d91b7d90b2bd3138533ce92b272fbf8a369316aefe242e659cc0ae238afe0");
  const Bytes fixed =
      hex("01322b96b30acd197979444e468e1c5c6859bf1b1cf951b7e725303e237e46b864a145fab25e517b08f8683d"
          "0315bb2911d80a0e8aba17f3b413faac");
  const Bytes ko = Known(name)("10621342bfb0fd40046c0e29f2cfdbf0");
  SecretBytes out(ko.size());
  return ok(kbkdf_counter_hmac(Hash::kSha256, ki, fixed, {}, 32, out,
                               KbkdfLayout{.separator = false, .length = false})) &&
         same(out.reveal(), ko);
}

// ---------------------------------------------------------------- ECDSA, ECDH

// RFC 6979 A.2.5 / A.2.6: the keys (PKCS#8 DER of the private key x and its
// public point) and their signatures of "sample". ECDSA signing is
// randomized here, so: sign and verify "sample", then verify the published
// signature.
bool ecdsa_kat(std::string_view name, Curve curve, Mechanism mechanism, std::string_view key_der,
               std::string_view signature) {
  Pkey key;
  if (!ok(private_key_from_der(hex(key_der), key))) return false;
  const Bytes message = text("sample");
  Bytes sig;
  return ok(ecdsa_sign(key.get(), curve, mechanism, message, sig)) &&
         ok(ecdsa_verify(key.get(), curve, mechanism, message, sig)) &&
         ok(ecdsa_verify(key.get(), curve, mechanism, message, Known(name)(signature)));
}
bool ecdsa_p256_kat(std::string_view n) {
  return ecdsa_kat(
      n, Curve::kP256, Mechanism::kEcdsaSha256,
      "308187020100301306072a8648ce3d020106082a8648ce3d030107046d306b0201010420c9afa9d845ba7516"
      "6b5c215767b1d6934e50c3db36e89b127b8a622b120f6721a1440342000460fed4ba255a9d31c961eb74c635"
      "6d68c049b8923b61fa6ce669622e60f29fb67903fe1008b8bc99a41ae9e95628bc64f2f1b20c2d7e9f5177a3"
      "c294d4462299",
      "efd48b2aacb6a8fd1140dd9cd45e81d69d2c877b56aaf991c34d0ea84eaf3716"
      "f7cb1c942d657c41d436c7a1b6e29f65f3e900dbb9aff4064dc4ab2f843acda8");
}
bool ecdsa_p384_kat(std::string_view n) {
  return ecdsa_kat(
      n, Curve::kP384, Mechanism::kEcdsaSha384,
      "3081b6020100301006072a8648ce3d020106052b8104002204819e30819b02010104306b9d3dad2e1b8c1c05"
      "b19875b6659f4de23c3b667bf297ba9aa47740787137d896d5724e4c70a825f872c9ea60d2edf5a164036200"
      "04ec3a4e415b4e19a4568618029f427fa5da9a8bc4ae92e02e06aae5286b300c64def8f0ea9055866064a254"
      "515480bc138015d9b72d7d57244ea8ef9ac0c621896708a59367f9dfb9f54ca84b3f1c9db1288b231c3ae0d4"
      "fe7344fd2533264720",
      "94edbb92a5ecb8aad4736e56c691916b3f88140666ce9fa73d64c4ea95ad133c"
      "81a648152e44acf96e36dd1e80fabe46"
      "99ef4aeb15f178cea1fe40db2603138f130e740a19624526203b6351d0a3a94f"
      "a329c145786e679e7b82c71a38628ac8");
}

bool ecdh_p256_kat(std::string_view name) {
  // NIST CAVS ECC CDH primitive vectors, P-256 COUNT = 0: dIUT (PKCS#8 DER
  // with QIUT), QCAVS, ZIUT.
  Pkey own;
  if (!ok(private_key_from_der(
          hex("308187020100301306072a8648ce3d020106082a8648ce3d030107046d306b02010104207d7dc5f7"
              "1eb29ddaf80d6214632eeae03d9058af1fb6d22ed80badb62bc1a534a14403420004ead218590119"
              "e8876b29146ff89ca61770c4edbbf97d38ce385ed281d8a6b23028af61281fd35e2fa7002523acc8"
              "5a429cb06ee6648325389f59edfce1405141"),
          own))) {
    return false;
  }
  const Bytes peer =
      hex("04700c48f77f56584c5cc632ca65640db91b6bacce3a4df6b42ce7cc838833d287"
          "db71e509e3fd9b060ddb20ba5c51dcc5948d46fbf640dfe0441782cab85fa4ac");
  SecretBytes z;
  return ok(ecdh_derive(own.get(), peer, z)) &&
         same(z.reveal(),
              Known(name)("46fc62106420ff012e54a434fbdd2d25ccc5852060561e68040dd7778997bd7b"));
}

// ---------------------------------------------------------------- RSA

// TEST VECTOR ONLY: the RSA-2048 key of tests/unit/crypto/rsa_test.cpp
// (`openssl genrsa 2048`), PKCS#8 DER, for the OAEP test: CAVP's 186-3 set
// has no OAEP vectors.
constexpr std::string_view kRsaKey =
    "308204bc020100300d06092a864886f70d0101010500048204a6308204a20201000282010100b360d5cc54e7f765c7"
    "fa"
    "ab3bf3b8b2a733267090ea03aaaaff8e314f29f9fb5bfea382c92d3d97607520d7ff1754f38bddb1b6bdaf28afb2a2"
    "fa"
    "5da2f087467a99d4e19ec601ae01dc2781743ca476cb9a374f901d626ba6731e4d27a8a712301a0abca06f3e46a93a"
    "59"
    "f79d25cb6054092230d4311a11110c56c44a40efb2770ccb8927e987354335a8e846946f8bd7b5de9c3f27ed499637"
    "08"
    "481c5b8adb7cf644e824261e804ee1db5ef73d9342e48fe4c111eadb9e0eccf9302df91d226258218989ac9a9d78c3"
    "ac"
    "2ddf265020b150e8832166e3a39136f7db4f05071ba86ce976830711c0a10f653348ec794b4d11460f9ed052391f83"
    "ff"
    "48685aa9245902030100010282010002378e2cea57bb9d0c6db2b418fd0d68379fa0008a83e5161bf67bf18889486c"
    "08"
    "a7a8b427d4fd0bfa269fc4cd5b056f931be13052fbe3c00777a4b4a0d86b2c94be26d3b98ac7c5ca1ccae2cee5117a"
    "ce"
    "bb244699b65fb23cf600ea1e91820e0a245bd477cb834010329076e6c2aebc1b28cb05b45da81c57d4b2b4603d162d"
    "91"
    "34d35d01febea5c1e0a695adf7738211504977c5d1d4bedadb522c8bc7125be24931b509bf7aca92e99b79518479e2"
    "ff"
    "4c6ed497a2afbe6bb3e16fecc5fd4e1d51f904a8f5bd7d2e45a9ce0939f35c852b17dfad307e848a3d0350fd0c0afa"
    "07"
    "aaf4bc2df0d0da46d3823f8fd8c2eae80d672e62251fc0012b62d3eb2e096902818100d7ae2ea416d2ef3b82d2e655"
    "56"
    "dbc25f12fe5fa906931fb77034d67f2e32ed4e770b7c5b640c321f5872fa5795fa58a4b3a2987686dd0decc294f2d4"
    "f8"
    "f1abc03636fbd3bca4e0f725cd04dfaf8700ce5969c901fd6c052552315d5898322f5a109db4529995429d11a88e9f"
    "02"
    "70fafe410e16d82df50ee307f67d9d3a7da0e302818100d4e9576836a76db19134ad230089d6e5bac89a1e41b6e748"
    "76"
    "7e6ab3f2adda48d7609d03b72985cb206c10430e0ff01ad2f50075f3139e524149f69d33659778376147fad7d04cf7"
    "43"
    "36ff5fd965b3044cf35601ffda519c5388afe5e02e0a9fb294f465f147c6fe675d7d229d7243c55763d42e82ea27fb"
    "b8"
    "46bd1b6658d693028180237adee7556ddbb7017d6a30adba370e66d47bae158bcc52e3dd7d4facacea06d764874f8d"
    "74"
    "c82609e9d82ee2582d8ee29223dc93b0f7a2741c069a6c5d6d30907a9910aadec0b7477ba38a9c986bd48636f5bf23"
    "0e"
    "4b0669afff381cc95caac742fa30005de2786e3839460523cad65aa353b4ba52aee140251762ef054d9b0281805b56"
    "7b"
    "33eef666bd9d707eb21c6205b9ea2672cf761b941ee70e9691fa131128dc94cae73425710b522e69cf8a71d5ec7c01"
    "b5"
    "1fe496cefdb49a995c9917052302870e4d13567e1e394c97c3b3ccc83e99106f1e4e7787394c30c05d1a8e45ea7abf"
    "22"
    "15b5abb8379d7a62db7db5ee52f38995161afd7f07a2e75deb2a3e0457028180427488d0a1b7be593f0a5c80f64d5a"
    "78"
    "06a69051615206b3ca69103b5ec356030e915ddd2f28cb597d21a6b6a8966522798245b1ebc4dfb8e4c2e1949ed5c7"
    "8e"
    "d57a49f95491ac27189ac5304f320f1291c3bee82474ca970f3f0c4ba6bdde06bf6a22844b1b0da7fa9a85e5242057"
    "f9"
    "dade43ae2b08df5cd485875701780213";

// TEST VECTOR ONLY: NIST CAVP 186-3rsatestvectors.zip, SigGen15_186-3.txt,
// [mod = 2048], n, e = 0x260445 and d, as PKCS#8 DER. CAVP gives only n, e
// and d; p and q (which a PKCS#8 key carries) were recovered from them
// (SP 800-56B, Appendix C), and the key signs the CAVP message to the CAVP
// signature, which is what this test checks.
constexpr std::string_view kRsaCavpKey =
    "308204be020100300d06092a864886f70d0101010500048204a8308204a40201000282010100cea80475324c1dc834"
    "7827818da58bac069d3419c614a6ea1ac6a3b510dcd72cc516954905e9fef908d45e13006adf27d467a7d83c111d1a"
    "5df15ef293771aefb920032a5bb989f8e4f5e1b05093d3f130f984c07a772a3683f4dc6fb28a96815b32123ccdd139"
    "54f19d5b8b24a103e771a34c328755c65ed64e1924ffd04d30b2142cc262f6e0048fef6dbc652f21479ea1c4b1d66d"
    "28f4d46ef7185e390cbfa2e02380582f3188bb94ebbf05d31487a09aff01fcbb4cd4bfd1f0a833b38c11813c84360b"
    "b53c7d4481031c40bad8713bb6b835cb08098ed15ba31ee4ba728a8c8e10f7294e1b4163b7aee57277bfd881a6f9d4"
    "3e02c6925aa3a043fb7fb78d0203260445028201000997634c477c1a039d44c810b2aaa3c7862b0b88d3708272e1e1"
    "5f66fc9389709f8a11f3ea6a5af7effa2d01c189c50f0d5bcbe3fa272e56cfc4a4e1d388a9dcd65df8628902556c8b"
    "6bb6a641709b5a35dd2622c73d4640bfa1359d0e76e1f219f8e33eb9bd0b59ec198eb2fccaae0346bd8b401e12e3c6"
    "7cb629569c185a2e0f35a2f741644c1cca5ebb139d77a89a2953fc5e30048c0e619f07c8d21d1e56b8af07193d0fdf"
    "3f49cd49f2ef3138b5138862f1470bd2d16e34a2b9e7777a6c8c8d4cb94b4e8b5d616cd5393753e7b0f31cc7da559b"
    "a8e98d888914e334773baf498ad88d9631eb5fe32e53a4145bf0ba548bf2b0a50c63f67b14e398a34b0d02818100f3"
    "64e16ef12017ec95b192308c01e087cee619ab50a5d537cc01841dc92b30bcef0d9f2c6bbd5dc10bdf5b9f6c354a4f"
    "9f210520caa72b4f5c36b8d33f10324c55956141891e45b84b49f59ea5bfac6ffa38900aca5099afcd02f6a8257c41"
    "ce5bb2e4153832b5c22f91eb389fa2035c3cf9b3374531c483cb30ceb007259b1d02818100d95c0995fabdfcbccfe6"
    "3e0f3262f806869ab571e1793e97234cbb9bd4b6872a7695389955cf6ce7245345a5df8021f7d9519563afbc2667f5"
    "311fad093de2c02cd069109b630d68e3bf767f8a788a6add7ab199f2d8f6a40b7c1910d9dab52ac80d0d333aacab32"
    "1a9309dc884ddd4db637a0c1115ae3c08efa683f99eb733102818100d4f7ef9f9be947ba9d1b3bce59e5608839a1e4"
    "64553e1b6d113d0f636758bbb473a89f9949836ead40b6f314eee3ac2244d7b6f379e83f30e17783ad68d508689788"
    "9c051c26e1558a4a220bfc242995860644b5d7a3ef513ac612b9c6c0a2021bb6b9cde7dbd21fe5858746c79563e9ba"
    "b7d06b43aab43a0a5cafab4519a6610281803db2386f174f2ea3ef4b6bd1601749ce2d6afa8be35f051178621f16a2"
    "3ad36eba03c073136389241969e5b87edb0fcbcf1a0bd6e1aee97bae1f2d97aabe19b17dbe7d9492cdb68a0897f572"
    "350e846c669660dc978c5068da598524fca8a136358d3e5f8f6ad5cf78d9089c93f473189162ce0f8c4902a19902b6"
    "33b3e6926d02818100ddc971183dcf3450c43e06ba2af32379eedeb2d678513fb706b75a006098154041f4b09e6be3"
    "85d4b25d80ec241c899e4a986a17b0a121daab91a1e4fc5a1802a7074df3fb3f7661f0e1c97799e36d21de937cc420"
    "9585db30a56af0a228e001036ed792625e5368ce101574a2e9767f07338949f0afdf358cecd18c6d6f3f55";

bool rsa_pkcs1_kat(std::string_view name) {
  // The same file's first SHAAlg = SHA256 case: Msg and S.
  Pkey key;
  if (!ok(private_key_from_der(hex(kRsaCavpKey), key))) return false;
  const Bytes message =
      hex("5af283b1b76ab2a695d794c23b35ca7371fc779e92ebf589e304c7f923d8cf97"
          "6304c19818fcd89d6f07c8d8e08bf371068bdf28ae6ee83b2e02328af8c0e2f9"
          "6e528e16f852f1fc5455e4772e288a68f159ca6bdcf902b858a1f94789b31638"
          "23e2d0717ff56689eec7d0e54d93f520d96e1eb04515abc70ae90578ff38d31b");
  const Bytes expected = Known(name)(
      "6b8be97d9e518a2ede746ff4a7d91a84a1fc665b52f154a927650db6e7348c69"
      "f8c8881f7bcf9b1a6d3366eed30c3aed4e93c203c43f5528a45de791895747ad"
      "e9c5fa5eee81427edee02082147aa311712a6ad5fb1732e93b3d6cd23ffd46a0"
      "b3caf62a8b69957cc68ae39f9993c1a779599cdda949bdaababb77f248fcfeaa"
      "44059be5459fb9b899278e929528ee130facd53372ecbc42f3e8de2998425860"
      "406440f248d817432de687112e504d734028e6c5620fa282ca07647006cf0a2f"
      "f83e19a916554cc61810c2e855305db4e5cf893a6a96767365794556ff033359"
      "084d7e38a8456e68e21155b76151314a29875feee09557161cbc654541e89e42");
  const RsaSignParams p;  // PKCS#1 v1.5, SHA-256, the message as input
  Bytes sig;
  return ok(rsa_sign(key.get(), p, message, sig)) && same(sig, expected) &&
         ok(rsa_verify(key.get(), p, message, sig));
}

bool rsa_oaep_kat(std::string_view name) {
  // `openssl pkeyutl -encrypt -pkeyopt rsa_padding_mode:oaep
  //   -pkeyopt rsa_oaep_md:sha256 -pkeyopt rsa_mgf1_md:sha256
  //   -pkeyopt rsa_oaep_label:6c6162656c` of "OAEP plaintext for ihsm".
  Pkey key;
  if (!ok(private_key_from_der(hex(kRsaKey), key))) return false;
  const Bytes ciphertext =
      hex("7cf6bb08719ffc96ced6a205c777a73fa87f59fa9b3b172283ffb2aeda8bd962"
          "26bbd93a19226b6ae5065913fa661a309eaf9bdd2333456fce761277cc2036f5"
          "da2756f1a67944e06ac96689871dc8b3ef230a979f1a2a6d56dea7cc5a4a4016"
          "2f168f62c451b608f0f89ae49817eb91c705e3e439f5c5811d48399b39a25734"
          "7140d6ce8a66c54fc07420f9a343abb83479bfff843715e07c9591dd27e9d267"
          "71338e3621dc18c00262e1e24f61f8c0bf712ddee40b298c7221c23bd3f6bfcf"
          "da1fd22f74b184eeb1e00b8147ed14702f8111cb0906458a3cfe203e26d0dba4"
          "f4409644691b49acd2bed00b06ca11b02dfd9e63df63325354523d8ae3353606");
  OaepParams p;
  p.label = text("label");
  SecretBytes plain;
  return ok(rsa_oaep_decrypt(key.get(), p, ciphertext, plain)) &&
         same(plain.reveal(),  // "OAEP plaintext for ihsm"
              Known(name)("4f41455020706c61696e7465787420666f72206968736d"));
}

// ---------------------------------------------------------------- EdDSA

bool ed25519_kat(std::string_view name) {
  // RFC 8032 section 7.1, TEST 1 (the empty message); the key as PKCS#8.
  Pkey key;
  if (!ok(private_key_from_der(
          hex("302e020100300506032b6570042204209d61b19deffd5a60ba844af492ec2cc44449c5697b326919"
              "703bac031cae7f60"),
          key))) {
    return false;
  }
  const Bytes expected = Known(name)(
      "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e3970"
      "1cf9b46bd25bf5f0595bbe24655141438e7a100b");
  Bytes sig;
  return ok(ed25519_sign(key.get(), {}, sig)) && same(sig, expected) &&
         ok(ed25519_verify(key.get(), {}, sig));
}

// ---------------------------------------------------------------- DRBG

bool ctr_drbg_kat(std::string_view name) {
  // NIST CAVP CTR_DRBG.rsp [AES-128 use df] [PredictionResistance = True]
  // [EntropyInputLen = 128] [NonceLen = 64] [PersonalizationStringLen = 128]
  // [AdditionalInputLen = 128] [ReturnedBitsLen = 512] COUNT = 0.
  const Bytes entropy = hex("92898f31fa1cff6d182f260643dff818"), nonce = hex("c2a4d972c3b9b697"),
              personalization = hex("ea65ee60264e7eb60e8268c4373c5c0b"),
              entropy_pr1 = hex("20728a06f86f8dd441e272b7c42ce810"),
              additional1 = hex("1a40fae3cc6c7ca0f8daba59236dad1d"),
              entropy_pr2 = hex("3db0f094f305503317863e2208f7a501"),
              additional2 = hex("9f72766cc746e5ed2e532012bc59318c");
  const Bytes expected = Known(name)(
      "5a3539870f4d22a40924ee71c96fac720ad6f08882d0832873ec3f93d8ab4523"
      "f07eac45145e939fb1d676433db6e80888f6da89087742fe1af43fc423c51f68");
  Bytes out(expected.size());
  return ok(ctr_drbg_known_answer(
             {entropy, nonce, personalization, entropy_pr1, additional1, entropy_pr2, additional2},
             out)) &&
         same(out, expected);
}

bool drbg_health(std::string_view name) {
  // The device's own DRBG: it generates, and two consecutive outputs
  // differ (each call also passes random_bytes' continuous test).
  std::array<uint8_t, 32> a{}, b{};
  if (!ok(random_bytes(a)) || !ok(random_bytes(b))) return false;
  if (fault_injected(name)) b = a;
  const bool differ = !same(a, b);
  secure_cleanse(a.data(), a.size());
  secure_cleanse(b.data(), b.size());
  return differ;
}

constexpr std::string_view kCavpCdh = "NIST CAVS ECC CDH primitive test vectors, P-256 COUNT = 0";

const SelfTest kSelfTests[] = {
    {"aes-gcm", "AES-256-GCM encrypt and decrypt (96-bit IV, AAD)",
     "McGrew & Viega, The Galois/Counter Mode of Operation, test case 16 (cited by SP 800-38D)",
     aes_gcm_kat},
    {"aes-cbc", "AES-256-CBC encrypt and decrypt", "NIST SP 800-38A F.2.5, F.2.6", aes_cbc_kat},
    {"aes-ctr", "AES-256-CTR encrypt and decrypt", "NIST SP 800-38A F.5.5, F.5.6", aes_ctr_kat},
    {"aes-kw", "AES-256 KW (SP 800-38F) wrap and unwrap", "RFC 3394 section 4.6", aes_kw_kat},
    {"aes-kwp", "AES-192 KWP (SP 800-38F) wrap and unwrap", "RFC 5649 section 6 (20 octets)",
     aes_kwp_kat},
    {"sha-256", "SHA-256", "FIPS 180-4 example \"abc\" (NIST CSRC)", sha256_kat},
    {"sha-384", "SHA-384", "FIPS 180-4 example \"abc\" (NIST CSRC)", sha384_kat},
    {"sha-512", "SHA-512", "FIPS 180-4 example \"abc\" (NIST CSRC)", sha512_kat},
    {"hmac-sha-256", "HMAC-SHA-256", "RFC 4231 test case 1", hmac_sha256_kat},
    {"hmac-sha-384", "HMAC-SHA-384", "RFC 4231 test case 1", hmac_sha384_kat},
    {"hmac-sha-512", "HMAC-SHA-512", "RFC 4231 test case 1", hmac_sha512_kat},
    {"hkdf-sha-256", "HKDF-SHA-256 extract and expand (SP 800-56C two-step)", "RFC 5869 A.1",
     hkdf_kat},
    {"kbkdf-hmac-sha-256", "SP 800-108 KDF in counter mode, HMAC-SHA-256, 32-bit counter",
     "NIST CAVP KDFCTR_gen.rsp, HMAC_SHA256 BEFORE_FIXED 32_BITS COUNT = 0", kbkdf_kat},
    {"ecdsa-p256-sha-256",
     "ECDSA P-256 SHA-256: sign and verify a fixed message, verify a published signature",
     "RFC 6979 A.2.5 (key, message \"sample\", signature)", ecdsa_p256_kat},
    {"ecdsa-p384-sha-384",
     "ECDSA P-384 SHA-384: sign and verify a fixed message, verify a published signature",
     "RFC 6979 A.2.6 (key, message \"sample\", signature)", ecdsa_p384_kat},
    {"ecdh-p256", "ECC CDH (SP 800-56A) P-256 shared secret", kCavpCdh, ecdh_p256_kat},
    {"rsa-pkcs1-sha-256", "RSA-2048 PKCS#1 v1.5 SHA-256 sign (deterministic) and verify",
     "NIST CAVP SigGen15_186-3.txt, [mod = 2048], first SHA-256 case", rsa_pkcs1_kat},
    {"rsa-oaep-sha-256", "RSA-2048 OAEP (SHA-256, MGF1-SHA-256, label) decrypt",
     "ihsm vector (tests/unit/crypto/rsa_test.cpp): ciphertext by openssl pkeyutl -encrypt",
     rsa_oaep_kat},
    {"ed25519", "EdDSA Ed25519 (pure) sign and verify", "RFC 8032 section 7.1 TEST 1", ed25519_kat},
    {"ctr-drbg", "CTR_DRBG AES-128 with df and prediction resistance (a test instance)",
     "NIST CAVP CTR_DRBG.rsp, AES-128 use df, PredictionResistance = True, COUNT = 0",
     ctr_drbg_kat},
    {"drbg-health", "the device DRBG generates; two consecutive outputs differ",
     "health check (no vector)", drbg_health},
};

constexpr std::string_view kConditionalTests[] = {"pct-ec", "pct-rsa", "pct-ed25519", "pct-x25519",
                                                  "rng-health"};

}  // namespace

std::span<const SelfTest> self_tests() { return kSelfTests; }

std::span<const std::string_view> conditional_tests() { return kConditionalTests; }

SelfTestReport run_power_on_self_tests() {
  SelfTestReport report;
  const auto start = std::chrono::steady_clock::now();
  for (const SelfTest& t : kSelfTests) {
    const bool passed = t.run(t.name);
    report.outcomes.push_back({t.name, passed});
    if (!passed && report.first_failure.empty()) report.first_failure = t.name;
  }
  report.elapsed = std::chrono::duration_cast<std::chrono::microseconds>(
      std::chrono::steady_clock::now() - start);
  if (!report.passed()) device_state().enter_error(report.first_failure);
  return report;
}

bool report_signature_relies_on(std::string_view failed_test) {
  static constexpr std::string_view kRelied[] = {"ecdsa-p384-sha-384", "sha-384",    "ctr-drbg",
                                                 "drbg-health",        "rng-health", "pct-ec"};
  return std::find(std::begin(kRelied), std::end(kRelied), failed_test) != std::end(kRelied);
}

}  // namespace ihsm::device::fips
