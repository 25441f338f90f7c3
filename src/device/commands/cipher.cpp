// Encryption and decryption: AES-GCM, AES-CBC (with and without PKCS#7
// padding), AES-CTR and RSA-OAEP, one-shot and multi-part.
#include "device/commands/commands.h"

namespace ihsm::device::commands {

using cbor::Value;
using namespace protocol;

namespace {

constexpr size_t kBlock = 16;

Status read_mechanism(const cbor::MapReader& in, Mechanism& out) {
  uint64_t raw = 0;
  const Status s = in.get_uint(kMechanism, raw, UINT32_MAX);
  out = static_cast<Mechanism>(raw);
  return s;
}

bool is_aes_mode(Mechanism m) {
  return m == Mechanism::kAesGcm || m == Mechanism::kAesCbc || m == Mechanism::kAesCbcPad ||
         m == Mechanism::kAesCtr;
}

crypto::AesMode aes_mode(Mechanism m) {
  switch (m) {
    case Mechanism::kAesCbc:
      return crypto::AesMode::kCbc;
    case Mechanism::kAesCbcPad:
      return crypto::AesMode::kCbcPad;
    case Mechanism::kAesCtr:
      return crypto::AesMode::kCtr;
    default:
      return crypto::AesMode::kGcm;
  }
}

Status check_aes_key(const KeyObject& key) {
  return key.key_type == KeyType::kAes && !key.secret.empty() ? Status::kOk
                                                              : Status::kKeyTypeMismatch;
}

// The IV of an AES request. GCM encryption without one gets a fresh random
// IV from the device (the approved way); every other case needs the
// caller's. CTR's "IV" is the 16-byte initial counter block.
Status aes_iv(const cbor::MapReader& in, const KeyObject& key, Mechanism m, bool encrypt, Bytes& iv,
              Reply& out) {
  const size_t want = m == Mechanism::kAesGcm ? kGcmIvSize : kBlock;
  if (m == Mechanism::kAesGcm && encrypt && !in.has(kIv)) {
    uint8_t fresh[kGcmIvSize];
    if (!key.next_gcm_iv(fresh)) return Status::kIvExhausted;
    iv.assign(fresh, fresh + kGcmIvSize);
    return Status::kOk;
  }
  const Status s = in.get_bytes(kIv, iv, kBlock);
  if (!ok(s)) return s == Status::kMissingField ? Status::kMechanismParamInvalid : s;
  if (iv.size() != want) return Status::kMechanismParamInvalid;
  // SP 800-38D: with an IV from outside the module, uniqueness is not the
  // module's to guarantee, so GCM encryption with it is not approved.
  if (m == Mechanism::kAesGcm && encrypt) out.approved = false;
  return Status::kOk;
}

Status counter_bits(const cbor::MapReader& in, uint32_t& bits) {
  const cbor::MapReader params(params_of(in));
  std::optional<uint64_t> v;
  const Status s = params.is_map() ? params.opt_uint(kCounterBits, v, 128) : Status::kMalformedBody;
  if (!ok(s)) return s;
  bits = static_cast<uint32_t>(v.value_or(128));
  return bits == 0 ? Status::kMechanismParamInvalid : Status::kOk;
}

// The backend reports bad PKCS#7 padding as kInvalidArgument; on the wire
// it is a ciphertext that does not decrypt (PKCS#11
// CKR_ENCRYPTED_DATA_INVALID), not a bad argument.
Status padding_status(Status s, Mechanism m, bool encrypt) {
  return s == Status::kInvalidArgument && m == Mechanism::kAesCbcPad && !encrypt
             ? Status::kCiphertextInvalid
             : s;
}

Status read_oaep(const cbor::MapReader& in, crypto::OaepParams& p) {
  const cbor::MapReader params(params_of(in));
  if (!params.is_map()) return Status::kMalformedBody;
  uint64_t hash = 0, mgf = 0;
  Status s = params.get_uint(kHash, hash);
  if (ok(s)) s = params.get_uint(kMgfHash, mgf);
  if (ok(s)) s = params.opt_bytes(kSourceData, p.label, kMaxOaepLabel);
  if (s == Status::kMissingField) return Status::kMechanismParamInvalid;
  if (!ok(s)) return s;
  if (!ok(hash_from_mechanism(hash, p.hash)) || !ok(hash_from_mechanism(mgf, p.mgf1))) {
    return Status::kMechanismParamInvalid;
  }
  return Status::kOk;
}

// One-shot AES in any mode.
Status aes_one_shot(CommandContext& ctx, const cbor::MapReader& in, Mechanism m, bool encrypt,
                    Reply& out) {
  const KeyObject& key = *ctx.key;
  Status s = check_aes_key(key);
  if (!ok(s)) return s;
  // Views into the request (it outlives the command): no copies.
  std::span<const uint8_t> input, aad, tag;
  Bytes iv;
  s = in.get_bytes_view(encrypt ? kPlaintext : kCiphertext, input, kMaxCipherData);
  if (ok(s) && m == Mechanism::kAesGcm) s = in.opt_bytes_view(kAad, aad, kMaxAad);
  if (ok(s) && m == Mechanism::kAesGcm && !encrypt) s = in.get_bytes_view(kTag, tag, kGcmTagSize);
  if (ok(s)) s = aes_iv(in, key, m, encrypt, iv, out);
  if (!ok(s)) return s;
  SecretBytes result;
  switch (m) {
    case Mechanism::kAesGcm:
      if (encrypt) {
        Bytes ciphertext, new_tag;
        s = key.prepared_aead.gcm_encrypt(key.secret.reveal(), iv, aad, input, ciphertext, new_tag);
        if (!ok(s)) return s;
        out.body.set(kIv, Value::bytes(std::move(iv)));
        out.body.set(kCiphertext, Value::bytes(std::move(ciphertext)));
        out.body.set(kTag, Value::bytes(std::move(new_tag)));
        return Status::kOk;
      }
      if (tag.size() != kGcmTagSize) return Status::kMechanismParamInvalid;
      s = key.prepared_aead.gcm_decrypt(key.secret.reveal(), iv, aad, input, tag, result);
      break;
    case Mechanism::kAesCbc:
    case Mechanism::kAesCbcPad:
      s = crypto::aes_cbc(encrypt, m == Mechanism::kAesCbcPad, key.secret.reveal(), iv, input,
                          result);
      s = padding_status(s, m, encrypt);
      break;
    case Mechanism::kAesCtr: {
      uint32_t bits = 0;
      s = counter_bits(in, bits);
      if (ok(s)) s = crypto::aes_ctr(key.secret.reveal(), iv, bits, input, result);
      break;
    }
    default:
      return Status::kMechanismInvalid;
  }
  if (!ok(s)) return s;
  if (encrypt) {
    if (m != Mechanism::kAesGcm) out.body.set(kIv, Value::bytes(std::move(iv)));
    out.body.set(kCiphertext, Value::bytes(result.reveal()));
  } else {
    out.body.set(kPlaintext, Value::bytes(result.reveal()));
  }
  return Status::kOk;
}

std::optional<CipherOperation>& slot(SessionState& session, bool encrypt) {
  return encrypt ? session.encrypt_operation : session.decrypt_operation;
}

Status cipher_init(CommandContext& ctx, const cbor::MapReader& in, bool encrypt, Reply& out) {
  if (!ctx.key) return Status::kMissingField;
  Mechanism m{};
  Status s = read_mechanism(in, m);
  if (!ok(s)) return s;
  if (!is_aes_mode(m)) return Status::kMechanismInvalid;
  s = check_aes_key(*ctx.key);
  if (!ok(s)) return s;
  Bytes iv, aad;
  s = aes_iv(in, *ctx.key, m, encrypt, iv, out);
  if (ok(s) && m == Mechanism::kAesGcm) s = in.opt_bytes(kAad, aad, kMaxAad);
  if (ok(s) && m == Mechanism::kAesCtr) {
    // Multi-part CTR runs the full 128-bit counter; narrower counters are
    // one-shot only.
    uint32_t bits = 0;
    s = counter_bits(in, bits);
    if (ok(s) && bits != 128) s = Status::kMechanismParamInvalid;
  }
  if (!ok(s)) return s;
  std::lock_guard lock(ctx.session->operation_mutex);
  auto& op = slot(*ctx.session, encrypt);
  if (op) return Status::kOperationActive;
  CipherOperation fresh;
  fresh.key = ctx.key;
  fresh.mechanism = m;
  fresh.approved = out.approved;
  // GCM plaintext is released only after the tag checks out.
  fresh.hold_until_final = !encrypt && m == Mechanism::kAesGcm;
  s = fresh.stream.init(aes_mode(m), encrypt, ctx.key->secret.reveal(), iv, aad);
  if (!ok(s)) return s;
  op = std::move(fresh);
  if (encrypt) out.body.set(kIv, Value::bytes(iv));
  return Status::kOk;
}

Status cipher_update(CommandContext& ctx, const cbor::MapReader& in, bool encrypt, Reply& out) {
  Bytes input;
  Status s = in.get_bytes(encrypt ? kPlaintext : kCiphertext, input, kMaxCipherData);
  if (!ok(s)) return s;
  std::lock_guard lock(ctx.session->operation_mutex);
  auto& op = slot(*ctx.session, encrypt);
  if (!op) return Status::kOperationNotInitialized;
  SecretBytes result;
  s = op->stream.update(input, result);
  if (ok(s) && op->hold_until_final) {
    if (op->held.size() + result.size() > kMaxCipherData) {
      s = Status::kDataLengthInvalid;
    } else {
      const size_t at = op->held.size();
      op->held.resize(at + result.size());
      std::copy(result.reveal().begin(), result.reveal().end(),
                op->held.reveal_mutable().begin() + static_cast<ptrdiff_t>(at));
      result.clear();
    }
  }
  if (!ok(s)) {
    op.reset();  // PKCS#11: an error ends the operation
    return s;
  }
  out.approved = op->approved;
  out.body.set(encrypt ? kCiphertext : kPlaintext, Value::bytes(result.reveal()));
  return Status::kOk;
}

Status cipher_final(CommandContext& ctx, const cbor::MapReader& in, bool encrypt, Reply& out) {
  std::lock_guard lock(ctx.session->operation_mutex);
  auto& op = slot(*ctx.session, encrypt);
  if (!op) return Status::kOperationNotInitialized;
  CipherOperation finished = std::move(*op);
  op.reset();
  Bytes tag;
  if (!encrypt && finished.mechanism == Mechanism::kAesGcm) {
    const Status s = in.get_bytes(kTag, tag, kGcmTagSize);
    if (!ok(s)) return s;
    if (tag.size() != kGcmTagSize) return Status::kMechanismParamInvalid;
  }
  SecretBytes result;
  const Status s = padding_status(finished.stream.final(result, tag), finished.mechanism, encrypt);
  if (!ok(s)) return s;
  out.approved = finished.approved;
  if (finished.hold_until_final) {
    const size_t at = finished.held.size();
    finished.held.resize(at + result.size());
    std::copy(result.reveal().begin(), result.reveal().end(),
              finished.held.reveal_mutable().begin() + static_cast<ptrdiff_t>(at));
    out.body.set(kPlaintext, Value::bytes(finished.held.reveal()));
    return Status::kOk;
  }
  out.body.set(encrypt ? kCiphertext : kPlaintext, Value::bytes(result.reveal()));
  if (encrypt && finished.mechanism == Mechanism::kAesGcm) out.body.set(kTag, Value::bytes(tag));
  return Status::kOk;
}

}  // namespace

Status Encrypt(CommandContext& ctx, const cbor::MapReader& in, Reply& out) {
  if (!ctx.key) return Status::kMissingField;
  Mechanism m{};
  Status s = read_mechanism(in, m);
  if (!ok(s)) return s;
  if (is_aes_mode(m)) return aes_one_shot(ctx, in, m, true, out);
  if (m == Mechanism::kRsaPkcs) {
    return fail(out, Status::kMechanismRefused, "PKCS#1 v1.5 encryption is not offered");
  }
  if (m != Mechanism::kRsaPkcsOaep) return Status::kMechanismInvalid;
  const KeyObject& key = *ctx.key;
  if (key.key_type != KeyType::kRsa || key.object_class != ObjectClass::kPublicKey) {
    return Status::kKeyTypeMismatch;
  }
  crypto::OaepParams p;
  Bytes plaintext, ciphertext;
  s = read_oaep(in, p);
  if (ok(s)) s = in.get_bytes(kPlaintext, plaintext, 1024);
  if (ok(s)) s = crypto::rsa_oaep_encrypt(key.pkey.get(), p, plaintext, ciphertext);
  if (!ok(s)) return s;
  out.body.set(kCiphertext, Value::bytes(ciphertext));
  return Status::kOk;
}

Status Decrypt(CommandContext& ctx, const cbor::MapReader& in, Reply& out) {
  if (!ctx.key) return Status::kMissingField;
  Mechanism m{};
  Status s = read_mechanism(in, m);
  if (!ok(s)) return s;
  if (is_aes_mode(m)) return aes_one_shot(ctx, in, m, false, out);
  if (m == Mechanism::kRsaPkcs) {
    // Bleichenbacher-style padding oracles: OpenSSL 3.0 has no implicit
    // rejection, so PKCS#1 v1.5 decryption is refused (docs/mechanisms.md).
    return fail(out, Status::kMechanismRefused,
                "PKCS#1 v1.5 decryption is refused (padding-oracle risk); use RSA-OAEP");
  }
  if (m != Mechanism::kRsaPkcsOaep) return Status::kMechanismInvalid;
  const KeyObject& key = *ctx.key;
  if (key.key_type != KeyType::kRsa || key.object_class != ObjectClass::kPrivateKey) {
    return Status::kKeyTypeMismatch;
  }
  crypto::OaepParams p;
  Bytes ciphertext;
  SecretBytes plaintext;
  s = read_oaep(in, p);
  if (ok(s)) s = in.get_bytes(kCiphertext, ciphertext, 1024);
  if (ok(s)) s = crypto::rsa_oaep_decrypt(key.pkey.get(), p, ciphertext, plaintext);
  if (!ok(s)) return s;
  out.body.set(kPlaintext, Value::bytes(plaintext.reveal()));
  return Status::kOk;
}

Status EncryptInit(CommandContext& ctx, const cbor::MapReader& in, Reply& out) {
  return cipher_init(ctx, in, true, out);
}
Status EncryptUpdate(CommandContext& ctx, const cbor::MapReader& in, Reply& out) {
  return cipher_update(ctx, in, true, out);
}
Status EncryptFinal(CommandContext& ctx, const cbor::MapReader& in, Reply& out) {
  return cipher_final(ctx, in, true, out);
}
Status DecryptInit(CommandContext& ctx, const cbor::MapReader& in, Reply& out) {
  return cipher_init(ctx, in, false, out);
}
Status DecryptUpdate(CommandContext& ctx, const cbor::MapReader& in, Reply& out) {
  return cipher_update(ctx, in, false, out);
}
Status DecryptFinal(CommandContext& ctx, const cbor::MapReader& in, Reply& out) {
  return cipher_final(ctx, in, false, out);
}

}  // namespace ihsm::device::commands
