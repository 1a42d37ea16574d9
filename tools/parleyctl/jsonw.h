/* jsonw.h — a JSON text writer: pretty (two-space indent, as protojson
 * and grpcurl print) or compact (one line), strings escaped like
 * protojson, floating point in the shortest form that reads back exactly.
 * Output accumulates in a bounded buffer. */
#ifndef PCTL_JSONW_H
#define PCTL_JSONW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wire.h"

#define PCTL_JW_MAX_DEPTH 512

typedef struct pctl_jw {
    pctl_buf_t out;
    bool is_pretty;
    bool after_key; /* the next value follows "key": */
    bool failed;    /* out of memory, over the limit or nested too deep */
    int depth;
    uint32_t counts[PCTL_JW_MAX_DEPTH]; /* items written per open level */
} pctl_jw_t;

void pctl_jw_init(pctl_jw_t *w, bool pretty, size_t limit);
void pctl_jw_dispose(pctl_jw_t *w);
/* Starts over (keeps the buffer). */
void pctl_jw_reset(pctl_jw_t *w);

void pctl_jw_begin_object(pctl_jw_t *w);
void pctl_jw_end_object(pctl_jw_t *w);
void pctl_jw_begin_array(pctl_jw_t *w);
void pctl_jw_end_array(pctl_jw_t *w);
void pctl_jw_key(pctl_jw_t *w, const char *key, size_t len);
/* A string value; -1 (nothing written) if s is not valid UTF-8. */
int pctl_jw_string(pctl_jw_t *w, const char *s, size_t len);
/* A number or literal written as is ("12", "true", "null"). */
void pctl_jw_raw(pctl_jw_t *w, const char *text);
void pctl_jw_double(pctl_jw_t *w, double v);
void pctl_jw_float(pctl_jw_t *w, float v);

bool pctl_utf8_is_valid(const uint8_t *s, size_t len);
/* The shortest decimal text of v that parses back to v (%.17g at most),
 * laid out like Go's protojson: plain below 1e21 and from 1e-6, else with
 * an exponent. NaN and infinities are not handled here. */
void pctl_format_double(double v, bool is_float, char out[40]);

#endif
