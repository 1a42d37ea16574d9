/* jwt.c — ES256 and RS256 JWTs with OpenSSL 3.
 *
 * ES256 wants the signature as the raw 32-byte r and s side by side (RFC
 * 7518 §3.4), not the DER SEQUENCE OpenSSL produces: converted here. */
#include "push/jwt.h"

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct pl_jwt_key {
    EVP_PKEY *pkey;
    bool is_ec;
};

static _Atomic uint64_t signatures;

uint64_t pl_jwt_signatures(void)
{
    return atomic_load_explicit(&signatures, memory_order_relaxed);
}

size_t pl_base64url(const uint8_t *in, size_t len, char *out, size_t cap)
{
    const int variant = sodium_base64_VARIANT_URLSAFE_NO_PADDING;
    if (cap < sodium_base64_ENCODED_LEN(len, variant))
        return 0;
    sodium_bin2base64(out, cap, in, len, variant);
    return strlen(out);
}

static void openssl_error(char *err, size_t err_len, const char *what)
{
    char buf[160] = "unknown error";
    unsigned long e = ERR_get_error();
    if (e)
        ERR_error_string_n(e, buf, sizeof(buf));
    ERR_clear_error();
    snprintf(err, err_len, "%s: %s", what, buf);
}

pl_jwt_key_t *pl_jwt_key_from_pem(const char *pem, size_t len, char *err, size_t err_len)
{
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    EVP_PKEY *pkey = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    if (!pkey) {
        openssl_error(err, err_len, "not a PEM private key");
        return NULL;
    }
    bool is_ec = EVP_PKEY_is_a(pkey, "EC");
    if (is_ec) {
        char group[64] = "";
        size_t glen = 0;
        EVP_PKEY_get_utf8_string_param(pkey, "group", group, sizeof(group), &glen);
        if (strcmp(group, "prime256v1") != 0 && strcmp(group, "P-256") != 0) {
            snprintf(err, err_len, "an EC key must be on P-256 (this one is on %s)", group[0] ? group : "?");
            EVP_PKEY_free(pkey);
            return NULL;
        }
    } else if (!EVP_PKEY_is_a(pkey, "RSA")) {
        snprintf(err, err_len, "the key must be EC P-256 (APNs) or RSA (FCM)");
        EVP_PKEY_free(pkey);
        return NULL;
    }
    pl_jwt_key_t *k = malloc(sizeof(*k));
    if (!k) {
        snprintf(err, err_len, "out of memory");
        EVP_PKEY_free(pkey);
        return NULL;
    }
    *k = (pl_jwt_key_t){pkey, is_ec};
    return k;
}

pl_jwt_key_t *pl_jwt_key_load(const char *path, char *err, size_t err_len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, err_len, "%s: cannot open", path);
        return NULL;
    }
    char buf[16384];
    size_t n = fread(buf, 1, sizeof(buf), f);
    bool is_whole = feof(f) && !ferror(f);
    fclose(f);
    if (!is_whole) {
        snprintf(err, err_len, "%s: unreadable or larger than 16 KiB", path);
        return NULL;
    }
    char inner[200];
    pl_jwt_key_t *k = pl_jwt_key_from_pem(buf, n, inner, sizeof(inner));
    if (!k)
        snprintf(err, err_len, "%s: %s", path, inner);
    OPENSSL_cleanse(buf, sizeof(buf));
    return k;
}

void pl_jwt_key_free(pl_jwt_key_t *k)
{
    if (!k)
        return;
    EVP_PKEY_free(k->pkey);
    free(k);
}

/* DER ECDSA-Sig-Value to the 64-byte r || s. */
static bool der_to_raw(const uint8_t *der, size_t len, uint8_t raw[64])
{
    const uint8_t *p = der;
    ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &p, (long)len);
    if (!sig)
        return false;
    const BIGNUM *r = NULL, *s = NULL;
    ECDSA_SIG_get0(sig, &r, &s);
    bool ok = BN_bn2binpad(r, raw, 32) == 32 && BN_bn2binpad(s, raw + 32, 32) == 32;
    ECDSA_SIG_free(sig);
    return ok;
}

char *pl_jwt_sign(const pl_jwt_key_t *k, const char *header_json, const char *claims_json)
{
    size_t hl = strlen(header_json), cl = strlen(claims_json);
    size_t cap = (hl + 2) / 3 * 4 + (cl + 2) / 3 * 4 + 1024; /* + a signature of up to 4096-bit RSA */
    char *out = malloc(cap);
    if (!out)
        return NULL;
    size_t n = pl_base64url((const uint8_t *)header_json, hl, out, cap);
    out[n++] = '.';
    n += pl_base64url((const uint8_t *)claims_json, cl, out + n, cap - n);
    uint8_t sig[600];
    size_t siglen = sizeof(sig);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    bool ok = ctx && EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, k->pkey) == 1 &&
              EVP_DigestSign(ctx, sig, &siglen, (const uint8_t *)out, n) == 1;
    EVP_MD_CTX_free(ctx);
    uint8_t raw[64];
    if (ok && k->is_ec) {
        ok = der_to_raw(sig, siglen, raw);
        memcpy(sig, raw, sizeof(raw));
        siglen = sizeof(raw);
    }
    if (!ok) {
        ERR_clear_error();
        free(out);
        return NULL;
    }
    out[n++] = '.';
    if (pl_base64url(sig, siglen, out + n, cap - n) == 0) {
        free(out);
        return NULL;
    }
    atomic_fetch_add_explicit(&signatures, 1, memory_order_relaxed);
    return out;
}
