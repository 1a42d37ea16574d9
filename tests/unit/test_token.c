/* test_token.c — the token functions of server/app/auth.c: format of new
 * tokens, parse round trips (with known answers computed independently),
 * the hash of the secret, and malformed tokens rejected. */
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/auth.h"
#include "check.h"
#include "store/ids.h"

/* base64url of 01 02 03 04 05 06 07 08 | 00 01 02 ... 1f (Python's base64). */
static const char KNOWN_TOKEN[] = "AQIDBAUGBwgAAQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHw";
/* BLAKE2b-256, unkeyed, of 00 01 ... 1f (Python's hashlib.blake2b). */
static const uint8_t KNOWN_HASH[32] = {0xcb, 0x2f, 0x51, 0x60, 0xfc, 0x1f, 0x7e, 0x05, 0xa5, 0x5e, 0xf4,
                                       0x9d, 0x34, 0x0b, 0x48, 0xda, 0x2e, 0x5a, 0x78, 0x09, 0x9d, 0x53,
                                       0x39, 0x33, 0x51, 0xcd, 0x57, 0x9d, 0xd4, 0x25, 0x03, 0xd6};
/* base64url of 7f ff ff ff ff ff ff ff | ff * 32. */
static const char MAX_TOKEN[] = "f____________________________________________________w";

static int is_b64url(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

static int parse(const char *s, int64_t *id, uint8_t secret[PL_TOKEN_SECRET_BYTES])
{
    return pl_auth_parse_token(s, strlen(s), id, secret);
}

static void test_known_answers(void)
{
    CHECK_EQ_INT(strlen(KNOWN_TOKEN), PL_TOKEN_LEN);
    int64_t id = 0;
    uint8_t secret[PL_TOKEN_SECRET_BYTES], expect[PL_TOKEN_SECRET_BYTES];
    for (int i = 0; i < PL_TOKEN_SECRET_BYTES; i++)
        expect[i] = (uint8_t)i;
    CHECK_EQ_INT(parse(KNOWN_TOKEN, &id, secret), 0);
    CHECK_EQ_INT(id, 0x0102030405060708LL); /* big-endian */
    CHECK_EQ_MEM(secret, sizeof(secret), expect, sizeof(expect));

    uint8_t hash[PL_TOKEN_HASH_BYTES];
    pl_auth_hash_secret(expect, hash);
    CHECK_EQ_MEM(hash, sizeof(hash), KNOWN_HASH, sizeof(KNOWN_HASH));

    CHECK_EQ_INT(parse(MAX_TOKEN, &id, secret), 0);
    CHECK_EQ_INT(id, INT64_MAX);
    memset(expect, 0xff, sizeof(expect));
    CHECK_EQ_MEM(secret, sizeof(secret), expect, sizeof(expect));
}

static void test_new_token(void)
{
    pl_idgen_t g;
    pl_idgen_init(&g, 5);
    const int64_t ids[] = {1, 42, 0x0102030405060708LL, INT64_MAX, pl_id_new(&g, 77), pl_id_new(&g, 1023)};
    for (size_t k = 0; k < sizeof(ids) / sizeof(ids[0]); k++) {
        char token[PL_TOKEN_LEN + 16];
        memset(token, 'Z', sizeof(token));
        uint8_t hash[PL_TOKEN_HASH_BYTES];
        pl_auth_new_token(ids[k], token, hash);
        CHECK_EQ_INT(token[PL_TOKEN_LEN], '\0');
        CHECK_EQ_INT(token[PL_TOKEN_LEN + 1], 'Z'); /* nothing written past PL_TOKEN_LEN + 1 bytes */
        CHECK_EQ_INT(strlen(token), PL_TOKEN_LEN);
        int bad = 0;
        for (int i = 0; i < PL_TOKEN_LEN; i++)
            bad += !is_b64url(token[i]);
        CHECK_EQ_INT(bad, 0);
        int64_t id = 0;
        uint8_t secret[PL_TOKEN_SECRET_BYTES];
        CHECK_EQ_INT(parse(token, &id, secret), 0);
        CHECK_EQ_INT(id, ids[k]);
        uint8_t again[PL_TOKEN_HASH_BYTES];
        pl_auth_hash_secret(secret, again);
        CHECK_EQ_MEM(again, sizeof(again), hash, sizeof(hash));
        /* the hash is of the secret, not of the token text or the id */
        uint8_t zero[PL_TOKEN_SECRET_BYTES] = {0};
        CHECK(memcmp(secret, zero, sizeof(zero)) != 0);
    }
    /* the device id leads the token: its first 10 characters are the id's
     * first 60 bits */
    char token[PL_TOKEN_LEN + 1];
    uint8_t hash[PL_TOKEN_HASH_BYTES];
    pl_auth_new_token(0x0102030405060708LL, token, hash);
    CHECK(strncmp(token, KNOWN_TOKEN, 10) == 0);
    pl_auth_new_token(INT64_MAX, token, hash);
    CHECK(strncmp(token, MAX_TOKEN, 10) == 0);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void test_tokens_differ(void)
{
    char a[PL_TOKEN_LEN + 1], b[PL_TOKEN_LEN + 1];
    uint8_t ha[PL_TOKEN_HASH_BYTES], hb[PL_TOKEN_HASH_BYTES];
    pl_auth_new_token(99, a, ha);
    pl_auth_new_token(99, b, hb);
    CHECK(strcmp(a, b) != 0);
    CHECK(memcmp(ha, hb, sizeof(ha)) != 0);
    int64_t ia, ib;
    uint8_t sa[PL_TOKEN_SECRET_BYTES], sb[PL_TOKEN_SECRET_BYTES];
    CHECK_EQ_INT(parse(a, &ia, sa), 0);
    CHECK_EQ_INT(parse(b, &ib, sb), 0);
    CHECK_EQ_INT(ia, 99);
    CHECK_EQ_INT(ib, 99);
    CHECK(memcmp(sa, sb, sizeof(sa)) != 0);

    /* a thousand tokens for one device: all different */
    enum { N = 1000 };
    static char store[N][PL_TOKEN_LEN + 1];
    static char *ptrs[N];
    for (int i = 0; i < N; i++) {
        pl_auth_new_token(7, store[i], ha);
        ptrs[i] = store[i];
    }
    qsort(ptrs, N, sizeof(ptrs[0]), cmp_str);
    int dups = 0;
    for (int i = 1; i < N; i++)
        dups += strcmp(ptrs[i], ptrs[i - 1]) == 0;
    CHECK_EQ_INT(dups, 0);
}

/* Expects pl_auth_parse_token(s, len) to fail. */
static void expect_reject(const char *s, size_t len, int line)
{
    int64_t id = 12345;
    uint8_t secret[PL_TOKEN_SECRET_BYTES];
    int rc = pl_auth_parse_token(s, len, &id, secret);
    pl_test_check_at(rc == -1, __FILE__, line, "malformed token rejected", "accepted \"%.*s\" (len %zu) as device %lld",
                     (int)len, s ? s : "", len, (long long)id);
}
#define EXPECT_REJECT(s, len) expect_reject(s, len, __LINE__)

static void test_malformed(void)
{
    char t[128];
    /* empty */
    EXPECT_REJECT("", 0);
    EXPECT_REJECT(NULL, 0);
    /* wrong length */
    EXPECT_REJECT(KNOWN_TOKEN, PL_TOKEN_LEN - 1);
    EXPECT_REJECT(KNOWN_TOKEN, 1);
    snprintf(t, sizeof(t), "%sA", KNOWN_TOKEN);
    EXPECT_REJECT(t, strlen(t));
    snprintf(t, sizeof(t), "%sAAAA", KNOWN_TOKEN);
    EXPECT_REJECT(t, strlen(t));
    /* padded (standard base64 of 40 bytes has "==") */
    snprintf(t, sizeof(t), "%s==", KNOWN_TOKEN);
    EXPECT_REJECT(t, strlen(t));
    /* padding inside the 54 characters */
    snprintf(t, sizeof(t), "%.52s==", KNOWN_TOKEN);
    EXPECT_REJECT(t, PL_TOKEN_LEN);
    snprintf(t, sizeof(t), "%.53s=", KNOWN_TOKEN);
    EXPECT_REJECT(t, PL_TOKEN_LEN);
    /* characters outside base64url, at the start, middle and end */
    static const char bad[] = {'+', '/', '=', '.', ' ', '\n', '~', '*', '\0', (char)0x80, (char)0xff};
    static const int positions[] = {0, 11, 30, PL_TOKEN_LEN - 1};
    for (size_t p = 0; p < sizeof(positions) / sizeof(positions[0]); p++) {
        for (size_t b = 0; b < sizeof(bad); b++) {
            memcpy(t, KNOWN_TOKEN, PL_TOKEN_LEN + 1);
            t[positions[p]] = bad[b];
            EXPECT_REJECT(t, PL_TOKEN_LEN);
        }
    }
    /* bytes above 0x7f are not base64url either; in particular a '_' spelled
     * as one of them must not give a second spelling of a valid token */
    memcpy(t, MAX_TOKEN, PL_TOKEN_LEN + 1);
    t[20] = (char)0x80;
    EXPECT_REJECT(t, PL_TOKEN_LEN);
    memcpy(t, MAX_TOKEN, PL_TOKEN_LEN + 1);
    t[1] = (char)0xc3;
    EXPECT_REJECT(t, PL_TOKEN_LEN);
    /* the standard alphabet in place of the URL-safe one */
    memcpy(t, MAX_TOKEN, PL_TOKEN_LEN + 1);
    for (int i = 0; i < PL_TOKEN_LEN; i++)
        if (t[i] == '_')
            t[i] = '/';
    EXPECT_REJECT(t, PL_TOKEN_LEN);
    /* surrounded by whitespace (the length is right for neither) */
    snprintf(t, sizeof(t), " %.53s", KNOWN_TOKEN);
    EXPECT_REJECT(t, PL_TOKEN_LEN);
    /* non-canonical: the last character carries 2 data bits, its low 4 bits
     * must be zero ('w' = 110000); 'x' decodes to the same 40 bytes, so
     * accepting it would make two spellings of one token */
    memcpy(t, KNOWN_TOKEN, PL_TOKEN_LEN + 1);
    t[PL_TOKEN_LEN - 1] = 'x';
    EXPECT_REJECT(t, PL_TOKEN_LEN);
    t[PL_TOKEN_LEN - 1] = '_';
    EXPECT_REJECT(t, PL_TOKEN_LEN);
}

/* Device ids no generator makes (0, negative) are not tokens. */
static void test_invalid_device_ids(void)
{
    uint8_t raw[8 + PL_TOKEN_SECRET_BYTES];
    char t[PL_TOKEN_LEN + 1];
    memset(raw, 0, sizeof(raw));
    memset(raw + 8, 0xab, PL_TOKEN_SECRET_BYTES);
    sodium_bin2base64(t, sizeof(t), raw, sizeof(raw), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    CHECK_EQ_INT(strlen(t), PL_TOKEN_LEN);
    EXPECT_REJECT(t, PL_TOKEN_LEN); /* id 0 */
    raw[0] = 0x80;
    sodium_bin2base64(t, sizeof(t), raw, sizeof(raw), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    EXPECT_REJECT(t, PL_TOKEN_LEN); /* INT64_MIN */
    memset(raw, 0xff, 8);
    sodium_bin2base64(t, sizeof(t), raw, sizeof(raw), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    EXPECT_REJECT(t, PL_TOKEN_LEN); /* -1 */
    /* and id 1 is fine */
    memset(raw, 0, 8);
    raw[7] = 1;
    sodium_bin2base64(t, sizeof(t), raw, sizeof(raw), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    int64_t id = 0;
    uint8_t secret[PL_TOKEN_SECRET_BYTES];
    CHECK_EQ_INT(pl_auth_parse_token(t, PL_TOKEN_LEN, &id, secret), 0);
    CHECK_EQ_INT(id, 1);
    CHECK_EQ_MEM(secret, sizeof(secret), raw + 8, PL_TOKEN_SECRET_BYTES);
}

/* len bounds the read: an unterminated buffer of exactly PL_TOKEN_LEN bytes
 * parses (ASan would catch a read past it), and trailing bytes beyond len
 * are ignored. */
static void test_len_bounds_read(void)
{
    char *exact = malloc(PL_TOKEN_LEN);
    CHECK(exact != NULL);
    if (!exact)
        return;
    memcpy(exact, KNOWN_TOKEN, PL_TOKEN_LEN);
    int64_t id = 0;
    uint8_t secret[PL_TOKEN_SECRET_BYTES];
    CHECK_EQ_INT(pl_auth_parse_token(exact, PL_TOKEN_LEN, &id, secret), 0);
    CHECK_EQ_INT(id, 0x0102030405060708LL);
    free(exact);
    char longer[PL_TOKEN_LEN + 8];
    snprintf(longer, sizeof(longer), "%s!!!!", KNOWN_TOKEN);
    id = 0;
    CHECK_EQ_INT(pl_auth_parse_token(longer, PL_TOKEN_LEN, &id, secret), 0);
    CHECK_EQ_INT(id, 0x0102030405060708LL);
}

static void test_hash(void)
{
    uint8_t s1[PL_TOKEN_SECRET_BYTES] = {0}, s2[PL_TOKEN_SECRET_BYTES] = {0};
    uint8_t h1[PL_TOKEN_HASH_BYTES], h1b[PL_TOKEN_HASH_BYTES], h2[PL_TOKEN_HASH_BYTES];
    s2[31] = 1;
    pl_auth_hash_secret(s1, h1);
    pl_auth_hash_secret(s1, h1b);
    pl_auth_hash_secret(s2, h2);
    CHECK_EQ_MEM(h1, sizeof(h1), h1b, sizeof(h1b));
    CHECK(memcmp(h1, h2, sizeof(h1)) != 0);
    CHECK(memcmp(h1, s1, sizeof(h1)) != 0); /* not the secret itself */
}

int main(void)
{
    if (sodium_init() < 0) {
        fprintf(stderr, "sodium_init failed\n");
        return 1;
    }
    test_known_answers();
    test_new_token();
    test_tokens_differ();
    test_malformed();
    test_invalid_device_ids();
    test_len_bounds_read();
    test_hash();
    return pl_test_report();
}
