/* cases.h — the messaging test cases (one per run; each returns nonzero if a
 * check failed). What each asserts: test_messaging.c. */
#ifndef PL_TESTS_MESSAGING_CASES_H
#define PL_TESTS_MESSAGING_CASES_H

int mt_case_accepted_after_durable(void);
int mt_case_seq_order(void);
int mt_case_idempotent_send(void);
int mt_case_device_payloads(void);
int mt_case_resume(void);
int mt_case_replaced_stream(void);
int mt_case_receipts(void);
int mt_case_typing(void);
int mt_case_presence(void);
int mt_case_cross_node(void);
int mt_case_rate_limit(void);
int mt_case_limits(void);
int mt_case_unauthenticated(void);
int mt_case_redis_down(void);

#endif
