/* test_pgparam.c — server/store/pg.h's parameter helpers and the result
 * readers pl_pg_get_int64/bool/bytes, on synthetic PGresults in text and
 * binary format (built with PQmakeEmptyPGresult, no server needed). */
#include <libpq-fe.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "store/pg.h"

/* PostgreSQL type oids, for the descriptions (the readers look only at the
 * format and the length). */
enum { OID_BOOL = 16, OID_BYTEA = 17, OID_INT8 = 20, OID_INT2 = 21, OID_INT4 = 23 };

typedef struct col {
    const char *name;
    int format; /* 0 text, 1 binary */
    Oid type;
    int typlen;
} col_t;

/* A tuples result with the given columns, or NULL. */
static PGresult *make_result(const col_t *cols, int ncols)
{
    PGresult *res = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);
    if (!res)
        return NULL;
    PGresAttDesc desc[8];
    for (int i = 0; i < ncols; i++)
        desc[i] = (PGresAttDesc){(char *)cols[i].name, 0, 0, cols[i].format, cols[i].type, cols[i].typlen, -1};
    if (!PQsetResultAttrs(res, ncols, desc)) {
        PQclear(res);
        return NULL;
    }
    return res;
}

/* Sets a cell; data NULL is SQL NULL. */
static void set(PGresult *res, int row, int col, const void *data, int len)
{
    int ok = PQsetvalue(res, row, col, data ? (char *)data : NULL, data ? len : -1);
    CHECK(ok);
}
static void set_text(PGresult *res, int row, int col, const char *s)
{
    set(res, row, col, s, s ? (int)strlen(s) : -1);
}

static void be(uint8_t *out, uint64_t v, int n)
{
    for (int i = n - 1; i >= 0; i--, v >>= 8)
        out[i] = (uint8_t)v;
}

/* ---- parameter helpers ---- */

static void test_int8_encoding(void)
{
    static const struct {
        int64_t v;
        uint8_t bytes[8];
    } cases[] = {
        {0, {0, 0, 0, 0, 0, 0, 0, 0}},
        {1, {0, 0, 0, 0, 0, 0, 0, 1}},
        {-1, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}},
        {-2, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe}},
        {INT64_MIN, {0x80, 0, 0, 0, 0, 0, 0, 0}},
        {INT64_MAX, {0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}},
        {0x0102030405060708LL, {1, 2, 3, 4, 5, 6, 7, 8}},
        {256, {0, 0, 0, 0, 0, 0, 1, 0}},
        {-256, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00}},
        {(int64_t)0x8000000000000001ULL, {0x80, 0, 0, 0, 0, 0, 0, 1}},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint8_t buf[10];
        memset(buf, 0xaa, sizeof(buf));
        pl_pg_param_t p = pl_pg_int8(buf, cases[i].v);
        CHECK(p.data == buf);
        CHECK_EQ_INT(p.len, 8);
        CHECK(p.binary);
        CHECK_EQ_MEM(buf, 8, cases[i].bytes, 8);
        CHECK_EQ_INT(buf[8], 0xaa); /* exactly 8 bytes written */
    }
}

static void test_other_params(void)
{
    const char *s = "hello";
    pl_pg_param_t p = pl_pg_text(s);
    CHECK(p.data == s);
    CHECK_EQ_INT(p.len, -1);
    CHECK(!p.binary);

    /* NULL text is SQL NULL */
    p = pl_pg_text(NULL);
    CHECK(p.data == NULL);

    static const uint8_t blob[3] = {0, 1, 0xff};
    p = pl_pg_bytes(blob, sizeof(blob));
    CHECK(p.data == blob);
    CHECK_EQ_INT(p.len, 3);
    CHECK(p.binary);

    /* no bytes is an empty bytea, not SQL NULL */
    p = pl_pg_bytes(NULL, 0);
    CHECK(p.data != NULL);
    CHECK_EQ_INT(p.len, 0);
    CHECK(p.binary);
    p = pl_pg_bytes(blob, 0);
    CHECK(p.data == blob);
    CHECK_EQ_INT(p.len, 0);

    p = pl_pg_null();
    CHECK(p.data == NULL);
    CHECK_EQ_INT(p.len, 0);
    CHECK(!p.binary);
}

/* ---- readers ---- */

static void test_text_results(void)
{
    static const col_t cols[] = {
        {"i8", 0, OID_INT8, 8}, {"i4", 0, OID_INT4, 4}, {"i2", 0, OID_INT2, 2}, {"b", 0, OID_BOOL, 1}};
    PGresult *res = make_result(cols, 4);
    CHECK(res != NULL);
    if (!res)
        return;
    static const struct {
        const char *i8, *i4, *i2, *b;
        int64_t e8, e4, e2;
        bool eb;
    } rows[] = {
        {"0", "0", "0", "f", 0, 0, 0, false},
        {"-1", "-1", "-1", "t", -1, -1, -1, true},
        {"9223372036854775807", "2147483647", "32767", "t", INT64_MAX, INT32_MAX, INT16_MAX, true},
        {"-9223372036854775808", "-2147483648", "-32768", "f", INT64_MIN, INT32_MIN, INT16_MIN, false},
        {"1234567890123", "-42", "258", "t", 1234567890123LL, -42, 258, true},
        {NULL, NULL, NULL, NULL, 0, 0, 0, false}, /* NULLs read as 0 / false */
    };
    enum { NROWS = sizeof(rows) / sizeof(rows[0]) };
    for (int r = 0; r < NROWS; r++) {
        set_text(res, r, 0, rows[r].i8);
        set_text(res, r, 1, rows[r].i4);
        set_text(res, r, 2, rows[r].i2);
        set_text(res, r, 3, rows[r].b);
    }
    CHECK_EQ_INT(PQntuples(res), NROWS);
    CHECK_EQ_INT(PQfformat(res, 0), 0);
    for (int r = 0; r < NROWS; r++) {
        CHECK_EQ_INT(pl_pg_get_int64(res, r, 0), rows[r].e8);
        CHECK_EQ_INT(pl_pg_get_int64(res, r, 1), rows[r].e4);
        CHECK_EQ_INT(pl_pg_get_int64(res, r, 2), rows[r].e2);
        CHECK_EQ_INT(pl_pg_get_bool(res, r, 3), rows[r].eb);
    }
    CHECK(PQgetisnull(res, NROWS - 1, 0));
    PQclear(res);
}

static void test_binary_results(void)
{
    static const col_t cols[] = {{"i8", 1, OID_INT8, 8},
                                 {"i4", 1, OID_INT4, 4},
                                 {"i2", 1, OID_INT2, 2},
                                 {"b", 1, OID_BOOL, 1},
                                 {"v", 1, OID_BYTEA, -1}};
    PGresult *res = make_result(cols, 5);
    CHECK(res != NULL);
    if (!res)
        return;
    static const struct {
        int64_t i8;
        uint32_t i4;
        uint16_t i2;
        uint8_t b;
        int64_t e4, e2;
    } rows[] = {
        {0, 0, 0, 0, 0, 0},
        {-1, 0xffffffffu, 0xffff, 1, -1, -1},
        {INT64_MIN, 0x80000000u, 0x8000, 1, INT32_MIN, INT16_MIN},
        {INT64_MAX, 0x7fffffffu, 0x7fff, 0, INT32_MAX, INT16_MAX},
        {0x0102030405060708LL, 0xfffffffeu, 0xfffe, 1, -2, -2},
        {-4294967296LL, 0x01020304u, 0x0102, 1, 0x01020304, 0x0102},
    };
    enum { NROWS = sizeof(rows) / sizeof(rows[0]) };
    for (int r = 0; r < NROWS; r++) {
        uint8_t b8[8], b4[4], b2[2];
        pl_pg_int8(b8, rows[r].i8); /* the encoder and the decoder agree */
        be(b4, rows[r].i4, 4);
        be(b2, rows[r].i2, 2);
        set(res, r, 0, b8, 8);
        set(res, r, 1, b4, 4);
        set(res, r, 2, b2, 2);
        set(res, r, 3, &rows[r].b, 1);
    }
    /* a row of NULLs */
    for (int c = 0; c < 5; c++)
        set(res, NROWS, c, NULL, -1);
    /* bytea: embedded zeros and high bytes; empty; NULL */
    static const uint8_t blob[] = {'a', 0, 'b', 0xff, 0, 0x80};
    set(res, 0, 4, blob, sizeof(blob));
    set(res, 1, 4, "", 0);

    CHECK_EQ_INT(PQfformat(res, 0), 1);
    for (int r = 0; r < NROWS; r++) {
        CHECK_EQ_INT(pl_pg_get_int64(res, r, 0), rows[r].i8);
        CHECK_EQ_INT(pl_pg_get_int64(res, r, 1), rows[r].e4);
        CHECK_EQ_INT(pl_pg_get_int64(res, r, 2), rows[r].e2);
        CHECK_EQ_INT(pl_pg_get_bool(res, r, 3), rows[r].b != 0);
    }
    CHECK_EQ_INT(pl_pg_get_int64(res, NROWS, 0), 0);
    CHECK_EQ_INT(pl_pg_get_int64(res, NROWS, 1), 0);
    CHECK_EQ_INT(pl_pg_get_int64(res, NROWS, 2), 0);
    CHECK_EQ_INT(pl_pg_get_bool(res, NROWS, 3), false);

    size_t len = 99;
    const uint8_t *v = pl_pg_get_bytes(res, 0, 4, &len);
    CHECK_EQ_MEM(v, len, blob, sizeof(blob));
    len = 99;
    v = pl_pg_get_bytes(res, 1, 4, &len);
    CHECK_EQ_INT(len, 0);
    CHECK(v != NULL);
    CHECK(!PQgetisnull(res, 1, 4));
    len = 99;
    v = pl_pg_get_bytes(res, NROWS, 4, &len);
    CHECK_EQ_INT(len, 0);
    CHECK(PQgetisnull(res, NROWS, 4));
    PQclear(res);
}

/* Text and binary columns in one result: each read by its own format. */
static void test_mixed_formats(void)
{
    static const col_t cols[] = {
        {"t", 0, OID_INT8, 8}, {"b", 1, OID_INT8, 8}, {"tb", 0, OID_BOOL, 1}, {"bb", 1, OID_BOOL, 1}};
    PGresult *res = make_result(cols, 4);
    CHECK(res != NULL);
    if (!res)
        return;
    uint8_t b8[8];
    pl_pg_int8(b8, -123456789012345LL);
    set_text(res, 0, 0, "-123456789012345");
    set(res, 0, 1, b8, 8);
    /* a text 'f' must not be read as a nonzero byte, a binary 0 must not be
     * read as text */
    set_text(res, 0, 2, "f");
    uint8_t zero = 0, one = 1;
    set(res, 0, 3, &zero, 1);
    set_text(res, 1, 0, "7");
    pl_pg_int8(b8, 7);
    set(res, 1, 1, b8, 8);
    set_text(res, 1, 2, "t");
    set(res, 1, 3, &one, 1);
    CHECK_EQ_INT(pl_pg_get_int64(res, 0, 0), -123456789012345LL);
    CHECK_EQ_INT(pl_pg_get_int64(res, 0, 1), -123456789012345LL);
    CHECK_EQ_INT(pl_pg_get_bool(res, 0, 2), false);
    CHECK_EQ_INT(pl_pg_get_bool(res, 0, 3), false);
    CHECK_EQ_INT(pl_pg_get_int64(res, 1, 0), 7);
    CHECK_EQ_INT(pl_pg_get_int64(res, 1, 1), 7);
    CHECK_EQ_INT(pl_pg_get_bool(res, 1, 2), true);
    CHECK_EQ_INT(pl_pg_get_bool(res, 1, 3), true);
    PQclear(res);
}

/* Every int64 that pl_pg_int8 encodes reads back through a binary column. */
static void test_int8_round_trip(void)
{
    static const col_t cols[] = {{"v", 1, OID_INT8, 8}};
    PGresult *res = make_result(cols, 1);
    CHECK(res != NULL);
    if (!res)
        return;
    uint64_t x = 0x9E3779B97F4A7C15ULL;
    int64_t vals[256];
    for (int i = 0; i < 256; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        vals[i] = i < 64 ? (int64_t)(1ULL << i) : i < 128 ? (int64_t)(0 - (1ULL << (i - 64))) : (int64_t)x;
        uint8_t b8[8];
        pl_pg_int8(b8, vals[i]);
        set(res, i, 0, b8, 8);
    }
    int bad = 0;
    for (int i = 0; i < 256; i++)
        bad += pl_pg_get_int64(res, i, 0) != vals[i];
    CHECK_EQ_INT(bad, 0);
    PQclear(res);
}

/* Id lists as the text of an int8[] parameter, extremes included. */
static void test_int8_array(void)
{
    const int64_t ids[] = {1, 3, -5, INT64_MAX, INT64_MIN};
    char *a = pl_pg_int8_array(ids, 5);
    CHECK_EQ_STR(a, "{1,3,-5,9223372036854775807,-9223372036854775808}");
    free(a);
    a = pl_pg_int8_array(ids, 0);
    CHECK_EQ_STR(a, "{}");
    free(a);
}

int main(void)
{
    test_int8_encoding();
    test_int8_array();
    test_other_params();
    test_text_results();
    test_binary_results();
    test_mixed_formats();
    test_int8_round_trip();
    return pl_test_report();
}
