/* json_internal.h — shared between the two directions of the JSON mapping
 * and the well-known types (wkt.c). */
#ifndef PCTL_JSON_INTERNAL_H
#define PCTL_JSON_INTERNAL_H

#include "json.h"

/* The path of the value being converted, for error messages:
 * "payload.body", "items[2].name", "labels[\"k\"]". */
typedef struct pctl_path {
    char text[512];
    size_t len;
} pctl_path_t;

size_t pctl_path_push_field(pctl_path_t *p, const char *name);
size_t pctl_path_push_index(pctl_path_t *p, size_t i);
size_t pctl_path_push_key(pctl_path_t *p, const char *key, size_t len);
void pctl_path_pop(pctl_path_t *p, size_t mark);
/* "field payload.body" or "the message" at the top. */
const char *pctl_path_where(const pctl_path_t *p, char *buf, size_t cap);

/* ---- wire -> JSON ---- */
typedef struct pctl_tojson {
    const pctl_json_opts_t *opts;
    pctl_jw_t *w;
    pctl_err_t *err;
    pctl_path_t path;
} pctl_tojson_t;

int pctl_tojson_message(pctl_tojson_t *c, const pctl_msg_t *m, const uint8_t *data, size_t len, int depth);
/* The JSON value of one field of a message (array, object or the last
 * scalar), without its key; for Struct and ListValue. */
int pctl_tojson_field_value(pctl_tojson_t *c, const pctl_field_t *f, const uint8_t *data, size_t len, int depth);
/* One scalar or enum value as received. */
int pctl_tojson_scalar(pctl_tojson_t *c, const pctl_field_t *f, const pctl_wire_field_t *wf);
int pctl_tojson_fail(pctl_tojson_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Well-known types with their own JSON form. */
int pctl_wkt_tojson(pctl_tojson_t *c, const pctl_msg_t *m, const uint8_t *data, size_t len, int depth);

/* ---- JSON -> wire ---- */
typedef struct pctl_fromjson {
    pctl_err_t *err;
    pctl_path_t path;
} pctl_fromjson_t;

int pctl_fromjson_message(pctl_fromjson_t *c, const pctl_msg_t *m, const json_t *j, pctl_buf_t *out, int depth);
/* Encodes j as the value of field f (tag and value) into out; for a
 * singular field without presence the default value is left out. */
int pctl_fromjson_field(pctl_fromjson_t *c, const pctl_field_t *f, const json_t *j, pctl_buf_t *out, int depth);
int pctl_fromjson_fail(pctl_fromjson_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int pctl_wkt_fromjson(pctl_fromjson_t *c, const pctl_msg_t *m, const json_t *j, pctl_buf_t *out, int depth);

/* "object", "array", "string", ... for error messages. */
const char *pctl_json_kind(const json_t *j);

#endif
