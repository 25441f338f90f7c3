// Sign, verify, encrypt, decrypt, digest and random through PKCS#11:
// mechanism parameters mapped to the device's, single- and multi-part,
// with PKCS#11's output-length convention.
#include <cstring>

#include "pkcs11/module.h"

namespace ihsm::pkcs11 {
namespace {

constexpr size_t kMaxBufferedInput = 512 * 1024;  // the device's hash-then-sign limit

Operation& op_of(P11Session& s, OpKind k) {
  switch (k) {
    case OpKind::kSign:
      return s.sign;
    case OpKind::kVerify:
      return s.verify;
    case OpKind::kEncrypt:
      return s.encrypt;
    case OpKind::kDecrypt:
      return s.decrypt;
    case OpKind::kDigest:
      break;
  }
  return s.digest;
}

CK_FLAGS flag_of(OpKind k) {
  switch (k) {
    case OpKind::kSign:
      return CKF_SIGN;
    case OpKind::kVerify:
      return CKF_VERIFY;
    case OpKind::kEncrypt:
      return CKF_ENCRYPT;
    case OpKind::kDecrypt:
      return CKF_DECRYPT;
    case OpKind::kDigest:
      break;
  }
  return CKF_DIGEST;
}

uint32_t usage_of(OpKind k) {
  switch (k) {
    case OpKind::kSign:
      return usage::kSign;
    case OpKind::kVerify:
      return usage::kVerify;
    case OpKind::kEncrypt:
      return usage::kEncrypt;
    case OpKind::kDecrypt:
      return usage::kDecrypt;
    case OpKind::kDigest:
      break;
  }
  return 0;
}

// CK_MECHANISM parameters -> the device's.
CK_RV read_params(const CK_MECHANISM& m, Operation& op) {
  op.spec = CipherSpec{};
  op.spec.mechanism = static_cast<Mechanism>(m.mechanism);
  op.params = MechanismParams{};
  switch (m.mechanism) {
    case CKM_RSA_PKCS_PSS:
    case CKM_SHA256_RSA_PKCS_PSS:
    case CKM_SHA384_RSA_PKCS_PSS:
    case CKM_SHA512_RSA_PKCS_PSS: {
      const auto* p = params_as<CK_RSA_PKCS_PSS_PARAMS>(m);
      if (p == nullptr) return CKR_MECHANISM_PARAM_INVALID;
      op.params.hash = static_cast<Mechanism>(p->hashAlg);
      op.params.mgf_hash = mgf1_hash(p->mgf);
      if (!op.params.mgf_hash) return CKR_MECHANISM_PARAM_INVALID;
      op.params.salt_length = static_cast<uint32_t>(p->sLen);
      return CKR_OK;
    }
    case CKM_RSA_PKCS_OAEP: {
      const CK_RV r = read_oaep(params_as<CK_RSA_PKCS_OAEP_PARAMS>(m), op.params);
      op.spec.params = op.params;
      return r;
    }
    case CKM_AES_CBC:
    case CKM_AES_CBC_PAD: {
      if (m.pParameter == nullptr || m.ulParameterLen != 16) return CKR_MECHANISM_PARAM_INVALID;
      const auto* iv = static_cast<const uint8_t*>(m.pParameter);
      op.spec.iv = Bytes(iv, iv + 16);
      return CKR_OK;
    }
    case CKM_AES_CTR: {
      const auto* p = params_as<CK_AES_CTR_PARAMS>(m);
      // 1..128 counter bits, checked here: PKCS#11 refuses bad parameters
      // at Init (the device would say INVALID_ARGUMENT, at the operation).
      if (p == nullptr || p->ulCounterBits < 1 || p->ulCounterBits > 128) {
        return CKR_MECHANISM_PARAM_INVALID;
      }
      op.spec.iv = Bytes(p->cb, p->cb + 16);
      op.spec.params.counter_bits = static_cast<uint32_t>(p->ulCounterBits);
      return CKR_OK;
    }
    case CKM_AES_GCM: {
      const auto* p = params_as<CK_GCM_PARAMS>(m);
      // The device makes 16-byte tags and takes 12-byte IVs.
      if (p == nullptr || p->ulTagBits != 128 || p->ulIvLen != 12 || p->pIv == nullptr ||
          (p->ulAADLen != 0 && p->pAAD == nullptr)) {
        return CKR_MECHANISM_PARAM_INVALID;
      }
      op.spec.iv = Bytes(p->pIv, p->pIv + p->ulIvLen);
      if (p->ulAADLen != 0) op.spec.aad = Bytes(p->pAAD, p->pAAD + p->ulAADLen);
      op.tag_length = 16;
      return CKR_OK;
    }
    default:
      // Mechanisms without parameters.
      if (m.ulParameterLen != 0) return CKR_MECHANISM_PARAM_INVALID;
      return CKR_OK;
  }
}

Bytes bytes_of(CK_BYTE_PTR p, CK_ULONG n) { return n == 0 ? Bytes{} : Bytes(p, p + n); }

// C_Sign's result: a signature, or for the vendor mechanism
// CKM_IHSM_KEY_ATTESTATION the key's attestation report over the data
// (the caller's nonce).
Result<Bytes> sign_with(Session& d, const Operation& op, const Bytes& data) {
  if (op.mechanism == CKM_IHSM_KEY_ATTESTATION) return d.attest_key(op.key, data);
  return d.sign(op.key, static_cast<Mechanism>(op.mechanism), data, op.params);
}

// Hands out op.result by the buffer convention; the operation ends once
// it was delivered (or failed for another reason than the buffer size).
CK_RV deliver(Operation& op, CK_BYTE_PTR out, CK_ULONG_PTR out_len, bool ends) {
  const CK_RV r = give(*op.result, out, out_len);
  if (r == CKR_OK && out != nullptr) {
    op.result.reset();
    if (ends) op = Operation{};
  }
  return r;
}

CK_RV fail(Operation& op, CK_RV r) {
  op = Operation{};
  return r;
}

bool is_gcm(const Operation& op) { return op.mechanism == CKM_AES_GCM; }

// CKM_SHA*_HMAC's MAC is the whole hash output (only the _GENERAL variants,
// not offered, take a shorter one). The device also verifies a MAC cut to
// 16 bytes or more, so a shorter one must be refused here.
CK_RV check_mac_length(CK_MECHANISM_TYPE m, CK_ULONG sig_len) {
  CK_ULONG full = 0;
  if (m == CKM_SHA256_HMAC) full = 32;
  if (m == CKM_SHA384_HMAC) full = 48;
  if (m == CKM_SHA512_HMAC) full = 64;
  return full != 0 && sig_len != full ? CKR_SIGNATURE_LEN_RANGE : CKR_OK;
}

// PKCS#11's GCM output: ciphertext then tag.
Bytes with_tag(CipherOutput&& c) {
  Bytes out = std::move(c.data);
  out.insert(out.end(), c.tag.begin(), c.tag.end());
  return out;
}

}  // namespace

CK_RV op_init(P11Session& s, OpKind kind, CK_MECHANISM_PTR mech, CK_OBJECT_HANDLE key) {
  if (mech == nullptr) return CKR_ARGUMENTS_BAD;
  Operation& op = op_of(s, kind);
  if (op.active) return CKR_OPERATION_ACTIVE;
  const auto& table = mechanism_table();
  const auto it = std::find_if(table.begin(), table.end(),
                               [&](const MechanismEntry& e) { return e.type == mech->mechanism; });
  if (it == table.end() || (it->flags & flag_of(kind)) == 0) return CKR_MECHANISM_INVALID;
  Operation fresh;
  if (const CK_RV r = read_params(*mech, fresh); r != CKR_OK) return r;
  fresh.mechanism = mech->mechanism;
  if (kind != OpKind::kDigest) {
    {
      std::lock_guard lock(s.token->mutex);
      if (s.token->role == Role::kPublic) return CKR_USER_NOT_LOGGED_IN;
    }
    // PKCS#11 reports an unusable key at Init, not at the operation.
    std::optional<uint32_t> flags = s.token->key_flags.get(key);
    if (!flags) {
      auto info = s.device->key_info(key);
      if (!info) {
        return info.status() == Status::kNoSuchKey ? CKR_KEY_HANDLE_INVALID : rv(info);
      }
      flags = info.value().flags;
      s.token->key_flags.put(key, *flags);
    }
    // Attesting a key is no use of it: any key may be attested.
    if ((*flags & usage_of(kind)) == 0 && mech->mechanism != CKM_IHSM_KEY_ATTESTATION) {
      return CKR_KEY_FUNCTION_NOT_PERMITTED;
    }
    fresh.key = key;
  }
  fresh.active = true;
  op = std::move(fresh);
  return CKR_OK;
}

CK_RV op_one_shot(P11Session& s, OpKind kind, CK_BYTE_PTR in, CK_ULONG in_len, CK_BYTE_PTR out,
                  CK_ULONG_PTR out_len) {
  Operation& op = op_of(s, kind);
  if (!op.active) return CKR_OPERATION_NOT_INITIALIZED;
  if (out_len == nullptr || (in == nullptr && in_len != 0)) return fail(op, CKR_ARGUMENTS_BAD);
  if (op.device_multipart || !op.input.empty()) return fail(op, CKR_OPERATION_ACTIVE);
  if (!op.result) {
    // Computed once; a length query or a short buffer gets it again from here.
    const Bytes data = bytes_of(in, in_len);
    Session& d = *s.device;
    const auto mech = static_cast<Mechanism>(op.mechanism);
    switch (kind) {
      case OpKind::kSign: {
        auto r = sign_with(d, op, data);
        if (!r) return fail(op, rv(r));
        op.result = std::move(r).value();
        break;
      }
      case OpKind::kEncrypt: {
        auto r = d.encrypt(op.key, op.spec, data);
        if (!r) return fail(op, rv(r));
        op.result = with_tag(std::move(r).value());
        break;
      }
      case OpKind::kDecrypt: {
        Bytes c = data, tag;
        if (is_gcm(op)) {
          if (c.size() < op.tag_length) return fail(op, CKR_ENCRYPTED_DATA_LEN_RANGE);
          tag.assign(c.end() - static_cast<std::ptrdiff_t>(op.tag_length), c.end());
          c.resize(c.size() - op.tag_length);
        }
        auto r = d.decrypt(op.key, op.spec, c, tag);
        if (!r) {
          if (r.status() == Status::kTagMismatch) return fail(op, CKR_ENCRYPTED_DATA_INVALID);
          return fail(op, rv(r));
        }
        op.result = std::move(r).value();
        break;
      }
      case OpKind::kDigest: {
        auto r = d.digest(mech, data);
        if (!r) return fail(op, rv(r));
        op.result = std::move(r).value();
        break;
      }
      case OpKind::kVerify:
        return fail(op, CKR_FUNCTION_FAILED);  // verify_one_shot
    }
    record_approval(s);
  }
  return deliver(op, out, out_len, true);
}

CK_RV op_update(P11Session& s, OpKind kind, CK_BYTE_PTR in, CK_ULONG in_len, CK_BYTE_PTR out,
                CK_ULONG_PTR out_len) {
  Operation& op = op_of(s, kind);
  if (!op.active) return CKR_OPERATION_NOT_INITIALIZED;
  if (in == nullptr && in_len != 0) return fail(op, CKR_ARGUMENTS_BAD);
  const Bytes data = bytes_of(in, in_len);
  Session& d = *s.device;
  if (kind == OpKind::kSign || kind == OpKind::kVerify) {
    // The device signs in one call: the parts are gathered here.
    if (op.input.size() + data.size() > kMaxBufferedInput) return fail(op, CKR_DATA_LEN_RANGE);
    op.input.insert(op.input.end(), data.begin(), data.end());
    return CKR_OK;
  }
  if (kind == OpKind::kDigest) {
    if (!op.device_multipart) {
      auto r = d.digest_init(static_cast<Mechanism>(op.mechanism));
      if (!r) return fail(op, rv(r));
      op.device_multipart = true;
    }
    auto r = d.digest_update(data);
    if (!r) return fail(op, rv(r));
    record_approval(s);
    return CKR_OK;
  }
  if (out_len == nullptr) return fail(op, CKR_ARGUMENTS_BAD);
  if (!op.result) {
    if (!op.device_multipart) {
      if (kind == OpKind::kEncrypt) {
        auto r = d.encrypt_init(op.key, op.spec);
        if (!r) return fail(op, rv(r));
      } else {
        auto r = d.decrypt_init(op.key, op.spec);
        if (!r) return fail(op, rv(r));
      }
      op.device_multipart = true;
    }
    Bytes chunk = data;
    if (kind == OpKind::kDecrypt && is_gcm(op)) {
      // The tag is the last 16 bytes of all input: hold them back.
      op.held.insert(op.held.end(), chunk.begin(), chunk.end());
      if (op.held.size() <= op.tag_length) {
        op.result = Bytes{};
        return deliver(op, out, out_len, false);
      }
      const auto split = op.held.end() - static_cast<std::ptrdiff_t>(op.tag_length);
      chunk.assign(op.held.begin(), split);
      op.held.erase(op.held.begin(), split);
    }
    auto r = kind == OpKind::kEncrypt ? d.encrypt_update(chunk) : d.decrypt_update(chunk);
    if (!r) return fail(op, rv(r));
    record_approval(s);
    op.result = std::move(r).value();
  }
  return deliver(op, out, out_len, false);
}

CK_RV op_final(P11Session& s, OpKind kind, CK_BYTE_PTR out, CK_ULONG_PTR out_len) {
  Operation& op = op_of(s, kind);
  if (!op.active) return CKR_OPERATION_NOT_INITIALIZED;
  if (out_len == nullptr) return fail(op, CKR_ARGUMENTS_BAD);
  Session& d = *s.device;
  if (!op.result) {
    switch (kind) {
      case OpKind::kSign: {
        auto r = sign_with(d, op, op.input);
        if (!r) return fail(op, rv(r));
        op.result = std::move(r).value();
        break;
      }
      case OpKind::kDigest: {
        if (!op.device_multipart) {
          auto r = d.digest(static_cast<Mechanism>(op.mechanism), {});
          if (!r) return fail(op, rv(r));
          op.result = std::move(r).value();
          break;
        }
        auto r = d.digest_final();
        if (!r) return fail(op, rv(r));
        op.result = std::move(r).value();
        break;
      }
      case OpKind::kEncrypt: {
        if (!op.device_multipart) {
          auto r = d.encrypt(op.key, op.spec, {});
          if (!r) return fail(op, rv(r));
          op.result = with_tag(std::move(r).value());
          break;
        }
        auto r = d.encrypt_final();
        if (!r) return fail(op, rv(r));
        op.result = with_tag(std::move(r).value());
        break;
      }
      case OpKind::kDecrypt: {
        if (!op.device_multipart) {
          // Nothing was given: decrypting empty input.
          Bytes tag;
          if (is_gcm(op)) return fail(op, CKR_ENCRYPTED_DATA_LEN_RANGE);
          auto r = d.decrypt(op.key, op.spec, {}, tag);
          if (!r) return fail(op, rv(r));
          op.result = std::move(r).value();
          break;
        }
        if (is_gcm(op) && op.held.size() != op.tag_length) {
          return fail(op, CKR_ENCRYPTED_DATA_LEN_RANGE);
        }
        auto r = d.decrypt_final(is_gcm(op) ? op.held : Bytes{});
        if (!r) {
          if (r.status() == Status::kTagMismatch) return fail(op, CKR_ENCRYPTED_DATA_INVALID);
          return fail(op, rv(r));
        }
        op.result = std::move(r).value();
        break;
      }
      case OpKind::kVerify:
        return fail(op, CKR_FUNCTION_FAILED);  // verify_final
    }
    record_approval(s);
  }
  return deliver(op, out, out_len, true);
}

CK_RV verify_one_shot(P11Session& s, CK_BYTE_PTR data, CK_ULONG len, CK_BYTE_PTR sig,
                      CK_ULONG sig_len) {
  Operation& op = s.verify;
  if (!op.active) return CKR_OPERATION_NOT_INITIALIZED;
  if ((data == nullptr && len != 0) || sig == nullptr) return fail(op, CKR_ARGUMENTS_BAD);
  if (!op.input.empty()) return fail(op, CKR_OPERATION_ACTIVE);
  if (const CK_RV r = check_mac_length(op.mechanism, sig_len); r != CKR_OK) return fail(op, r);
  auto r = s.device->verify(op.key, static_cast<Mechanism>(op.mechanism), bytes_of(data, len),
                            bytes_of(sig, sig_len), op.params);
  op = Operation{};
  if (!r) return rv(r);
  record_approval(s);
  return CKR_OK;
}

CK_RV verify_final(P11Session& s, CK_BYTE_PTR sig, CK_ULONG sig_len) {
  Operation& op = s.verify;
  if (!op.active) return CKR_OPERATION_NOT_INITIALIZED;
  if (sig == nullptr) return fail(op, CKR_ARGUMENTS_BAD);
  if (const CK_RV r = check_mac_length(op.mechanism, sig_len); r != CKR_OK) return fail(op, r);
  auto r = s.device->verify(op.key, static_cast<Mechanism>(op.mechanism), op.input,
                            bytes_of(sig, sig_len), op.params);
  op = Operation{};
  if (!r) return rv(r);
  record_approval(s);
  return CKR_OK;
}

CK_RV random(P11Session& s, CK_BYTE_PTR out, CK_ULONG len) {
  if (out == nullptr && len != 0) return CKR_ARGUMENTS_BAD;
  constexpr CK_ULONG kChunk = 64 * 1024;  // the device's limit per call
  for (CK_ULONG done = 0; done < len;) {
    const CK_ULONG n = std::min(kChunk, len - done);
    auto r = s.device->random(n);
    if (!r) return rv(r);
    std::memcpy(out + done, r.value().data(), n);
    done += n;
  }
  record_approval(s);
  return CKR_OK;
}

}  // namespace ihsm::pkcs11
