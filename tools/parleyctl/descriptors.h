/* descriptors.h — a pool of protobuf schemas (messages, enums, services)
 * decoded from serialized FileDescriptorProtos, whatever their source
 * (server reflection or a FileDescriptorSet file), with lookup by fully
 * qualified name. Everything is owned by the pool and freed with it. */
#ifndef PCTL_DESCRIPTORS_H
#define PCTL_DESCRIPTORS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

/* google.protobuf.FieldDescriptorProto.Type, same numbers */
typedef enum pctl_type {
    PCTL_TYPE_DOUBLE = 1,
    PCTL_TYPE_FLOAT = 2,
    PCTL_TYPE_INT64 = 3,
    PCTL_TYPE_UINT64 = 4,
    PCTL_TYPE_INT32 = 5,
    PCTL_TYPE_FIXED64 = 6,
    PCTL_TYPE_FIXED32 = 7,
    PCTL_TYPE_BOOL = 8,
    PCTL_TYPE_STRING = 9,
    PCTL_TYPE_GROUP = 10,
    PCTL_TYPE_MESSAGE = 11,
    PCTL_TYPE_BYTES = 12,
    PCTL_TYPE_UINT32 = 13,
    PCTL_TYPE_ENUM = 14,
    PCTL_TYPE_SFIXED32 = 15,
    PCTL_TYPE_SFIXED64 = 16,
    PCTL_TYPE_SINT32 = 17,
    PCTL_TYPE_SINT64 = 18,
} pctl_type_t;

typedef enum pctl_label {
    PCTL_LABEL_OPTIONAL = 1,
    PCTL_LABEL_REQUIRED = 2,
    PCTL_LABEL_REPEATED = 3,
} pctl_label_t;

typedef enum pctl_syntax {
    PCTL_SYNTAX_PROTO2,
    PCTL_SYNTAX_PROTO3,
} pctl_syntax_t;

/* Well-known types with a special JSON form. */
typedef enum pctl_wkt {
    PCTL_WKT_NONE = 0,
    PCTL_WKT_TIMESTAMP,
    PCTL_WKT_DURATION,
    PCTL_WKT_DOUBLE_VALUE,
    PCTL_WKT_FLOAT_VALUE,
    PCTL_WKT_INT64_VALUE,
    PCTL_WKT_UINT64_VALUE,
    PCTL_WKT_INT32_VALUE,
    PCTL_WKT_UINT32_VALUE,
    PCTL_WKT_BOOL_VALUE,
    PCTL_WKT_STRING_VALUE,
    PCTL_WKT_BYTES_VALUE,
    PCTL_WKT_FIELD_MASK,
    PCTL_WKT_STRUCT,
    PCTL_WKT_VALUE,
    PCTL_WKT_LIST_VALUE,
    PCTL_WKT_ANY,
} pctl_wkt_t;

typedef struct pctl_file pctl_file_t;
typedef struct pctl_msg pctl_msg_t;
typedef struct pctl_enum pctl_enum_t;
typedef struct pctl_service pctl_service_t;

typedef struct pctl_field {
    const char *name;      /* as declared: "response_size" */
    const char *json_name; /* "responseSize" (from the descriptor, or computed) */
    int32_t number;
    pctl_label_t label;
    pctl_type_t type;
    const char *type_name; /* fully qualified, no leading dot; NULL for scalars */
    int32_t oneof_index;   /* -1: none */
    bool is_proto3_optional;
    bool packed_option_set, packed_option; /* [packed = ...] as declared */
    bool is_packed;                        /* repeated scalars written packed */
    bool has_presence;                     /* set/unset is observable (messages, oneofs, optional, proto2) */
    const pctl_msg_t *parent;
    const pctl_msg_t *message; /* resolved by pctl_pool_link */
    const pctl_enum_t *enumt;
} pctl_field_t;

typedef struct pctl_oneof {
    const char *name;
    bool is_synthetic; /* the hidden oneof of a proto3 optional field */
} pctl_oneof_t;

struct pctl_msg {
    const char *full_name; /* "grpc.testing.SimpleRequest" */
    const char *name;
    const pctl_file_t *file;
    pctl_field_t *fields; /* declaration order */
    size_t field_count;
    const pctl_field_t **by_number; /* sorted by number */
    pctl_oneof_t *oneofs;
    size_t oneof_count;
    const pctl_msg_t **nested;
    size_t nested_count;
    const pctl_enum_t **enums;
    size_t enum_count;
    bool is_map_entry;
    pctl_wkt_t wkt;
};

typedef struct pctl_enum_value {
    const char *name;
    int32_t number;
} pctl_enum_value_t;

struct pctl_enum {
    const char *full_name;
    const char *name;
    const pctl_file_t *file;
    pctl_enum_value_t *values;
    size_t value_count;
};

typedef struct pctl_method {
    const char *name;
    const char *full_name;  /* "grpc.testing.TestService.UnaryCall" */
    const char *input_name; /* fully qualified, no leading dot */
    const char *output_name;
    const pctl_msg_t *input; /* resolved by pctl_pool_link */
    const pctl_msg_t *output;
    bool client_streaming, server_streaming;
    const pctl_service_t *service;
} pctl_method_t;

struct pctl_service {
    const char *full_name;
    const char *name;
    const pctl_file_t *file;
    pctl_method_t *methods;
    size_t method_count;
};

struct pctl_file {
    const char *name;
    const char *package; /* "" when none */
    pctl_syntax_t syntax;
    const char **deps;
    size_t dep_count;
    const pctl_msg_t **messages; /* top level */
    size_t message_count;
    const pctl_enum_t **enums;
    size_t enum_count;
    const pctl_service_t **services;
    size_t service_count;
    bool is_linked;
};

typedef enum pctl_sym_kind {
    PCTL_SYM_MESSAGE,
    PCTL_SYM_ENUM,
    PCTL_SYM_SERVICE,
    PCTL_SYM_METHOD,
    PCTL_SYM_FIELD,
} pctl_sym_kind_t;

typedef struct pctl_symbol {
    pctl_sym_kind_t kind;
    union {
        const pctl_msg_t *message;
        const pctl_enum_t *enumt;
        const pctl_service_t *service;
        const pctl_method_t *method;
        const pctl_field_t *field;
    } u;
} pctl_symbol_t;

typedef struct pctl_pool pctl_pool_t;

pctl_pool_t *pctl_pool_new(void);
void pctl_pool_free(pctl_pool_t *pool);

/* Decodes one serialized FileDescriptorProto and adds it. A file whose
 * name is already in the pool is ignored. -1 on malformed input, an
 * unsupported feature (editions) or a symbol defined twice. */
int pctl_pool_add_file(pctl_pool_t *pool, const uint8_t *data, size_t len, pctl_err_t *err);
/* Adds every file of a serialized FileDescriptorSet. */
int pctl_pool_add_set(pctl_pool_t *pool, const uint8_t *data, size_t len, pctl_err_t *err);
/* Resolves the type names of files added since the last call; -1 names
 * the first type that no file defines. */
int pctl_pool_link(pctl_pool_t *pool, pctl_err_t *err);

bool pctl_pool_has_file(const pctl_pool_t *pool, const char *name);
const pctl_file_t *pctl_pool_file(const pctl_pool_t *pool, size_t i);
size_t pctl_pool_file_count(const pctl_pool_t *pool);

/* Any symbol by fully qualified name (a leading dot is ignored). */
bool pctl_pool_find(const pctl_pool_t *pool, const char *name, pctl_symbol_t *out);
const pctl_msg_t *pctl_pool_find_message(const pctl_pool_t *pool, const char *name);
const pctl_service_t *pctl_pool_find_service(const pctl_pool_t *pool, const char *name);

/* Field of m by number (binary search) or by JSON or declared name. */
const pctl_field_t *pctl_msg_field_by_number(const pctl_msg_t *m, uint32_t number);
const pctl_field_t *pctl_msg_field_by_name(const pctl_msg_t *m, const char *name, size_t len);

static inline bool pctl_field_is_map(const pctl_field_t *f)
{
    return f->label == PCTL_LABEL_REPEATED && f->message && f->message->is_map_entry;
}

static inline bool pctl_field_is_repeated(const pctl_field_t *f)
{
    return f->label == PCTL_LABEL_REPEATED;
}

/* "double", "int32", ... for scalar types; NULL for messages and enums. */
const char *pctl_type_name(pctl_type_t t);

#endif
