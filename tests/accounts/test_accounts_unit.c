/* test_accounts_unit — the accounts service's building blocks without a
 * server: E.164 validation, user text checks, code sealing, id lists, and
 * the file SMS provider (grouping by shard: tests/store/test_scatter.c). */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "accounts/accounts_internal.h"
#include "check.h"
#include "store/shardmap.h"

static void test_phone(void)
{
    static const char *good[] = {"+15551234567", "+12345678", "+123456789012345", "+447700900123", "+9999999999"};
    static const char *bad[] = {"",
                                "+",
                                "15551234567",
                                "+1234567",
                                "+1234567890123456",
                                "+0123456789",
                                "+1555 1234",
                                "+1555123456a",
                                "++15551234567",
                                "+15551234567\n",
                                "-15551234567",
                                "+１５５５１２３４５６７"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        CHECK(pl_acct_phone_is_valid(good[i]), "valid: %s", good[i]);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CHECK(!pl_acct_phone_is_valid(bad[i]), "invalid: \"%s\"", bad[i]);
}

static void test_address_bucket(void)
{
    static const char *cases[][2] = {
        {"127.0.0.1", "otp:addr:127.0.0.1"},
        {"::ffff:10.1.2.3", "otp:addr:10.1.2.3"},
        {"2001:db8:1:2:3:4:5:6", "otp:addr:2001:db8:1:2::/64"},
        {"2001:db8:1:2::9", "otp:addr:2001:db8:1:2::/64"},
        {"::1", "otp:addr:::/64"},
        {"unknown", "otp:addr:unknown"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char name[96];
        pl_acct_address_bucket(cases[i][0], name, sizeof(name));
        CHECK(strcmp(name, cases[i][1]) == 0, "bucket of %s: %s, want %s", cases[i][0], name, cases[i][1]);
    }
}

static void test_text(void)
{
    static const struct {
        const char *s;
        bool newline_ok;
        bool is_ok;
    } cases[] = {
        {"", false, true},
        {"Zoë 🙂 日本", false, true},
        {"line\nline", true, true},
        {"line\nline", false, false},
        {"tab\t", true, false},
        {"del\x7f", true, false},
        {"c1\xc2\x85", true, false},        /* U+0085 */
        {"\xc0\xaf", false, false},         /* overlong '/' */
        {"\xe0\x80\xaf", false, false},     /* overlong */
        {"\xed\xa0\x80", false, false},     /* surrogate */
        {"\xf4\x90\x80\x80", false, false}, /* above U+10FFFF */
        {"\xe2\x82", false, false},         /* truncated */
        {"\x80", false, false},             /* stray continuation */
        {"\xf0\x9f\x99\x82", false, true},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *why = pl_acct_text_problem(cases[i].s, strlen(cases[i].s), 64, cases[i].newline_ok);
        CHECK((why == NULL) == cases[i].is_ok, "text case %zu: %s", i, why ? why : "accepted");
    }
    CHECK(pl_acct_text_problem("abcd", 4, 3, false) != NULL, "length bound");
    CHECK(pl_acct_text_problem("abc", 3, 3, false) == NULL, "at the bound");

    char dst[6];
    pl_acct_copy_text(dst, sizeof(dst), "abc", 3);
    CHECK(strcmp(dst, "abc") == 0, "copy: %s", dst);
    pl_acct_copy_text(dst, sizeof(dst), "abcd\xc3\xa9", 6); /* "abcdé": é would straddle the end */
    CHECK(strcmp(dst, "abcd") == 0, "cut at a character boundary: %s", dst);
    pl_acct_copy_text(dst, sizeof(dst), "ab\xf0\x9f\x99\x82", 6);
    CHECK(strcmp(dst, "ab") == 0, "cut before a 4-byte character: %s", dst);
}

static void test_otp(void)
{
    char code[7];
    int seen[10] = {0};
    for (int i = 0; i < 2000; i++) {
        pl_otp_new(code);
        CHECK(strlen(code) == 6 && pl_otp_is_well_formed(code), "code %s", code);
        seen[code[0] - '0']++;
    }
    for (int d = 0; d < 10; d++)
        CHECK(seen[d] > 100, "first digit %d seen %d times in 2000 codes", d, seen[d]);
    CHECK(!pl_otp_is_well_formed("12345"), "5 digits");
    CHECK(!pl_otp_is_well_formed("1234567"), "7 digits");
    CHECK(!pl_otp_is_well_formed("12a456"), "letter");

    uint8_t a[PL_OTP_STORED_BYTES], b[PL_OTP_STORED_BYTES];
    pl_otp_seal("+15551234567", "004217", a);
    pl_otp_seal("+15551234567", "004217", b);
    CHECK(memcmp(a, b, sizeof(a)) != 0, "same code sealed twice must differ (salt)");
    CHECK(pl_otp_matches("+15551234567", "004217", a, sizeof(a)), "right code");
    CHECK(pl_otp_matches("+15551234567", "004217", b, sizeof(b)), "right code, other salt");
    CHECK(!pl_otp_matches("+15551234567", "004218", a, sizeof(a)), "wrong code");
    CHECK(!pl_otp_matches("+15551234568", "004217", a, sizeof(a)), "other number");
    CHECK(!pl_otp_matches("+15551234567", "004217", a, sizeof(a) - 1), "truncated row");
    CHECK(!pl_otp_matches("+15551234567", "00421", a, sizeof(a)), "malformed code");
    /* the code is not in the stored bytes in any obvious form */
    CHECK(!memmem(a, sizeof(a), "004217", 6), "code in clear");
}

static void test_batch(void)
{
    int64_t dup[] = {5, 3, 5, 1, 3};
    size_t n = pl_ids_sort_unique(dup, 5);
    CHECK(n == 3 && dup[0] == 1 && dup[1] == 3 && dup[2] == 5, "unique ids");

    CHECK(pl_acct_page_limit(0, 200) == 200 && pl_acct_page_limit(5, 200) == 5 && pl_acct_page_limit(900, 200) == 200 &&
              pl_acct_page_limit(-1, 200) == -1,
          "page limits");
}

static int sms_rc = -2;
static void on_sms(int rc, void *user)
{
    (void)user;
    sms_rc = rc;
}

static void test_sms(void)
{
    char dir[] = "/tmp/parley-sms-XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    char path[256];
    snprintf(path, sizeof(path), "%s/a/b/sms.log", dir); /* parents missing */
    pl_config_t cfg = {0};
    cfg.sms_provider = "file";
    cfg.sms_file = path;
    char err[256];
    pl_sms_t *sms = pl_sms_new(&cfg, err, sizeof(err));
    CHECK(sms != NULL, "file provider: %s", err);
    if (sms) {
        sms->send(sms, NULL, "+15551234567", "123456", on_sms, NULL);
        CHECK(sms_rc == 0, "send rc %d", sms_rc);
        sms->send(sms, NULL, "+447700900123", "000001", on_sms, NULL);
        CHECK(sms_rc == 0, "send rc %d", sms_rc);
        FILE *f = fopen(path, "r");
        char text[256] = "";
        if (f) {
            size_t n = fread(text, 1, sizeof(text) - 1, f);
            text[n] = '\0';
            fclose(f);
        }
        CHECK(strcmp(text, "+15551234567 123456\n+447700900123 000001\n") == 0, "file contents: %s", text);
        struct stat st;
        CHECK(stat(path, &st) == 0 && (st.st_mode & 077) == 0, "codes file must not be world-readable");
        pl_sms_free(sms);
    }
    /* an unwritable path fails the send, not the process */
    cfg.sms_file = "/proc/parley-no/such/file";
    sms = pl_sms_new(&cfg, err, sizeof(err));
    if (sms) {
        sms->send(sms, NULL, "+15551234567", "123456", on_sms, NULL);
        CHECK(sms_rc == -1, "send to an unwritable path: rc %d", sms_rc);
        pl_sms_free(sms);
    }
    cfg.sms_provider = "carrier-pigeon";
    CHECK(pl_sms_new(&cfg, err, sizeof(err)) == NULL && strstr(err, "[sms] provider") && strstr(err, "carrier-pigeon"),
          "unknown provider: %s", err);
    cfg.sms_provider = "file";
    cfg.sms_file = "";
    CHECK(pl_sms_new(&cfg, err, sizeof(err)) == NULL && strstr(err, "[sms] file"), "empty file: %s", err);
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0, "cleanup");
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    test_phone();
    test_address_bucket();
    test_text();
    test_otp();
    test_batch();
    test_sms();
    return pl_test_report();
}
