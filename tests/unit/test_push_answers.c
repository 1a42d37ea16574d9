/* test_push_answers.c — server/push's pure parts: base64url, ES256 and
 * RS256 JWTs checked with OpenSSL's verifier (ES256's raw r||s turned back
 * into DER), and what each documented APNs and FCM answer means. */
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "push/apns.h"
#include "push/fcm.h"
#include "push/jwt.h"

static int test_base64url(void)
{
    /* RFC 4648 section 10, in the URL-safe alphabet without padding */
    static const char *const in[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *const out[] = {"", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy"};
    char buf[16];
    for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
        CHECK_EQ_INT(pl_base64url((const uint8_t *)in[i], strlen(in[i]), buf, sizeof(buf)), strlen(out[i]));
        CHECK_EQ_STR(buf, out[i]);
    }
    const uint8_t url[] = {0xfb, 0xff};
    pl_base64url(url, 2, buf, sizeof(buf));
    CHECK_EQ_STR(buf, "-_8");
    CHECK_EQ_INT(pl_base64url((const uint8_t *)"foobar", 6, buf, 8), 0); /* 9 bytes needed */
    return 0;
}

static EVP_PKEY *generate(const char *type)
{
    return strcmp(type, "EC") == 0 ? EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256")
                                   : EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
}

static char *to_pem(EVP_PKEY *k)
{
    BIO *b = BIO_new(BIO_s_mem());
    PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL);
    char *data = NULL;
    long n = BIO_get_mem_data(b, &data);
    char *copy = malloc((size_t)n + 1);
    memcpy(copy, data, (size_t)n);
    copy[n] = '\0';
    BIO_free(b);
    return copy;
}

static size_t unb64(const char *s, size_t len, uint8_t *out, size_t cap)
{
    size_t n = 0;
    if (sodium_base642bin(out, cap, s, len, NULL, &n, NULL, sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0)
        return 0;
    return n;
}

/* Signs with pl_jwt_sign and checks the three parts with OpenSSL. */
static void check_jwt(EVP_PKEY *k, const char *alg)
{
    char *pem = to_pem(k);
    char err[200];
    pl_jwt_key_t *key = pl_jwt_key_from_pem(pem, strlen(pem), err, sizeof(err));
    REQUIRE(key != NULL, "%s", err);
    char header[64];
    snprintf(header, sizeof(header), "{\"alg\":\"%s\"}", alg);
    uint64_t before = pl_jwt_signatures();
    char *jwt = pl_jwt_sign(key, header, "{\"iss\":\"TEAM\",\"iat\":1700000000}");
    REQUIRE(jwt != NULL);
    CHECK_EQ_INT(pl_jwt_signatures(), before + 1);
    char *dot1 = strchr(jwt, '.'), *dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
    REQUIRE(dot1 && dot2);
    uint8_t text[128];
    size_t n = unb64(jwt, (size_t)(dot1 - jwt), text, sizeof(text));
    CHECK_EQ_MEM(text, n, header, strlen(header));
    uint8_t sig[512];
    size_t siglen = unb64(dot2 + 1, strlen(dot2 + 1), sig, sizeof(sig));
    uint8_t der[80];
    const uint8_t *use = sig;
    if (strcmp(alg, "ES256") == 0) {
        REQUIRE_EQ_INT(siglen, 64);
        ECDSA_SIG *es = ECDSA_SIG_new();
        ECDSA_SIG_set0(es, BN_bin2bn(sig, 32, NULL), BN_bin2bn(sig + 32, 32, NULL));
        uint8_t *p = der;
        siglen = (size_t)i2d_ECDSA_SIG(es, &p);
        ECDSA_SIG_free(es);
        use = der;
    } else {
        CHECK_EQ_INT(siglen, 256);
    }
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    CHECK(EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, k) == 1 &&
              EVP_DigestVerify(ctx, use, siglen, (const uint8_t *)jwt, (size_t)(dot2 - jwt)) == 1,
          "%s signature verifies", alg);
    EVP_MD_CTX_free(ctx);
    free(jwt);
    pl_jwt_key_free(key);
    free(pem);
}

static int test_jwt(void)
{
    EVP_PKEY *ec = generate("EC"), *rsa = generate("RSA");
    REQUIRE(ec && rsa);
    check_jwt(ec, "ES256");
    check_jwt(rsa, "RS256");
    EVP_PKEY_free(ec);
    EVP_PKEY_free(rsa);
    /* a P-384 key is refused: APNs keys are P-256 */
    EVP_PKEY *p384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    char *pem = to_pem(p384), err[200];
    CHECK(pl_jwt_key_from_pem(pem, strlen(pem), err, sizeof(err)) == NULL);
    CHECK(strstr(err, "P-256") != NULL, "%s", err);
    CHECK(pl_jwt_key_from_pem("not a key", 9, err, sizeof(err)) == NULL);
    free(pem);
    EVP_PKEY_free(p384);
    return 0;
}

static pl_http_response_t answer(long status, const char *body, long retry_after_s)
{
    return (pl_http_response_t){
        .status = status, .body = body, .body_len = strlen(body), .retry_after_s = retry_after_s};
}

static int test_apns_answers(void)
{
    pl_push_result_t r;
    pl_http_response_t a = answer(200, "", -1);
    CHECK(!pl_apns_read_answer(&a, &r) && r.outcome == PL_PUSH_SENT);
    a = answer(410, "{\"reason\":\"Unregistered\",\"timestamp\":1700000000123}", -1);
    pl_apns_read_answer(&a, &r);
    CHECK(r.outcome == PL_PUSH_TOKEN_DEAD && r.dead_since_ms == 1700000000123LL);
    CHECK_EQ_STR(r.reason, "Unregistered");
    a = answer(400, "{\"reason\":\"BadDeviceToken\"}", -1);
    CHECK(!pl_apns_read_answer(&a, &r) && r.outcome == PL_PUSH_TOKEN_DEAD && r.dead_since_ms == 0);
    a = answer(400, "{\"reason\":\"DeviceTokenNotForTopic\"}", -1);
    CHECK(pl_apns_read_answer(&a, &r) == false && r.outcome == PL_PUSH_TOKEN_DEAD);
    a = answer(403, "{\"reason\":\"ExpiredProviderToken\"}", -1);
    CHECK(pl_apns_read_answer(&a, &r) && r.outcome == PL_PUSH_RETRY && r.retry_after_ms == -1);
    a = answer(429, "{\"reason\":\"TooManyRequests\"}", 7);
    CHECK(!pl_apns_read_answer(&a, &r) && r.outcome == PL_PUSH_RETRY && r.retry_after_ms == 7000);
    a = answer(503, "{\"reason\":\"ServiceUnavailable\"}", -1);
    CHECK(!pl_apns_read_answer(&a, &r) && r.outcome == PL_PUSH_RETRY && r.retry_after_ms == -1);
    a = answer(0, "", -1);
    a.error = "Couldn't connect to server";
    CHECK(!pl_apns_read_answer(&a, &r) && r.outcome == PL_PUSH_RETRY);
    CHECK_EQ_STR(r.reason, "Couldn't connect to server");
    a = answer(413, "{\"reason\":\"PayloadTooLarge\"}", -1);
    CHECK(!pl_apns_read_answer(&a, &r) && r.outcome == PL_PUSH_REFUSED);
    a = answer(400, "not json", -1);
    CHECK(!pl_apns_read_answer(&a, &r) && r.outcome == PL_PUSH_REFUSED);
    CHECK_EQ_STR(r.reason, "");
    return 0;
}

static const char *fcm_error(int code, const char *status, const char *error_code, char *buf, size_t cap)
{
    snprintf(buf, cap,
             "{\"error\":{\"code\":%d,\"message\":\"m\",\"status\":\"%s\",\"details\":[{\"@type\":"
             "\"type.googleapis.com/google.firebase.fcm.v1.FcmError\",\"errorCode\":\"%s\"}]}}",
             code, status, error_code);
    return buf;
}

static int test_fcm_answers(void)
{
    pl_push_result_t r;
    char buf[512];
    pl_http_response_t a = answer(200, "{\"name\":\"projects/p/messages/1\"}", -1);
    CHECK(!pl_fcm_read_answer(&a, &r) && r.outcome == PL_PUSH_SENT);
    a = answer(404, fcm_error(404, "NOT_FOUND", "UNREGISTERED", buf, sizeof(buf)), -1);
    CHECK(!pl_fcm_read_answer(&a, &r) && r.outcome == PL_PUSH_TOKEN_DEAD);
    CHECK_EQ_STR(r.reason, "UNREGISTERED");
    a = answer(400, fcm_error(400, "INVALID_ARGUMENT", "UNREGISTERED", buf, sizeof(buf)), -1);
    CHECK(!pl_fcm_read_answer(&a, &r) && r.outcome == PL_PUSH_TOKEN_DEAD);
    a = answer(403, fcm_error(403, "PERMISSION_DENIED", "SENDER_ID_MISMATCH", buf, sizeof(buf)), -1);
    CHECK(!pl_fcm_read_answer(&a, &r) && r.outcome == PL_PUSH_TOKEN_DEAD);
    a = answer(401, "{\"error\":{\"code\":401,\"status\":\"UNAUTHENTICATED\"}}", -1);
    CHECK(pl_fcm_read_answer(&a, &r) && r.outcome == PL_PUSH_RETRY);
    CHECK_EQ_STR(r.reason, "UNAUTHENTICATED");
    a = answer(429, fcm_error(429, "RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED", buf, sizeof(buf)), 30);
    CHECK(!pl_fcm_read_answer(&a, &r) && r.outcome == PL_PUSH_RETRY && r.retry_after_ms == 30000);
    a = answer(503, fcm_error(503, "UNAVAILABLE", "UNAVAILABLE", buf, sizeof(buf)), -1);
    CHECK(!pl_fcm_read_answer(&a, &r) && r.outcome == PL_PUSH_RETRY);
    a = answer(400, fcm_error(400, "INVALID_ARGUMENT", "INVALID_ARGUMENT", buf, sizeof(buf)), -1);
    CHECK(!pl_fcm_read_answer(&a, &r) && r.outcome == PL_PUSH_REFUSED);
    return 0;
}

int main(void)
{
    pl_test_run("base64url", test_base64url);
    pl_test_run("jwt", test_jwt);
    pl_test_run("apns answers", test_apns_answers);
    pl_test_run("fcm answers", test_fcm_answers);
    return pl_test_report();
}
