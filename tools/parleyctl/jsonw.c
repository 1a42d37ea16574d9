/* jsonw.c — JSON text writer; see jsonw.h. */
#include "jsonw.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void pctl_jw_init(pctl_jw_t *w, bool pretty, size_t limit)
{
    memset(w, 0, sizeof(*w));
    pctl_buf_init(&w->out, limit);
    w->is_pretty = pretty;
}

void pctl_jw_dispose(pctl_jw_t *w)
{
    pctl_buf_dispose(&w->out);
}

void pctl_jw_reset(pctl_jw_t *w)
{
    w->out.len = 0;
    w->after_key = false;
    w->failed = false;
    w->depth = 0;
    w->counts[0] = 0;
}

static void put(pctl_jw_t *w, const void *s, size_t n)
{
    if (!w->failed && pctl_buf_append(&w->out, s, n) != 0)
        w->failed = true;
}

static void puts_(pctl_jw_t *w, const char *s)
{
    put(w, s, strlen(s));
}

static void newline_indent(pctl_jw_t *w, int depth)
{
    if (!w->is_pretty)
        return;
    put(w, "\n", 1);
    for (int i = 0; i < depth; i++)
        put(w, "  ", 2);
}

/* Separator and indentation before a value or key at the current level. */
static void before_item(pctl_jw_t *w)
{
    if (w->after_key) {
        w->after_key = false;
        return;
    }
    if (w->depth > 0) {
        if (w->counts[w->depth]++)
            put(w, ",", 1);
        newline_indent(w, w->depth);
    }
}

static void open_level(pctl_jw_t *w, char c)
{
    before_item(w);
    put(w, &c, 1);
    if (w->depth + 1 >= PCTL_JW_MAX_DEPTH) {
        w->failed = true;
        return;
    }
    w->depth++;
    w->counts[w->depth] = 0;
}

static void close_level(pctl_jw_t *w, char c)
{
    if (w->depth == 0) {
        w->failed = true;
        return;
    }
    if (w->counts[w->depth])
        newline_indent(w, w->depth - 1);
    w->depth--;
    put(w, &c, 1);
}

void pctl_jw_begin_object(pctl_jw_t *w)
{
    open_level(w, '{');
}
void pctl_jw_end_object(pctl_jw_t *w)
{
    close_level(w, '}');
}
void pctl_jw_begin_array(pctl_jw_t *w)
{
    open_level(w, '[');
}
void pctl_jw_end_array(pctl_jw_t *w)
{
    close_level(w, ']');
}

bool pctl_utf8_is_valid(const uint8_t *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        uint8_t c = s[i];
        size_t n;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            n = 2;
            cp = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            n = 3;
            cp = c & 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            n = 4;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (len - i < n)
            return false;
        for (size_t k = 1; k < n; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        /* overlong forms, surrogates, beyond U+10FFFF */
        if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10ffff ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += n;
    }
    return true;
}

static void write_string(pctl_jw_t *w, const char *s, size_t len)
{
    put(w, "\"", 1);
    size_t start = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\' && c != 0x7f)
            continue;
        put(w, s + start, i - start);
        start = i + 1;
        char esc[8];
        switch (c) {
        case '"': puts_(w, "\\\""); break;
        case '\\': puts_(w, "\\\\"); break;
        case '\b': puts_(w, "\\b"); break;
        case '\f': puts_(w, "\\f"); break;
        case '\n': puts_(w, "\\n"); break;
        case '\r': puts_(w, "\\r"); break;
        case '\t': puts_(w, "\\t"); break;
        default: snprintf(esc, sizeof(esc), "\\u%04x", c); puts_(w, esc);
        }
    }
    if (len)
        put(w, s + start, len - start);
    put(w, "\"", 1);
}

void pctl_jw_key(pctl_jw_t *w, const char *key, size_t len)
{
    before_item(w);
    write_string(w, key, len);
    put(w, w->is_pretty ? ": " : ":", w->is_pretty ? 2 : 1);
    w->after_key = true;
}

int pctl_jw_string(pctl_jw_t *w, const char *s, size_t len)
{
    if (!pctl_utf8_is_valid((const uint8_t *)s, len))
        return -1;
    before_item(w);
    write_string(w, s, len);
    return 0;
}

void pctl_jw_raw(pctl_jw_t *w, const char *text)
{
    before_item(w);
    puts_(w, text);
}

void pctl_format_double(double v, bool is_float, char out[40])
{
    if (v == 0) {
        strcpy(out, signbit(v) ? "-0" : "0");
        return;
    }
    /* shortest %.*e that reads back as the same value */
    char e[40];
    int max = is_float ? 9 : 17;
    for (int prec = 1; prec <= max; prec++) {
        snprintf(e, sizeof(e), "%.*e", prec - 1, v);
        if (is_float ? strtof(e, NULL) == (float)v : strtod(e, NULL) == v)
            break;
    }
    /* e is [-]d[.ddd]e[+-]XX: split into sign, digits and exponent */
    const char *p = e;
    bool neg = *p == '-';
    if (neg)
        p++;
    char digits[24];
    size_t nd = 0;
    for (; *p && *p != 'e'; p++)
        if (*p >= '0' && *p <= '9' && nd < sizeof(digits) - 1)
            digits[nd++] = *p;
    while (nd > 1 && digits[nd - 1] == '0')
        nd--;
    digits[nd] = '\0';
    int exp10 = *p == 'e' ? atoi(p + 1) : 0;
    double a = fabs(v);
    bool use_exp = is_float ? ((float)a < 1e-6f || (float)a >= 1e21f) : (a < 1e-6 || a >= 1e21);
    char *o = out;
    if (neg)
        *o++ = '-';
    if (use_exp) {
        /* Go's 'e' format: d[.ddd]e±XX, two-digit exponent at least, and
         * protojson shortens "e-07" to "e-7" */
        *o++ = digits[0];
        if (nd > 1) {
            *o++ = '.';
            memcpy(o, digits + 1, nd - 1);
            o += nd - 1;
        }
        int ax = exp10 < 0 ? -exp10 : exp10;
        if (exp10 < 0 && ax < 10)
            sprintf(o, "e-%d", ax);
        else
            sprintf(o, "e%c%02d", exp10 < 0 ? '-' : '+', ax);
        return;
    }
    if (exp10 < 0) {
        *o++ = '0';
        *o++ = '.';
        for (int i = 0; i < -exp10 - 1; i++)
            *o++ = '0';
        memcpy(o, digits, nd);
        o += nd;
    } else {
        for (int i = 0; i <= exp10; i++)
            *o++ = (size_t)i < nd ? digits[i] : '0';
        if ((size_t)exp10 + 1 < nd) {
            *o++ = '.';
            memcpy(o, digits + exp10 + 1, nd - (size_t)exp10 - 1);
            o += nd - (size_t)exp10 - 1;
        }
    }
    *o = '\0';
}

static void write_real(pctl_jw_t *w, double v, bool is_float)
{
    char text[40];
    if (isnan(v))
        strcpy(text, "\"NaN\"");
    else if (isinf(v))
        strcpy(text, v > 0 ? "\"Infinity\"" : "\"-Infinity\"");
    else
        pctl_format_double(v, is_float, text);
    pctl_jw_raw(w, text);
}

void pctl_jw_double(pctl_jw_t *w, double v)
{
    write_real(w, v, false);
}

void pctl_jw_float(pctl_jw_t *w, float v)
{
    write_real(w, v, true);
}
