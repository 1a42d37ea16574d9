/* sms.h — the verification codes parleyd's file SMS provider wrote (the
 * provider appends one line "PHONE CODE" per code sent). Every test that
 * registers a device reads its code here. path NULL means
 * $PARLEY_SMS_FILE, which tests/harness/with_parleyd.py sets. */
#ifndef PL_TESTS_LIB_SMS_H
#define PL_TESTS_LIB_SMS_H

#include <stddef.h>

/* How many codes the file holds for phone (0 if the file does not exist
 * yet); the newest one into code when code is not NULL ("" if it does not
 * fit in len). -1 if path is NULL and PARLEY_SMS_FILE is not set. */
int pl_test_sms_codes(const char *path, const char *phone, char *code, size_t len);

/* Waits up to timeout_ms for the file to hold more than `before` codes for
 * phone (pl_test_sms_codes before asking for one) and copies the newest.
 * 0, or -1 with why printed. */
int pl_test_sms_wait(const char *path, const char *phone, int before, char *code, size_t len, int timeout_ms);

/* Lines in the file: codes sent to any phone (0 if it does not exist, -1
 * as pl_test_sms_codes). */
int pl_test_sms_lines(const char *path);

#endif
