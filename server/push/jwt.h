/* jwt.h — the signed JSON Web Tokens push providers take as credentials:
 * ES256 for APNs (an Apple .p8 key, P-256), RS256 for Google's OAuth
 * JWT-bearer grant (a service account's RSA key). Signing is OpenSSL's. */
#ifndef PL_PUSH_JWT_H
#define PL_PUSH_JWT_H

#include <stddef.h>
#include <stdint.h>

typedef struct pl_jwt_key pl_jwt_key_t;

/* A private key from PEM text (PKCS#8 or traditional). Only P-256 EC and
 * RSA keys are taken. NULL with a message in err. */
pl_jwt_key_t *pl_jwt_key_from_pem(const char *pem, size_t len, char *err, size_t err_len);
/* The same from a file. */
pl_jwt_key_t *pl_jwt_key_load(const char *path, char *err, size_t err_len);
void pl_jwt_key_free(pl_jwt_key_t *k);

/* "header.claims.signature", malloc'd; header_json and claims_json are
 * the JSON texts to encode (the header's alg must match the key: ES256
 * for EC, RS256 for RSA). NULL when out of memory or signing failed. */
char *pl_jwt_sign(const pl_jwt_key_t *k, const char *header_json, const char *claims_json);

/* Signatures made so far by this process (every key): tests count them. */
uint64_t pl_jwt_signatures(void);

/* Unpadded base64url of in into out (NUL-terminated; libsodium's); the
 * length written, or 0 if out is too small (it needs
 * sodium_base64_ENCODED_LEN bytes: 4 * ceil(len / 3) + 1). */
size_t pl_base64url(const uint8_t *in, size_t len, char *out, size_t cap);

#endif
