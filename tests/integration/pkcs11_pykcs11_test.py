#!/usr/bin/env python3
"""The PKCS#11 module (libihsm-pkcs11.so) from Python through PyKCS11, against
a real ihsmd this script starts on a temporary state directory and socket.

    pkcs11_pykcs11_test.py MODULE IHSMD [OPENSSL]

A token is made through the free slot (C_InitToken creates a partition, the
SO sets the user PIN with C_InitPIN), then: EC P-256 and AES-256 keys,
CKM_ECDSA and CKM_ECDSA_SHA256 signatures checked with the `cryptography`
package (or, without it, the openssl binary), AES-GCM with CK_GCM_PARAMS,
CKM_SHA256 against hashlib, C_GenerateRandom, CKR_ATTRIBUTE_SENSITIVE for a
private key's CKA_VALUE, and finding objects by label.

With `cryptography`, every mechanism C_GetMechanismList names is walked
(test_mechanism_list_is_walked fails on one this script does not know) and
each result is checked by an independent computation, never by the module
itself:

  RSA    PKCS#1 v1.5 (CKM_RSA_PKCS over a DigestInfo and over raw input,
         CKM_SHA256/384/512_RSA_PKCS), byte for byte with a key brought in
         by C_UnwrapKey; PSS (CKM_RSA_PKCS_PSS, CKM_SHA256/384/512_RSA_PKCS_PSS,
         an MGF1 hash other than the message hash); OAEP with SHA-256/384/512
         and labels, encrypt, decrypt, and wrap/unwrap with an RSA-3072 key;
         CKM_RSA_PKCS encryption refused
  EC     ECDSA over P-256, P-384, P-521 (CKM_ECDSA over digests of every
         size, CKM_ECDSA_SHA256/384/512); ECDH1 on P-256, P-384 and X25519
         (CKM_EC_MONTGOMERY_KEY_PAIR_GEN), the derived secret an HMAC key
         that matches the shared secret, the peer point raw and in DER
  EdDSA  Ed25519 (CKM_EC_EDWARDS_KEY_PAIR_GEN, CKA_EC_PARAMS by OID and by
         name) with CKM_EDDSA, byte for byte with a known key
  AES    CBC, CBC-PAD, CTR (CK_AES_CTR_PARAMS), GCM known answers with
         128/192/256-bit keys; no AES-ECB (not offered: CKR_MECHANISM_INVALID)
  wrap   AES-KEY-WRAP and AES-KEY-WRAP-KWP known answers in both directions,
         secret and private (PKCS#8) keys; generated AES and generic secret
         keys wrapped out and checked by what they compute
  HMAC   SHA-256/384/512 known answers with keys brought in by C_UnwrapKey
  digest SHA-256/384/512, one-shot and multi-part

Multi-part (C_*Update/C_*Final) sign, verify, encrypt, decrypt and digest
run for ECDSA, RSA, EdDSA, HMAC, AES-CBC/CBC-PAD/CTR/GCM and the SHA-2s; a
tampered signature or MAC gets CKR_SIGNATURE_INVALID from C_Verify and
C_VerifyFinal.

Multi-process: four processes (multiprocessing, spawn: each loads and
C_Initializes the module itself) log in to the token, find one token key
pair by label and sign and verify 200 times each at the same time, while
each creates and destroys its own session objects; a session object of one
process is neither found nor reachable by handle in another. (Threads in
one process are ihsm_pkcs11_module_tests' ManyThreadsOwnSessionsSameKeys:
PyKCS11 holds the GIL in every call.)

Not here, because PyKCS11 cannot express their parameters (structures with
pointers it has no class for): CKM_HKDF_DERIVE (CK_HKDF_PARAMS),
CKM_SP800_108_COUNTER_KDF (CK_SP800_108_KDF_PARAMS) and CKM_RSA_AES_KEY_WRAP
(CK_RSA_AES_KEY_WRAP_PARAMS). The C++ dlopen test
(tests/integration/pkcs11_module_test.cpp) checks those against OpenSSL.

IHSM_TEST_NO_CRYPTOGRAPHY=1 forces the openssl path (and skips the rest).
"""
import hashlib
import multiprocessing
import os
import queue
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import traceback
import unittest

import PyKCS11
from PyKCS11 import LowLevel, ckbytelist
from PyKCS11.LowLevel import (CKA_CLASS, CKA_DECRYPT, CKA_EC_PARAMS, CKA_EC_POINT,
                              CKA_ENCRYPT, CKA_ID, CKA_KEY_TYPE, CKA_LABEL, CKA_PRIVATE,
                              CKA_SENSITIVE, CKA_SIGN, CKA_TOKEN, CKA_VALUE, CKA_VALUE_LEN,
                              CKA_VERIFY, CKF_RW_SESSION, CKF_SERIAL_SESSION,
                              CKF_TOKEN_INITIALIZED, CKF_USER_PIN_INITIALIZED, CKK_AES,
                              CKK_EC, CKM_ECDSA, CKM_ECDSA_SHA256, CKM_SHA256, CKO_PRIVATE_KEY,
                              CKO_PUBLIC_KEY, CKO_SECRET_KEY, CKR_ATTRIBUTE_SENSITIVE,
                              CKU_SO, CKU_USER, CKA_DERIVE, CKA_EXTRACTABLE, CKA_MODULUS,
                              CKA_MODULUS_BITS, CKA_PUBLIC_EXPONENT, CKA_UNWRAP, CKA_WRAP,
                              CKG_MGF1_SHA256, CKK_GENERIC_SECRET, CKM_AES_CBC_PAD,
                              CKM_AES_KEY_WRAP, CKM_SHA256_HMAC, CKM_SHA256_RSA_PKCS_PSS,
                              CKA_APPLICATION, CKG_MGF1_SHA384, CKG_MGF1_SHA512, CKK_EC_EDWARDS,
                              CKK_EC_MONTGOMERY, CKK_RSA, CKM_AES_CBC, CKM_AES_CTR, CKM_AES_ECB,
                              CKM_AES_GCM, CKM_AES_KEY_GEN, CKM_AES_KEY_WRAP_KWP, CKM_ECDH1_DERIVE,
                              CKM_ECDSA_SHA384, CKM_ECDSA_SHA512, CKM_EC_EDWARDS_KEY_PAIR_GEN,
                              CKM_EC_KEY_PAIR_GEN, CKM_EC_MONTGOMERY_KEY_PAIR_GEN, CKM_EDDSA,
                              CKM_GENERIC_SECRET_KEY_GEN, CKM_HKDF_DERIVE, CKM_RSA_AES_KEY_WRAP,
                              CKM_SP800_108_COUNTER_KDF,
                              CKM_RSA_PKCS, CKM_RSA_PKCS_KEY_PAIR_GEN, CKM_RSA_PKCS_OAEP,
                              CKM_RSA_PKCS_PSS, CKM_SHA384, CKM_SHA384_HMAC, CKM_SHA384_RSA_PKCS,
                              CKM_SHA384_RSA_PKCS_PSS, CKM_SHA512, CKM_SHA512_HMAC,
                              CKM_SHA512_RSA_PKCS, CKM_SHA512_RSA_PKCS_PSS, CKM_SHA256_RSA_PKCS,
                              CKO_DATA, CKR_MECHANISM_INVALID, CKR_MECHANISM_PARAM_INVALID,
                              CKR_OBJECT_HANDLE_INVALID, CKR_OK, CKR_OPERATION_NOT_INITIALIZED,
                              CKR_SIGNATURE_INVALID, CKR_SIGNATURE_LEN_RANGE, CKF_HW)

try:
    if os.environ.get("IHSM_TEST_NO_CRYPTOGRAPHY") == "1":
        raise ImportError("disabled by IHSM_TEST_NO_CRYPTOGRAPHY")
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives import hmac as crypto_hmac, keywrap
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa, utils, x25519
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    HAVE_CRYPTOGRAPHY = True
except ImportError:
    HAVE_CRYPTOGRAPHY = False

FREE_SLOT = 0x7FFF0000
CKM_IHSM_MASKED_KEY = 0xC9480001  # include/ihsm/pkcs11_ihsm.h
CKM_IHSM_KEY_ATTESTATION = 0xC9480002
CKR_WRAPPED_KEY_INVALID = 0x110
CKR_TEMPLATE_INCONSISTENT = 0xD1
TOKEN = "pytoken"
SO_PIN = "12345678"
USER_PIN = "87654321"
P256_OID = bytes.fromhex("06082a8648ce3d030107")
P384_OID = bytes.fromhex("06052b81040022")
P521_OID = bytes.fromhex("06052b81040023")
ED25519_OID = bytes.fromhex("06032b6570")
X25519_OID = bytes.fromhex("06032b656e")
# PKCS#11 3.0 also names the curve by a PrintableString.
ED25519_NAME = b"\x13\x0cedwards25519"
# SubjectPublicKeyInfo of a P-256 key up to the 65-byte uncompressed point.
P256_SPKI_PREFIX = bytes.fromhex(
    "3059301306072a8648ce3d020106082a8648ce3d030107034200")
# CKR_AEAD_DECRYPT_FAILED (PKCS#11 3.0); PyKCS11 1.5 may not name it.
CKR_AEAD_DECRYPT_FAILED = 0x35
CKR_ENCRYPTED_DATA_INVALID = 0x40

# The multi-process test: processes, sign/verify rounds each, and how long
# any one of them may wait for the others.
PROCESSES = 4
ROUNDS = 200
PROCESS_TIMEOUT = 40

MODULE = IHSMD = OPENSSL = None


class Daemon:
    """ihsmd on a temporary state directory and socket."""

    def __init__(self, ihsmd):
        self.dir = tempfile.mkdtemp(prefix="ihsmpy-", dir="/tmp")
        # ihsmd started as root drops to its own user: it must reach state/.
        os.chmod(self.dir, 0o711)
        self.socket = os.path.join(self.dir, "s")
        self.log_path = os.path.join(self.dir, "ihsmd.log")
        log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [ihsmd, "--state-dir", os.path.join(self.dir, "state"), "--socket", self.socket,
             "--pin-backoff-ms", "20", "--pin-backoff-max-ms", "40"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("ihsmd exited during start-up (%d):\n%s" %
                                   (self.proc.returncode, self.log()))
            try:
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                    s.connect(self.socket)
                return
            except OSError:
                time.sleep(0.01)
        self.proc.kill()
        raise RuntimeError("ihsmd did not accept on %s:\n%s" % (self.socket, self.log()))

    def log(self):
        try:
            with open(self.log_path, "r", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def stop(self):
        """SIGTERM; returns the exit status (0 is a clean stop)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def cleanup(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def rv_name(rv):
    return PyKCS11.CKR.get(rv, hex(rv))


def der_signature(rs):
    """r||s -> DER ECDSA-Sig-Value."""
    half = len(rs) // 2

    def der_int(b):
        b = b.lstrip(b"\0") or b"\0"
        if b[0] & 0x80:
            b = b"\0" + b
        return b"\x02" + bytes([len(b)]) + b

    body = der_int(rs[:half]) + der_int(rs[half:])
    return b"\x30" + bytes([len(body)]) + body


def openssl(*args):
    r = subprocess.run([OPENSSL] + list(args), capture_output=True)
    return r.returncode, r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace")


def verify_ecdsa(point, signature_rs, message=None, digest=None):
    """True if the r||s signature verifies under the P-256 point, over the
    message (SHA-256 hashed here) or over a SHA-256 digest."""
    if HAVE_CRYPTOGRAPHY:
        key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
        half = len(signature_rs) // 2
        der = utils.encode_dss_signature(int.from_bytes(signature_rs[:half], "big"),
                                         int.from_bytes(signature_rs[half:], "big"))
        try:
            if message is not None:
                key.verify(der, message, ec.ECDSA(hashes.SHA256()))
            else:
                key.verify(der, digest, ec.ECDSA(utils.Prehashed(hashes.SHA256())))
            return True
        except InvalidSignature:
            return False
    with tempfile.TemporaryDirectory(prefix="ihsmpy-v-", dir="/tmp") as d:
        spki, pem, sig, data = (os.path.join(d, n) for n in ("pub.der", "pub.pem", "sig", "data"))
        with open(spki, "wb") as f:
            f.write(P256_SPKI_PREFIX + point)
        with open(sig, "wb") as f:
            f.write(der_signature(signature_rs))
        with open(data, "wb") as f:
            f.write(message if message is not None else digest)
        rc, out = openssl("pkey", "-pubin", "-inform", "DER", "-in", spki, "-out", pem)
        if rc != 0:
            raise AssertionError("openssl pkey: " + out)
        if message is not None:
            rc, _ = openssl("dgst", "-sha256", "-verify", pem, "-signature", sig, data)
        else:
            rc, _ = openssl("pkeyutl", "-verify", "-pubin", "-inkey", pem, "-in", data,
                            "-sigfile", sig)
        return rc == 0


def check(rv):
    """Raises PyKCS11Error for anything but CKR_OK."""
    if rv != CKR_OK:
        raise PyKCS11.PyKCS11Error(rv)


def octet_string_content(der):
    """The content of a DER OCTET STRING (CKA_EC_POINT)."""
    if len(der) >= 2 and der[0] == 0x04 and der[1] < 0x80:
        header, length = 2, der[1]
    elif len(der) >= 3 and der[0] == 0x04 and der[1] == 0x81:
        header, length = 3, der[2]
    else:
        raise AssertionError("not a short DER OCTET STRING: " + der.hex())
    if header + length != len(der):
        raise AssertionError("DER OCTET STRING length does not match: " + der.hex())
    return der[header:]


def rs_to_der(signature_rs):
    """PKCS#11's r||s -> the DER form `cryptography` verifies."""
    half = len(signature_rs) // 2
    return utils.encode_dss_signature(int.from_bytes(signature_rs[:half], "big"),
                                      int.from_bytes(signature_rs[half:], "big"))


def ctr_mechanism(counter_block, counter_bits=128):
    """CKM_AES_CTR with CK_AES_CTR_PARAMS {CK_ULONG ulCounterBits; CK_BYTE
    cb[16]}: PyKCS11 has no class for it, but it holds no pointer, so its
    bytes in the native layout serve as the parameter."""
    return PyKCS11.Mechanism(CKM_AES_CTR, struct.pack("@L16s", counter_bits, counter_block))


# DER DigestInfo up to the digest (RFC 8017, 9.2 note 1): CKM_RSA_PKCS signs
# what it is given, and signs a SHA-2 DigestInfo as that hash's signature.
DIGEST_INFO = {
    "sha256": bytes.fromhex("3031300d060960864801650304020105000420"),
    "sha384": bytes.fromhex("3041300d060960864801650304020205000430"),
    "sha512": bytes.fromhex("3051300d060960864801650304020305000440"),
}


def p256_point_with_x_prefix(prefix):
    """An uncompressed P-256 point whose X starts with `prefix`: y^2 = x^3 -
    3x + b has a root for about every other x, and p = 3 mod 4 gives it."""
    p = 2**256 - 2**224 + 2**192 + 2**96 - 1
    b = 0x5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604b
    for tail in range(1, 1000):
        x = int.from_bytes(prefix + tail.to_bytes(32 - len(prefix), "big"), "big")
        rhs = (x**3 - 3 * x + b) % p
        y = pow(rhs, (p + 1) // 4, p)
        if y * y % p == rhs:
            return b"\x04" + x.to_bytes(32, "big") + y.to_bytes(32, "big")
    raise AssertionError("no point found")


# Multi-part operations through PyKCS11's low level (its Session has
# one-shot helpers only). PyKCS11 passes an empty list as a NULL buffer.

def two_call(fn, *args):
    """fn(*args, out) by PKCS#11's output convention: a length query, then
    the call. A zero length still gets a (1-byte) buffer: with NULL the
    module would only answer the length again and the operation not end."""
    out = ckbytelist()
    check(fn(*(args + (out,))))
    if len(out) == 0:
        out = ckbytelist(b"\0")
    check(fn(*(args + (out,))))
    return bytes(out)


def sign_parts(session, key, mech, parts):
    lib, h = session.lib, session.session
    check(lib.C_SignInit(h, mech.to_native(), key))
    for part in parts:
        check(lib.C_SignUpdate(h, ckbytelist(part)))
    return two_call(lib.C_SignFinal, h)


def verify_rv(session, key, mech, data, signature):
    """C_VerifyInit and C_Verify; the CK_RV of C_Verify."""
    lib, h = session.lib, session.session
    check(lib.C_VerifyInit(h, mech.to_native(), key))
    return lib.C_Verify(h, ckbytelist(data), ckbytelist(signature))


def verify_parts_rv(session, key, mech, parts, signature):
    """C_VerifyInit, C_VerifyUpdate per part; the CK_RV of C_VerifyFinal."""
    lib, h = session.lib, session.session
    check(lib.C_VerifyInit(h, mech.to_native(), key))
    for part in parts:
        check(lib.C_VerifyUpdate(h, ckbytelist(part)))
    return lib.C_VerifyFinal(h, ckbytelist(signature))


def crypt_parts(session, key, mech, parts, encrypt=True):
    """C_EncryptInit/Update/Final (or Decrypt): all the output, joined."""
    lib, h = session.lib, session.session
    if encrypt:
        init, update, final = lib.C_EncryptInit, lib.C_EncryptUpdate, lib.C_EncryptFinal
    else:
        init, update, final = lib.C_DecryptInit, lib.C_DecryptUpdate, lib.C_DecryptFinal
    check(init(h, mech.to_native(), key))
    out = b""
    for part in parts:
        # Room enough for any part's output: one call, no length query.
        buf = ckbytelist(bytes(len(part) + 64))
        check(update(h, ckbytelist(part), buf))
        out += bytes(buf)
    return out + two_call(final, h)


def digest_parts(session, mech, parts):
    lib, h = session.lib, session.session
    check(lib.C_DigestInit(h, mech.to_native()))
    for part in parts:
        check(lib.C_DigestUpdate(h, ckbytelist(part)))
    return two_call(lib.C_DigestFinal, h)


def split(data, *cuts):
    """data cut at the given offsets."""
    bounds = [0] + list(cuts) + [len(data)]
    return [data[a:b] for a, b in zip(bounds, bounds[1:])]


# ---- the multi-process test's worker: runs in a process of its own

MP_KEY_LABEL = "py-mp"


def mp_label(index):
    """The label of process `index`'s session object (PROCESSES: the parent)."""
    return "py-mp-session-%s" % ("parent" if index == PROCESSES else index)


def handle_problems(session, handles, own):
    """What is wrong with the session objects as process `own` sees them: its
    own must be there, every other process's neither found by label nor
    reachable by handle (a handle number may name one of our objects, but
    then not theirs)."""
    problems = []
    for j, value in enumerate(handles):
        handle = LowLevel.CK_OBJECT_HANDLE()
        handle.assign(value)
        found = session.findObjects([(CKA_LABEL, mp_label(j))])
        if j == own:
            if len(found) != 1 or found[0].value() != value:
                problems.append("own session object %#x not found by label" % value)
            continue
        if found:
            problems.append("%s found in process %s" % (mp_label(j), own))
        template = LowLevel.ckattrlist(1)
        template[0].SetType(CKA_LABEL)
        rv = session.lib.C_GetAttributeValue(session.session, handle, template)
        if rv == CKR_OK:
            if session.getAttributeValue(handle, [CKA_LABEL])[0] == mp_label(j):
                problems.append("%s reachable by handle %#x in process %s" %
                                (mp_label(j), value, own))
        elif rv != CKR_OBJECT_HANDLE_INVALID:
            problems.append("handle %#x of %s: %s" % (value, mp_label(j), rv_name(rv)))
    return problems


def process_worker(index, module, socket_path, slot, barrier, results, handles):
    """One process: C_Initialize, log in, find the token key pair by label,
    make a session object of its own; once every process has, check which
    session objects it sees, then sign and verify ROUNDS times (while the
    others do) with session objects made and destroyed on the way."""
    try:
        os.environ["IHSM_SOCKET"] = socket_path
        lib = PyKCS11.PyKCS11Lib()
        lib.load(module)  # C_Initialize in this process
        session = lib.openSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION)
        session.login(USER_PIN, CKU_USER)
        priv = session.findObjects([(CKA_LABEL, MP_KEY_LABEL), (CKA_CLASS, CKO_PRIVATE_KEY)])
        pub = session.findObjects([(CKA_LABEL, MP_KEY_LABEL), (CKA_CLASS, CKO_PUBLIC_KEY)])
        if len(priv) != 1 or len(pub) != 1:
            raise AssertionError("token key pair: %d private, %d public" % (len(priv), len(pub)))
        priv, pub = priv[0], pub[0]
        point = octet_string_content(
            bytes(session.getAttributeValue(pub, [CKA_EC_POINT], True)[0]))
        own = session.createObject(
            [(CKA_CLASS, CKO_DATA), (CKA_TOKEN, False), (CKA_LABEL, mp_label(index)),
             (CKA_APPLICATION, "ihsm-pykcs11"), (CKA_VALUE, b"process %d" % index)])
        handles[index] = own.value()
        results.put(("ready", index, None))
        barrier.wait(PROCESS_TIMEOUT)  # every session object exists
        problems = handle_problems(session, list(handles), index)

        mech = PyKCS11.Mechanism(CKM_ECDSA_SHA256)
        public = None
        if HAVE_CRYPTOGRAPHY:
            public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
        made = 0
        for k in range(ROUNDS):
            message = b"process %d round %d" % (index, k)
            sig = bytes(session.sign(priv, message, mech))
            if verify_rv(session, pub, mech, message, sig) != CKR_OK:
                problems.append("round %d: the module does not verify its signature" % k)
            if public is not None:
                try:
                    public.verify(rs_to_der(sig), message, ec.ECDSA(hashes.SHA256()))
                except InvalidSignature:
                    problems.append("round %d: signature does not verify" % k)
            bad = sig[:-1] + bytes([sig[-1] ^ 1])
            if verify_rv(session, pub, mech, message, bad) != CKR_SIGNATURE_INVALID:
                problems.append("round %d: tampered signature not refused" % k)
            if k % 10 == 0:
                temp = session.createObject(
                    [(CKA_CLASS, CKO_DATA), (CKA_TOKEN, False), (CKA_LABEL, "py-mp-temp"),
                     (CKA_VALUE, message)])
                if session.getAttributeValue(temp, [CKA_LABEL])[0] != "py-mp-temp":
                    problems.append("round %d: temporary object unreadable" % k)
                session.destroyObject(temp)
                template = LowLevel.ckattrlist(1)
                template[0].SetType(CKA_LABEL)
                rv = session.lib.C_GetAttributeValue(session.session, temp, template)
                if rv != CKR_OBJECT_HANDLE_INVALID:
                    problems.append("round %d: destroyed object: %s" % (k, rv_name(rv)))
                made += 1
        if session.findObjects([(CKA_LABEL, "py-mp-temp")]):
            problems.append("temporary objects left behind")
        barrier.wait(PROCESS_TIMEOUT)  # every process is done looking
        session.destroyObject(own)
        session.logout()
        session.closeSession()
        del lib  # C_Finalize
        results.put(("done", index, {"problems": problems, "signatures": ROUNDS,
                                     "objects": made}))
    except BaseException:
        barrier.abort()
        results.put(("error", index, traceback.format_exc()))


class PyKcs11Module(unittest.TestCase):
    """One daemon, one token, keys made once; each test one feature."""

    importer_pair = None  # importer()
    kek_pair = None  # kek()

    @classmethod
    def setUpClass(cls):
        cls.daemon = Daemon(IHSMD)
        try:
            os.environ["IHSM_SOCKET"] = cls.daemon.socket
            cls.lib = PyKCS11.PyKCS11Lib()
            cls.lib.load(MODULE)
            cls.init_token()
            cls.session = cls.lib.openSession(cls.slot, CKF_SERIAL_SESSION | CKF_RW_SESSION)
            cls.session.login(USER_PIN, CKU_USER)
            cls.make_keys()
        except BaseException:
            sys.stderr.write("---- ihsmd log ----\n%s\n" % cls.daemon.log())
            cls.daemon.cleanup()
            raise

    @classmethod
    def init_token(cls):
        # The free slot: a token present, not initialized.
        slots = cls.lib.getSlotList(tokenPresent=True)
        if FREE_SLOT not in slots:
            raise AssertionError("free slot 0x7fff0000 not in %s" % [hex(s) for s in slots])
        cls.free_info = cls.lib.getTokenInfo(FREE_SLOT)
        # PyKCS11 passes the label through as a C string: give the module
        # the 32 blank-padded bytes PKCS#11 says it reads.
        cls.lib.initToken(FREE_SLOT, SO_PIN, TOKEN.ljust(32))
        cls.slot = None
        for s in cls.lib.getSlotList(tokenPresent=True):
            if s != FREE_SLOT and cls.lib.getTokenInfo(s).label.rstrip(" \0") == TOKEN:
                cls.slot = s
        if cls.slot is None:
            raise AssertionError("no slot with token %r after C_InitToken" % TOKEN)
        so = cls.lib.openSession(cls.slot, CKF_SERIAL_SESSION | CKF_RW_SESSION)
        so.login(SO_PIN, CKU_SO)
        so.initPin(USER_PIN)
        so.logout()
        so.closeSession()

    @classmethod
    def make_keys(cls):
        s = cls.session
        cls.ec_pub, cls.ec_priv = s.generateKeyPair(
            [(CKA_CLASS, CKO_PUBLIC_KEY), (CKA_KEY_TYPE, CKK_EC), (CKA_TOKEN, True),
             (CKA_EC_PARAMS, P256_OID), (CKA_VERIFY, True), (CKA_LABEL, "py-ec"),
             (CKA_ID, b"\x11")],
            [(CKA_CLASS, CKO_PRIVATE_KEY), (CKA_KEY_TYPE, CKK_EC), (CKA_TOKEN, True),
             (CKA_PRIVATE, True), (CKA_SENSITIVE, True), (CKA_SIGN, True),
             (CKA_LABEL, "py-ec"), (CKA_ID, b"\x11")],
            mecha=PyKCS11.MechanismECGENERATEKEYPAIR)
        cls.aes = s.generateKey(
            [(CKA_CLASS, CKO_SECRET_KEY), (CKA_KEY_TYPE, CKK_AES), (CKA_VALUE_LEN, 32),
             (CKA_TOKEN, False), (CKA_SENSITIVE, True), (CKA_ENCRYPT, True),
             (CKA_DECRYPT, True), (CKA_LABEL, "py-aes")],
            mecha=PyKCS11.MechanismAESGENERATEKEY)

    @classmethod
    def tearDownClass(cls):
        try:
            cls.session.logout()
            cls.session.closeSession()
            del cls.session
            del cls.lib  # C_Finalize and unload
            status = cls.daemon.stop()
            if status != 0:
                raise AssertionError("ihsmd exited %s on SIGTERM:\n%s" %
                                     (status, cls.daemon.log()))
        finally:
            cls.daemon.cleanup()

    def ec_point(self):
        """The uncompressed point out of CKA_EC_POINT (a DER OCTET STRING)."""
        value = bytes(self.session.getAttributeValue(self.ec_pub, [CKA_EC_POINT], True)[0])
        self.assertEqual(len(value), 67, value.hex())
        self.assertEqual(value[:3], b"\x04\x41\x04",
                         "CKA_EC_POINT is not a DER OCTET STRING of an uncompressed point: "
                         + value.hex())
        return value[2:]

    def test_slots_and_token_info(self):
        self.assertFalse(self.free_info.flags & CKF_TOKEN_INITIALIZED,
                         "free slot token flags %#x" % self.free_info.flags)
        info = self.lib.getTokenInfo(self.slot)
        self.assertEqual(info.label, TOKEN.ljust(32))
        self.assertTrue(info.flags & CKF_TOKEN_INITIALIZED, "flags %#x" % info.flags)
        self.assertTrue(info.flags & CKF_USER_PIN_INITIALIZED, "flags %#x" % info.flags)
        # The free slot stays free, and uninitialized.
        self.assertIn(FREE_SLOT, self.lib.getSlotList(tokenPresent=True))
        self.assertFalse(self.lib.getTokenInfo(FREE_SLOT).flags & CKF_TOKEN_INITIALIZED)

    def test_ecdsa_over_a_digest(self):
        message = b"PyKCS11 signs a digest"
        digest = hashlib.sha256(message).digest()
        sig = bytes(self.session.sign(self.ec_priv, digest, PyKCS11.Mechanism(CKM_ECDSA)))
        self.assertEqual(len(sig), 64)
        point = self.ec_point()
        self.assertTrue(verify_ecdsa(point, sig, digest=digest))
        self.assertTrue(verify_ecdsa(point, sig, message=message))
        other = hashlib.sha256(b"something else").digest()
        self.assertFalse(verify_ecdsa(point, sig, digest=other))

    def test_ecdsa_sha256(self):
        message = b"PyKCS11 signs a message" * 10
        sig = bytes(self.session.sign(self.ec_priv, message, PyKCS11.Mechanism(CKM_ECDSA_SHA256)))
        self.assertEqual(len(sig), 64)
        point = self.ec_point()
        self.assertTrue(verify_ecdsa(point, sig, message=message))
        self.assertFalse(verify_ecdsa(point, sig, message=message + b"!"))
        # The module's own verify agrees.
        self.assertTrue(self.session.verify(self.ec_pub, message, sig,
                                            PyKCS11.Mechanism(CKM_ECDSA_SHA256)))

    def test_aes_gcm_round_trip(self):
        iv = bytes(range(12))
        aad = b"header"
        plain = bytes(range(256)) * 3
        mech = PyKCS11.AES_GCM_Mechanism(iv, aad, 128)
        ct = bytes(self.session.encrypt(self.aes, plain, mech))
        self.assertEqual(len(ct), len(plain) + 16)
        self.assertNotEqual(ct[:len(plain)], plain)
        back = bytes(self.session.decrypt(self.aes, ct, PyKCS11.AES_GCM_Mechanism(iv, aad, 128)))
        self.assertEqual(back, plain)
        # A changed byte fails the tag.
        bad = bytearray(ct)
        bad[5] ^= 1
        with self.assertRaises(PyKCS11.PyKCS11Error) as cm:
            self.session.decrypt(self.aes, bytes(bad), PyKCS11.AES_GCM_Mechanism(iv, aad, 128))
        self.assertIn(cm.exception.value, (CKR_AEAD_DECRYPT_FAILED, CKR_ENCRYPTED_DATA_INVALID),
                      str(cm.exception))
        # And so does other AAD.
        with self.assertRaises(PyKCS11.PyKCS11Error):
            self.session.decrypt(self.aes, ct, PyKCS11.AES_GCM_Mechanism(iv, b"other", 128))

    def test_sha256_digest(self):
        for data in (b"abc", os.urandom(5000)):
            got = bytes(self.session.digest(data, PyKCS11.Mechanism(CKM_SHA256)))
            self.assertEqual(got.hex(), hashlib.sha256(data).hexdigest(), "input %d bytes" % len(data))

    def test_generate_random(self):
        for n in (1, 16, 32, 1000):
            r = bytes(self.session.generateRandom(n))
            self.assertEqual(len(r), n)
        self.assertNotEqual(bytes(self.session.generateRandom(32)),
                            bytes(self.session.generateRandom(32)))

    def test_private_value_is_sensitive(self):
        for handle in (self.ec_priv, self.aes):
            template = LowLevel.ckattrlist(1)
            template[0].SetType(CKA_VALUE)
            rv = self.session.lib.C_GetAttributeValue(self.session.session, handle, template)
            self.assertEqual(rv, CKR_ATTRIBUTE_SENSITIVE, rv_name(rv))
        # Non-sensitive attributes of the same key read fine.
        label, = self.session.getAttributeValue(self.ec_priv, [CKA_LABEL])
        self.assertEqual(label, "py-ec")
        # In one template with CKA_VALUE, the call still says SENSITIVE and
        # still answers the other attribute (PKCS#11 C_GetAttributeValue):
        # first its length, then its value.
        template = LowLevel.ckattrlist(2)
        template[0].SetType(CKA_LABEL)
        template[1].SetType(CKA_VALUE)
        for _ in range(2):
            rv = self.session.lib.C_GetAttributeValue(self.session.session, self.ec_priv,
                                                      template)
            self.assertEqual(rv, CKR_ATTRIBUTE_SENSITIVE, rv_name(rv))
            self.assertEqual(template[0].GetLen(), len("py-ec"))
        self.assertEqual(template[0].GetString(), "py-ec")

    def test_find_objects_by_label(self):
        s = self.session
        both = s.findObjects([(CKA_LABEL, "py-ec")])
        self.assertEqual(len(both), 2)
        priv = s.findObjects([(CKA_LABEL, "py-ec"), (CKA_CLASS, CKO_PRIVATE_KEY)])
        self.assertEqual(len(priv), 1)
        self.assertEqual(priv[0].value(), self.ec_priv.value())
        pub = s.findObjects([(CKA_LABEL, "py-ec"), (CKA_CLASS, CKO_PUBLIC_KEY)])
        self.assertEqual(len(pub), 1)
        self.assertEqual(pub[0].value(), self.ec_pub.value())
        aes = s.findObjects([(CKA_LABEL, "py-aes")])
        self.assertEqual(len(aes), 1)
        self.assertEqual(s.getAttributeValue(aes[0], [CKA_KEY_TYPE])[0], CKK_AES)
        self.assertEqual(s.findObjects([(CKA_LABEL, "no-such-label")]), [])
        by_id = s.findObjects([(CKA_ID, b"\x11"), (CKA_CLASS, CKO_PRIVATE_KEY)])
        self.assertEqual(len(by_id), 1)

    # ---- the rest of the mechanism set, each checked against `cryptography`

    def need_cryptography(self):
        if not HAVE_CRYPTOGRAPHY:
            self.skipTest("needs the cryptography package for reference results")

    def rsa_pair(self, public_usage, private_usage):
        return self.session.generateKeyPair(
            [(CKA_CLASS, CKO_PUBLIC_KEY), (CKA_MODULUS_BITS, 2048), (CKA_TOKEN, False)]
            + [(a, True) for a in public_usage],
            [(CKA_CLASS, CKO_PRIVATE_KEY), (CKA_TOKEN, False), (CKA_SENSITIVE, True)]
            + [(a, True) for a in private_usage],
            mecha=PyKCS11.MechanismRSAGENERATEKEYPAIR)

    def rsa_public(self, handle):
        n, e = self.session.getAttributeValue(handle, [CKA_MODULUS, CKA_PUBLIC_EXPONENT], True)
        return rsa.RSAPublicNumbers(int.from_bytes(bytes(e), "big"),
                                    int.from_bytes(bytes(n), "big")).public_key()

    def importer(self):
        """An RSA key pair whose private half unwraps (RSA-OAEP) the keys
        we bring in; made once."""
        cls = type(self)
        if cls.importer_pair is None:
            cls.importer_pair = self.rsa_pair([], [CKA_UNWRAP])
        return cls.importer_pair

    def import_secret(self, value, key_type, usage, label="py-known", extractable=False):
        """Brings a key we know into the device the only way keys enter:
        wrapped (RSA-OAEP) to a device key, then C_UnwrapKey. `usage` is a
        list of (attribute, bool)."""
        pub, priv = self.importer()
        wrapped = self.rsa_public(pub).encrypt(value, padding.OAEP(
            mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None))
        return self.session.unwrapKey(
            priv, wrapped,
            [(CKA_CLASS, CKO_SECRET_KEY), (CKA_KEY_TYPE, key_type), (CKA_TOKEN, False),
             (CKA_SENSITIVE, True), (CKA_EXTRACTABLE, extractable), (CKA_LABEL, label)] + usage,
            PyKCS11.RSAOAEPMechanism(CKM_SHA256, CKG_MGF1_SHA256))

    def known_aes_key(self, value, label, extractable=False):
        return self.import_secret(value, CKK_AES, [(CKA_ENCRYPT, True), (CKA_DECRYPT, True)],
                                  label, extractable)

    def kek(self):
        """(value, handle) of an AES-256 key-encryption key we know; made
        once. Wrap and unwrap only: the device refuses a key that both
        wraps and decrypts."""
        cls = type(self)
        if cls.kek_pair is None:
            value = os.urandom(32)
            cls.kek_pair = (value, self.import_secret(
                value, CKK_AES, [(CKA_WRAP, True), (CKA_UNWRAP, True), (CKA_ENCRYPT, False),
                                 (CKA_DECRYPT, False)], "py-kek"))
        return cls.kek_pair

    def import_private(self, private_key, key_type, usage):
        """A private key we know, as PKCS#8 wrapped (AES-KEY-WRAP-KWP) under
        the known KEK, through C_UnwrapKey."""
        value, kek = self.kek()
        der = private_key.private_bytes(serialization.Encoding.DER,
                                        serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption())
        return self.session.unwrapKey(
            kek, keywrap.aes_key_wrap_with_padding(value, der),
            [(CKA_CLASS, CKO_PRIVATE_KEY), (CKA_KEY_TYPE, key_type), (CKA_TOKEN, False),
             (CKA_SENSITIVE, True)] + usage,
            PyKCS11.Mechanism(CKM_AES_KEY_WRAP_KWP))

    def wrapped_out(self, handle):
        """The value of an extractable key: wrapped (KWP) under the known
        KEK, unwrapped here."""
        value, kek = self.kek()
        wrapped = bytes(self.session.wrapKey(kek, handle, PyKCS11.Mechanism(CKM_AES_KEY_WRAP_KWP)))
        return keywrap.aes_key_unwrap_with_padding(value, wrapped)

    def ec_pair(self, params, public_usage=(CKA_VERIFY,), private_usage=(CKA_SIGN,),
                key_type=CKK_EC, mechanism=CKM_EC_KEY_PAIR_GEN, extractable=False):
        return self.session.generateKeyPair(
            [(CKA_CLASS, CKO_PUBLIC_KEY), (CKA_KEY_TYPE, key_type), (CKA_TOKEN, False),
             (CKA_EC_PARAMS, params)] + [(a, True) for a in public_usage],
            [(CKA_CLASS, CKO_PRIVATE_KEY), (CKA_KEY_TYPE, key_type), (CKA_TOKEN, False),
             (CKA_SENSITIVE, True), (CKA_EXTRACTABLE, extractable)]
            + [(a, True) for a in private_usage],
            mecha=PyKCS11.Mechanism(mechanism))

    def public_value(self, handle):
        """CKA_EC_POINT's content: an uncompressed point, or an Ed25519 or
        X25519 public key."""
        return octet_string_content(
            bytes(self.session.getAttributeValue(handle, [CKA_EC_POINT], True)[0]))

    def assert_tampered_fails(self, key, mech, data, signature):
        """C_Verify: CKR_OK for the signature, CKR_SIGNATURE_INVALID for
        the same with one bit changed (first, middle and last byte), and
        for a wrong length CKR_SIGNATURE_LEN_RANGE (or _INVALID)."""
        self.assertEqual(verify_rv(self.session, key, mech, data, signature), CKR_OK)
        for i in (0, len(signature) // 2, len(signature) - 1):
            bad = bytearray(signature)
            bad[i] ^= 0x01
            rv = verify_rv(self.session, key, mech, data, bytes(bad))
            self.assertEqual(rv, CKR_SIGNATURE_INVALID, "byte %d: %s" % (i, rv_name(rv)))
        rv = verify_rv(self.session, key, mech, data, signature[:-1])
        self.assertIn(rv, (CKR_SIGNATURE_LEN_RANGE, CKR_SIGNATURE_INVALID), rv_name(rv))
        # Other data, same signature.
        rv = verify_rv(self.session, key, mech, bytes(reversed(data)), signature)
        self.assertEqual(rv, CKR_SIGNATURE_INVALID, rv_name(rv))

    def encrypt_init_rv(self, mech, key):
        """C_EncryptInit's CK_RV. An operation it starts is ended at once
        (C_EncryptFinal), so that a wrong answer stays in its own test."""
        lib, h = self.session.lib, self.session.session
        rv = lib.C_EncryptInit(h, mech.to_native(), key)
        if rv == CKR_OK:
            lib.C_EncryptFinal(h, ckbytelist(bytes(64)))
        return rv

    def assert_hmac(self, key, value, mech, hash_cls, data=b"HMAC known answer"):
        h = crypto_hmac.HMAC(value, hash_cls())
        h.update(data)
        expected = h.finalize()
        self.assertEqual(bytes(self.session.sign(key, data, PyKCS11.Mechanism(mech))), expected)
        return expected

    def test_rsa_pss_signature_and_oaep_decryption(self):
        self.need_cryptography()
        pub, priv = self.rsa_pair([CKA_VERIFY], [CKA_SIGN])
        message = b"PSS through PKCS#11"
        sig = bytes(self.session.sign(priv, message, PyKCS11.RSA_PSS_Mechanism(
            CKM_SHA256_RSA_PKCS_PSS, CKM_SHA256, CKG_MGF1_SHA256, 32)))
        self.rsa_public(pub).verify(sig, message, padding.PSS(
            mgf=padding.MGF1(hashes.SHA256()), salt_length=32), hashes.SHA256())
        epub, epriv = self.rsa_pair([CKA_ENCRYPT], [CKA_DECRYPT])
        label = b"oaep label"
        ct = self.rsa_public(epub).encrypt(b"secret for the device", padding.OAEP(
            mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=label))
        plain = bytes(self.session.decrypt(
            epriv, ct, PyKCS11.RSAOAEPMechanism(CKM_SHA256, CKG_MGF1_SHA256, label)))
        self.assertEqual(plain, b"secret for the device")

    def test_aes_cbc_pad_and_gcm_match_a_reference(self):
        self.need_cryptography()
        from cryptography.hazmat.primitives import padding as sym_padding
        value = bytes(range(32))
        key = self.known_aes_key(value, "py-known")
        iv = bytes(range(16))
        plain = b"known key, known answer" * 5
        ct = bytes(self.session.encrypt(key, plain, PyKCS11.Mechanism(CKM_AES_CBC_PAD, iv)))
        padder = sym_padding.PKCS7(128).padder()
        enc = Cipher(algorithms.AES(value), modes.CBC(iv)).encryptor()
        expected = enc.update(padder.update(plain) + padder.finalize()) + enc.finalize()
        self.assertEqual(ct, expected)
        gcm_iv = bytes(12)
        ct = bytes(self.session.encrypt(key, plain, PyKCS11.AES_GCM_Mechanism(gcm_iv, b"a", 128)))
        self.assertEqual(ct, AESGCM(value).encrypt(gcm_iv, plain, b"a"))

    def test_aes_key_wrap_round_trip(self):
        self.need_cryptography()
        value = os.urandom(32)
        target = self.known_aes_key(value, "py-wrapped", extractable=True)
        kek = self.session.generateKey(
            [(CKA_CLASS, CKO_SECRET_KEY), (CKA_KEY_TYPE, CKK_AES), (CKA_VALUE_LEN, 32),
             (CKA_TOKEN, False), (CKA_WRAP, True), (CKA_UNWRAP, True),
             # The device refuses a key that both wraps and decrypts.
             (CKA_ENCRYPT, False), (CKA_DECRYPT, False)],
            mecha=PyKCS11.MechanismAESGENERATEKEY)
        wrapped = bytes(self.session.wrapKey(kek, target, PyKCS11.Mechanism(CKM_AES_KEY_WRAP)))
        self.assertEqual(len(wrapped), 40)  # RFC 3394: the key plus 8 bytes
        back = self.session.unwrapKey(
            kek, wrapped,
            [(CKA_CLASS, CKO_SECRET_KEY), (CKA_KEY_TYPE, CKK_AES), (CKA_TOKEN, False),
             (CKA_ENCRYPT, True), (CKA_DECRYPT, True)],
            PyKCS11.Mechanism(CKM_AES_KEY_WRAP))
        iv = bytes(12)
        ct = bytes(self.session.encrypt(back, b"same key", PyKCS11.AES_GCM_Mechanism(iv, b"", 128)))
        self.assertEqual(ct, AESGCM(value).encrypt(iv, b"same key", b""))

    def test_masked_key_out_and_back_in(self):
        # The vendor mechanism (include/ihsm/pkcs11_ihsm.h): C_WrapKey and
        # C_UnwrapKey with no wrapping key give and take a masked blob.
        self.need_cryptography()
        value = os.urandom(32)
        key = self.known_aes_key(value, "py-masked")
        none = LowLevel.CK_OBJECT_HANDLE()
        none.assign(0)  # CK_INVALID_HANDLE
        masked = PyKCS11.Mechanism(CKM_IHSM_MASKED_KEY)
        blob = bytes(self.session.wrapKey(none, key, masked))
        self.assertEqual(blob[:4], b"IHMK")
        self.assertNotIn(value, blob)
        self.session.destroyObject(key)
        back = self.session.unwrapKey(none, blob, [], masked)
        iv = bytes(12)
        ct = bytes(self.session.encrypt(back, b"masked", PyKCS11.AES_GCM_Mechanism(iv, b"", 128)))
        self.assertEqual(ct, AESGCM(value).encrypt(iv, b"masked", b""))
        # A changed byte, and a template (the blob carries the attributes).
        bad = bytearray(blob)
        bad[-1] ^= 1
        with self.assertRaises(PyKCS11.PyKCS11Error) as e:
            self.session.unwrapKey(none, bytes(bad), [], masked)
        self.assertEqual(e.exception.value, CKR_WRAPPED_KEY_INVALID)
        with self.assertRaises(PyKCS11.PyKCS11Error) as e:
            self.session.unwrapKey(none, blob, [(CKA_TOKEN, False)], masked)
        self.assertEqual(e.exception.value, CKR_TEMPLATE_INCONSISTENT)

    def test_key_attestation_report(self):
        # The vendor mechanism: C_Sign over a nonce gives the key's report,
        # a tagged COSE_Sign1 with the nonce in its payload. (Its signature
        # and chain are checked by the C++ module test with the verifier.)
        key = self.session.generateKey(
            [(CKA_CLASS, CKO_SECRET_KEY), (CKA_KEY_TYPE, CKK_AES), (CKA_VALUE_LEN, 32),
             (CKA_TOKEN, False), (CKA_ENCRYPT, True)],
            mecha=PyKCS11.MechanismAESGENERATEKEY)
        nonce = os.urandom(32)
        report = bytes(self.session.sign(key, nonce, PyKCS11.Mechanism(CKM_IHSM_KEY_ATTESTATION)))
        self.assertEqual(report[:2], b"\xd2\x84")  # tag 18, array of 4
        self.assertIn(nonce, report)
        with self.assertRaises(PyKCS11.PyKCS11Error):
            self.session.sign(key, bytes(129), PyKCS11.Mechanism(CKM_IHSM_KEY_ATTESTATION))

    def test_ecdh_derived_secret_is_the_shared_secret(self):
        self.need_cryptography()
        import hmac as hmac_module
        pub, priv = self.session.generateKeyPair(
            [(CKA_CLASS, CKO_PUBLIC_KEY), (CKA_EC_PARAMS, P256_OID), (CKA_TOKEN, False)],
            [(CKA_CLASS, CKO_PRIVATE_KEY), (CKA_TOKEN, False), (CKA_DERIVE, True)],
            mecha=PyKCS11.MechanismECGENERATEKEYPAIR)
        value = bytes(self.session.getAttributeValue(pub, [CKA_EC_POINT], True)[0])[2:]
        device_public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), value)
        peer = ec.generate_private_key(ec.SECP256R1())
        peer_point = peer.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
        secret = self.session.deriveKey(
            priv,
            [(CKA_CLASS, CKO_SECRET_KEY), (CKA_KEY_TYPE, CKK_GENERIC_SECRET),
             (CKA_VALUE_LEN, 32), (CKA_TOKEN, False), (CKA_SIGN, True), (CKA_VERIFY, True)],
            PyKCS11.ECDH1_DERIVE_Mechanism(peer_point))
        z = peer.exchange(ec.ECDH(), device_public)
        message = b"the derived secret, used as an HMAC key"
        mac = bytes(self.session.sign(secret, message, PyKCS11.Mechanism(CKM_SHA256_HMAC)))
        self.assertEqual(mac, hmac_module.new(z, message, hashlib.sha256).digest())
        self.assertTrue(self.session.verify(secret, message, mac,
                                            PyKCS11.Mechanism(CKM_SHA256_HMAC)))


    # ---- every mechanism of C_GetMechanismList

    # Each mechanism the module offers, and the test (test_...) that runs it
    # and checks its results outside the module.
    COVERAGE = {
        CKM_IHSM_MASKED_KEY: "masked_key_out_and_back_in",
        CKM_IHSM_KEY_ATTESTATION: "key_attestation_report",
        CKM_RSA_PKCS_KEY_PAIR_GEN: "rsa_pkcs1_v15_signatures",
        CKM_RSA_PKCS: "rsa_pkcs1_v15_signatures",
        CKM_RSA_PKCS_PSS: "rsa_pss_sha384_sha512",
        CKM_SHA256_RSA_PKCS: "rsa_pkcs1_v15_signatures",
        CKM_SHA384_RSA_PKCS: "rsa_pkcs1_v15_signatures",
        CKM_SHA512_RSA_PKCS: "rsa_pkcs1_v15_signatures",
        CKM_SHA256_RSA_PKCS_PSS: "rsa_pss_signature_and_oaep_decryption",
        CKM_SHA384_RSA_PKCS_PSS: "rsa_pss_sha384_sha512",
        CKM_SHA512_RSA_PKCS_PSS: "rsa_pss_sha384_sha512",
        CKM_RSA_PKCS_OAEP: "rsa_oaep_sha384_sha512",
        CKM_SHA256: "sha2_digests_one_shot_and_multi_part",
        CKM_SHA384: "sha2_digests_one_shot_and_multi_part",
        CKM_SHA512: "sha2_digests_one_shot_and_multi_part",
        CKM_SHA256_HMAC: "hmac_known_answers",
        CKM_SHA384_HMAC: "hmac_known_answers",
        CKM_SHA512_HMAC: "hmac_known_answers",
        CKM_GENERIC_SECRET_KEY_GEN: "generated_secret_keys_wrapped_out",
        CKM_EC_KEY_PAIR_GEN: "ecdsa_p384_p521",
        CKM_ECDSA: "ecdsa_p384_p521",
        CKM_ECDSA_SHA256: "ecdsa_p384_p521",
        CKM_ECDSA_SHA384: "ecdsa_p384_p521",
        CKM_ECDSA_SHA512: "ecdsa_p384_p521",
        CKM_ECDH1_DERIVE: "ecdh_p384_and_x25519",
        CKM_EC_EDWARDS_KEY_PAIR_GEN: "eddsa_ed25519",
        CKM_EC_MONTGOMERY_KEY_PAIR_GEN: "ecdh_p384_and_x25519",
        CKM_EDDSA: "eddsa_ed25519",
        CKM_AES_KEY_GEN: "generated_secret_keys_wrapped_out",
        CKM_AES_CBC: "aes_cbc_ctr_gcm_known_answers",
        CKM_AES_CBC_PAD: "aes_multi_part",
        CKM_AES_CTR: "aes_cbc_ctr_gcm_known_answers",
        CKM_AES_GCM: "aes_cbc_ctr_gcm_known_answers",
        CKM_AES_KEY_WRAP: "aes_key_wrap_and_kwp_known_answers",
        CKM_AES_KEY_WRAP_KWP: "aes_key_wrap_and_kwp_known_answers",
    }
    # Offered, but PyKCS11 has no way to pass their parameters (structures
    # with pointers): for tests/integration/pkcs11_module_test.cpp.
    NOT_EXPRESSIBLE = {
        CKM_HKDF_DERIVE: "CK_HKDF_PARAMS",
        CKM_RSA_AES_KEY_WRAP: "CK_RSA_AES_KEY_WRAP_PARAMS",
        CKM_SP800_108_COUNTER_KDF: "CK_SP800_108_KDF_PARAMS",
    }

    def test_mechanism_list_is_walked(self):
        offered = [PyKCS11.CKM[name] for name in self.lib.getMechanismList(self.slot)]
        self.assertEqual(len(offered), len(set(offered)), "a mechanism listed twice")
        for m in offered:
            self.assertTrue(m in self.COVERAGE or m in self.NOT_EXPRESSIBLE,
                            "%s is offered but not walked here" % PyKCS11.CKM.get(m, hex(m)))
            info = self.lib.getMechanismInfo(self.slot, PyKCS11.CKM[m])
            self.assertTrue(info.flags & CKF_HW, "%s flags %#x" % (PyKCS11.CKM[m], info.flags))
        for m, test in self.COVERAGE.items():
            self.assertIn(m, offered, "%s is walked but not offered" % PyKCS11.CKM[m])
            self.assertTrue(hasattr(self, "test_" + test), test)
        # PKCS#1 v1.5 signs only; AES-ECB is not offered at all.
        flags = self.lib.getMechanismInfo(self.slot, "CKM_RSA_PKCS").flags
        self.assertFalse(flags & (PyKCS11.CKF_ENCRYPT | PyKCS11.CKF_DECRYPT), "%#x" % flags)
        self.assertNotIn(CKM_AES_ECB, offered)
        rv = self.encrypt_init_rv(PyKCS11.Mechanism(CKM_AES_ECB), self.aes)
        self.assertEqual(rv, CKR_MECHANISM_INVALID, rv_name(rv))

    # ---- EC

    def test_ecdsa_p384_p521(self):
        self.need_cryptography()
        message = b"ECDSA over the larger curves" * 3
        for oid, curve, size in ((P384_OID, ec.SECP384R1(), 48), (P521_OID, ec.SECP521R1(), 66)):
            pub, priv = self.ec_pair(oid)
            self.assertEqual(bytes(self.session.getAttributeValue(pub, [CKA_EC_PARAMS], True)[0]),
                             oid)
            public = ec.EllipticCurvePublicKey.from_encoded_point(curve, self.public_value(pub))
            # CKM_ECDSA over digests shorter than, as long as and longer
            # than the order (the longer truncated, as FIPS 186 says).
            for hash_cls in (hashes.SHA256, hashes.SHA384, hashes.SHA512):
                digest = hashlib.new(hash_cls.name, message).digest()
                mech = PyKCS11.Mechanism(CKM_ECDSA)
                sig = bytes(self.session.sign(priv, digest, mech))
                self.assertEqual(len(sig), 2 * size)
                public.verify(rs_to_der(sig), digest, ec.ECDSA(utils.Prehashed(hash_cls())))
                self.assertEqual(verify_rv(self.session, pub, mech, digest, sig), CKR_OK)
            for m, hash_cls in ((CKM_ECDSA_SHA256, hashes.SHA256),
                                (CKM_ECDSA_SHA384, hashes.SHA384),
                                (CKM_ECDSA_SHA512, hashes.SHA512)):
                mech = PyKCS11.Mechanism(m)
                sig = bytes(self.session.sign(priv, message, mech))
                self.assertEqual(len(sig), 2 * size)
                public.verify(rs_to_der(sig), message, ec.ECDSA(hash_cls()))
                self.assert_tampered_fails(pub, mech, message, sig)

    def test_ecdsa_multi_part_and_a_known_key(self):
        self.need_cryptography()
        parts = [b"first, ", b"x" * 1000, b"y", b"last"]
        message = b"".join(parts)
        pub, priv = self.ec_pair(P384_OID)
        public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP384R1(),
                                                              self.public_value(pub))
        mech = PyKCS11.Mechanism(CKM_ECDSA_SHA384)
        sig = sign_parts(self.session, priv, mech, parts)
        public.verify(rs_to_der(sig), message, ec.ECDSA(hashes.SHA384()))
        self.assertEqual(verify_parts_rv(self.session, pub, mech, parts, sig), CKR_OK)
        bad = sig[:-1] + bytes([sig[-1] ^ 1])
        rv = verify_parts_rv(self.session, pub, mech, parts, bad)
        self.assertEqual(rv, CKR_SIGNATURE_INVALID, rv_name(rv))
        rv = verify_parts_rv(self.session, pub, mech, parts[:-1], sig)
        self.assertEqual(rv, CKR_SIGNATURE_INVALID, rv_name(rv))
        # A key we made, brought in wrapped, signs under the public key we hold.
        known = ec.generate_private_key(ec.SECP521R1())
        handle = self.import_private(known, CKK_EC, [(CKA_SIGN, True)])
        sig = bytes(self.session.sign(handle, message, PyKCS11.Mechanism(CKM_ECDSA_SHA512)))
        known.public_key().verify(rs_to_der(sig), message, ec.ECDSA(hashes.SHA512()))

    def test_verify_rejects_a_tampered_signature_and_ends(self):
        message = b"tampered"
        mech = PyKCS11.Mechanism(CKM_ECDSA_SHA256)
        sig = bytes(self.session.sign(self.ec_priv, message, mech))
        bad = bytes([sig[0] ^ 0x80]) + sig[1:]
        rv = verify_rv(self.session, self.ec_pub, mech, message, bad)
        self.assertEqual(rv, CKR_SIGNATURE_INVALID, rv_name(rv))
        # The failed C_Verify ended the operation.
        rv = self.session.lib.C_Verify(self.session.session, ckbytelist(message), ckbytelist(sig))
        self.assertEqual(rv, CKR_OPERATION_NOT_INITIALIZED, rv_name(rv))
        self.assertEqual(verify_rv(self.session, self.ec_pub, mech, message, sig), CKR_OK)

    def derive_secret(self, base, public_data, length):
        return self.session.deriveKey(
            base,
            [(CKA_CLASS, CKO_SECRET_KEY), (CKA_KEY_TYPE, CKK_GENERIC_SECRET),
             (CKA_VALUE_LEN, length), (CKA_TOKEN, False), (CKA_SIGN, True), (CKA_VERIFY, True)],
            PyKCS11.ECDH1_DERIVE_Mechanism(public_data))

    def test_ecdh_p384_and_x25519(self):
        self.need_cryptography()
        # P-384: the peer's point raw, and in a DER OCTET STRING.
        pub, priv = self.ec_pair(P384_OID, (), (CKA_DERIVE,))
        device = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP384R1(),
                                                              self.public_value(pub))
        peer = ec.generate_private_key(ec.SECP384R1())
        point = peer.public_key().public_bytes(serialization.Encoding.X962,
                                               serialization.PublicFormat.UncompressedPoint)
        z = peer.exchange(ec.ECDH(), device)
        for data in (point, b"\x04\x61" + point):
            secret = self.derive_secret(priv, data, 48)
            self.assert_hmac(secret, z, CKM_SHA384_HMAC, hashes.SHA384)
        # X25519 (CKM_EC_MONTGOMERY_KEY_PAIR_GEN), curve by OID.
        pub, priv = self.ec_pair(X25519_OID, (), (CKA_DERIVE,), key_type=CKK_EC_MONTGOMERY,
                                 mechanism=CKM_EC_MONTGOMERY_KEY_PAIR_GEN)
        device = x25519.X25519PublicKey.from_public_bytes(self.public_value(pub))
        peer = x25519.X25519PrivateKey.generate()
        raw = peer.public_key().public_bytes(serialization.Encoding.Raw,
                                             serialization.PublicFormat.Raw)
        secret = self.derive_secret(priv, raw, 32)
        self.assert_hmac(secret, peer.exchange(device), CKM_SHA256_HMAC, hashes.SHA256)

    def test_ecdh_peer_point_raw_or_in_der(self):
        self.need_cryptography()
        # The device key is one we know, so any peer point will do: the
        # shared secret is computed here from our half.
        known = ec.generate_private_key(ec.SECP256R1())
        base = self.import_private(known, CKK_EC, [(CKA_DERIVE, True)])
        # A raw point whose X starts 3F 04 also reads as a DER OCTET STRING
        # (04 3F: 63 bytes of content); the module once took it for one.
        for point in (p256_point_with_x_prefix(b"\x3f\x04"),
                      ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
                          serialization.Encoding.X962,
                          serialization.PublicFormat.UncompressedPoint)):
            peer = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
            z = known.exchange(ec.ECDH(), peer)
            compressed = peer.public_bytes(serialization.Encoding.X962,
                                           serialization.PublicFormat.CompressedPoint)
            for data in (point, b"\x04\x41" + point, compressed):
                secret = self.derive_secret(base, data, 32)
                self.assert_hmac(secret, z, CKM_SHA256_HMAC, hashes.SHA256)

    # ---- EdDSA

    def test_eddsa_ed25519(self):
        self.need_cryptography()
        message = b"pure Ed25519"
        mech = PyKCS11.Mechanism(CKM_EDDSA)
        for params in (ED25519_OID, ED25519_NAME):
            pub, priv = self.ec_pair(params, key_type=CKK_EC_EDWARDS,
                                     mechanism=CKM_EC_EDWARDS_KEY_PAIR_GEN)
            public = ed25519.Ed25519PublicKey.from_public_bytes(self.public_value(pub))
            sig = bytes(self.session.sign(priv, message, mech))
            self.assertEqual(len(sig), 64)
            public.verify(sig, message)
            self.assert_tampered_fails(pub, mech, message, sig)
        parts = [b"Ed25519 ", b"in ", b"parts" * 100]
        sig = sign_parts(self.session, priv, mech, parts)
        public.verify(sig, b"".join(parts))
        self.assertEqual(verify_parts_rv(self.session, pub, mech, parts, sig), CKR_OK)
        # Ed25519 is deterministic: a known key gives the very signature.
        known = ed25519.Ed25519PrivateKey.generate()
        handle = self.import_private(known, CKK_EC_EDWARDS, [(CKA_SIGN, True)])
        self.assertEqual(bytes(self.session.sign(handle, message, mech)), known.sign(message))

    # ---- RSA

    def test_rsa_pkcs1_v15_signatures(self):
        self.need_cryptography()
        pub, priv = self.rsa_pair([CKA_VERIFY], [CKA_SIGN])
        public = self.rsa_public(pub)
        message = b"PKCS#1 v1.5 through PKCS#11"
        for m, hash_cls in ((CKM_SHA256_RSA_PKCS, hashes.SHA256),
                            (CKM_SHA384_RSA_PKCS, hashes.SHA384),
                            (CKM_SHA512_RSA_PKCS, hashes.SHA512)):
            mech = PyKCS11.Mechanism(m)
            sig = bytes(self.session.sign(priv, message, mech))
            self.assertEqual(len(sig), 256)
            public.verify(sig, message, padding.PKCS1v15(), hash_cls())
            self.assert_tampered_fails(pub, mech, message, sig)
        # CKM_RSA_PKCS over a DigestInfo: that hash's signature.
        raw_mech = PyKCS11.Mechanism(CKM_RSA_PKCS)
        for hash_cls in (hashes.SHA256, hashes.SHA384, hashes.SHA512):
            digest = hashlib.new(hash_cls.name, message).digest()
            data = DIGEST_INFO[hash_cls.name] + digest
            sig = bytes(self.session.sign(priv, data, raw_mech))
            public.verify(sig, digest, padding.PKCS1v15(), utils.Prehashed(hash_cls()))
            public.verify(sig, message, padding.PKCS1v15(), hash_cls())
            self.assertEqual(verify_rv(self.session, pub, raw_mech, data, sig), CKR_OK)
        # ... and over other input (TLS 1.1's MD5+SHA-1 is 36 bytes): padded
        # and signed as given.
        data = bytes(range(36))
        sig = bytes(self.session.sign(priv, data, raw_mech))
        self.assertEqual(public.recover_data_from_signature(sig, padding.PKCS1v15(), None), data)
        self.assert_tampered_fails(pub, raw_mech, data, sig)
        # Multi-part.
        parts = split(message * 50, 3, 700)
        mech = PyKCS11.Mechanism(CKM_SHA512_RSA_PKCS)
        sig = sign_parts(self.session, priv, mech, parts)
        public.verify(sig, message * 50, padding.PKCS1v15(), hashes.SHA512())
        self.assertEqual(verify_parts_rv(self.session, pub, mech, parts, sig), CKR_OK)
        # No PKCS#1 v1.5 encryption (Bleichenbacher; docs/mechanisms.md).
        rv = self.encrypt_init_rv(raw_mech, pub)
        self.assertEqual(rv, CKR_MECHANISM_INVALID, rv_name(rv))

    def test_rsa_signatures_of_a_known_key_are_byte_exact(self):
        self.need_cryptography()
        known = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        handle = self.import_private(known, CKK_RSA, [(CKA_SIGN, True)])
        message = b"deterministic signatures"
        for m, hash_cls in ((CKM_SHA256_RSA_PKCS, hashes.SHA256),
                            (CKM_SHA384_RSA_PKCS, hashes.SHA384),
                            (CKM_SHA512_RSA_PKCS, hashes.SHA512)):
            self.assertEqual(bytes(self.session.sign(handle, message, PyKCS11.Mechanism(m))),
                             known.sign(message, padding.PKCS1v15(), hash_cls()))
        digest = hashlib.sha384(message).digest()
        self.assertEqual(
            bytes(self.session.sign(handle, DIGEST_INFO["sha384"] + digest,
                                    PyKCS11.Mechanism(CKM_RSA_PKCS))),
            known.sign(digest, padding.PKCS1v15(), utils.Prehashed(hashes.SHA384())))
        # PSS with an empty salt is deterministic too.
        sig = bytes(self.session.sign(handle, message, PyKCS11.RSA_PSS_Mechanism(
            CKM_SHA512_RSA_PKCS_PSS, CKM_SHA512, CKG_MGF1_SHA512, 0)))
        self.assertEqual(sig, known.sign(message, padding.PSS(
            mgf=padding.MGF1(hashes.SHA512()), salt_length=0), hashes.SHA512()))

    def test_rsa_pss_sha384_sha512(self):
        self.need_cryptography()
        pub, priv = self.rsa_pair([CKA_VERIFY], [CKA_SIGN])
        public = self.rsa_public(pub)
        message = b"PSS with the larger hashes"
        # (mechanism, hash, MGF1, salt): the last with an MGF1 hash of its own.
        for m, hash_mech, mgf, hash_cls, mgf_cls, salt in (
                (CKM_SHA384_RSA_PKCS_PSS, CKM_SHA384, CKG_MGF1_SHA384, hashes.SHA384,
                 hashes.SHA384, 48),
                (CKM_SHA512_RSA_PKCS_PSS, CKM_SHA512, CKG_MGF1_SHA512, hashes.SHA512,
                 hashes.SHA512, 64),
                (CKM_SHA512_RSA_PKCS_PSS, CKM_SHA512, CKG_MGF1_SHA256, hashes.SHA512,
                 hashes.SHA256, 20)):
            mech = PyKCS11.RSA_PSS_Mechanism(m, hash_mech, mgf, salt)
            sig = bytes(self.session.sign(priv, message, mech))
            public.verify(sig, message, padding.PSS(mgf=padding.MGF1(mgf_cls()),
                                                    salt_length=salt), hash_cls())
            # The salt length is the one asked for (cryptography checks it).
            with self.assertRaises(InvalidSignature):
                public.verify(sig, message, padding.PSS(mgf=padding.MGF1(mgf_cls()),
                                                        salt_length=salt + 1), hash_cls())
            self.assert_tampered_fails(pub, mech, message, sig)
        # CKM_RSA_PKCS_PSS over a digest of the parameters' hash.
        for hash_mech, mgf, hash_cls in ((CKM_SHA256, CKG_MGF1_SHA256, hashes.SHA256),
                                         (CKM_SHA384, CKG_MGF1_SHA384, hashes.SHA384),
                                         (CKM_SHA512, CKG_MGF1_SHA512, hashes.SHA512)):
            digest = hashlib.new(hash_cls.name, message).digest()
            mech = PyKCS11.RSA_PSS_Mechanism(CKM_RSA_PKCS_PSS, hash_mech, mgf,
                                             hash_cls.digest_size)
            sig = bytes(self.session.sign(priv, digest, mech))
            public.verify(sig, digest, padding.PSS(mgf=padding.MGF1(hash_cls()),
                                                   salt_length=hash_cls.digest_size),
                          utils.Prehashed(hash_cls()))
            self.assertEqual(verify_rv(self.session, pub, mech, digest, sig), CKR_OK)
        # Multi-part.
        parts = split(message * 40, 1, 500)
        mech = PyKCS11.RSA_PSS_Mechanism(CKM_SHA384_RSA_PKCS_PSS, CKM_SHA384, CKG_MGF1_SHA384, 48)
        sig = sign_parts(self.session, priv, mech, parts)
        public.verify(sig, message * 40, padding.PSS(mgf=padding.MGF1(hashes.SHA384()),
                                                     salt_length=48), hashes.SHA384())
        self.assertEqual(verify_parts_rv(self.session, pub, mech, parts, sig), CKR_OK)

    def test_rsa_oaep_sha384_sha512(self):
        self.need_cryptography()
        pub, priv = self.rsa_pair([CKA_ENCRYPT], [CKA_DECRYPT])
        public = self.rsa_public(pub)
        for hash_mech, mgf, hash_cls, mgf_cls, label in (
                (CKM_SHA384, CKG_MGF1_SHA384, hashes.SHA384, hashes.SHA384, None),
                (CKM_SHA384, CKG_MGF1_SHA384, hashes.SHA384, hashes.SHA384, b"a label"),
                (CKM_SHA512, CKG_MGF1_SHA512, hashes.SHA512, hashes.SHA512, b"L" * 100),
                (CKM_SHA512, CKG_MGF1_SHA256, hashes.SHA512, hashes.SHA256, None)):
            secret = os.urandom(48)
            ct = public.encrypt(secret, padding.OAEP(mgf=padding.MGF1(mgf_cls()),
                                                     algorithm=hash_cls(), label=label))
            mech = PyKCS11.RSAOAEPMechanism(hash_mech, mgf, label)
            self.assertEqual(bytes(self.session.decrypt(priv, ct, mech)), secret)
            # The module's encryption is randomised: it decrypts to the same.
            ct2 = bytes(self.session.encrypt(pub, secret, mech))
            self.assertEqual(len(ct2), 256)
            self.assertNotEqual(ct2, ct)
            self.assertEqual(bytes(self.session.decrypt(priv, ct2, mech)), secret)
        # Another label, or another hash, does not decrypt.
        for mech in (PyKCS11.RSAOAEPMechanism(CKM_SHA512, CKG_MGF1_SHA256, b"other"),
                     PyKCS11.RSAOAEPMechanism(CKM_SHA384, CKG_MGF1_SHA256)):
            with self.assertRaises(PyKCS11.PyKCS11Error):
                self.session.decrypt(priv, ct, mech)

    def test_rsa_oaep_wraps_with_a_3072_bit_key(self):
        self.need_cryptography()
        value = os.urandom(16)
        target = self.known_aes_key(value, "py-oaep-target", extractable=True)
        pub, priv = self.session.generateKeyPair(
            [(CKA_CLASS, CKO_PUBLIC_KEY), (CKA_MODULUS_BITS, 3072), (CKA_TOKEN, False),
             (CKA_WRAP, True)],
            [(CKA_CLASS, CKO_PRIVATE_KEY), (CKA_TOKEN, False), (CKA_UNWRAP, True)],
            mecha=PyKCS11.MechanismRSAGENERATEKEYPAIR)
        mech = PyKCS11.RSAOAEPMechanism(CKM_SHA384, CKG_MGF1_SHA384)
        wrapped = bytes(self.session.wrapKey(pub, target, mech))
        self.assertEqual(len(wrapped), 384)
        back = self.session.unwrapKey(
            priv, wrapped,
            [(CKA_CLASS, CKO_SECRET_KEY), (CKA_KEY_TYPE, CKK_AES), (CKA_TOKEN, False),
             (CKA_ENCRYPT, True), (CKA_DECRYPT, True)], mech)
        iv = os.urandom(12)
        ct = bytes(self.session.encrypt(back, b"same key", PyKCS11.AES_GCM_Mechanism(iv, b"", 128)))
        self.assertEqual(ct, AESGCM(value).encrypt(iv, b"same key", b""))
        # RSA-2048 (112 bits of strength) may not wrap a 128-bit key.
        weak, _ = self.rsa_pair([CKA_WRAP], [CKA_UNWRAP])
        with self.assertRaises(PyKCS11.PyKCS11Error):
            self.session.wrapKey(weak, target, mech)

    # ---- AES

    def test_aes_cbc_ctr_gcm_known_answers(self):
        self.need_cryptography()
        plain = os.urandom(16 * 7)
        for size in (16, 24, 32):
            value = os.urandom(size)
            key = self.known_aes_key(value, "py-aes-%d" % size)
            iv = os.urandom(16)
            mech = PyKCS11.Mechanism(CKM_AES_CBC, iv)
            enc = Cipher(algorithms.AES(value), modes.CBC(iv)).encryptor()
            ct = bytes(self.session.encrypt(key, plain, mech))
            self.assertEqual(ct, enc.update(plain) + enc.finalize(), "CBC, %d-byte key" % size)
            self.assertEqual(bytes(self.session.decrypt(key, ct, mech)), plain)
            # CTR: the whole block counts; 32 counter bits, not wrapping, are
            # the same.
            for bits in (128, 32):
                counter = os.urandom(12) + b"\0\0\0\x01"
                data = plain + b"odd"
                enc = Cipher(algorithms.AES(value), modes.CTR(counter)).encryptor()
                ct = bytes(self.session.encrypt(key, data, ctr_mechanism(counter, bits)))
                self.assertEqual(ct, enc.update(data) + enc.finalize(),
                                 "CTR, %d-byte key, %d counter bits" % (size, bits))
                self.assertEqual(bytes(self.session.decrypt(key, ct, ctr_mechanism(counter, bits))),
                                 data)
            gcm_iv = os.urandom(12)
            ct = bytes(self.session.encrypt(key, plain,
                                            PyKCS11.AES_GCM_Mechanism(gcm_iv, b"h", 128)))
            self.assertEqual(ct, AESGCM(value).encrypt(gcm_iv, plain, b"h"), "GCM, %d" % size)
        # CBC takes whole blocks; a CTR counter may not wrap; IVs have
        # their size.
        with self.assertRaises(PyKCS11.PyKCS11Error):
            self.session.encrypt(key, plain + b"x", PyKCS11.Mechanism(CKM_AES_CBC, iv))
        with self.assertRaises(PyKCS11.PyKCS11Error):
            self.session.encrypt(key, bytes(48), ctr_mechanism(bytes(12) + b"\xff" * 4, 32))
        for mech in (PyKCS11.Mechanism(CKM_AES_CBC, bytes(8)), ctr_mechanism(bytes(16), 0),
                     ctr_mechanism(bytes(16), 129)):
            rv = self.encrypt_init_rv(mech, key)
            self.assertEqual(rv, CKR_MECHANISM_PARAM_INVALID, rv_name(rv))

    def test_aes_multi_part(self):
        self.need_cryptography()
        from cryptography.hazmat.primitives import padding as sym_padding
        value = os.urandom(32)
        key = self.known_aes_key(value, "py-aes-parts")
        plain = os.urandom(1000)
        iv, counter, gcm_iv = os.urandom(16), os.urandom(16), os.urandom(12)

        def reference(mode, data):
            e = Cipher(algorithms.AES(value), mode).encryptor()
            return e.update(data) + e.finalize()

        padder = sym_padding.PKCS7(128).padder()
        padded = padder.update(plain) + padder.finalize()
        cases = (
            ("CBC", lambda: PyKCS11.Mechanism(CKM_AES_CBC, iv), plain[:992],
             reference(modes.CBC(iv), plain[:992])),
            ("CBC-PAD", lambda: PyKCS11.Mechanism(CKM_AES_CBC_PAD, iv), plain,
             reference(modes.CBC(iv), padded)),
            ("CTR", lambda: ctr_mechanism(counter), plain, reference(modes.CTR(counter), plain)),
            ("GCM", lambda: PyKCS11.AES_GCM_Mechanism(gcm_iv, b"aad", 128), plain,
             AESGCM(value).encrypt(gcm_iv, plain, b"aad")),
        )
        for name, mech, data, expected in cases:
            ct = crypt_parts(self.session, key, mech(), split(data, 1, 17, 500))
            self.assertEqual(ct, expected, name)
            back = crypt_parts(self.session, key, mech(), split(ct, 5, 300, len(ct) - 3),
                               encrypt=False)
            self.assertEqual(back, data, name)
            # One-shot decryption of the multi-part ciphertext agrees.
            self.assertEqual(bytes(self.session.decrypt(key, ct, mech())), data, name)
        # A changed GCM ciphertext fails at C_DecryptFinal, its plaintext held back.
        ct = bytearray(AESGCM(value).encrypt(gcm_iv, plain, b"aad"))
        ct[100] ^= 1
        with self.assertRaises(PyKCS11.PyKCS11Error) as cm:
            crypt_parts(self.session, key, PyKCS11.AES_GCM_Mechanism(gcm_iv, b"aad", 128),
                        split(bytes(ct), 500), encrypt=False)
        self.assertIn(cm.exception.value, (CKR_AEAD_DECRYPT_FAILED, CKR_ENCRYPTED_DATA_INVALID),
                      str(cm.exception))

    # ---- wrap, generated keys, HMAC, digests

    def test_aes_key_wrap_and_kwp_known_answers(self):
        self.need_cryptography()
        kek_value, kek = self.kek()
        # Out: a key we know, by RFC 3394 and RFC 5649.
        value = os.urandom(32)
        target = self.known_aes_key(value, "py-wrap-target", extractable=True)
        self.assertEqual(bytes(self.session.wrapKey(kek, target,
                                                    PyKCS11.Mechanism(CKM_AES_KEY_WRAP))),
                         keywrap.aes_key_wrap(kek_value, value))
        self.assertEqual(bytes(self.session.wrapKey(kek, target,
                                                    PyKCS11.Mechanism(CKM_AES_KEY_WRAP_KWP))),
                         keywrap.aes_key_wrap_with_padding(kek_value, value))
        # In: an AES key by RFC 3394, a 20-byte HMAC key by RFC 5649.
        aes_value = os.urandom(16)
        aes = self.session.unwrapKey(
            kek, keywrap.aes_key_wrap(kek_value, aes_value),
            [(CKA_CLASS, CKO_SECRET_KEY), (CKA_KEY_TYPE, CKK_AES), (CKA_TOKEN, False),
             (CKA_ENCRYPT, True), (CKA_DECRYPT, True)], PyKCS11.Mechanism(CKM_AES_KEY_WRAP))
        iv = os.urandom(12)
        self.assertEqual(
            bytes(self.session.encrypt(aes, b"kw", PyKCS11.AES_GCM_Mechanism(iv, b"", 128))),
            AESGCM(aes_value).encrypt(iv, b"kw", b""))
        mac_value = os.urandom(20)
        mac_template = [(CKA_CLASS, CKO_SECRET_KEY), (CKA_KEY_TYPE, CKK_GENERIC_SECRET),
                        (CKA_TOKEN, False), (CKA_SIGN, True), (CKA_VERIFY, True)]
        mac = self.session.unwrapKey(kek, keywrap.aes_key_wrap_with_padding(kek_value, mac_value),
                                     mac_template, PyKCS11.Mechanism(CKM_AES_KEY_WRAP_KWP))
        self.assert_hmac(mac, mac_value, CKM_SHA256_HMAC, hashes.SHA256)
        # A private key leaves as PKCS#8.
        pub, priv = self.ec_pair(P256_OID, extractable=True)
        der = keywrap.aes_key_unwrap_with_padding(kek_value, bytes(self.session.wrapKey(
            kek, priv, PyKCS11.Mechanism(CKM_AES_KEY_WRAP_KWP))))
        private = serialization.load_der_private_key(der, password=None)
        self.assertEqual(private.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint),
            self.public_value(pub))
        # A changed blob does not unwrap.
        bad = bytearray(keywrap.aes_key_wrap_with_padding(kek_value, mac_value))
        bad[3] ^= 1
        with self.assertRaises(PyKCS11.PyKCS11Error):
            self.session.unwrapKey(kek, bytes(bad), mac_template,
                                   PyKCS11.Mechanism(CKM_AES_KEY_WRAP_KWP))

    def test_generated_secret_keys_wrapped_out(self):
        self.need_cryptography()
        aes = self.session.generateKey(
            [(CKA_CLASS, CKO_SECRET_KEY), (CKA_KEY_TYPE, CKK_AES), (CKA_VALUE_LEN, 24),
             (CKA_TOKEN, False), (CKA_ENCRYPT, True), (CKA_DECRYPT, True),
             (CKA_EXTRACTABLE, True)],
            mecha=PyKCS11.Mechanism(CKM_AES_KEY_GEN))
        value = self.wrapped_out(aes)
        self.assertEqual(len(value), 24)
        counter = os.urandom(16)
        enc = Cipher(algorithms.AES(value), modes.CTR(counter)).encryptor()
        self.assertEqual(bytes(self.session.encrypt(aes, b"generated", ctr_mechanism(counter))),
                         enc.update(b"generated") + enc.finalize())
        secret = self.session.generateKey(
            [(CKA_CLASS, CKO_SECRET_KEY), (CKA_KEY_TYPE, CKK_GENERIC_SECRET),
             (CKA_VALUE_LEN, 40), (CKA_TOKEN, False), (CKA_SIGN, True), (CKA_VERIFY, True),
             (CKA_EXTRACTABLE, True)],
            mecha=PyKCS11.Mechanism(CKM_GENERIC_SECRET_KEY_GEN))
        value = self.wrapped_out(secret)
        self.assertEqual(len(value), 40)
        self.assert_hmac(secret, value, CKM_SHA512_HMAC, hashes.SHA512)

    def test_hmac_known_answers(self):
        self.need_cryptography()
        data = b"HMAC through PKCS#11" * 20
        for m, hash_cls, size in ((CKM_SHA256_HMAC, hashes.SHA256, 32),
                                  (CKM_SHA384_HMAC, hashes.SHA384, 48),
                                  (CKM_SHA512_HMAC, hashes.SHA512, 64)):
            value = os.urandom(size)
            key = self.import_secret(value, CKK_GENERIC_SECRET,
                                     [(CKA_SIGN, True), (CKA_VERIFY, True)], "py-hmac")
            expected = self.assert_hmac(key, value, m, hash_cls, data)
            mech = PyKCS11.Mechanism(m)
            parts = split(data, 1, 100)
            self.assertEqual(sign_parts(self.session, key, mech, parts), expected)
            self.assertEqual(verify_parts_rv(self.session, key, mech, parts, expected), CKR_OK)
            bad = expected[:-1] + bytes([expected[-1] ^ 1])
            rv = verify_parts_rv(self.session, key, mech, parts, bad)
            self.assertEqual(rv, CKR_SIGNATURE_INVALID, rv_name(rv))
            self.assert_tampered_fails(key, mech, data, expected)
            # The MAC is the whole hash output: a prefix (the device verifies
            # one of 16 bytes or more for general-length HMAC, which is not
            # offered) is the wrong length.
            for n in (16, size - 1):
                rv = verify_rv(self.session, key, mech, data, expected[:n])
                self.assertEqual(rv, CKR_SIGNATURE_LEN_RANGE, "%d bytes: %s" % (n, rv_name(rv)))
                rv = verify_parts_rv(self.session, key, mech, parts, expected[:n])
                self.assertEqual(rv, CKR_SIGNATURE_LEN_RANGE, "%d bytes: %s" % (n, rv_name(rv)))
            rv = verify_rv(self.session, key, mech, data, expected + b"\0")
            self.assertEqual(rv, CKR_SIGNATURE_LEN_RANGE, rv_name(rv))

    def test_sha2_digests_one_shot_and_multi_part(self):
        data = os.urandom(3000)
        for m, name in ((CKM_SHA256, "sha256"), (CKM_SHA384, "sha384"), (CKM_SHA512, "sha512")):
            mech = PyKCS11.Mechanism(m)
            self.assertEqual(bytes(self.session.digest(data, mech)),
                             hashlib.new(name, data).digest(), name)
            self.assertEqual(digest_parts(self.session, mech, split(data, 1, 1000)),
                             hashlib.new(name, data).digest(), name)
            # No update at all: the hash of nothing.
            self.assertEqual(digest_parts(self.session, mech, []), hashlib.new(name).digest(), name)

    # ---- several processes

    def test_processes_share_token_keys_not_session_objects(self):
        """PROCESSES processes (spawned: each loads the module afresh) sign
        and verify ROUNDS times each with one token key pair at the same
        time; session objects stay in the process that made them."""
        pub, priv = self.session.generateKeyPair(
            [(CKA_CLASS, CKO_PUBLIC_KEY), (CKA_KEY_TYPE, CKK_EC), (CKA_TOKEN, True),
             (CKA_EC_PARAMS, P256_OID), (CKA_VERIFY, True), (CKA_LABEL, MP_KEY_LABEL)],
            [(CKA_CLASS, CKO_PRIVATE_KEY), (CKA_KEY_TYPE, CKK_EC), (CKA_TOKEN, True),
             (CKA_SENSITIVE, True), (CKA_SIGN, True), (CKA_LABEL, MP_KEY_LABEL)],
            mecha=PyKCS11.MechanismECGENERATEKEYPAIR)
        own = self.session.createObject(
            [(CKA_CLASS, CKO_DATA), (CKA_TOKEN, False), (CKA_LABEL, mp_label(PROCESSES)),
             (CKA_VALUE, b"parent")])
        ctx = multiprocessing.get_context("spawn")
        barrier = ctx.Barrier(PROCESSES + 1)
        results = ctx.Queue()
        handles = ctx.Array("Q", PROCESSES + 1)
        handles[PROCESSES] = own.value()
        procs = [ctx.Process(target=process_worker, daemon=True,
                             args=(i, MODULE, self.daemon.socket, self.slot, barrier, results,
                                   handles))
                 for i in range(PROCESSES)]
        started = time.monotonic()
        for p in procs:
            p.start()

        def collect(kind):
            """One message of `kind` from each process."""
            got = {}
            while len(got) < PROCESSES:
                try:
                    what, index, detail = results.get(timeout=PROCESS_TIMEOUT)
                except queue.Empty:
                    barrier.abort()
                    self.fail("processes %s did not report %s" %
                              (sorted(set(range(PROCESSES)) - set(got)), kind))
                if what == "error":
                    barrier.abort()
                    self.fail("process %d failed:\n%s" % (index, detail))
                self.assertEqual(what, kind)
                got[index] = detail
            return got

        try:
            collect("ready")
            barrier.wait(PROCESS_TIMEOUT)
            # Here too: ours is found, theirs are not.
            self.assertEqual(handle_problems(self.session, list(handles), PROCESSES), [])
            barrier.wait(PROCESS_TIMEOUT)
            done = collect("done")
        except BaseException:
            barrier.abort()  # no process waits for us any longer
            raise
        finally:
            for p in procs:
                p.join(PROCESS_TIMEOUT)
                if p.is_alive():
                    p.kill()
                    p.join()
        elapsed = time.monotonic() - started
        for index, report in sorted(done.items()):
            self.assertEqual(report["problems"], [], "process %d" % index)
            self.assertEqual(report["signatures"], ROUNDS)
            self.assertEqual(report["objects"], ROUNDS // 10)
        for p in procs:
            self.assertEqual(p.exitcode, 0)
        sys.stderr.write("[%d processes x %d signatures: %.1f s] " %
                         (PROCESSES, ROUNDS, elapsed))
        # The processes' session objects went with them; the token keys stay.
        for i in range(PROCESSES):
            self.assertEqual(self.session.findObjects([(CKA_LABEL, mp_label(i))]), [])
        self.assertEqual(len(self.session.findObjects([(CKA_LABEL, MP_KEY_LABEL)])), 2)
        self.session.destroyObject(own)

def main():
    global MODULE, IHSMD, OPENSSL
    if len(sys.argv) < 3:
        sys.stderr.write(__doc__)
        return 2
    MODULE, IHSMD = sys.argv[1], sys.argv[2]
    OPENSSL = sys.argv[3] if len(sys.argv) > 3 else (shutil.which("openssl") or "openssl")
    print("verifying with", "cryptography" if HAVE_CRYPTOGRAPHY else OPENSSL)
    result = unittest.main(argv=[sys.argv[0], "-v"], exit=False).result
    return 0 if result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
