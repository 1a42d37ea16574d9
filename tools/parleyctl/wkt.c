/* wkt.c — the well-known types whose JSON form is not an object of their
 * fields: Timestamp (RFC 3339), Duration ("1.5s"), the wrappers (the bare
 * value), FieldMask ("a.b,cD"), Struct, Value and ListValue (any JSON).
 * Any is not supported: it needs the type named by its URL, which this
 * tool does not fetch; both directions fail with a message saying so.
 * Empty is an ordinary message ({}). */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_internal.h"

#define TS_MIN_SECONDS (-62135596800LL) /* 0001-01-01T00:00:00Z */
#define TS_MAX_SECONDS 253402300799LL   /* 9999-12-31T23:59:59Z */
#define DURATION_MAX_SECONDS 315576000000LL

/* ---- calendar (proleptic Gregorian, UTC; H. Hinnant's algorithms) ---- */

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

/* ".021", ".000021", ".000000021" or "" (protojson's 0/3/6/9 digits) */
static void format_nanos(int32_t nanos, char *out, size_t cap)
{
    if (nanos == 0)
        out[0] = '\0';
    else if (nanos % 1000000 == 0)
        snprintf(out, cap, ".%03" PRId32, nanos / 1000000);
    else if (nanos % 1000 == 0)
        snprintf(out, cap, ".%06" PRId32, nanos / 1000);
    else
        snprintf(out, cap, ".%09" PRId32, nanos);
}

/* seconds (field 1) and nanos (field 2) of a Timestamp or Duration */
static int read_seconds_nanos(pctl_tojson_t *c, const pctl_msg_t *m, const uint8_t *data, size_t len, int64_t *s,
                              int32_t *n)
{
    pctl_wire_reader_t r;
    pctl_wire_field_t f;
    int rc;
    *s = 0;
    *n = 0;
    pctl_wire_reader_init(&r, data, len);
    while ((rc = pctl_wire_next(&r, &f)) == 1) {
        if (f.number == 1 && f.wire_type == PCTL_WT_VARINT)
            *s = (int64_t)f.value;
        else if (f.number == 2 && f.wire_type == PCTL_WT_VARINT)
            *n = (int32_t)(uint32_t)f.value;
    }
    return rc < 0 ? pctl_tojson_fail(c, "malformed %s: %s", m->full_name, r.error) : 0;
}

static int timestamp_tojson(pctl_tojson_t *c, const pctl_msg_t *m, const uint8_t *data, size_t len)
{
    int64_t secs;
    int32_t nanos;
    if (read_seconds_nanos(c, m, data, len, &secs, &nanos) != 0)
        return -1;
    if (secs < TS_MIN_SECONDS || secs > TS_MAX_SECONDS || nanos < 0 || nanos > 999999999)
        return pctl_tojson_fail(c, "Timestamp out of range (seconds %" PRId64 ", nanos %" PRId32 ")", secs, nanos);
    int64_t days = secs >= 0 ? secs / 86400 : -((-secs + 86399) / 86400);
    int64_t rem = secs - days * 86400;
    int64_t y;
    unsigned mo, d;
    civil_from_days(days, &y, &mo, &d);
    char frac[16], text[64];
    format_nanos(nanos, frac, sizeof(frac));
    snprintf(text, sizeof(text), "%04" PRId64 "-%02u-%02uT%02d:%02d:%02d%sZ", y, mo, d, (int)(rem / 3600),
             (int)(rem / 60 % 60), (int)(rem % 60), frac);
    pctl_jw_string(c->w, text, strlen(text));
    return 0;
}

static int duration_tojson(pctl_tojson_t *c, const pctl_msg_t *m, const uint8_t *data, size_t len)
{
    int64_t secs;
    int32_t nanos;
    if (read_seconds_nanos(c, m, data, len, &secs, &nanos) != 0)
        return -1;
    if (secs < -DURATION_MAX_SECONDS || secs > DURATION_MAX_SECONDS || nanos < -999999999 || nanos > 999999999 ||
        (secs > 0 && nanos < 0) || (secs < 0 && nanos > 0))
        return pctl_tojson_fail(c, "Duration out of range (seconds %" PRId64 ", nanos %" PRId32 ")", secs, nanos);
    char frac[16], text[64];
    format_nanos(nanos < 0 ? -nanos : nanos, frac, sizeof(frac));
    bool neg = secs < 0 || nanos < 0;
    snprintf(text, sizeof(text), "%s%" PRIu64 "%ss", neg ? "-" : "", (uint64_t)(secs < 0 ? -secs : secs), frac);
    pctl_jw_string(c->w, text, strlen(text));
    return 0;
}

static int field_mask_tojson(pctl_tojson_t *c, const pctl_msg_t *m, const uint8_t *data, size_t len)
{
    pctl_wire_reader_t r;
    pctl_wire_field_t f;
    int rc;
    pctl_buf_t text;
    pctl_buf_init(&text, SIZE_MAX);
    pctl_wire_reader_init(&r, data, len);
    while ((rc = pctl_wire_next(&r, &f)) == 1) {
        if (f.number != 1 || f.wire_type != PCTL_WT_LEN)
            continue;
        if (text.len && pctl_buf_append(&text, ",", 1) != 0)
            goto nomem;
        /* snake_case to lowerCamel; a path that would not come back the
         * same (an upper-case letter, "_" before a non-letter) is refused */
        bool was_underscore = false;
        for (size_t i = 0; i < f.len; i++) {
            char ch = (char)f.data[i];
            if ((ch >= 'A' && ch <= 'Z') || (was_underscore && !(ch >= 'a' && ch <= 'z'))) {
                pctl_buf_dispose(&text);
                return pctl_tojson_fail(c, "FieldMask path \"%.*s\" has no JSON form", (int)f.len, f.data);
            }
            if (ch != '_') {
                if (was_underscore)
                    ch = (char)(ch - 'a' + 'A');
                if (pctl_buf_append(&text, &ch, 1) != 0)
                    goto nomem;
            }
            was_underscore = ch == '_';
        }
        if (was_underscore) {
            pctl_buf_dispose(&text);
            return pctl_tojson_fail(c, "FieldMask path \"%.*s\" has no JSON form", (int)f.len, f.data);
        }
    }
    if (rc < 0) {
        pctl_buf_dispose(&text);
        return pctl_tojson_fail(c, "malformed %s: %s", m->full_name, r.error);
    }
    if (pctl_jw_string(c->w, text.len ? (const char *)text.data : "", text.len) != 0) {
        pctl_buf_dispose(&text);
        return pctl_tojson_fail(c, "FieldMask path is not valid UTF-8");
    }
    pctl_buf_dispose(&text);
    return 0;
nomem:
    pctl_buf_dispose(&text);
    return pctl_tojson_fail(c, "out of memory");
}

static int value_tojson(pctl_tojson_t *c, const pctl_msg_t *m, const uint8_t *data, size_t len, int depth)
{
    pctl_wire_reader_t r;
    pctl_wire_field_t f, kind = {0};
    int rc;
    static const int wt[7] = {-1, PCTL_WT_VARINT, PCTL_WT_I64, PCTL_WT_LEN, PCTL_WT_VARINT, PCTL_WT_LEN, PCTL_WT_LEN};
    pctl_wire_reader_init(&r, data, len);
    while ((rc = pctl_wire_next(&r, &f)) == 1)
        if (f.number >= 1 && f.number <= 6 && f.wire_type == wt[f.number])
            kind = f; /* the last member of the oneof wins */
    if (rc < 0)
        return pctl_tojson_fail(c, "malformed %s: %s", m->full_name, r.error);
    double d;
    switch (kind.number) {
    case 1: pctl_jw_raw(c->w, "null"); return 0;
    case 2:
        memcpy(&d, &kind.value, sizeof(d));
        if (!isfinite(d))
            return pctl_tojson_fail(c, "google.protobuf.Value cannot hold NaN or infinity in JSON");
        pctl_jw_double(c->w, d);
        return 0;
    case 3:
        if (pctl_jw_string(c->w, (const char *)kind.data, kind.len) != 0)
            return pctl_tojson_fail(c, "string is not valid UTF-8");
        return 0;
    case 4: pctl_jw_raw(c->w, kind.value ? "true" : "false"); return 0;
    case 5:
    case 6: {
        const pctl_field_t *sub = pctl_msg_field_by_number(m, kind.number);
        if (!sub || !sub->message)
            return pctl_tojson_fail(c, "google.protobuf.Value without field %u in its descriptor", kind.number);
        return pctl_tojson_message(c, sub->message, kind.data, kind.len, depth + 1);
    }
    default: return pctl_tojson_fail(c, "google.protobuf.Value has none of its kinds set");
    }
}

int pctl_wkt_tojson(pctl_tojson_t *c, const pctl_msg_t *m, const uint8_t *data, size_t len, int depth)
{
    const pctl_field_t *f1 = pctl_msg_field_by_number(m, 1);
    switch (m->wkt) {
    case PCTL_WKT_TIMESTAMP: return timestamp_tojson(c, m, data, len);
    case PCTL_WKT_DURATION: return duration_tojson(c, m, data, len);
    case PCTL_WKT_FIELD_MASK: return field_mask_tojson(c, m, data, len);
    case PCTL_WKT_VALUE: return value_tojson(c, m, data, len, depth);
    case PCTL_WKT_ANY: return pctl_tojson_fail(c, "google.protobuf.Any is not supported by parleyctl's JSON mapping");
    default:
        /* wrappers (the value itself), Struct (its map), ListValue (its list) */
        if (!f1)
            return pctl_tojson_fail(c, "%s without field 1 in its descriptor", m->full_name);
        return pctl_tojson_field_value(c, f1, data, len, depth);
    }
}

/* ---- JSON -> wire ---- */

static int parse_digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if ((*p)[i] < '0' || (*p)[i] > '9')
            return -1;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return 0;
}

/* ".ddd" (1 to 9 digits) at *p, if any, as nanoseconds. */
static int parse_fraction(const char **p, int32_t *nanos)
{
    *nanos = 0;
    if (**p != '.')
        return 0;
    (*p)++;
    int digits = 0;
    int32_t v = 0;
    while (**p >= '0' && **p <= '9') {
        if (++digits > 9)
            return -1;
        v = v * 10 + (**p - '0');
        (*p)++;
    }
    if (digits == 0)
        return -1;
    for (int i = digits; i < 9; i++)
        v *= 10;
    *nanos = v;
    return 0;
}

static int put_seconds_nanos(pctl_fromjson_t *c, pctl_buf_t *out, int64_t secs, int32_t nanos)
{
    if ((secs && (pctl_buf_tag(out, 1, PCTL_WT_VARINT) != 0 || pctl_buf_varint(out, (uint64_t)secs) != 0)) ||
        (nanos && (pctl_buf_tag(out, 2, PCTL_WT_VARINT) != 0 || pctl_buf_varint(out, (uint64_t)(int64_t)nanos) != 0)))
        return pctl_fromjson_fail(c, "out of memory");
    return 0;
}

static int timestamp_fromjson(pctl_fromjson_t *c, const json_t *j, pctl_buf_t *out)
{
    if (!json_is_string(j))
        return pctl_fromjson_fail(c, "expected an RFC 3339 timestamp string, got %s", pctl_json_kind(j));
    const char *s = json_string_value(j), *p = s;
    int y, mo, d, h, mi, se, oh = 0, om = 0;
    int32_t nanos;
    if (parse_digits(&p, 4, &y) || *p++ != '-' || parse_digits(&p, 2, &mo) || *p++ != '-' || parse_digits(&p, 2, &d) ||
        (*p != 'T' && *p != 't') || !*p++ || parse_digits(&p, 2, &h) || *p++ != ':' || parse_digits(&p, 2, &mi) ||
        *p++ != ':' || parse_digits(&p, 2, &se) || parse_fraction(&p, &nanos))
        goto bad;
    int sign = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        sign = *p++ == '+' ? 1 : -1;
        if (parse_digits(&p, 2, &oh) || *p++ != ':' || parse_digits(&p, 2, &om) || oh > 23 || om > 59)
            goto bad;
    } else {
        goto bad;
    }
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (*p || y < 1 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 || se > 59)
        goto bad;
    if (mo == 2 && d == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        goto bad;
    int64_t secs =
        days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 + se - sign * (oh * 3600 + om * 60);
    if (secs < TS_MIN_SECONDS || secs > TS_MAX_SECONDS)
        return pctl_fromjson_fail(c, "timestamp \"%s\" is out of range (years 1 to 9999)", s);
    return put_seconds_nanos(c, out, secs, nanos);
bad:
    return pctl_fromjson_fail(c, "\"%s\" is not an RFC 3339 timestamp (like \"1972-01-01T10:00:20.021Z\")", s);
}

static int duration_fromjson(pctl_fromjson_t *c, const json_t *j, pctl_buf_t *out)
{
    if (!json_is_string(j))
        return pctl_fromjson_fail(c, "expected a duration string like \"1.5s\", got %s", pctl_json_kind(j));
    const char *s = json_string_value(j), *p = s;
    bool neg = *p == '-';
    if (neg)
        p++;
    int64_t secs = 0;
    int digits = 0;
    while (*p >= '0' && *p <= '9') {
        if (++digits > 12)
            goto bad;
        secs = secs * 10 + (*p++ - '0');
    }
    int32_t nanos;
    if (digits == 0 || parse_fraction(&p, &nanos) || *p != 's' || p[1] != '\0')
        goto bad;
    if (secs > DURATION_MAX_SECONDS)
        return pctl_fromjson_fail(c, "duration \"%s\" is out of range (±%lld s)", s, DURATION_MAX_SECONDS);
    return put_seconds_nanos(c, out, neg ? -secs : secs, neg ? -nanos : nanos);
bad:
    return pctl_fromjson_fail(c, "\"%s\" is not a duration (like \"1.5s\")", s);
}

static int field_mask_fromjson(pctl_fromjson_t *c, const json_t *j, pctl_buf_t *out)
{
    if (!json_is_string(j))
        return pctl_fromjson_fail(c, "expected a field mask string like \"a.b,c\", got %s", pctl_json_kind(j));
    const char *s = json_string_value(j);
    size_t len = json_string_length(j);
    pctl_buf_t path;
    pctl_buf_init(&path, SIZE_MAX);
    int rc = 0;
    size_t start = 0;
    for (size_t i = 0; i <= len && rc == 0 && len > 0; i++) {
        if (i < len && s[i] != ',')
            continue;
        path.len = 0;
        for (size_t k = start; k < i && rc == 0; k++) {
            char ch = s[k];
            if (ch == '_') {
                rc = pctl_fromjson_fail(c, "field mask path \"%.*s\" must be lowerCamelCase", (int)(i - start),
                                        s + start);
                break;
            }
            if (ch >= 'A' && ch <= 'Z') {
                char lower[2] = {'_', (char)(ch - 'A' + 'a')};
                if (pctl_buf_append(&path, lower, 2) != 0)
                    rc = pctl_fromjson_fail(c, "out of memory");
            } else if (pctl_buf_append(&path, &ch, 1) != 0) {
                rc = pctl_fromjson_fail(c, "out of memory");
            }
        }
        if (rc == 0 && pctl_buf_len_field(out, 1, path.data, path.len) != 0)
            rc = pctl_fromjson_fail(c, "out of memory");
        start = i + 1;
    }
    pctl_buf_dispose(&path);
    return rc;
}

static int value_fromjson(pctl_fromjson_t *c, const pctl_msg_t *m, const json_t *j, pctl_buf_t *out, int depth)
{
    int rc = 0;
    switch (json_typeof(j)) {
    case JSON_NULL:
        if (pctl_buf_tag(out, 1, PCTL_WT_VARINT) != 0 || pctl_buf_varint(out, 0) != 0)
            rc = -1;
        break;
    case JSON_TRUE:
    case JSON_FALSE:
        if (pctl_buf_tag(out, 4, PCTL_WT_VARINT) != 0 || pctl_buf_varint(out, json_is_true(j)) != 0)
            rc = -1;
        break;
    case JSON_INTEGER:
    case JSON_REAL: {
        double d = json_number_value(j);
        uint64_t bits;
        memcpy(&bits, &d, sizeof(bits));
        if (pctl_buf_tag(out, 2, PCTL_WT_I64) != 0 || pctl_buf_fixed64(out, bits) != 0)
            rc = -1;
        break;
    }
    case JSON_STRING:
        if (pctl_buf_len_field(out, 3, json_string_value(j), json_string_length(j)) != 0)
            rc = -1;
        break;
    case JSON_OBJECT:
    case JSON_ARRAY: {
        const pctl_field_t *sub = pctl_msg_field_by_number(m, json_is_object(j) ? 5 : 6);
        if (!sub || !sub->message)
            return pctl_fromjson_fail(c, "google.protobuf.Value's descriptor lacks struct_value or list_value");
        pctl_buf_t b;
        pctl_buf_init(&b, SIZE_MAX);
        if (pctl_fromjson_message(c, sub->message, j, &b, depth + 1) != 0) {
            pctl_buf_dispose(&b);
            return -1;
        }
        if (pctl_buf_len_field(out, (uint32_t)sub->number, b.data, b.len) != 0)
            rc = -1;
        pctl_buf_dispose(&b);
        break;
    }
    }
    return rc ? pctl_fromjson_fail(c, "out of memory") : 0;
}

int pctl_wkt_fromjson(pctl_fromjson_t *c, const pctl_msg_t *m, const json_t *j, pctl_buf_t *out, int depth)
{
    const pctl_field_t *f1 = pctl_msg_field_by_number(m, 1);
    switch (m->wkt) {
    case PCTL_WKT_TIMESTAMP: return timestamp_fromjson(c, j, out);
    case PCTL_WKT_DURATION: return duration_fromjson(c, j, out);
    case PCTL_WKT_FIELD_MASK: return field_mask_fromjson(c, j, out);
    case PCTL_WKT_VALUE: return value_fromjson(c, m, j, out, depth);
    case PCTL_WKT_ANY: return pctl_fromjson_fail(c, "google.protobuf.Any is not supported by parleyctl's JSON mapping");
    case PCTL_WKT_STRUCT:
        if (!json_is_object(j))
            return pctl_fromjson_fail(c, "expected an object for google.protobuf.Struct, got %s", pctl_json_kind(j));
        break;
    case PCTL_WKT_LIST_VALUE:
        if (!json_is_array(j))
            return pctl_fromjson_fail(c, "expected an array for google.protobuf.ListValue, got %s", pctl_json_kind(j));
        break;
    default: break;
    }
    if (!f1)
        return pctl_fromjson_fail(c, "%s without field 1 in its descriptor", m->full_name);
    /* wrappers: the bare value; Struct: its map; ListValue: its list */
    return pctl_fromjson_field(c, f1, j, out, depth);
}
