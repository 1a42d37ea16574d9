/* json_path.c — where in a message a conversion error happened. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "json_internal.h"

static size_t append(pctl_path_t *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static size_t append(pctl_path_t *p, const char *fmt, ...)
{
    size_t mark = p->len;
    if (p->len < sizeof(p->text) - 1) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(p->text + p->len, sizeof(p->text) - p->len, fmt, ap);
        va_end(ap);
        if (n > 0)
            p->len += (size_t)n < sizeof(p->text) - p->len ? (size_t)n : sizeof(p->text) - p->len - 1;
    }
    return mark;
}

size_t pctl_path_push_field(pctl_path_t *p, const char *name)
{
    return p->len ? append(p, ".%s", name) : append(p, "%s", name);
}

size_t pctl_path_push_index(pctl_path_t *p, size_t i)
{
    return append(p, "[%zu]", i);
}

size_t pctl_path_push_key(pctl_path_t *p, const char *key, size_t len)
{
    int n = len > 64 ? 64 : (int)len;
    return append(p, "[\"%.*s%s\"]", n, key, len > 64 ? "..." : "");
}

void pctl_path_pop(pctl_path_t *p, size_t mark)
{
    p->len = mark;
    p->text[mark] = '\0';
}

const char *pctl_path_where(const pctl_path_t *p, char *buf, size_t cap)
{
    if (p->len == 0)
        snprintf(buf, cap, "the message");
    else
        snprintf(buf, cap, "field %s", p->text);
    return buf;
}

const char *pctl_json_kind(const json_t *j)
{
    switch (json_typeof(j)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER:
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
    }
    return "?";
}
