/* descparse.c — reads serialized FileDescriptorProtos (descriptor.proto)
 * into the pool's structures with the schema-less wire reader. Input may
 * come from any server, so every count, length, name and number is
 * checked; fields this tool has no use for (options other than packed and
 * map_entry, source info, extensions) are skipped. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pool_internal.h"
#include "wire.h"

typedef struct ctx {
    pctl_pool_t *pool;
    pctl_arena_t *arena;
    pctl_file_t *file;
    pctl_err_t *err;
} ctx_t;

static int malformed(ctx_t *c, const char *what, const char *why)
{
    return pctl_fail(c->err, "malformed descriptor for %s (%s): %s", c->file && c->file->name ? c->file->name : "?",
                     what, why);
}

static void *alloc_array(ctx_t *c, size_t n, size_t size)
{
    if (n && size > SIZE_MAX / n)
        return NULL;
    return pctl_arena_alloc(c->arena, n * size);
}

/* A string field: checks the wire type, length and contents. *out is NULL
 * unless it returns 0, so callers never hold an unset pointer. */
static int get_string(ctx_t *c, const pctl_wire_field_t *f, const char *what, const char **out)
{
    *out = NULL;
    if (f->wire_type != PCTL_WT_LEN)
        return malformed(c, what, "string field with the wrong wire type");
    if (f->len > PCTL_MAX_NAME)
        return malformed(c, what, "name too long");
    if (memchr(f->data, '\0', f->len))
        return malformed(c, what, "NUL byte in a name");
    *out = pctl_arena_strndup(c->arena, (const char *)f->data, f->len);
    return *out ? 0 : pctl_fail(c->err, "out of memory reading descriptors");
}

static int get_varint(ctx_t *c, const pctl_wire_field_t *f, const char *what, uint64_t *out)
{
    if (f->wire_type != PCTL_WT_VARINT)
        return malformed(c, what, "integer field with the wrong wire type");
    *out = f->value;
    return 0;
}

static int get_message(ctx_t *c, const pctl_wire_field_t *f, const char *what)
{
    if (f->wire_type != PCTL_WT_LEN)
        return malformed(c, what, "message field with the wrong wire type");
    return 0;
}

static char *join_name(ctx_t *c, const char *scope, const char *name)
{
    if (!scope || !*scope)
        return pctl_arena_strdup(c->arena, name);
    size_t a = strlen(scope), b = strlen(name);
    char *s = pctl_arena_alloc(c->arena, a + b + 2);
    if (!s)
        return NULL;
    memcpy(s, scope, a);
    s[a] = '.';
    memcpy(s + a + 1, name, b + 1);
    return s;
}

/* protoc's default JSON name: underscores dropped, the next letter upper. */
static char *default_json_name(ctx_t *c, const char *name)
{
    size_t n = strlen(name);
    char *s = pctl_arena_alloc(c->arena, n + 1);
    if (!s)
        return NULL;
    size_t j = 0;
    bool upper = false;
    for (size_t i = 0; i < n; i++) {
        if (name[i] == '_') {
            upper = true;
        } else if (upper) {
            s[j++] = (name[i] >= 'a' && name[i] <= 'z') ? (char)(name[i] - 'a' + 'A') : name[i];
            upper = false;
        } else {
            s[j++] = name[i];
        }
    }
    s[j] = '\0';
    return s;
}

/* Counts the occurrences of up to four field numbers (0 = unused) in a
 * message, so arrays can be sized before the fill pass. */
static int count_fields(ctx_t *c, const uint8_t *data, size_t len, const uint32_t nums[4], size_t counts[4],
                        const char *what)
{
    pctl_wire_reader_t r;
    pctl_wire_field_t f;
    int rc;
    memset(counts, 0, 4 * sizeof(size_t));
    pctl_wire_reader_init(&r, data, len);
    while ((rc = pctl_wire_next(&r, &f)) == 1)
        for (int i = 0; i < 4; i++)
            if (nums[i] && f.number == nums[i])
                counts[i]++;
    return rc < 0 ? malformed(c, what, r.error) : 0;
}

static int parse_field(ctx_t *c, pctl_msg_t *m, pctl_field_t *fd, const uint8_t *data, size_t len)
{
    pctl_wire_reader_t r;
    pctl_wire_field_t f;
    int rc;
    uint64_t v = 0;
    fd->parent = m;
    fd->oneof_index = -1;
    fd->label = PCTL_LABEL_OPTIONAL;
    pctl_wire_reader_init(&r, data, len);
    while ((rc = pctl_wire_next(&r, &f)) == 1) {
        switch (f.number) {
        case 1:
            if (get_string(c, &f, m->full_name, &fd->name) != 0)
                return -1;
            break;
        case 3:
            if (get_varint(c, &f, m->full_name, &v) != 0)
                return -1;
            if (v < 1 || v > PCTL_MAX_FIELD_NUMBER)
                return malformed(c, m->full_name, "field number out of range");
            fd->number = (int32_t)v;
            break;
        case 4:
            if (get_varint(c, &f, m->full_name, &v) != 0)
                return -1;
            if (v < 1 || v > 3)
                return malformed(c, m->full_name, "invalid field label");
            fd->label = (pctl_label_t)v;
            break;
        case 5:
            if (get_varint(c, &f, m->full_name, &v) != 0)
                return -1;
            if (v < 1 || v > 18)
                return malformed(c, m->full_name, "invalid field type");
            fd->type = (pctl_type_t)v;
            break;
        case 6: {
            const char *tn;
            if (get_string(c, &f, m->full_name, &tn) != 0)
                return -1;
            fd->type_name = tn[0] == '.' ? tn + 1 : tn;
            break;
        }
        case 8: { /* FieldOptions: packed = 2 */
            if (get_message(c, &f, m->full_name) != 0)
                return -1;
            pctl_wire_reader_t o;
            pctl_wire_field_t of;
            int orc;
            pctl_wire_reader_init(&o, f.data, f.len);
            while ((orc = pctl_wire_next(&o, &of)) == 1)
                if (of.number == 2 && of.wire_type == PCTL_WT_VARINT) {
                    fd->packed_option_set = true;
                    fd->packed_option = of.value != 0;
                }
            if (orc < 0)
                return malformed(c, m->full_name, o.error);
            break;
        }
        case 9:
            if (get_varint(c, &f, m->full_name, &v) != 0)
                return -1;
            if (v > INT32_MAX)
                return malformed(c, m->full_name, "oneof index out of range");
            fd->oneof_index = (int32_t)v;
            break;
        case 10:
            if (get_string(c, &f, m->full_name, &fd->json_name) != 0)
                return -1;
            break;
        case 17:
            if (get_varint(c, &f, m->full_name, &v) != 0)
                return -1;
            fd->is_proto3_optional = v != 0;
            break;
        default: break;
        }
    }
    if (rc < 0)
        return malformed(c, m->full_name, r.error);
    if (!fd->name || !fd->name[0] || fd->number == 0)
        return malformed(c, m->full_name, "a field without a name or number");
    if (fd->type == 0 && !fd->type_name)
        return malformed(c, m->full_name, "a field without a type");
    if ((fd->type == PCTL_TYPE_MESSAGE || fd->type == PCTL_TYPE_ENUM || fd->type == PCTL_TYPE_GROUP) && !fd->type_name)
        return malformed(c, m->full_name, "a message or enum field without a type name");
    if (fd->type != 0 && fd->type != PCTL_TYPE_MESSAGE && fd->type != PCTL_TYPE_ENUM && fd->type != PCTL_TYPE_GROUP)
        fd->type_name = NULL;
    if (!fd->json_name || !fd->json_name[0])
        fd->json_name = default_json_name(c, fd->name);
    return fd->json_name ? 0 : pctl_fail(c->err, "out of memory reading descriptors");
}

static int parse_enum(ctx_t *c, const char *scope, const uint8_t *data, size_t len, pctl_enum_t **out)
{
    static const uint32_t nums[4] = {2, 0, 0, 0};
    size_t counts[4];
    if (count_fields(c, data, len, nums, counts, scope) != 0)
        return -1;
    pctl_enum_t *e = pctl_arena_alloc(c->arena, sizeof(*e));
    pctl_enum_value_t *values = alloc_array(c, counts[0], sizeof(*values));
    if (!e || (counts[0] && !values))
        return pctl_fail(c->err, "out of memory reading descriptors");
    e->file = c->file;
    e->values = values;
    pctl_wire_reader_t r;
    pctl_wire_field_t f;
    int rc;
    pctl_wire_reader_init(&r, data, len);
    while ((rc = pctl_wire_next(&r, &f)) == 1) {
        if (f.number == 1) {
            if (get_string(c, &f, scope, &e->name) != 0)
                return -1;
        } else if (f.number == 2) {
            if (get_message(c, &f, scope) != 0)
                return -1;
            pctl_enum_value_t *ev = &values[e->value_count++];
            pctl_wire_reader_t vr;
            pctl_wire_field_t vf;
            int vrc;
            pctl_wire_reader_init(&vr, f.data, f.len);
            while ((vrc = pctl_wire_next(&vr, &vf)) == 1) {
                if (vf.number == 1 && get_string(c, &vf, scope, &ev->name) != 0)
                    return -1;
                if (vf.number == 2 && vf.wire_type == PCTL_WT_VARINT)
                    ev->number = (int32_t)(uint32_t)vf.value;
            }
            if (vrc < 0)
                return malformed(c, scope, vr.error);
            if (!ev->name || !ev->name[0])
                return malformed(c, scope, "an enum value without a name");
        }
    }
    if (rc < 0)
        return malformed(c, scope, r.error);
    if (!e->name || !e->name[0])
        return malformed(c, scope, "an enum without a name");
    e->full_name = join_name(c, scope, e->name);
    if (!e->full_name)
        return pctl_fail(c->err, "out of memory reading descriptors");
    *out = e;
    return 0;
}

static int cmp_field_number(const void *a, const void *b)
{
    const pctl_field_t *x = *(const pctl_field_t *const *)a, *y = *(const pctl_field_t *const *)b;
    return (x->number > y->number) - (x->number < y->number);
}

static int parse_message(ctx_t *c, const char *scope, const uint8_t *data, size_t len, int depth, pctl_msg_t **out)
{
    if (depth > PCTL_MAX_NESTING)
        return malformed(c, scope, "messages nested too deeply");
    static const uint32_t nums[4] = {2, 3, 4, 8};
    size_t counts[4];
    if (count_fields(c, data, len, nums, counts, scope) != 0)
        return -1;
    pctl_msg_t *m = pctl_arena_alloc(c->arena, sizeof(*m));
    if (!m)
        return pctl_fail(c->err, "out of memory reading descriptors");
    m->file = c->file;
    /* the name first: nested declarations need it as their scope */
    pctl_wire_reader_t r;
    pctl_wire_field_t f;
    int rc;
    pctl_wire_reader_init(&r, data, len);
    while ((rc = pctl_wire_next(&r, &f)) == 1)
        if (f.number == 1 && get_string(c, &f, scope, &m->name) != 0)
            return -1;
    if (rc < 0)
        return malformed(c, scope, r.error);
    if (!m->name || !m->name[0])
        return malformed(c, scope, "a message without a name");
    m->full_name = join_name(c, scope, m->name);
    m->fields = alloc_array(c, counts[0], sizeof(*m->fields));
    m->by_number = alloc_array(c, counts[0], sizeof(*m->by_number));
    m->nested = alloc_array(c, counts[1], sizeof(*m->nested));
    m->enums = alloc_array(c, counts[2], sizeof(*m->enums));
    m->oneofs = alloc_array(c, counts[3], sizeof(*m->oneofs));
    if (!m->full_name || (counts[0] && (!m->fields || !m->by_number)) || (counts[1] && !m->nested) ||
        (counts[2] && !m->enums) || (counts[3] && !m->oneofs))
        return pctl_fail(c->err, "out of memory reading descriptors");

    pctl_wire_reader_init(&r, data, len);
    while ((rc = pctl_wire_next(&r, &f)) == 1) {
        switch (f.number) {
        case 2:
            if (get_message(c, &f, m->full_name) != 0 ||
                parse_field(c, m, &m->fields[m->field_count], f.data, f.len) != 0)
                return -1;
            m->by_number[m->field_count] = &m->fields[m->field_count];
            m->field_count++;
            break;
        case 3: {
            pctl_msg_t *sub = NULL;
            if (get_message(c, &f, m->full_name) != 0 ||
                parse_message(c, m->full_name, f.data, f.len, depth + 1, &sub) != 0)
                return -1;
            m->nested[m->nested_count++] = sub;
            break;
        }
        case 4: {
            pctl_enum_t *e = NULL;
            if (get_message(c, &f, m->full_name) != 0 || parse_enum(c, m->full_name, f.data, f.len, &e) != 0)
                return -1;
            m->enums[m->enum_count++] = e;
            break;
        }
        case 7: { /* MessageOptions: map_entry = 7 */
            if (get_message(c, &f, m->full_name) != 0)
                return -1;
            pctl_wire_reader_t o;
            pctl_wire_field_t of;
            int orc;
            pctl_wire_reader_init(&o, f.data, f.len);
            while ((orc = pctl_wire_next(&o, &of)) == 1)
                if (of.number == 7 && of.wire_type == PCTL_WT_VARINT)
                    m->is_map_entry = of.value != 0;
            if (orc < 0)
                return malformed(c, m->full_name, o.error);
            break;
        }
        case 8: {
            if (get_message(c, &f, m->full_name) != 0)
                return -1;
            pctl_oneof_t *o = &m->oneofs[m->oneof_count++];
            pctl_wire_reader_t orr;
            pctl_wire_field_t of;
            int orc;
            pctl_wire_reader_init(&orr, f.data, f.len);
            while ((orc = pctl_wire_next(&orr, &of)) == 1)
                if (of.number == 1 && get_string(c, &of, m->full_name, &o->name) != 0)
                    return -1;
            if (orc < 0)
                return malformed(c, m->full_name, orr.error);
            if (!o->name)
                return malformed(c, m->full_name, "a oneof without a name");
            break;
        }
        default: break;
        }
    }
    if (rc < 0)
        return malformed(c, m->full_name, r.error);

    for (size_t i = 0; i < m->field_count; i++) {
        pctl_field_t *fd = &m->fields[i];
        if (fd->oneof_index >= 0 && (size_t)fd->oneof_index >= m->oneof_count)
            return malformed(c, m->full_name, "oneof index out of range");
        if (fd->is_proto3_optional && fd->oneof_index >= 0)
            m->oneofs[fd->oneof_index].is_synthetic = true;
    }
    qsort(m->by_number, m->field_count, sizeof(*m->by_number), cmp_field_number);
    for (size_t i = 1; i < m->field_count; i++)
        if (m->by_number[i]->number == m->by_number[i - 1]->number)
            return malformed(c, m->full_name, "two fields with the same number");
    if (m->is_map_entry) {
        const pctl_field_t *k = pctl_msg_field_by_number(m, 1), *v = pctl_msg_field_by_number(m, 2);
        if (m->field_count != 2 || !k || !v || k->label == PCTL_LABEL_REPEATED || v->label == PCTL_LABEL_REPEATED)
            return malformed(c, m->full_name, "a map entry without exactly key = 1 and value = 2");
    }
    *out = m;
    return 0;
}

static int parse_service(ctx_t *c, const char *scope, const uint8_t *data, size_t len, pctl_service_t **out)
{
    static const uint32_t nums[4] = {2, 0, 0, 0};
    size_t counts[4];
    if (count_fields(c, data, len, nums, counts, scope) != 0)
        return -1;
    pctl_service_t *s = pctl_arena_alloc(c->arena, sizeof(*s));
    pctl_method_t *methods = alloc_array(c, counts[0], sizeof(*methods));
    if (!s || (counts[0] && !methods))
        return pctl_fail(c->err, "out of memory reading descriptors");
    s->file = c->file;
    s->methods = methods;
    pctl_wire_reader_t r;
    pctl_wire_field_t f;
    int rc;
    pctl_wire_reader_init(&r, data, len);
    while ((rc = pctl_wire_next(&r, &f)) == 1) {
        if (f.number == 1) {
            if (get_string(c, &f, scope, &s->name) != 0)
                return -1;
        } else if (f.number == 2) {
            if (get_message(c, &f, scope) != 0)
                return -1;
            pctl_method_t *md = &methods[s->method_count++];
            md->service = s;
            pctl_wire_reader_t mr;
            pctl_wire_field_t mf;
            int mrc;
            pctl_wire_reader_init(&mr, f.data, f.len);
            while ((mrc = pctl_wire_next(&mr, &mf)) == 1) {
                switch (mf.number) {
                case 1:
                    if (get_string(c, &mf, scope, &md->name) != 0)
                        return -1;
                    break;
                case 2:
                case 3: {
                    const char *tn;
                    if (get_string(c, &mf, scope, &tn) != 0)
                        return -1;
                    if (tn[0] == '.')
                        tn++;
                    if (mf.number == 2)
                        md->input_name = tn;
                    else
                        md->output_name = tn;
                    break;
                }
                case 5:
                case 6:
                    if (mf.wire_type != PCTL_WT_VARINT)
                        return malformed(c, scope, "streaming flag with the wrong wire type");
                    if (mf.number == 5)
                        md->client_streaming = mf.value != 0;
                    else
                        md->server_streaming = mf.value != 0;
                    break;
                default: break;
                }
            }
            if (mrc < 0)
                return malformed(c, scope, mr.error);
            if (!md->name || !md->name[0] || !md->input_name || !md->output_name)
                return malformed(c, scope, "a method without a name, input or output type");
        }
    }
    if (rc < 0)
        return malformed(c, scope, r.error);
    if (!s->name || !s->name[0])
        return malformed(c, scope, "a service without a name");
    s->full_name = join_name(c, scope, s->name);
    if (!s->full_name)
        return pctl_fail(c->err, "out of memory reading descriptors");
    for (size_t i = 0; i < s->method_count; i++) {
        s->methods[i].full_name = join_name(c, s->full_name, s->methods[i].name);
        if (!s->methods[i].full_name)
            return pctl_fail(c->err, "out of memory reading descriptors");
    }
    *out = s;
    return 0;
}

int pctl_descparse_file(pctl_pool_t *pool, const uint8_t *data, size_t len, pctl_file_t **out, pctl_err_t *err)
{
    ctx_t c = {pool, pctl_pool_arena(pool), NULL, err};
    static const uint32_t nums[4] = {3, 4, 5, 6};
    size_t counts[4];
    pctl_file_t *file = pctl_arena_alloc(c.arena, sizeof(*file));
    if (!file)
        return pctl_fail(err, "out of memory reading descriptors");
    c.file = file;
    file->package = "";
    file->syntax = PCTL_SYNTAX_PROTO2;
    if (count_fields(&c, data, len, nums, counts, "file") != 0)
        return -1;
    file->deps = alloc_array(&c, counts[0], sizeof(*file->deps));
    file->messages = alloc_array(&c, counts[1], sizeof(*file->messages));
    file->enums = alloc_array(&c, counts[2], sizeof(*file->enums));
    file->services = alloc_array(&c, counts[3], sizeof(*file->services));
    if ((counts[0] && !file->deps) || (counts[1] && !file->messages) || (counts[2] && !file->enums) ||
        (counts[3] && !file->services))
        return pctl_fail(err, "out of memory reading descriptors");

    /* name, package and syntax first: the declarations depend on them */
    pctl_wire_reader_t r;
    pctl_wire_field_t f;
    int rc;
    pctl_wire_reader_init(&r, data, len);
    while ((rc = pctl_wire_next(&r, &f)) == 1) {
        const char *s = NULL;
        if (f.number == 1 && get_string(&c, &f, "file name", &file->name) != 0)
            return -1;
        if (f.number == 2 && get_string(&c, &f, "package", &file->package) != 0)
            return -1;
        if (f.number == 12) {
            if (get_string(&c, &f, "syntax", &s) != 0)
                return -1;
            if (strcmp(s, "proto3") == 0)
                file->syntax = PCTL_SYNTAX_PROTO3;
            else if (strcmp(s, "proto2") != 0 && s[0] != '\0')
                return pctl_fail(err, "%s: syntax \"%s\" is not supported (proto2 and proto3 are)",
                                 file->name ? file->name : "a descriptor", s);
        }
    }
    if (rc < 0)
        return malformed(&c, "file", r.error);
    if (!file->name || !file->name[0])
        return pctl_fail(err, "malformed descriptor: a file without a name");

    pctl_wire_reader_init(&r, data, len);
    while ((rc = pctl_wire_next(&r, &f)) == 1) {
        switch (f.number) {
        case 3:
            if (get_string(&c, &f, "dependency", &file->deps[file->dep_count]) != 0)
                return -1;
            file->dep_count++;
            break;
        case 4: {
            pctl_msg_t *m = NULL;
            if (get_message(&c, &f, file->name) != 0 || parse_message(&c, file->package, f.data, f.len, 0, &m) != 0)
                return -1;
            file->messages[file->message_count++] = m;
            break;
        }
        case 5: {
            pctl_enum_t *e = NULL;
            if (get_message(&c, &f, file->name) != 0 || parse_enum(&c, file->package, f.data, f.len, &e) != 0)
                return -1;
            file->enums[file->enum_count++] = e;
            break;
        }
        case 6: {
            pctl_service_t *s = NULL;
            if (get_message(&c, &f, file->name) != 0 || parse_service(&c, file->package, f.data, f.len, &s) != 0)
                return -1;
            file->services[file->service_count++] = s;
            break;
        }
        default: break;
        }
    }
    if (rc < 0)
        return malformed(&c, "file", r.error);
    *out = file;
    return 0;
}
