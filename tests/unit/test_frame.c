/* test_frame.c — runtime/frame.c: the 5-byte message header and the
 * incremental deframer (byte-by-byte input, many messages per buffer, empty
 * and compressed messages, bad flag, oversize declared length, and that the
 * buffer grows only with the bytes that actually arrive). */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "runtime/frame.h"

static void test_header_write(void)
{
    uint8_t h[PL_FRAME_HEADER_LEN];

    pl_frame_header_write(h, false, 0);
    CHECK_EQ_MEM(h, 5, "\x00\x00\x00\x00\x00", 5);
    pl_frame_header_write(h, true, 0x01020304);
    CHECK_EQ_MEM(h, 5, "\x01\x01\x02\x03\x04", 5);
    pl_frame_header_write(h, false, 0xFFFFFFFFu);
    CHECK_EQ_MEM(h, 5, "\x00\xff\xff\xff\xff", 5);
    pl_frame_header_write(h, true, 300);
    CHECK_EQ_MEM(h, 5, "\x01\x00\x00\x01\x2c", 5);
}

static void test_byte_by_byte(void)
{
    static const uint8_t wire[] = {0, 0, 0, 0, 3, 'a', 'b', 'c'};
    pl_deframer_t d;
    pl_deframer_init(&d, 1024);
    CHECK(!pl_deframer_is_mid_message(&d));

    for (size_t i = 0; i + 1 < sizeof(wire); i++) {
        size_t used = 99;
        CHECK_EQ_INT(pl_deframer_feed(&d, wire + i, 1, &used), PL_DEFRAME_NEED_MORE);
        CHECK_EQ_INT(used, 1);
        CHECK(pl_deframer_is_mid_message(&d));
    }
    CHECK_EQ_INT(pl_deframer_declared_length(&d), 3);
    size_t used = 99;
    CHECK_EQ_INT(pl_deframer_feed(&d, wire + 7, 1, &used), PL_DEFRAME_MESSAGE);
    CHECK_EQ_INT(used, 1);

    uint8_t *payload = NULL;
    uint32_t len = 99;
    bool compressed = true;
    pl_deframer_take(&d, &payload, &len, &compressed);
    CHECK_EQ_MEM(payload, len, "abc", 3);
    CHECK(!compressed);
    CHECK(!pl_deframer_is_mid_message(&d));
    free(payload);
    pl_deframer_dispose(&d);
}

/* Header split across two feeds, the payload in a third. */
static void test_split_header(void)
{
    static const uint8_t wire[] = {1, 0, 0, 0, 2, 'x', 'y'};
    pl_deframer_t d;
    pl_deframer_init(&d, 16);
    size_t used;
    CHECK_EQ_INT(pl_deframer_feed(&d, wire, 2, &used), PL_DEFRAME_NEED_MORE);
    CHECK_EQ_INT(used, 2);
    CHECK_EQ_INT(pl_deframer_feed(&d, wire + 2, 3, &used), PL_DEFRAME_NEED_MORE);
    CHECK_EQ_INT(used, 3);
    CHECK_EQ_INT(pl_deframer_feed(&d, wire + 5, 2, &used), PL_DEFRAME_MESSAGE);
    CHECK_EQ_INT(used, 2);
    uint8_t *payload;
    uint32_t len;
    bool compressed;
    pl_deframer_take(&d, &payload, &len, &compressed);
    CHECK_EQ_MEM(payload, len, "xy", 2);
    CHECK(compressed);
    free(payload);
    pl_deframer_dispose(&d);
}

/* Four messages in one buffer: plain, empty, compressed, and 300 bytes. */
static void test_many_in_one_buffer(void)
{
    uint8_t big[300];
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (uint8_t)(i * 7);
    uint8_t wire[5 + 5 + 5 + 5 + 2 + 5 + sizeof(big)];
    size_t n = 0;
    memcpy(wire + n, "\x00\x00\x00\x00\x05hello", 10), n += 10;
    memcpy(wire + n, "\x00\x00\x00\x00\x00", 5), n += 5;
    memcpy(wire + n, "\x01\x00\x00\x00\x02xy", 7), n += 7;
    memcpy(wire + n, "\x00\x00\x00\x01\x2c", 5), n += 5;
    memcpy(wire + n, big, sizeof(big)), n += sizeof(big);
    CHECK_EQ_INT(n, sizeof(wire));

    static const struct {
        size_t used;
        const char *data;
        uint32_t len;
        bool compressed;
    } want[] = {{10, "hello", 5, false}, {5, NULL, 0, false}, {7, "xy", 2, true}, {305, NULL, 300, false}};

    pl_deframer_t d;
    pl_deframer_init(&d, 4096);
    size_t pos = 0;
    for (size_t m = 0; m < 4; m++) {
        size_t used;
        CHECK_EQ_INT(pl_deframer_feed(&d, wire + pos, n - pos, &used), PL_DEFRAME_MESSAGE);
        CHECK_EQ_INT(used, want[m].used);
        pos += used;
        uint8_t *payload;
        uint32_t len;
        bool compressed;
        pl_deframer_take(&d, &payload, &len, &compressed);
        CHECK_EQ_INT(len, want[m].len);
        CHECK_EQ_INT(compressed, want[m].compressed);
        CHECK_EQ_MEM(payload, len, want[m].data ? (const void *)want[m].data : big, want[m].len);
        free(payload);
    }
    CHECK_EQ_INT(pos, n);
    CHECK(!pl_deframer_is_mid_message(&d));
    pl_deframer_dispose(&d);
}

static void test_empty_message(void)
{
    pl_deframer_t d;
    pl_deframer_init(&d, 0); /* even max_message 0 admits an empty message */
    size_t used;
    CHECK_EQ_INT(pl_deframer_feed(&d, (const uint8_t *)"\x00\x00\x00\x00\x00", 5, &used), PL_DEFRAME_MESSAGE);
    CHECK_EQ_INT(used, 5);
    uint8_t *payload = NULL;
    uint32_t len = 99;
    bool compressed = true;
    pl_deframer_take(&d, &payload, &len, &compressed);
    CHECK_EQ_INT(len, 0);
    CHECK(!compressed);
    CHECK(!pl_deframer_is_mid_message(&d));
    free(payload); /* NULL or an owned buffer: both are fine to free */
    pl_deframer_dispose(&d);
}

static void test_bad_flag(void)
{
    static const uint8_t flags[] = {2, 3, 0x80, 0xff};
    for (size_t i = 0; i < sizeof(flags); i++) {
        uint8_t wire[] = {flags[i], 0, 0, 0, 1, 'z'};
        pl_deframer_t d;
        pl_deframer_init(&d, 1024);
        size_t used;
        CHECK_EQ_INT(pl_deframer_feed(&d, wire, sizeof(wire), &used), PL_DEFRAME_BAD_FLAG);
        pl_deframer_dispose(&d);
    }
}

static void test_too_large(void)
{
    pl_deframer_t d;
    size_t used;

    /* one over the limit: refused at the header, nothing allocated */
    pl_deframer_init(&d, 1024);
    CHECK_EQ_INT(pl_deframer_feed(&d, (const uint8_t *)"\x00\x00\x00\x04\x01zzzz", 9, &used), PL_DEFRAME_TOO_LARGE);
    CHECK_EQ_INT(pl_deframer_declared_length(&d), 1025);
    CHECK(d.buf == NULL);
    CHECK_EQ_INT(d.buf_cap, 0);
    pl_deframer_dispose(&d);

    /* 4 GiB - 1 declared */
    pl_deframer_init(&d, 4u << 20);
    CHECK_EQ_INT(pl_deframer_feed(&d, (const uint8_t *)"\x01\xff\xff\xff\xff", 5, &used), PL_DEFRAME_TOO_LARGE);
    CHECK(d.buf == NULL);
    pl_deframer_dispose(&d);

    /* exactly the limit is fine */
    uint8_t wire[5 + 1024];
    pl_frame_header_write(wire, false, 1024);
    memset(wire + 5, 'q', 1024);
    pl_deframer_init(&d, 1024);
    CHECK_EQ_INT(pl_deframer_feed(&d, wire, sizeof(wire), &used), PL_DEFRAME_MESSAGE);
    CHECK_EQ_INT(used, sizeof(wire));
    uint8_t *payload;
    uint32_t len;
    bool compressed;
    pl_deframer_take(&d, &payload, &len, &compressed);
    CHECK_EQ_MEM(payload, len, wire + 5, 1024);
    free(payload);
    pl_deframer_dispose(&d);
}

/* A peer that declares 16 MiB and sends 10 bytes must cost about 10 bytes;
 * the buffer then grows with the data, never past the declared length. */
static void test_grows_with_input(void)
{
    const uint32_t total = 16u << 20;
    pl_deframer_t d;
    pl_deframer_init(&d, total);
    uint8_t hdr[5];
    pl_frame_header_write(hdr, false, total);
    size_t used;
    CHECK_EQ_INT(pl_deframer_feed(&d, hdr, 5, &used), PL_DEFRAME_NEED_MORE);
    CHECK(pl_deframer_is_mid_message(&d));
    CHECK_EQ_INT(d.buf_cap, 0);

    uint8_t chunk[65536];
    for (size_t i = 0; i < sizeof(chunk); i++)
        chunk[i] = (uint8_t)(i ^ (i >> 8));
    CHECK_EQ_INT(pl_deframer_feed(&d, chunk, 10, &used), PL_DEFRAME_NEED_MORE);
    CHECK(d.buf_cap >= 10 && d.buf_cap <= 512);

    uint32_t have = 10, worst = 0;
    pl_deframe_result_t r = PL_DEFRAME_NEED_MORE;
    while (have < total) {
        size_t n = total - have < sizeof(chunk) ? total - have : sizeof(chunk);
        r = pl_deframer_feed(&d, chunk, n, &used);
        have += (uint32_t)used;
        /* never more than twice what arrived (or the 256-byte start) */
        if (d.buf_cap > 2 * have && d.buf_cap > 256 && d.buf_cap > worst)
            worst = d.buf_cap;
        if (r != PL_DEFRAME_NEED_MORE)
            break;
    }
    CHECK_EQ_INT(worst, 0);
    CHECK_EQ_INT(r, PL_DEFRAME_MESSAGE);
    CHECK_EQ_INT(have, total);
    CHECK(d.buf_cap <= total);
    uint8_t *payload;
    uint32_t len;
    bool compressed;
    pl_deframer_take(&d, &payload, &len, &compressed);
    CHECK_EQ_INT(len, total);
    CHECK_EQ_MEM(payload, 10, chunk, 10);
    CHECK_EQ_MEM(payload + 10, sizeof(chunk), chunk, sizeof(chunk));
    free(payload);
    pl_deframer_dispose(&d);
}

/* Disposing mid-message frees the partial payload (ASan checks the leak). */
static void test_dispose_mid_message(void)
{
    static const uint8_t partial[] = {0, 0, 0, 0, 16, 'a', 'b', 'c'}; /* 3 of 16 bytes */
    pl_deframer_t d;
    pl_deframer_init(&d, 1024);
    size_t used;
    CHECK_EQ_INT(pl_deframer_feed(&d, partial, sizeof(partial), &used), PL_DEFRAME_NEED_MORE);
    CHECK(pl_deframer_is_mid_message(&d));
    pl_deframer_dispose(&d);
    CHECK(!pl_deframer_is_mid_message(&d));
    CHECK(d.buf == NULL);
    CHECK_EQ_INT(d.max_message, 1024);
}

int main(void)
{
    test_header_write();
    test_byte_by_byte();
    test_split_header();
    test_many_in_one_buffer();
    test_empty_message();
    test_bad_flag();
    test_too_large();
    test_grows_with_input();
    test_dispose_mid_message();
    return pl_test_report();
}
