/* schema.c — descriptor sources for the commands; see schema.h. */
#include "schema.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wire.h"

#define MAX_PROTOSET_BYTES (256u << 20)

void pctl_strv_free(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static int read_file(const char *path, uint8_t **data, size_t *len, pctl_err_t *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return pctl_fail(err, "cannot open %s: %s", path, strerror(errno));
    pctl_buf_t b;
    pctl_buf_init(&b, MAX_PROTOSET_BYTES);
    uint8_t chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        if (pctl_buf_append(&b, chunk, n) != 0) {
            fclose(f);
            pctl_buf_dispose(&b);
            return pctl_fail(err, "%s is larger than %u MiB", path, MAX_PROTOSET_BYTES >> 20);
        }
    bool failed = ferror(f);
    fclose(f);
    if (failed) {
        pctl_buf_dispose(&b);
        return pctl_fail(err, "cannot read %s", path);
    }
    *data = b.data;
    *len = b.len;
    return 0;
}

int pctl_schema_load_protosets(pctl_schema_t *s, const char *const *files, size_t count, pctl_err_t *err)
{
    for (size_t i = 0; i < count; i++) {
        uint8_t *data;
        size_t len;
        if (read_file(files[i], &data, &len, err) != 0)
            return -1;
        pctl_err_t inner;
        int rc = pctl_pool_add_set(s->pool, data, len, &inner);
        free(data);
        if (rc != 0)
            return pctl_fail(err, "%s: %s", files[i], inner.text);
    }
    if (pctl_pool_link(s->pool, err) != 0)
        return -1;
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int pctl_schema_list_services(pctl_schema_t *s, char ***names, size_t *count, pctl_err_t *err)
{
    char **v = NULL;
    size_t n = 0;
    if (s->reflect) {
        if (pctl_reflect_list_services(s->reflect, &v, &n, err) != 0)
            return -1;
    } else {
        for (size_t i = 0; i < pctl_pool_file_count(s->pool); i++) {
            const pctl_file_t *f = pctl_pool_file(s->pool, i);
            for (size_t k = 0; k < f->service_count; k++) {
                char **nv = realloc(v, (n + 1) * sizeof(*nv));
                char *name = nv ? strdup(f->services[k]->full_name) : NULL;
                if (nv)
                    v = nv;
                if (!name) {
                    pctl_strv_free(v, n);
                    return pctl_fail(err, "out of memory");
                }
                v[n++] = name;
            }
        }
    }
    if (n)
        qsort(v, n, sizeof(*v), cmp_str);
    *names = v;
    *count = n;
    return 0;
}

int pctl_schema_find(pctl_schema_t *s, const char *name, pctl_symbol_t *out, pctl_err_t *err)
{
    if (name[0] == '.')
        name++;
    if (pctl_pool_find(s->pool, name, out))
        return 0;
    if (!s->reflect)
        return pctl_fail(err, "symbol %s is not in the descriptor set", name);
    if (pctl_reflect_load_symbol(s->reflect, s->pool, name, err) != 0)
        return -1;
    if (!pctl_pool_find(s->pool, name, out))
        return pctl_fail(err, "symbol %s not found: the server's descriptors do not define it", name);
    return 0;
}

int pctl_schema_find_method(pctl_schema_t *s, const char *name, const pctl_method_t **out, pctl_err_t *err)
{
    while (name[0] == '/' || name[0] == '.')
        name++;
    char *svc = strdup(name);
    if (!svc)
        return pctl_fail(err, "out of memory");
    char *cut = strrchr(svc, '/');
    if (!cut)
        cut = strrchr(svc, '.');
    if (!cut || cut == svc || !cut[1]) {
        free(svc);
        return pctl_fail(err, "\"%s\" is not a method name (SERVICE/METHOD or SERVICE.METHOD)", name);
    }
    *cut = '\0';
    const char *method = cut + 1;
    pctl_symbol_t sym;
    int rc = pctl_schema_find(s, svc, &sym, err);
    if (rc == 0 && sym.kind != PCTL_SYM_SERVICE)
        rc = pctl_fail(err, "%s is not a service", svc);
    if (rc == 0) {
        rc = pctl_fail(err, "service %s has no method %s", svc, method);
        for (size_t i = 0; i < sym.u.service->method_count; i++)
            if (strcmp(sym.u.service->methods[i].name, method) == 0) {
                *out = &sym.u.service->methods[i];
                rc = 0;
                break;
            }
    }
    free(svc);
    return rc;
}
