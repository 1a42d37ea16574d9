/* test_metadata.c — runtime/metadata.c: the metadata list (add/get,
 * order, growth, nothing allocated while empty), key rules and reserved
 * keys, value rules, -bin values (base64 on the wire, padded or not), and
 * the byte limit (key + value + 32 per entry). */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "runtime/errors.h"
#include "runtime/metadata.h"

#define KEY(s) (const uint8_t *)(s), strlen(s)

static void test_empty_allocates_nothing(void)
{
    pl_metadata_t md;
    pl_metadata_init(&md, 4096);
    CHECK(md.entries == NULL);
    CHECK(md.store == NULL);
    CHECK_EQ_INT(md.count, 0);
    CHECK(pl_metadata_get(&md, "x", NULL) == NULL);

    /* failed adds allocate nothing either */
    CHECK_EQ_INT(pl_metadata_add(&md, "Bad", "v", 1), PL_ERR_INVALID);
    CHECK_EQ_INT(pl_metadata_add(&md, "grpc-x", "v", 1), PL_ERR_INVALID);
    CHECK(md.entries == NULL);
    CHECK(md.store == NULL);

    pl_metadata_t small = PL_METADATA_INIT(10);
    CHECK_EQ_INT(pl_metadata_add(&small, "k", "v", 1), PL_ERR_LIMIT);
    CHECK(small.entries == NULL);
    CHECK(small.store == NULL);

    CHECK_EQ_INT(pl_metadata_add(&md, "k", "v", 1), 0);
    pl_metadata_dispose(&md);
    CHECK(md.entries == NULL);
    CHECK(md.store == NULL);
    CHECK_EQ_INT(md.count, 0);
    CHECK_EQ_INT(md.limit, 4096); /* reusable after dispose */
    pl_metadata_dispose(&small);
}

static void test_add_get(void)
{
    pl_metadata_t md;
    pl_metadata_init(&md, 1 << 20);
    CHECK_EQ_INT(pl_metadata_add(&md, "x-user", "alice", 5), 0);
    CHECK_EQ_INT(pl_metadata_add(&md, "x-empty", "", 0), 0);
    CHECK_EQ_INT(pl_metadata_add(&md, "x-user", "bob", 3), 0);
    CHECK_EQ_INT(pl_metadata_add(&md, "x-data-bin", "\x00\xff\x01", 3), 0);
    CHECK_EQ_INT(md.count, 4);

    size_t len = 99;
    const uint8_t *v = pl_metadata_get(&md, "x-user", &len);
    CHECK_EQ_MEM(v, len, "alice", 5); /* the first of duplicates */
    v = pl_metadata_get(&md, "x-empty", &len);
    CHECK(v != NULL);
    CHECK_EQ_INT(len, 0);
    v = pl_metadata_get(&md, "x-data-bin", &len);
    CHECK_EQ_MEM(v, len, "\x00\xff\x01", 3);
    CHECK(pl_metadata_get(&md, "x-use", NULL) == NULL);
    CHECK(pl_metadata_get(&md, "x-users", NULL) == NULL);

    /* order is kept */
    static const char *const keys[] = {"x-user", "x-empty", "x-user", "x-data-bin"};
    static const char *const values[] = {"alice", "", "bob", "\x00\xff\x01"};
    static const size_t value_lens[] = {5, 0, 3, 3};
    for (uint32_t i = 0; i < 4; i++) {
        const char *k;
        size_t kl, vl;
        const uint8_t *val;
        pl_metadata_at(&md, i, &k, &kl, &val, &vl);
        CHECK_EQ_MEM(k, kl, keys[i], strlen(keys[i]));
        CHECK_EQ_MEM(val, vl, values[i], value_lens[i]);
    }
    pl_metadata_dispose(&md);
}

/* Enough entries to grow both the entry array and the byte store. */
static void test_many_entries(void)
{
    pl_metadata_t md;
    pl_metadata_init(&md, 1 << 20);
    char key[32], value[64];
    for (int i = 0; i < 200; i++) {
        snprintf(key, sizeof(key), "key-%d", i);
        snprintf(value, sizeof(value), "value number %d", i * 31);
        CHECK_EQ_INT(pl_metadata_add(&md, key, value, strlen(value)), 0);
    }
    CHECK_EQ_INT(md.count, 200);
    for (int i = 0; i < 200; i += 17) {
        snprintf(key, sizeof(key), "key-%d", i);
        snprintf(value, sizeof(value), "value number %d", i * 31);
        size_t len;
        const uint8_t *v = pl_metadata_get(&md, key, &len);
        CHECK_EQ_MEM(v, len, value, strlen(value));
    }
    pl_metadata_dispose(&md);
}

static void test_keys(void)
{
    static const char *const valid[] = {"a", "abc", "x-user-id", "a_b.c-d", "0123456789", "x-bin", "-", "._-"};
    for (size_t i = 0; i < sizeof(valid) / sizeof(valid[0]); i++)
        CHECK(pl_metadata_key_is_valid(KEY(valid[i])));
    static const char *const invalid[] = {"",     "A",   "ABC",  "x-User",      "a-Z", "a b",
                                          "a:b",  "a/b", "a\tb", "caf\xc3\xa9", "a+b", "a~",
                                          "a\"b", "a@",  "a[",   "a`",          "a{"};
    pl_metadata_t md = PL_METADATA_INIT(1024);
    for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
        CHECK(!pl_metadata_key_is_valid(KEY(invalid[i])));
        CHECK_EQ_INT(pl_metadata_add(&md, invalid[i], "v", 1), PL_ERR_INVALID);
    }
    CHECK_EQ_INT(md.count, 0);
    CHECK(!pl_metadata_key_is_valid((const uint8_t *)"ab\0c", 4));

    CHECK(pl_metadata_key_is_binary(KEY("x-bin")));
    CHECK(pl_metadata_key_is_binary(KEY("trace-context-bin")));
    CHECK(!pl_metadata_key_is_binary(KEY("x-binx")));
    CHECK(!pl_metadata_key_is_binary(KEY("xbin")));
    CHECK(!pl_metadata_key_is_binary(KEY("x-bi")));
    CHECK(!pl_metadata_key_is_binary(KEY("x-BIN")));
}

static void test_reserved(void)
{
    static const char *const reserved[] = {":path",
                                           ":authority",
                                           ":method",
                                           ":scheme",
                                           ":status",
                                           "grpc-timeout",
                                           "grpc-status",
                                           "grpc-message",
                                           "grpc-encoding",
                                           "grpc-accept-encoding",
                                           "grpc-x",
                                           "te",
                                           "content-type",
                                           "connection",
                                           "keep-alive",
                                           "proxy-connection",
                                           "transfer-encoding",
                                           "upgrade",
                                           "host"};
    for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++) {
        CHECK(pl_metadata_key_is_reserved(KEY(reserved[i])));
        pl_metadata_t md = PL_METADATA_INIT(1024);
        if (pl_metadata_add(&md, reserved[i], "v", 1) != PL_ERR_INVALID)
            fprintf(stderr, "    (adding reserved key \"%s\")\n", reserved[i]);
        CHECK_EQ_INT(pl_metadata_add(&md, reserved[i], "v", 1), PL_ERR_INVALID);
        CHECK_EQ_INT(md.count, 0);
        pl_metadata_dispose(&md);
    }
    static const char *const allowed[] = {"x-grpc-foo",    "grpcx", "grpc",     "tea",   "t",
                                          "content-types", "x-te",  "hostname", "x-path"};
    for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++) {
        CHECK(!pl_metadata_key_is_reserved(KEY(allowed[i])));
        pl_metadata_t md = PL_METADATA_INIT(1024);
        CHECK_EQ_INT(pl_metadata_add(&md, allowed[i], "v", 1), 0);
        pl_metadata_dispose(&md);
    }
}

static void test_values(void)
{
    pl_metadata_t md = PL_METADATA_INIT(4096);
    CHECK_EQ_INT(pl_metadata_add(&md, "x-a", " ~!azAZ09", 9), 0); /* 0x20..0x7E */
    static const char *const bad[] = {"\x1f", "\x7f", "\t", "a\nb", "\r", "caf\xc3\xa9", "\x80", "\xff"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CHECK_EQ_INT(pl_metadata_add(&md, "x-a", bad[i], strlen(bad[i])), PL_ERR_INVALID);
    CHECK_EQ_INT(pl_metadata_add(&md, "x-a", "a\0b", 3), PL_ERR_INVALID);
    /* -bin values are raw bytes: anything goes */
    CHECK_EQ_INT(pl_metadata_add(&md, "x-a-bin", "\x00\x7f\x80\xff\n", 5), 0);
    CHECK_EQ_INT(md.count, 2);
    pl_metadata_dispose(&md);
}

static void check_wire_bin(const char *b64, const void *want, size_t want_len)
{
    pl_metadata_t md = PL_METADATA_INIT(4096);
    int rc = pl_metadata_add_wire(&md, KEY("x-bin"), (const uint8_t *)b64, strlen(b64));
    if (rc != 0)
        fprintf(stderr, "    (base64 \"%s\")\n", b64);
    CHECK_EQ_INT(rc, 0);
    size_t len = 0;
    const uint8_t *v = pl_metadata_get(&md, "x-bin", &len);
    CHECK(v != NULL);
    CHECK_EQ_MEM(v, len, want, want_len);
    pl_metadata_dispose(&md);
}

static void check_wire_bin_rejected(const char *b64)
{
    pl_metadata_t md = PL_METADATA_INIT(4096);
    int rc = pl_metadata_add_wire(&md, KEY("x-bin"), (const uint8_t *)b64, strlen(b64));
    if (rc != PL_ERR_INVALID)
        fprintf(stderr, "    (base64 \"%s\" should be rejected)\n", b64);
    CHECK_EQ_INT(rc, PL_ERR_INVALID);
    CHECK_EQ_INT(md.count, 0);
    pl_metadata_dispose(&md);
}

static void test_add_wire(void)
{
    check_wire_bin("QUJD", "ABC", 3);
    check_wire_bin("QQ==", "A", 1);
    check_wire_bin("QQ", "A", 1);
    check_wire_bin("QUI=", "AB", 2);
    check_wire_bin("QUI", "AB", 2);
    check_wire_bin("//79", "\xff\xfe\xfd", 3);
    check_wire_bin("AP8", "\x00\xff", 2);
    check_wire_bin("aGVsbG8gd29ybGQ=", "hello world", 11);
    check_wire_bin("aGVsbG8gd29ybGQ", "hello world", 11);
    check_wire_bin("", "", 0);

    check_wire_bin_rejected("Q");
    check_wire_bin_rejected("QQ=");
    check_wire_bin_rejected("Q===");
    check_wire_bin_rejected("QQ==QQ==");
    check_wire_bin_rejected("QQ==QQ");
    check_wire_bin_rejected("QQ=A");
    check_wire_bin_rejected("!!!!");
    check_wire_bin_rejected("QU JD");
    check_wire_bin_rejected("QUJD\n");

    /* a -bin value longer than the 256-byte stack scratch buffer */
    char b64[1400];
    uint8_t raw[1024];
    for (size_t i = 0; i < sizeof(raw); i++)
        raw[i] = (uint8_t)(i * 13 + 1);
    CHECK(pl_metadata_wire_value(KEY("big-bin"), raw, sizeof(raw), b64, sizeof(b64)) > 0);
    check_wire_bin(b64, raw, sizeof(raw));

    /* non-bin values are taken as they are */
    pl_metadata_t md = PL_METADATA_INIT(4096);
    CHECK_EQ_INT(pl_metadata_add_wire(&md, KEY("x-a"), (const uint8_t *)"QQ==", 4), 0);
    size_t len;
    const uint8_t *v = pl_metadata_get(&md, "x-a", &len);
    CHECK_EQ_MEM(v, len, "QQ==", 4);
    CHECK_EQ_INT(pl_metadata_add_wire(&md, KEY("X-A"), (const uint8_t *)"v", 1), PL_ERR_INVALID);
    pl_metadata_dispose(&md);
}

static void check_wire_value(const char *key, const void *value, size_t len, const char *want)
{
    char out[64];
    memset(out, '#', sizeof(out));
    long n = pl_metadata_wire_value(KEY(key), value, len, out, sizeof(out));
    CHECK_EQ_INT(n, strlen(want));
    CHECK_EQ_MEM(out, n > 0 ? (size_t)n : 0, want, strlen(want));
}

static void test_wire_value(void)
{
    check_wire_value("x-a", "hi there", 8, "hi there");
    check_wire_value("x-bin", "\xff\xfe", 2, "//4"); /* unpadded */
    check_wire_value("x-bin", "A", 1, "QQ");
    check_wire_value("x-bin", "ABC", 3, "QUJD");
    check_wire_value("x-bin", "hello", 5, "aGVsbG8");
    check_wire_value("x-bin", "", 0, "");
    CHECK(pl_metadata_wire_len(5) >= 7);
    CHECK(pl_metadata_wire_len(1024) >= 1366);

    char small[4];
    CHECK_EQ_INT(pl_metadata_wire_value(KEY("x-a"), (const uint8_t *)"hello", 5, small, sizeof(small)), -1);
    CHECK_EQ_INT(pl_metadata_wire_value(KEY("x-bin"), (const uint8_t *)"hello", 5, small, sizeof(small)), -1);
}

static void test_limit(void)
{
    char value[100];
    memset(value, 'v', sizeof(value));

    /* "k" + 67 + 32 = 100: exactly the limit */
    pl_metadata_t md = PL_METADATA_INIT(100);
    CHECK_EQ_INT(pl_metadata_add(&md, "k", value, 67), 0);
    CHECK_EQ_INT(pl_metadata_add(&md, "k", "", 0), PL_ERR_LIMIT); /* 33 more */
    CHECK_EQ_INT(md.count, 1);
    pl_metadata_dispose(&md);

    md = (pl_metadata_t)PL_METADATA_INIT(99);
    CHECK_EQ_INT(pl_metadata_add(&md, "k", value, 67), PL_ERR_LIMIT);
    CHECK_EQ_INT(md.count, 0);
    pl_metadata_dispose(&md);

    /* empty entries cost 32 + key each, so a flood of them is bounded */
    md = (pl_metadata_t)PL_METADATA_INIT(340);
    int added = 0;
    while (added < 100 && pl_metadata_add(&md, "e", "", 0) == 0)
        added++;
    CHECK_EQ_INT(added, 10); /* 10 * 33 = 330 <= 340 < 363 */
    pl_metadata_dispose(&md);

    /* the wire path is bounded by the same limit */
    md = (pl_metadata_t)PL_METADATA_INIT(100);
    CHECK_EQ_INT(pl_metadata_add_wire(&md, KEY("k"), (const uint8_t *)value, 68), PL_ERR_LIMIT);
    CHECK_EQ_INT(pl_metadata_add_wire(&md, KEY("k"), (const uint8_t *)value, 67), 0);
    pl_metadata_dispose(&md);
}

/* The header promises non-bin values are printable ASCII; a value that
 * arrives off the wire must obey that too, or a list can hold values
 * pl_metadata_add itself would refuse. */
static void test_add_wire_checks_ascii(void)
{
    pl_metadata_t md = PL_METADATA_INIT(4096);
    CHECK_EQ_INT(pl_metadata_add_wire(&md, KEY("x-a"), (const uint8_t *)"caf\xc3\xa9", 5), PL_ERR_INVALID);
    CHECK_EQ_INT(pl_metadata_add_wire(&md, KEY("x-a"), (const uint8_t *)"a\tb", 3), PL_ERR_INVALID);
    CHECK_EQ_INT(md.count, 0);
    pl_metadata_dispose(&md);
}

int main(void)
{
    test_empty_allocates_nothing();
    test_add_get();
    test_many_entries();
    test_keys();
    test_reserved();
    test_values();
    test_add_wire();
    test_wire_value();
    test_limit();
    test_add_wire_checks_ascii();
    return pl_test_report();
}
