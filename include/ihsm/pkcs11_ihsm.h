/* ihsm's PKCS#11 vendor extensions (docs/pkcs11.md, "Vendor extensions").
 * Plain C, no dependency: include it after your pkcs11.h.
 *
 * CKM_IHSM_MASKED_KEY: C_WrapKey with hWrappingKey = CK_INVALID_HANDLE gives
 * the object's masked blob (docs/key-hierarchy.md): encrypted and
 * authenticated under the partition's masking key, loadable only into the
 * same partition of the same device. C_UnwrapKey with hUnwrappingKey =
 * CK_INVALID_HANDLE and an empty template loads a blob back: the token
 * object itself while it exists, else a session object with the blob's
 * attributes. No parameters. */
/* CKM_IHSM_KEY_ATTESTATION: C_SignInit on any key, then C_Sign over the
 * caller's nonce (at most 128 bytes) gives the key's attestation report, a
 * COSE_Sign1 signed by the partition identity key (docs/attestation.md);
 * check it offline with `ihsm attest verify`. No parameters. */
#ifndef IHSM_PKCS11_IHSM_H
#define IHSM_PKCS11_IHSM_H

/* CKM_VENDOR_DEFINED | 'I' 'H' 0x0001 */
#define CKM_IHSM_MASKED_KEY 0xC9480001UL
#define CKM_IHSM_KEY_ATTESTATION 0xC9480002UL

#endif
