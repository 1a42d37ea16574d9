/* json_decode.c — proto3 JSON (parsed by jansson) to protobuf wire bytes,
 * driven by the descriptors. Field names: the JSON name or the declared
 * name; anything else is an error naming the field. 64-bit integers as
 * numbers or strings, floats as numbers or "NaN"/"Infinity"/"-Infinity",
 * bytes in standard or URL-safe base64 (padding optional), enums by name
 * or number, null for "not set". Fields are written in field-number
 * order; repeated scalars packed as the schema says; singular fields
 * without presence are left out at their default value, as protoc does. */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "b64.h"
#include "json_internal.h"

#define MAX_ENCODED (64u << 20)

int pctl_fromjson_fail(pctl_fromjson_t *c, const char *fmt, ...)
{
    char msg[600], where[560];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return pctl_fail(c->err, "%s: %s", pctl_path_where(&c->path, where, sizeof(where)), msg);
}

static int nomem(pctl_fromjson_t *c)
{
    return pctl_fromjson_fail(c, "out of memory, or the message is over %u MiB", MAX_ENCODED >> 20);
}

/* ---- numbers ---- */

/* A whole number from a JSON number or a string holding one, within
 * [min, max] (signed) or [0, umax] (unsigned). */
static int get_integer(pctl_fromjson_t *c, const json_t *j, bool is_signed, int64_t min, int64_t max, uint64_t umax,
                       uint64_t *out)
{
    if (json_is_integer(j)) {
        json_int_t v = json_integer_value(j);
        if (is_signed ? (v < min || v > max) : (v < 0 || (uint64_t)v > umax))
            return pctl_fromjson_fail(c, "%lld is out of range", (long long)v);
        *out = (uint64_t)v;
        return 0;
    }
    double d;
    if (json_is_real(j)) {
        d = json_real_value(j);
    } else if (json_is_string(j)) {
        const char *s = json_string_value(j);
        size_t len = json_string_length(j);
        char *end;
        if (len == 0 || strlen(s) != len || s[0] == ' ' || s[0] == '+' || s[0] == '\t' || s[0] == '\n')
            return pctl_fromjson_fail(c, "\"%s\" is not an integer", s);
        errno = 0;
        if (is_signed) {
            long long v = strtoll(s, &end, 10);
            if (*end == '\0') {
                if (errno == ERANGE || v < min || v > max)
                    return pctl_fromjson_fail(c, "%s is out of range", s);
                *out = (uint64_t)v;
                return 0;
            }
        } else if (s[0] != '-') {
            unsigned long long v = strtoull(s, &end, 10);
            if (*end == '\0') {
                if (errno == ERANGE || v > umax)
                    return pctl_fromjson_fail(c, "%s is out of range", s);
                *out = v;
                return 0;
            }
        }
        /* "1e3", "10.0": a number in another notation */
        d = strtod(s, &end);
        if (*end != '\0')
            return pctl_fromjson_fail(c, "\"%s\" is not an integer", s);
    } else {
        return pctl_fromjson_fail(c, "expected an integer, got %s", pctl_json_kind(j));
    }
    if (!isfinite(d) || d != trunc(d))
        return pctl_fromjson_fail(c, "%g is not an integer", d);
    if (fabs(d) >= 9007199254740992.0) /* 2^53: from there a double may have lost digits */
        return pctl_fromjson_fail(c, "%.17g is too large to be exact as a JSON number: give it as a string", d);
    if (is_signed) {
        if (d < (double)min || d >= -(double)INT64_MIN || (int64_t)d > max)
            return pctl_fromjson_fail(c, "%g is out of range", d);
        *out = (uint64_t)(int64_t)d;
    } else {
        if (d < 0 || d >= 18446744073709551616.0 || (uint64_t)d > umax)
            return pctl_fromjson_fail(c, "%g is out of range", d);
        *out = (uint64_t)d;
    }
    return 0;
}

static int get_real(pctl_fromjson_t *c, const json_t *j, bool is_float, double *out)
{
    double d;
    if (json_is_integer(j)) {
        d = (double)json_integer_value(j);
    } else if (json_is_real(j)) {
        d = json_real_value(j);
    } else if (json_is_string(j)) {
        const char *s = json_string_value(j);
        char *end;
        if (strcmp(s, "NaN") == 0) {
            d = NAN;
        } else if (strcmp(s, "Infinity") == 0) {
            d = INFINITY;
        } else if (strcmp(s, "-Infinity") == 0) {
            d = -INFINITY;
        } else {
            if (!s[0] || s[0] == ' ' || strlen(s) != json_string_length(j))
                return pctl_fromjson_fail(c, "\"%s\" is not a number", s);
            d = strtod(s, &end);
            if (*end != '\0' || !isfinite(d))
                return pctl_fromjson_fail(c, "\"%s\" is not a number", s);
        }
    } else {
        return pctl_fromjson_fail(c, "expected a number, got %s", pctl_json_kind(j));
    }
    if (is_float && isfinite(d) && fabs(d) > FLT_MAX)
        return pctl_fromjson_fail(c, "%g is out of range for a float", d);
    *out = d;
    return 0;
}

static int get_enum(pctl_fromjson_t *c, const pctl_field_t *f, const json_t *j, uint64_t *out)
{
    if (json_is_string(j)) {
        const char *s = json_string_value(j);
        for (size_t i = 0; f->enumt && i < f->enumt->value_count; i++)
            if (strcmp(f->enumt->values[i].name, s) == 0) {
                *out = (uint64_t)(int64_t)f->enumt->values[i].number;
                return 0;
            }
        return pctl_fromjson_fail(c, "enum %s has no value named \"%s\"", f->enumt ? f->enumt->full_name : "?", s);
    }
    if (json_is_integer(j) || json_is_real(j))
        return get_integer(c, j, true, INT32_MIN, INT32_MAX, 0, out);
    return pctl_fromjson_fail(c, "expected an enum name or number, got %s", pctl_json_kind(j));
}

/* The wire value of a scalar or enum: varint/fixed in *v, bytes in *bytes
 * (malloc'd, for bytes fields) or borrowed from j (strings). */
typedef struct scalar {
    uint64_t v;
    const uint8_t *data;
    size_t len;
    uint8_t *owned;
} scalar_t;

static int get_scalar(pctl_fromjson_t *c, const pctl_field_t *f, const json_t *j, scalar_t *s)
{
    memset(s, 0, sizeof(*s));
    double d;
    switch (f->type) {
    case PCTL_TYPE_INT32:
    case PCTL_TYPE_SINT32:
    case PCTL_TYPE_SFIXED32:
        if (get_integer(c, j, true, INT32_MIN, INT32_MAX, 0, &s->v) != 0)
            return -1;
        if (f->type == PCTL_TYPE_SINT32)
            s->v = (uint32_t)(((uint32_t)(int32_t)s->v << 1) ^ (uint32_t)((int32_t)s->v >> 31));
        else if (f->type == PCTL_TYPE_SFIXED32)
            s->v = (uint32_t)s->v;
        /* int32: negative values are sign-extended varints (10 bytes) */
        return 0;
    case PCTL_TYPE_UINT32:
    case PCTL_TYPE_FIXED32: return get_integer(c, j, false, 0, 0, UINT32_MAX, &s->v);
    case PCTL_TYPE_INT64:
    case PCTL_TYPE_SINT64:
    case PCTL_TYPE_SFIXED64:
        if (get_integer(c, j, true, INT64_MIN, INT64_MAX, 0, &s->v) != 0)
            return -1;
        if (f->type == PCTL_TYPE_SINT64)
            s->v = pctl_zigzag_encode((int64_t)s->v);
        return 0;
    case PCTL_TYPE_UINT64:
    case PCTL_TYPE_FIXED64: return get_integer(c, j, false, 0, 0, UINT64_MAX, &s->v);
    case PCTL_TYPE_BOOL:
        if (!json_is_boolean(j))
            return pctl_fromjson_fail(c, "expected true or false, got %s", pctl_json_kind(j));
        s->v = json_is_true(j);
        return 0;
    case PCTL_TYPE_DOUBLE:
        if (get_real(c, j, false, &d) != 0)
            return -1;
        memcpy(&s->v, &d, sizeof(d));
        return 0;
    case PCTL_TYPE_FLOAT: {
        if (get_real(c, j, true, &d) != 0)
            return -1;
        float fl = (float)d;
        uint32_t u;
        memcpy(&u, &fl, sizeof(u));
        s->v = u;
        return 0;
    }
    case PCTL_TYPE_ENUM: return get_enum(c, f, j, &s->v);
    case PCTL_TYPE_STRING:
        if (!json_is_string(j))
            return pctl_fromjson_fail(c, "expected a string, got %s", pctl_json_kind(j));
        s->data = (const uint8_t *)json_string_value(j);
        s->len = json_string_length(j);
        return 0;
    case PCTL_TYPE_BYTES:
        if (!json_is_string(j))
            return pctl_fromjson_fail(c, "expected a base64 string, got %s", pctl_json_kind(j));
        if (pctl_b64_decode(json_string_value(j), json_string_length(j), &s->owned, &s->len) != 0)
            return pctl_fromjson_fail(c, "not valid base64 (standard or URL-safe)");
        s->data = s->owned;
        return 0;
    default: return pctl_fromjson_fail(c, "group fields are not supported");
    }
}

static bool scalar_is_default(const pctl_field_t *f, const scalar_t *s)
{
    if (f->type == PCTL_TYPE_STRING || f->type == PCTL_TYPE_BYTES)
        return s->len == 0;
    return s->v == 0;
}

static int wire_type_of(pctl_type_t t)
{
    switch (t) {
    case PCTL_TYPE_DOUBLE:
    case PCTL_TYPE_FIXED64:
    case PCTL_TYPE_SFIXED64: return PCTL_WT_I64;
    case PCTL_TYPE_FLOAT:
    case PCTL_TYPE_FIXED32:
    case PCTL_TYPE_SFIXED32: return PCTL_WT_I32;
    case PCTL_TYPE_STRING:
    case PCTL_TYPE_BYTES:
    case PCTL_TYPE_MESSAGE: return PCTL_WT_LEN;
    default: return PCTL_WT_VARINT;
    }
}

/* The value alone (no tag), as in a packed run. */
static int put_value(pctl_buf_t *out, const pctl_field_t *f, const scalar_t *s)
{
    switch (wire_type_of(f->type)) {
    case PCTL_WT_I64: return pctl_buf_fixed64(out, s->v);
    case PCTL_WT_I32: return pctl_buf_fixed32(out, (uint32_t)s->v);
    case PCTL_WT_LEN:
        if (pctl_buf_varint(out, s->len) != 0)
            return -1;
        return pctl_buf_append(out, s->data, s->len);
    default:
        /* int32 and enums: negative numbers are sign-extended to 64 bits */
        if (f->type == PCTL_TYPE_INT32 || f->type == PCTL_TYPE_ENUM)
            return pctl_buf_varint(out, (uint64_t)(int64_t)(int32_t)(uint32_t)s->v);
        return pctl_buf_varint(out, s->v);
    }
}

static int put_scalar_field(pctl_fromjson_t *c, const pctl_field_t *f, const json_t *j, pctl_buf_t *out,
                            bool keep_default)
{
    scalar_t s;
    if (get_scalar(c, f, j, &s) != 0)
        return -1;
    int rc = 0;
    if (keep_default || f->has_presence || !scalar_is_default(f, &s)) {
        if (pctl_buf_tag(out, (uint32_t)f->number, wire_type_of(f->type)) != 0 || put_value(out, f, &s) != 0)
            rc = nomem(c);
    }
    free(s.owned);
    return rc;
}

/* A message value: encoded apart, then added length-delimited. */
static int put_message_field(pctl_fromjson_t *c, const pctl_field_t *f, const json_t *j, pctl_buf_t *out, int depth)
{
    pctl_buf_t sub;
    pctl_buf_init(&sub, MAX_ENCODED);
    int rc = pctl_fromjson_message(c, f->message, j, &sub, depth + 1);
    if (rc == 0 && pctl_buf_len_field(out, (uint32_t)f->number, sub.data, sub.len) != 0)
        rc = nomem(c);
    pctl_buf_dispose(&sub);
    return rc;
}

static bool is_value_type(const pctl_field_t *f)
{
    return f->type == PCTL_TYPE_MESSAGE && f->message->wkt == PCTL_WKT_VALUE;
}

/* A map key from its JSON object key text. */
static int put_map_key(pctl_fromjson_t *c, const pctl_field_t *kf, const char *key, pctl_buf_t *out)
{
    int rc;
    if (kf->type == PCTL_TYPE_STRING) {
        json_t *s = json_string(key);
        if (!s)
            return pctl_fromjson_fail(c, "map key is not valid UTF-8");
        rc = put_scalar_field(c, kf, s, out, true);
        json_decref(s);
        return rc;
    }
    json_t *k;
    if (kf->type == PCTL_TYPE_BOOL) {
        if (strcmp(key, "true") != 0 && strcmp(key, "false") != 0)
            return pctl_fromjson_fail(c, "map key \"%s\" is not true or false", key);
        k = json_boolean(strcmp(key, "true") == 0);
    } else {
        k = json_string(key);
    }
    if (!k)
        return nomem(c);
    rc = put_scalar_field(c, kf, k, out, true);
    json_decref(k);
    return rc;
}

static int put_map(pctl_fromjson_t *c, const pctl_field_t *f, const json_t *j, pctl_buf_t *out, int depth)
{
    if (!json_is_object(j))
        return pctl_fromjson_fail(c, "expected an object for a map, got %s", pctl_json_kind(j));
    const pctl_field_t *kf = pctl_msg_field_by_number(f->message, 1), *vf = pctl_msg_field_by_number(f->message, 2);
    const char *key;
    json_t *value;
    pctl_buf_t entry;
    pctl_buf_init(&entry, MAX_ENCODED);
    int rc = 0;
    json_object_foreach((json_t *)j, key, value)
    {
        size_t mark = pctl_path_push_key(&c->path, key, strlen(key));
        entry.len = 0;
        if (json_is_null(value) && !is_value_type(vf)) {
            rc = pctl_fromjson_fail(c, "a map value cannot be null");
        } else if ((rc = put_map_key(c, kf, key, &entry)) == 0) {
            if (vf->type == PCTL_TYPE_MESSAGE)
                rc = put_message_field(c, vf, value, &entry, depth);
            else
                rc = put_scalar_field(c, vf, value, &entry, true);
        }
        if (rc == 0 && pctl_buf_len_field(out, (uint32_t)f->number, entry.data, entry.len) != 0)
            rc = nomem(c);
        pctl_path_pop(&c->path, mark);
        if (rc != 0)
            break;
    }
    pctl_buf_dispose(&entry);
    return rc;
}

static int put_repeated(pctl_fromjson_t *c, const pctl_field_t *f, const json_t *j, pctl_buf_t *out, int depth)
{
    if (!json_is_array(j))
        return pctl_fromjson_fail(c, "expected an array, got %s", pctl_json_kind(j));
    size_t n = json_array_size(j);
    if (f->is_packed) {
        if (n == 0)
            return 0;
        pctl_buf_t run;
        pctl_buf_init(&run, MAX_ENCODED);
        int rc = 0;
        for (size_t i = 0; i < n && rc == 0; i++) {
            size_t mark = pctl_path_push_index(&c->path, i);
            scalar_t s;
            const json_t *e = json_array_get(j, i);
            if (json_is_null(e))
                rc = pctl_fromjson_fail(c, "null is not allowed in a repeated field");
            else if ((rc = get_scalar(c, f, e, &s)) == 0 && put_value(&run, f, &s) != 0)
                rc = nomem(c);
            pctl_path_pop(&c->path, mark);
        }
        if (rc == 0 && pctl_buf_len_field(out, (uint32_t)f->number, run.data, run.len) != 0)
            rc = nomem(c);
        pctl_buf_dispose(&run);
        return rc;
    }
    for (size_t i = 0; i < n; i++) {
        size_t mark = pctl_path_push_index(&c->path, i);
        const json_t *e = json_array_get(j, i);
        int rc;
        if (json_is_null(e) && !is_value_type(f))
            rc = pctl_fromjson_fail(c, "null is not allowed in a repeated field");
        else if (f->type == PCTL_TYPE_MESSAGE)
            rc = put_message_field(c, f, e, out, depth);
        else
            rc = put_scalar_field(c, f, e, out, true);
        pctl_path_pop(&c->path, mark);
        if (rc != 0)
            return -1;
    }
    return 0;
}

int pctl_fromjson_field(pctl_fromjson_t *c, const pctl_field_t *f, const json_t *j, pctl_buf_t *out, int depth)
{
    if (f->type == PCTL_TYPE_GROUP)
        return pctl_fromjson_fail(c, "group fields are not supported");
    if (json_is_null(j) && !is_value_type(f)) {
        /* null: not set (NullValue: its only value) */
        if (f->type == PCTL_TYPE_ENUM && f->enumt && strcmp(f->enumt->full_name, "google.protobuf.NullValue") == 0 &&
            !pctl_field_is_repeated(f) && f->has_presence) {
            json_t *zero = json_integer(0);
            int rc = zero ? put_scalar_field(c, f, zero, out, true) : nomem(c);
            json_decref(zero);
            return rc;
        }
        return 0;
    }
    if (pctl_field_is_map(f))
        return put_map(c, f, j, out, depth);
    if (pctl_field_is_repeated(f))
        return put_repeated(c, f, j, out, depth);
    if (f->type == PCTL_TYPE_MESSAGE)
        return put_message_field(c, f, j, out, depth);
    return put_scalar_field(c, f, j, out, false);
}

typedef struct pair {
    const pctl_field_t *f;
    const json_t *value;
    const char *key;
} pair_t;

static int cmp_pair(const void *a, const void *b)
{
    const pair_t *x = a, *y = b;
    return (x->f->number > y->f->number) - (x->f->number < y->f->number);
}

int pctl_fromjson_message(pctl_fromjson_t *c, const pctl_msg_t *m, const json_t *j, pctl_buf_t *out, int depth)
{
    if (depth > PCTL_MAX_MESSAGE_DEPTH)
        return pctl_fromjson_fail(c, "messages nested deeper than %d", PCTL_MAX_MESSAGE_DEPTH);
    if (m->wkt != PCTL_WKT_NONE)
        return pctl_wkt_fromjson(c, m, j, out, depth);
    if (!json_is_object(j))
        return pctl_fromjson_fail(c, "expected an object for message %s, got %s", m->full_name, pctl_json_kind(j));
    size_t n = json_object_size(j);
    pair_t *pairs = calloc(n ? n : 1, sizeof(*pairs));
    const char **seen = calloc(m->field_count ? m->field_count : 1, sizeof(*seen));
    const pctl_field_t **oneof_set = calloc(m->oneof_count ? m->oneof_count : 1, sizeof(*oneof_set));
    int rc = 0;
    if (!pairs || !seen || !oneof_set) {
        rc = nomem(c);
        goto done;
    }
    size_t k = 0;
    const char *key;
    json_t *value;
    json_object_foreach((json_t *)j, key, value)
    {
        const pctl_field_t *f = pctl_msg_field_by_name(m, key, strlen(key));
        if (!f) {
            char where[560];
            rc = pctl_fail(c->err, "%s: unknown field \"%s\" in message %s",
                           pctl_path_where(&c->path, where, sizeof(where)), key, m->full_name);
            goto done;
        }
        size_t idx = (size_t)(f - m->fields);
        size_t mark = pctl_path_push_field(&c->path, f->json_name);
        if (seen[idx]) {
            rc = pctl_fromjson_fail(c, "given twice (as \"%s\" and \"%s\")", seen[idx], key);
            pctl_path_pop(&c->path, mark);
            goto done;
        }
        seen[idx] = key;
        if (f->oneof_index >= 0 && (!json_is_null(value) || is_value_type(f))) {
            const pctl_field_t *other = oneof_set[f->oneof_index];
            if (other) {
                rc = pctl_fromjson_fail(c, "oneof %s already has field %s set", m->oneofs[f->oneof_index].name,
                                        other->json_name);
                pctl_path_pop(&c->path, mark);
                goto done;
            }
            oneof_set[f->oneof_index] = f;
        }
        pctl_path_pop(&c->path, mark);
        pairs[k].f = f;
        pairs[k].value = value;
        pairs[k].key = key;
        k++;
    }
    qsort(pairs, k, sizeof(*pairs), cmp_pair);
    for (size_t i = 0; i < k && rc == 0; i++) {
        size_t mark = pctl_path_push_field(&c->path, pairs[i].f->json_name);
        rc = pctl_fromjson_field(c, pairs[i].f, pairs[i].value, out, depth);
        pctl_path_pop(&c->path, mark);
    }
done:
    free(pairs);
    free(seen);
    free(oneof_set);
    return rc;
}

json_t *pctl_json_load(const char *text, size_t len, size_t flags, json_error_t *je)
{
    json_t *j = json_loadb(text, len, flags, je);
    if (!j && strstr(je->text, "too big"))
        j = json_loadb(text, len, flags | JSON_DECODE_INT_AS_REAL, je);
    return j;
}

int pctl_json_to_wire(const pctl_msg_t *m, const json_t *j, pctl_buf_t *out, pctl_err_t *err)
{
    pctl_fromjson_t c = {err, {{0}, 0}};
    return pctl_fromjson_message(&c, m, j, out, 0);
}
