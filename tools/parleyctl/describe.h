/* describe.h — the schema as text for `list` and `describe`, in the form
 * grpcurl prints: proto declarations with fully qualified type names. */
#ifndef PCTL_DESCRIBE_H
#define PCTL_DESCRIBE_H

#include <stdio.h>

#include "schema.h"

/* `list`: services; `list SERVICE`: its methods ("pkg.Svc.Method"). */
int pctl_list(pctl_schema_t *s, const char *service, FILE *out, pctl_err_t *err);
/* `describe SYMBOL` (a service, method, message, enum or field);
 * symbol NULL: every service. */
int pctl_describe(pctl_schema_t *s, const char *symbol, FILE *out, pctl_err_t *err);

#endif
