/* test_percent.c — runtime/percent.c: grpc-message percent-encoding
 * (PROTOCOL-HTTP2.md: bytes outside 0x20..0x7E and '%' become %XX in
 * uppercase hex), decoding with malformed escapes kept verbatim, and the
 * interop suite's special status message. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "runtime/percent.h"

/* The message of the interop "special_status_message" case. */
static const char special[] =
    "\t\ntest with whitespace\r\nand Unicode BMP \xe2\x98\xba and non-BMP \xf0\x9f\x98\x88\t\n";
static const char special_encoded[] =
    "%09%0Atest with whitespace%0D%0Aand Unicode BMP %E2%98%BA and non-BMP %F0%9F%98%88%09%0A";

static void check_encode(const char *src, size_t len, const char *want, int line)
{
    char *got = pl_percent_encode(src, len);
    CHECK(got != NULL);
    if (got && strcmp(got, want) != 0)
        fprintf(stderr, "    (encode case at line %d)\n", line);
    CHECK_EQ_STR(got, want);
    free(got);
}

static void check_decode(const char *src, const char *want, size_t want_len, int line)
{
    char *got = pl_percent_decode(src, strlen(src));
    CHECK(got != NULL);
    if (got && memcmp(got, want, want_len + 1) != 0)
        fprintf(stderr, "    (decode case at line %d)\n", line);
    CHECK_EQ_MEM(got, got ? want_len + 1 : 0, want, want_len + 1); /* includes the NUL */
    free(got);
}

#define ENCODE(src, want) check_encode(src, sizeof(src) - 1, want, __LINE__)
#define DECODE(src, want) check_decode(src, want, sizeof(want) - 1, __LINE__)

static void test_encode(void)
{
    ENCODE("", "");
    ENCODE("hello world", "hello world");
    ENCODE(" !\"#$&'()*+,-./09:;<=>?@AZ[\\]^_`az{|}~", " !\"#$&'()*+,-./09:;<=>?@AZ[\\]^_`az{|}~");
    ENCODE("%", "%25");
    ENCODE("100%", "100%25");
    ENCODE("\x1f", "%1F");
    ENCODE("\x7f", "%7F");
    ENCODE("\xab\xcd\xef", "%AB%CD%EF");
    ENCODE("a\x00z", "a%00z"); /* the length, not a NUL, ends the input */
    ENCODE(special, special_encoded);
}

static void test_decode(void)
{
    DECODE("", "");
    DECODE("plain", "plain");
    DECODE("%41", "A");
    DECODE("%25", "%");
    DECODE("a%20b", "a b");
    DECODE("%e2%98%ba", "\xe2\x98\xba"); /* lowercase hex is accepted */
    DECODE("%E2%98%BA", "\xe2\x98\xba");
    DECODE("%fF%Ff%0a%C0", "\xff\xff\n\xc0");
    /* malformed escapes are kept verbatim */
    DECODE("%", "%");
    DECODE("%4", "%4");
    DECODE("%zz", "%zz");
    DECODE("%4g", "%4g");
    DECODE("%g4", "%g4");
    DECODE("a%4", "a%4");
    DECODE("100%", "100%");
    DECODE("%%41", "%A");
    DECODE("%41%", "A%");
    DECODE(special_encoded, special);

    /* the length, not a NUL, bounds the input */
    char *got = pl_percent_decode("%41", 2);
    CHECK_EQ_STR(got, "%4");
    free(got);
    got = pl_percent_decode("a%41", 3);
    CHECK_EQ_STR(got, "a%4");
    free(got);
}

static void test_round_trip(void)
{
    char *enc = pl_percent_encode(special, strlen(special));
    CHECK(enc != NULL);
    char *dec = enc ? pl_percent_decode(enc, strlen(enc)) : NULL;
    CHECK_EQ_STR(dec, special);
    free(enc);
    free(dec);

    /* every byte value 1..255 */
    char all[255];
    for (int i = 0; i < 255; i++)
        all[i] = (char)(i + 1);
    enc = pl_percent_encode(all, sizeof(all));
    CHECK(enc != NULL);
    if (enc) {
        /* 95 printable bytes minus '%' stay as they are; the other 161 become 3 bytes */
        CHECK_EQ_INT(strlen(enc), 94 + 161 * 3);
        for (const char *p = enc; *p; p++)
            CHECK((unsigned char)*p >= 0x20 && (unsigned char)*p <= 0x7e);
        dec = pl_percent_decode(enc, strlen(enc));
        CHECK_EQ_MEM(dec, dec ? strlen(dec) : 0, all, sizeof(all));
        free(dec);
    }
    free(enc);
}

int main(void)
{
    test_encode();
    test_decode();
    test_round_trip();
    return pl_test_report();
}
