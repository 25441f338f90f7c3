#!/usr/bin/env python3
"""The PKCS#11 module (libihsm-pkcs11.so) from Python through PyKCS11, against
a real ihsmd this script starts on a temporary state directory and socket.

    pkcs11_pykcs11_test.py MODULE IHSMD [OPENSSL]

A token is made through the free slot (C_InitToken creates a partition, the
SO sets the user PIN with C_InitPIN), then: EC P-256 and AES-256 keys,
CKM_ECDSA and CKM_ECDSA_SHA256 signatures checked with the `cryptography`
package (or, without it, the openssl binary), AES-GCM with CK_GCM_PARAMS,
CKM_SHA256 against hashlib, C_GenerateRandom, CKR_ATTRIBUTE_SENSITIVE for a
private key's CKA_VALUE, and finding objects by label. With `cryptography`
also: RSA-PSS and RSA-OAEP (with a label), a known AES key brought in with
C_UnwrapKey (RSA-OAEP) giving AES-CBC-PAD and AES-GCM known answers,
AES-KEY-WRAP out and back in, and ECDH1 whose derived secret, used as an
HMAC key, matches the shared secret computed outside.

IHSM_TEST_NO_CRYPTOGRAPHY=1 forces the openssl path.
"""
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

import PyKCS11
from PyKCS11 import LowLevel
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
                              CKM_AES_KEY_WRAP, CKM_SHA256_HMAC, CKM_SHA256_RSA_PKCS_PSS)

try:
    if os.environ.get("IHSM_TEST_NO_CRYPTOGRAPHY") == "1":
        raise ImportError("disabled by IHSM_TEST_NO_CRYPTOGRAPHY")
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, utils
    HAVE_CRYPTOGRAPHY = True
except ImportError:
    HAVE_CRYPTOGRAPHY = False

FREE_SLOT = 0x7FFF0000
TOKEN = "pytoken"
SO_PIN = "12345678"
USER_PIN = "87654321"
P256_OID = bytes.fromhex("06082a8648ce3d030107")
# SubjectPublicKeyInfo of a P-256 key up to the 65-byte uncompressed point.
P256_SPKI_PREFIX = bytes.fromhex(
    "3059301306072a8648ce3d020106082a8648ce3d030107034200")
# CKR_AEAD_DECRYPT_FAILED (PKCS#11 3.0); PyKCS11 1.5 may not name it.
CKR_AEAD_DECRYPT_FAILED = 0x35
CKR_ENCRYPTED_DATA_INVALID = 0x40

MODULE = IHSMD = OPENSSL = None


class Daemon:
    """ihsmd on a temporary state directory and socket."""

    def __init__(self, ihsmd):
        self.dir = tempfile.mkdtemp(prefix="ihsmpy-", dir="/tmp")
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


class PyKcs11Module(unittest.TestCase):
    """One daemon, one token, keys made once; each test one feature."""

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
        from cryptography.hazmat.primitives.asymmetric import rsa
        n, e = self.session.getAttributeValue(handle, [CKA_MODULUS, CKA_PUBLIC_EXPONENT], True)
        return rsa.RSAPublicNumbers(int.from_bytes(bytes(e), "big"),
                                    int.from_bytes(bytes(n), "big")).public_key()

    def known_aes_key(self, value, label, extractable=False):
        """Brings a key we know into the device the only way keys enter:
        wrapped (RSA-OAEP) to a device key, then C_UnwrapKey."""
        from cryptography.hazmat.primitives.asymmetric import padding
        pub, priv = self.rsa_pair([], [CKA_UNWRAP])
        wrapped = self.rsa_public(pub).encrypt(value, padding.OAEP(
            mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None))
        return self.session.unwrapKey(
            priv, wrapped,
            [(CKA_CLASS, CKO_SECRET_KEY), (CKA_KEY_TYPE, CKK_AES), (CKA_TOKEN, False),
             (CKA_ENCRYPT, True), (CKA_DECRYPT, True), (CKA_SENSITIVE, True),
             (CKA_EXTRACTABLE, extractable), (CKA_LABEL, label)],
            PyKCS11.RSAOAEPMechanism(CKM_SHA256, CKG_MGF1_SHA256))

    def test_rsa_pss_signature_and_oaep_decryption(self):
        self.need_cryptography()
        from cryptography.hazmat.primitives.asymmetric import padding
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
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
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
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
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
