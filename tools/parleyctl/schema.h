/* schema.h — where parleyctl's descriptors come from: the server's
 * reflection service, or descriptor set files (--protoset). Commands ask
 * for symbols; this module fetches what is missing. */
#ifndef PCTL_SCHEMA_H
#define PCTL_SCHEMA_H

#include "descriptors.h"
#include "err.h"
#include "reflect.h"

typedef struct pctl_schema {
    pctl_pool_t *pool;       /* owned */
    pctl_reflect_t *reflect; /* owned; NULL with --protoset */
} pctl_schema_t;

/* Loads FileDescriptorSet files into s->pool (no reflection afterwards). */
int pctl_schema_load_protosets(pctl_schema_t *s, const char *const *files, size_t count, pctl_err_t *err);
/* Service names, sorted; free with pctl_strv_free. */
int pctl_schema_list_services(pctl_schema_t *s, char ***names, size_t *count, pctl_err_t *err);
/* Finds a symbol ("pkg.Msg", "pkg.Svc.Method", "pkg.Msg.field"), fetching
 * its file through reflection if needed. */
int pctl_schema_find(pctl_schema_t *s, const char *name, pctl_symbol_t *out, pctl_err_t *err);
/* Finds a method given as "pkg.Svc/Method", "/pkg.Svc/Method" or
 * "pkg.Svc.Method". */
int pctl_schema_find_method(pctl_schema_t *s, const char *name, const pctl_method_t **out, pctl_err_t *err);

void pctl_strv_free(char **v, size_t n);

#endif
