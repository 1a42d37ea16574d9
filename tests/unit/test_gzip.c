/* test_gzip.c — runtime/gzip.c: the "gzip" grpc-encoding. Round trips,
 * interoperability with other gzip writers/readers, the max_out bound
 * (exact size passes, one byte less fails, a 50 MB zip bomb fails against
 * 1 MiB and never allocates much more than 1 MiB on the way), truncated
 * or corrupt input, and bytes after the first gzip member. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "check.h"
#include "runtime/errors.h"
#include "runtime/gzip.h"

/* The largest single malloc/realloc since the last reset. CMakeLists.txt
 * links this test with --wrap=malloc,realloc, so gzip.c's allocations come
 * here (zlib's own, inside the shared library, do not). */
void *__real_malloc(size_t n);
void *__real_realloc(void *p, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_realloc(void *p, size_t n);
static size_t largest_alloc;

void *__wrap_malloc(size_t n)
{
    if (n > largest_alloc)
        largest_alloc = n;
    return __real_malloc(n);
}

void *__wrap_realloc(void *p, size_t n)
{
    if (n > largest_alloc)
        largest_alloc = n;
    return __real_realloc(p, n);
}

/* gzip -n of "hello, parley\n" x 3 (from Python's gzip module, mtime 0). */
static const uint8_t hello_gz[] = {0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x03, 0xcb, 0x48, 0xcd,
                                   0xc9, 0xc9, 0xd7, 0x51, 0x28, 0x48, 0x2c, 0xca, 0x49, 0xad, 0xe4, 0xca, 0xc0,
                                   0xc3, 0x03, 0x00, 0x92, 0x35, 0xd9, 0x52, 0x2a, 0x00, 0x00, 0x00};
static const char hello[] = "hello, parley\nhello, parley\nhello, parley\n";

static void fill_pattern(uint8_t *p, size_t n)
{
    uint32_t x = 12345;
    for (size_t i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        p[i] = (i % 64 < 40) ? (uint8_t)('a' + i % 26) : (uint8_t)(x >> 24); /* half text, half noise */
    }
}

static void test_decompress_known(void)
{
    uint8_t *out = NULL;
    size_t out_len = 0;
    CHECK_EQ_INT(pl_gzip_decompress(hello_gz, sizeof(hello_gz), 1024, &out, &out_len), 0);
    CHECK_EQ_MEM(out, out_len, hello, sizeof(hello) - 1);
    free(out);
}

/* What we compress, plain zlib (another gzip reader) must read back. */
static void test_compress_is_gzip(void)
{
    uint8_t *gz = NULL;
    size_t gz_len = 0;
    CHECK_EQ_INT(pl_gzip_compress((const uint8_t *)hello, sizeof(hello) - 1, &gz, &gz_len), 0);
    CHECK(gz_len >= 18);
    CHECK_EQ_MEM(gz, 3, "\x1f\x8b\x08", 3); /* gzip magic, deflate */

    uint8_t plain[256];
    z_stream zs = {0};
    CHECK_EQ_INT(inflateInit2(&zs, 15 + 16), Z_OK);
    zs.next_in = gz;
    zs.avail_in = (uInt)gz_len;
    zs.next_out = plain;
    zs.avail_out = sizeof(plain);
    CHECK_EQ_INT(inflate(&zs, Z_FINISH), Z_STREAM_END);
    CHECK_EQ_MEM(plain, zs.total_out, hello, sizeof(hello) - 1);
    inflateEnd(&zs);
    free(gz);
}

static void test_round_trip(void)
{
    static const size_t sizes[] = {0, 1, 100, 4096, 4097, 100000, 1 << 20};
    for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
        size_t n = sizes[s];
        uint8_t *plain = malloc(n ? n : 1);
        CHECK(plain != NULL);
        if (!plain)
            return;
        fill_pattern(plain, n);
        uint8_t *gz = NULL, *back = NULL;
        size_t gz_len = 0, back_len = 0;
        CHECK_EQ_INT(pl_gzip_compress(plain, n, &gz, &gz_len), 0);
        CHECK_EQ_INT(pl_gzip_decompress(gz, gz_len, n, &back, &back_len), 0);
        CHECK_EQ_MEM(back, back_len, plain, n);
        free(back);
        free(gz);
        free(plain);
    }
}

/* max_out exactly the plain size passes; one byte less fails. */
static void test_max_out_boundary(void)
{
    static const size_t sizes[] = {1, 4096, 10000, 300000};
    for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
        size_t n = sizes[s];
        uint8_t *plain = malloc(n);
        CHECK(plain != NULL);
        if (!plain)
            return;
        fill_pattern(plain, n);
        uint8_t *gz = NULL, *back = NULL;
        size_t gz_len = 0, back_len = 0;
        CHECK_EQ_INT(pl_gzip_compress(plain, n, &gz, &gz_len), 0);
        CHECK_EQ_INT(pl_gzip_decompress(gz, gz_len, n, &back, &back_len), 0);
        CHECK_EQ_INT(back_len, n);
        free(back);
        back = NULL;
        CHECK_EQ_INT(pl_gzip_decompress(gz, gz_len, n - 1, &back, &back_len), PL_ERR_LIMIT);
        free(gz);
        free(plain);
    }

    uint8_t *out = NULL;
    size_t out_len;
    CHECK_EQ_INT(pl_gzip_decompress(hello_gz, sizeof(hello_gz), sizeof(hello) - 1, &out, &out_len), 0);
    free(out);
    CHECK_EQ_INT(pl_gzip_decompress(hello_gz, sizeof(hello_gz), sizeof(hello) - 2, &out, &out_len), PL_ERR_LIMIT);
    CHECK_EQ_INT(pl_gzip_decompress(hello_gz, sizeof(hello_gz), 0, &out, &out_len), PL_ERR_LIMIT);
}

/* 50 MB of zeros, gzipped with zlib directly (a few dozen KB). */
static uint8_t *make_bomb(size_t *len)
{
    static uint8_t zeros[1 << 16];
    z_stream zs = {0};
    if (deflateInit2(&zs, Z_BEST_COMPRESSION, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY) != Z_OK)
        return NULL;
    size_t cap = 1 << 20, total = 50u * 1000 * 1000;
    uint8_t *out = malloc(cap);
    if (!out) {
        deflateEnd(&zs);
        return NULL;
    }
    zs.next_out = out;
    zs.avail_out = (uInt)cap;
    int rc = Z_OK;
    for (size_t fed = 0; rc == Z_OK;) {
        size_t n = total - fed < sizeof(zeros) ? total - fed : sizeof(zeros);
        zs.next_in = zeros;
        zs.avail_in = (uInt)n;
        fed += n;
        rc = deflate(&zs, fed == total ? Z_FINISH : Z_NO_FLUSH);
        if (zs.avail_in != 0 || zs.avail_out == 0)
            break; /* the output buffer is far larger than needed */
    }
    *len = zs.total_out;
    deflateEnd(&zs);
    if (rc != Z_STREAM_END) {
        free(out);
        return NULL;
    }
    return out;
}

static void test_zip_bomb(void)
{
    size_t bomb_len = 0;
    uint8_t *bomb = make_bomb(&bomb_len);
    CHECK(bomb != NULL);
    if (!bomb)
        return;
    CHECK(bomb_len < 200000);
    uint8_t *out = NULL;
    size_t out_len = 0;
    largest_alloc = 0;
    CHECK_EQ_INT(pl_gzip_decompress(bomb, bomb_len, 1 << 20, &out, &out_len), PL_ERR_LIMIT);
    CHECK(largest_alloc > 0); /* the wrap is in effect */
    CHECK(largest_alloc <= (1 << 20) + 1);
    free(bomb);
}

static void test_truncated(void)
{
    /* every strict prefix, including the empty input */
    for (size_t n = 0; n < sizeof(hello_gz); n++) {
        uint8_t *out = NULL;
        size_t out_len;
        int rc = pl_gzip_decompress(hello_gz, n, 1024, &out, &out_len);
        if (rc != PL_ERR_PROTO)
            fprintf(stderr, "    (prefix of %zu bytes)\n", n);
        CHECK_EQ_INT(rc, PL_ERR_PROTO);
    }
}

static void test_corrupt(void)
{
    /* a bad magic byte, a bad method, an invalid deflate block type, a CRC and a length mismatch */
    static const size_t at[] = {0, 2, 10, sizeof(hello_gz) - 8, sizeof(hello_gz) - 1};
    static const uint8_t set[] = {0x1e, 0x07, 0xff, 0x93, 0x01};
    for (size_t i = 0; i < sizeof(at) / sizeof(at[0]); i++) {
        uint8_t bad[sizeof(hello_gz)];
        memcpy(bad, hello_gz, sizeof(bad));
        bad[at[i]] = set[i];
        uint8_t *out = NULL;
        size_t out_len;
        int rc = pl_gzip_decompress(bad, sizeof(bad), 1024, &out, &out_len);
        if (rc != PL_ERR_PROTO)
            fprintf(stderr, "    (byte %zu set to 0x%02x)\n", at[i], set[i]);
        CHECK_EQ_INT(rc, PL_ERR_PROTO);
    }

    static const uint8_t garbage[] = "this is not gzip at all, just text";
    uint8_t *out = NULL;
    size_t out_len;
    CHECK_EQ_INT(pl_gzip_decompress(garbage, sizeof(garbage), 1024, &out, &out_len), PL_ERR_PROTO);
}

/* RFC 1952 lets a gzip stream hold several members, and grpc-core rejects
 * input that inflate leaves unconsumed. Either way, what follows the first
 * member must not vanish without an error. */
static void test_data_after_first_member(void)
{
    uint8_t two[2 * sizeof(hello_gz)];
    memcpy(two, hello_gz, sizeof(hello_gz));
    memcpy(two + sizeof(hello_gz), hello_gz, sizeof(hello_gz));
    char both[2 * (sizeof(hello) - 1)];
    memcpy(both, hello, sizeof(hello) - 1);
    memcpy(both + sizeof(hello) - 1, hello, sizeof(hello) - 1);
    uint8_t *out = NULL;
    size_t out_len = 0;
    int rc = pl_gzip_decompress(two, sizeof(two), 1024, &out, &out_len);
    if (rc == 0) {
        if (out_len != sizeof(both))
            fprintf(stderr, "    (two gzip members: only %zu of %zu bytes returned, no error)\n", out_len,
                    sizeof(both));
        CHECK_EQ_MEM(out, out_len, both, sizeof(both));
        free(out);
    } else {
        CHECK_EQ_INT(rc, PL_ERR_PROTO);
    }

    uint8_t junk[sizeof(hello_gz) + 4];
    memcpy(junk, hello_gz, sizeof(hello_gz));
    memcpy(junk + sizeof(hello_gz), "junk", 4);
    out = NULL;
    rc = pl_gzip_decompress(junk, sizeof(junk), 1024, &out, &out_len);
    if (rc == 0)
        fprintf(stderr, "    (4 bytes of junk after the gzip trailer were ignored)\n");
    CHECK_EQ_INT(rc, PL_ERR_PROTO);
    if (rc == 0)
        free(out);
}

int main(void)
{
    test_decompress_known();
    test_compress_is_gzip();
    test_round_trip();
    test_max_out_boundary();
    test_zip_bomb();
    test_truncated();
    test_corrupt();
    test_data_after_first_member();
    return pl_test_report();
}
