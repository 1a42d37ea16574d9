/* err.h — the error convention of parleyctl's modules: functions return 0
 * or -1, and on -1 leave a message a user can act on in a pctl_err_t. */
#ifndef PCTL_ERR_H
#define PCTL_ERR_H

typedef struct pctl_err {
    char text[1024];
} pctl_err_t;

/* Formats the message into err (if not NULL) and returns -1. */
int pctl_fail(pctl_err_t *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
