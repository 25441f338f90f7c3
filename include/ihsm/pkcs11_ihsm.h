/* ihsm's PKCS#11 vendor extensions (docs/pkcs11.md, "Vendor extensions").
 * Plain C, no dependency; the function types need your pkcs11.h first.
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

/* The FIPS 140-3 approved-service indicator, shaped like PKCS#11 3.2's
 * C_GetSessionValidationFlags. Once a cryptographic function (sign, verify,
 * encrypt, decrypt, digest, key generation, wrap, unwrap, derive, random)
 * returned CKR_OK on a session, C_GetSessionValidationFlags(hSession,
 * CKS_LAST_VALIDATION_OK, &flags) sets CKF_IHSM_VALIDATION_FIPS_140_3 when
 * the device ran it as an approved service and clears it when it did not
 * (for example AES-GCM encryption with an IV the caller chose, or X25519).
 * Before the first such function it gives 0. The function is exported by
 * name and in the interface IHSM_PKCS11_VENDOR_INTERFACE (C_GetInterface),
 * whose function list is CK_IHSM_FUNCTION_LIST. */
#ifndef CKS_LAST_VALIDATION_OK
#define CKS_LAST_VALIDATION_OK 0x00000001UL
#endif
#define CKF_IHSM_VALIDATION_FIPS_140_3 0x00000001UL
#define IHSM_PKCS11_VENDOR_INTERFACE "Vendor ihsm"

#endif /* IHSM_PKCS11_IHSM_H */

/* The types need pkcs11.h's: they appear once it has been included. */
#if defined(CKR_OK) && !defined(IHSM_PKCS11_IHSM_TYPES)
#define IHSM_PKCS11_IHSM_TYPES
typedef CK_RV (*CK_IHSM_C_GetSessionValidationFlags)(CK_SESSION_HANDLE hSession, CK_ULONG type,
                                                     CK_FLAGS* pFlags);
typedef struct CK_IHSM_FUNCTION_LIST {
  CK_VERSION version; /* 1.0 */
  CK_IHSM_C_GetSessionValidationFlags C_GetSessionValidationFlags;
} CK_IHSM_FUNCTION_LIST;

#endif /* IHSM_PKCS11_IHSM_TYPES */
