/* descriptors.h — the serialized FileDescriptorProtos the build embeds, so
 * the server can answer reflection without any .proto on disk. One set is
 * generated per protoc run (idl/, tests' interop protos, ...). */
#ifndef PL_RUNTIME_DESCRIPTORS_H
#define PL_RUNTIME_DESCRIPTORS_H

#include <pb.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/rpc.h"

typedef struct pl_proto_file {
    const char *name;    /* "grpc/health/v1/health.proto" */
    const uint8_t *data; /* serialized FileDescriptorProto, as protoc produced it */
    size_t len;
    const uint16_t *deps; /* indexes of direct imports in the same set */
    size_t dep_count;
} pl_proto_file_t;

typedef struct pl_proto_symbol {
    const char *name; /* fully qualified: messages, enums, services, methods */
    uint16_t file;
} pl_proto_symbol_t;

typedef struct pl_descriptor_set {
    const pl_proto_file_t *files;
    size_t file_count;
    const pl_proto_symbol_t *symbols; /* sorted by name (strcmp) */
    size_t symbol_count;
    const pb_msgdesc_t *const *messages; /* every generated message type */
    size_t message_count;
    const pl_service_desc_t *const *services;
    size_t service_count;
} pl_descriptor_set_t;

#endif
