/* err.c — formatting of module errors. */
#include "err.h"

#include <stdarg.h>
#include <stdio.h>

int pctl_fail(pctl_err_t *err, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->text, sizeof(err->text), fmt, ap);
        va_end(ap);
    }
    return -1;
}
