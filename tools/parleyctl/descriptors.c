/* descriptors.c — the descriptor pool: files, a hash table of fully
 * qualified symbols, type-name resolution, and lookups. Decoding of each
 * FileDescriptorProto is in descparse.c. */
#include <stdlib.h>
#include <string.h>

#include "pool_internal.h"
#include "wire.h"

#define MAX_SYMBOLS (1u << 22)

typedef struct entry {
    const char *name; /* NULL: empty slot */
    pctl_symbol_t sym;
} entry_t;

struct pctl_pool {
    pctl_arena_t arena;
    pctl_file_t **files;
    size_t file_count, file_cap;
    size_t linked; /* files [0, linked) are linked */
    entry_t *table;
    size_t table_cap, table_count;
};

pctl_arena_t *pctl_pool_arena(pctl_pool_t *pool)
{
    return &pool->arena;
}

pctl_pool_t *pctl_pool_new(void)
{
    pctl_pool_t *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    pctl_arena_init(&p->arena, PCTL_MAX_POOL_BYTES);
    return p;
}

void pctl_pool_free(pctl_pool_t *pool)
{
    if (!pool)
        return;
    pctl_arena_dispose(&pool->arena);
    free(pool->files);
    free(pool->table);
    free(pool);
}

static uint64_t hash_name(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    while (*s) {
        h ^= (uint8_t)*s++;
        h *= 1099511628211ull;
    }
    return h;
}

static entry_t *slot_for(entry_t *table, size_t cap, const char *name)
{
    size_t i = (size_t)hash_name(name) & (cap - 1);
    while (table[i].name && strcmp(table[i].name, name) != 0)
        i = (i + 1) & (cap - 1);
    return &table[i];
}

static int grow_table(pctl_pool_t *p)
{
    size_t cap = p->table_cap ? p->table_cap * 2 : 256;
    entry_t *t = calloc(cap, sizeof(*t));
    if (!t)
        return -1;
    for (size_t i = 0; i < p->table_cap; i++)
        if (p->table[i].name)
            *slot_for(t, cap, p->table[i].name) = p->table[i];
    free(p->table);
    p->table = t;
    p->table_cap = cap;
    return 0;
}

static const pctl_symbol_t *lookup(const pctl_pool_t *p, const char *name)
{
    if (!p->table_cap)
        return NULL;
    if (name[0] == '.')
        name++;
    entry_t *e = slot_for(p->table, p->table_cap, name);
    return e->name ? &e->sym : NULL;
}

/* Registers one symbol; a name defined twice is an error. */
static int add_symbol(pctl_pool_t *p, const char *name, pctl_symbol_t sym, pctl_err_t *err)
{
    if (p->table_count >= MAX_SYMBOLS)
        return pctl_fail(err, "too many symbols in the descriptors (limit %u)", MAX_SYMBOLS);
    if ((p->table_count + 1) * 10 > p->table_cap * 7 && grow_table(p) != 0)
        return pctl_fail(err, "out of memory indexing descriptors");
    entry_t *e = slot_for(p->table, p->table_cap, name);
    if (e->name)
        return pctl_fail(err, "symbol %s is defined twice", name);
    e->name = name;
    e->sym = sym;
    p->table_count++;
    return 0;
}

static const struct {
    const char *name;
    pctl_wkt_t wkt;
} wkts[] = {
    {"google.protobuf.Timestamp", PCTL_WKT_TIMESTAMP},
    {"google.protobuf.Duration", PCTL_WKT_DURATION},
    {"google.protobuf.DoubleValue", PCTL_WKT_DOUBLE_VALUE},
    {"google.protobuf.FloatValue", PCTL_WKT_FLOAT_VALUE},
    {"google.protobuf.Int64Value", PCTL_WKT_INT64_VALUE},
    {"google.protobuf.UInt64Value", PCTL_WKT_UINT64_VALUE},
    {"google.protobuf.Int32Value", PCTL_WKT_INT32_VALUE},
    {"google.protobuf.UInt32Value", PCTL_WKT_UINT32_VALUE},
    {"google.protobuf.BoolValue", PCTL_WKT_BOOL_VALUE},
    {"google.protobuf.StringValue", PCTL_WKT_STRING_VALUE},
    {"google.protobuf.BytesValue", PCTL_WKT_BYTES_VALUE},
    {"google.protobuf.FieldMask", PCTL_WKT_FIELD_MASK},
    {"google.protobuf.Struct", PCTL_WKT_STRUCT},
    {"google.protobuf.Value", PCTL_WKT_VALUE},
    {"google.protobuf.ListValue", PCTL_WKT_LIST_VALUE},
    {"google.protobuf.Any", PCTL_WKT_ANY},
};

static int register_message(pctl_pool_t *p, pctl_msg_t *m, pctl_err_t *err)
{
    pctl_symbol_t s = {.kind = PCTL_SYM_MESSAGE, .u.message = m};
    if (add_symbol(p, m->full_name, s, err) != 0)
        return -1;
    for (size_t i = 0; i < sizeof(wkts) / sizeof(wkts[0]); i++)
        if (strcmp(m->full_name, wkts[i].name) == 0)
            m->wkt = wkts[i].wkt;
    for (size_t i = 0; i < m->field_count; i++) {
        size_t a = strlen(m->full_name), b = strlen(m->fields[i].name);
        char *name = pctl_arena_alloc(&p->arena, a + b + 2);
        if (!name)
            return pctl_fail(err, "out of memory indexing descriptors");
        memcpy(name, m->full_name, a);
        name[a] = '.';
        memcpy(name + a + 1, m->fields[i].name, b + 1);
        pctl_symbol_t fs = {.kind = PCTL_SYM_FIELD, .u.field = &m->fields[i]};
        if (add_symbol(p, name, fs, err) != 0)
            return -1;
    }
    for (size_t i = 0; i < m->nested_count; i++)
        if (register_message(p, (pctl_msg_t *)m->nested[i], err) != 0)
            return -1;
    for (size_t i = 0; i < m->enum_count; i++) {
        pctl_symbol_t es = {.kind = PCTL_SYM_ENUM, .u.enumt = m->enums[i]};
        if (add_symbol(p, m->enums[i]->full_name, es, err) != 0)
            return -1;
    }
    return 0;
}

static int register_file(pctl_pool_t *p, pctl_file_t *f, pctl_err_t *err)
{
    for (size_t i = 0; i < f->message_count; i++)
        if (register_message(p, (pctl_msg_t *)f->messages[i], err) != 0)
            return -1;
    for (size_t i = 0; i < f->enum_count; i++) {
        pctl_symbol_t s = {.kind = PCTL_SYM_ENUM, .u.enumt = f->enums[i]};
        if (add_symbol(p, f->enums[i]->full_name, s, err) != 0)
            return -1;
    }
    for (size_t i = 0; i < f->service_count; i++) {
        const pctl_service_t *svc = f->services[i];
        pctl_symbol_t s = {.kind = PCTL_SYM_SERVICE, .u.service = svc};
        if (add_symbol(p, svc->full_name, s, err) != 0)
            return -1;
        for (size_t j = 0; j < svc->method_count; j++) {
            pctl_symbol_t ms = {.kind = PCTL_SYM_METHOD, .u.method = &svc->methods[j]};
            if (add_symbol(p, svc->methods[j].full_name, ms, err) != 0)
                return -1;
        }
    }
    return 0;
}

bool pctl_pool_has_file(const pctl_pool_t *pool, const char *name)
{
    for (size_t i = 0; i < pool->file_count; i++)
        if (strcmp(pool->files[i]->name, name) == 0)
            return true;
    return false;
}

int pctl_pool_add_file(pctl_pool_t *pool, const uint8_t *data, size_t len, pctl_err_t *err)
{
    if (pool->file_count >= PCTL_MAX_FILES)
        return pctl_fail(err, "too many descriptor files (limit %d)", PCTL_MAX_FILES);
    pctl_file_t *f;
    if (pctl_descparse_file(pool, data, len, &f, err) != 0)
        return -1;
    if (pctl_pool_has_file(pool, f->name))
        return 0;
    if (pool->file_count == pool->file_cap) {
        size_t cap = pool->file_cap ? pool->file_cap * 2 : 16;
        pctl_file_t **v = realloc(pool->files, cap * sizeof(*v));
        if (!v)
            return pctl_fail(err, "out of memory");
        pool->files = v;
        pool->file_cap = cap;
    }
    if (register_file(pool, f, err) != 0)
        return -1;
    pool->files[pool->file_count++] = f;
    return 0;
}

int pctl_pool_add_set(pctl_pool_t *pool, const uint8_t *data, size_t len, pctl_err_t *err)
{
    pctl_wire_reader_t r;
    pctl_wire_field_t f;
    int rc;
    pctl_wire_reader_init(&r, data, len);
    while ((rc = pctl_wire_next(&r, &f)) == 1) {
        if (f.number != 1)
            continue;
        if (f.wire_type != PCTL_WT_LEN)
            return pctl_fail(err, "not a FileDescriptorSet: field 1 is not length-delimited");
        if (pctl_pool_add_file(pool, f.data, f.len, err) != 0)
            return -1;
    }
    if (rc < 0)
        return pctl_fail(err, "not a FileDescriptorSet: %s", r.error);
    return 0;
}

static bool is_scalar_numeric(pctl_type_t t)
{
    return t != PCTL_TYPE_STRING && t != PCTL_TYPE_BYTES && t != PCTL_TYPE_MESSAGE && t != PCTL_TYPE_GROUP;
}

static int link_message(pctl_pool_t *p, pctl_msg_t *m, pctl_err_t *err)
{
    for (size_t i = 0; i < m->field_count; i++) {
        pctl_field_t *f = &m->fields[i];
        if (f->type_name) {
            const pctl_symbol_t *s = lookup(p, f->type_name);
            if (!s || (s->kind != PCTL_SYM_MESSAGE && s->kind != PCTL_SYM_ENUM))
                return pctl_fail(err, "type %s (field %s.%s) is not defined in the descriptors", f->type_name,
                                 m->full_name, f->name);
            if (s->kind == PCTL_SYM_MESSAGE) {
                if (f->type == PCTL_TYPE_ENUM)
                    return pctl_fail(err, "field %s.%s: %s is a message, not an enum", m->full_name, f->name,
                                     f->type_name);
                if (f->type == 0)
                    f->type = PCTL_TYPE_MESSAGE;
                f->message = s->u.message;
            } else {
                if (f->type == PCTL_TYPE_MESSAGE || f->type == PCTL_TYPE_GROUP)
                    return pctl_fail(err, "field %s.%s: %s is an enum, not a message", m->full_name, f->name,
                                     f->type_name);
                f->type = PCTL_TYPE_ENUM;
                f->enumt = s->u.enumt;
            }
        }
        bool proto3 = m->file->syntax == PCTL_SYNTAX_PROTO3;
        f->is_packed = f->label == PCTL_LABEL_REPEATED && is_scalar_numeric(f->type) &&
                       (f->packed_option_set ? f->packed_option : proto3);
        f->has_presence =
            f->label != PCTL_LABEL_REPEATED &&
            (f->type == PCTL_TYPE_MESSAGE || f->type == PCTL_TYPE_GROUP || f->oneof_index >= 0 || !proto3);
    }
    for (size_t i = 0; i < m->nested_count; i++)
        if (link_message(p, (pctl_msg_t *)m->nested[i], err) != 0)
            return -1;
    return 0;
}

int pctl_pool_link(pctl_pool_t *pool, pctl_err_t *err)
{
    for (; pool->linked < pool->file_count; pool->linked++) {
        pctl_file_t *f = pool->files[pool->linked];
        for (size_t i = 0; i < f->message_count; i++)
            if (link_message(pool, (pctl_msg_t *)f->messages[i], err) != 0)
                return -1;
        for (size_t i = 0; i < f->service_count; i++) {
            pctl_service_t *svc = (pctl_service_t *)f->services[i];
            for (size_t j = 0; j < svc->method_count; j++) {
                pctl_method_t *md = &svc->methods[j];
                md->input = pctl_pool_find_message(pool, md->input_name);
                md->output = pctl_pool_find_message(pool, md->output_name);
                if (!md->input || !md->output)
                    return pctl_fail(err, "message type %s (method %s) is not defined in the descriptors",
                                     md->input ? md->output_name : md->input_name, md->full_name);
            }
        }
        f->is_linked = true;
    }
    return 0;
}

const pctl_file_t *pctl_pool_file(const pctl_pool_t *pool, size_t i)
{
    return i < pool->file_count ? pool->files[i] : NULL;
}

size_t pctl_pool_file_count(const pctl_pool_t *pool)
{
    return pool->file_count;
}

bool pctl_pool_find(const pctl_pool_t *pool, const char *name, pctl_symbol_t *out)
{
    const pctl_symbol_t *s = lookup(pool, name);
    if (s && out)
        *out = *s;
    return s != NULL;
}

const pctl_msg_t *pctl_pool_find_message(const pctl_pool_t *pool, const char *name)
{
    const pctl_symbol_t *s = lookup(pool, name);
    return s && s->kind == PCTL_SYM_MESSAGE ? s->u.message : NULL;
}

const pctl_service_t *pctl_pool_find_service(const pctl_pool_t *pool, const char *name)
{
    const pctl_symbol_t *s = lookup(pool, name);
    return s && s->kind == PCTL_SYM_SERVICE ? s->u.service : NULL;
}

const pctl_field_t *pctl_msg_field_by_number(const pctl_msg_t *m, uint32_t number)
{
    size_t lo = 0, hi = m->field_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        uint32_t n = (uint32_t)m->by_number[mid]->number;
        if (n == number)
            return m->by_number[mid];
        if (n < number)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

const pctl_field_t *pctl_msg_field_by_name(const pctl_msg_t *m, const char *name, size_t len)
{
    for (size_t i = 0; i < m->field_count; i++) {
        const pctl_field_t *f = &m->fields[i];
        if ((strlen(f->json_name) == len && memcmp(f->json_name, name, len) == 0) ||
            (strlen(f->name) == len && memcmp(f->name, name, len) == 0))
            return f;
    }
    return NULL;
}

const char *pctl_type_name(pctl_type_t t)
{
    static const char *const names[] = {
        NULL,    "double", "float", "int64",  "uint64", "int32",    "fixed64",  "fixed32", "bool",   "string",
        "group", NULL,     "bytes", "uint32", NULL,     "sfixed32", "sfixed64", "sint32",  "sint64",
    };
    return (unsigned)t < sizeof(names) / sizeof(names[0]) ? names[t] : NULL;
}
