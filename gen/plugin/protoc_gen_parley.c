/* protoc-gen-parley — Parley's protoc plugin.
 *
 * For every .proto it is asked to generate, it writes NAME.parley.h and
 * NAME.parley.c: per service, the method table (pl_method_t), the typed
 * server handler struct with its registration function, and typed client
 * calls for the four call shapes (see runtime/rpc.h). With the
 * parameter "registry=SET", it also writes SET_descriptors.{h,c}: the
 * serialized FileDescriptorProtos of every file protoc passed (imports
 * included) and a symbol index, for server reflection.
 *
 * The plugin reads a CodeGeneratorRequest on stdin and writes a
 * CodeGeneratorResponse on stdout. It is a build tool fed by protoc, so it
 * decodes with nanopb's heap-allocating pointer fields. */
#include <pb_decode.h>
#include <pb_encode.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* descriptor.pb.h first: nanopb leaves it out of plugin.pb.h (the blank
 * line keeps clang-format from sorting them) */
#include "google/protobuf/descriptor.pb.h"

#include "google/protobuf/compiler/plugin.pb.h"

typedef google_protobuf_FileDescriptorProto file_t;
typedef google_protobuf_DescriptorProto message_t;
typedef google_protobuf_EnumDescriptorProto enum_t;
typedef google_protobuf_ServiceDescriptorProto service_t;
typedef google_protobuf_MethodDescriptorProto method_t;

/* ---- small helpers ---- */

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("protoc-gen-parley: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        die("out of memory");
    return p;
}

static char *xstrdup(const char *s)
{
    char *p = strdup(s);
    if (!p)
        die("out of memory");
    return p;
}

typedef struct text {
    char *buf;
    size_t len, cap;
} text_t;

static void emit(text_t *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void emit(text_t *t, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(t->buf ? t->buf + t->len : NULL, t->buf ? t->cap - t->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0)
            die("format error");
        if (t->buf && t->len + (size_t)n < t->cap) {
            t->len += (size_t)n;
            return;
        }
        size_t cap = t->cap ? t->cap * 2 : 4096;
        while (cap <= t->len + (size_t)n)
            cap *= 2;
        char *b = realloc(t->buf, cap);
        if (!b)
            die("out of memory");
        t->buf = b;
        t->cap = cap;
    }
}

/* ".grpc.testing.Empty" or "grpc.testing.Empty" -> "grpc_testing_Empty" (nanopb's C name). */
static char *c_name(const char *full)
{
    if (full[0] == '.')
        full++;
    char *s = xstrdup(full);
    for (char *p = s; *p; p++)
        if (*p == '.')
            *p = '_';
    return s;
}

/* "grpc/health/v1/health.proto" -> "grpc/health/v1/health" */
static char *base_name(const char *proto)
{
    char *s = xstrdup(proto);
    size_t n = strlen(s);
    if (n > 6 && strcmp(s + n - 6, ".proto") == 0)
        s[n - 6] = '\0';
    return s;
}

static char *guard_name(const char *base)
{
    size_t n = strlen(base);
    char *g = xmalloc(n + 32);
    char *o = g + sprintf(g, "PL_GEN_");
    for (size_t i = 0; i < n; i++) {
        char c = base[i];
        *o++ = (c >= 'a' && c <= 'z') ? (char)(c - 32) : ((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) ? c : '_';
    }
    strcpy(o, "_PARLEY_H");
    return g;
}

/* ---- the request ---- */

typedef struct raw_file {
    const uint8_t *data;
    size_t len;
} raw_file_t;

typedef struct input {
    google_protobuf_compiler_CodeGeneratorRequest req;
    raw_file_t *raw; /* serialized proto_file[i], sliced from the request */
    size_t raw_count;
    const char *registry; /* from "registry=NAME" */
} input_t;

static uint8_t *read_all(FILE *f, size_t *len)
{
    size_t cap = 1 << 16, n = 0;
    uint8_t *buf = xmalloc(cap);
    for (;;) {
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (n < cap) {
            if (ferror(f))
                die("reading stdin failed");
            break;
        }
        cap *= 2;
        buf = realloc(buf, cap);
        if (!buf)
            die("out of memory");
    }
    *len = n;
    return buf;
}

/* Slices every proto_file (field 15) out of the serialized request, so the
 * embedded descriptors are byte-for-byte what protoc produced. */
static void slice_proto_files(input_t *in, const uint8_t *buf, size_t len)
{
    pb_istream_t is = pb_istream_from_buffer(buf, len);
    in->raw = xmalloc(sizeof(raw_file_t) * (in->req.proto_file_count + 1));
    while (is.bytes_left) {
        uint32_t tag;
        pb_wire_type_t wt;
        bool eof;
        if (!pb_decode_tag(&is, &wt, &tag, &eof))
            die("bad request: %s", PB_GET_ERROR(&is));
        if (tag == 15 && wt == PB_WT_STRING) {
            uint64_t n;
            if (!pb_decode_varint(&is, &n) || n > is.bytes_left)
                die("bad request: truncated proto_file");
            if (in->raw_count >= in->req.proto_file_count)
                die("bad request: proto_file count mismatch");
            in->raw[in->raw_count].data = (const uint8_t *)is.state;
            in->raw[in->raw_count].len = (size_t)n;
            in->raw_count++;
            if (!pb_read(&is, NULL, (size_t)n))
                die("bad request: %s", PB_GET_ERROR(&is));
        } else if (!pb_skip_field(&is, wt)) {
            die("bad request: %s", PB_GET_ERROR(&is));
        }
    }
    if (in->raw_count != in->req.proto_file_count)
        die("bad request: proto_file count mismatch");
}

static void parse_parameter(input_t *in)
{
    const char *p = in->req.parameter;
    if (!p || !*p)
        return;
    char *copy = xstrdup(p);
    for (char *tok = strtok(copy, ","); tok; tok = strtok(NULL, ",")) {
        if (strncmp(tok, "registry=", 9) == 0 && tok[9])
            in->registry = xstrdup(tok + 9);
        else
            die("unknown parameter '%s' (known: registry=NAME)", tok);
    }
    free(copy);
}

static const file_t *find_file(const input_t *in, const char *name, size_t *index)
{
    for (size_t i = 0; i < in->req.proto_file_count; i++)
        if (strcmp(in->req.proto_file[i].name, name) == 0) {
            if (index)
                *index = i;
            return &in->req.proto_file[i];
        }
    return NULL;
}

/* ---- NAME.parley.h / NAME.parley.c ---- */

typedef struct method_names {
    char *svc;  /* grpc_testing_TestService */
    char *fn;   /* grpc_testing_TestService_UnaryCall */
    char *req;  /* grpc_testing_SimpleRequest */
    char *resp; /* grpc_testing_SimpleResponse */
    bool cstream, sstream;
} method_names_t;

static char *service_full_name(const file_t *f, const service_t *s)
{
    const char *pkg = f->package ? f->package : "";
    size_t len = strlen(pkg) + strlen(s->name) + 2;
    char *full = xmalloc(len);
    snprintf(full, len, "%s%s%s", pkg, *pkg ? "." : "", s->name);
    return full;
}

static method_names_t names_for(const file_t *f, const service_t *s, const method_t *m)
{
    method_names_t n;
    char *full = service_full_name(f, s);
    n.svc = c_name(full);
    free(full);
    n.fn = xmalloc(strlen(n.svc) + strlen(m->name) + 2);
    sprintf(n.fn, "%s_%s", n.svc, m->name);
    n.req = c_name(m->input_type);
    n.resp = c_name(m->output_type);
    n.cstream = m->has_client_streaming && m->client_streaming;
    n.sstream = m->has_server_streaming && m->server_streaming;
    return n;
}

static void free_names(method_names_t *n)
{
    free(n->svc);
    free(n->fn);
    free(n->req);
    free(n->resp);
}

static const char *shape_name(const method_names_t *n)
{
    if (n->cstream && n->sstream)
        return "PL_SHAPE_BIDI_STREAMING";
    if (n->cstream)
        return "PL_SHAPE_CLIENT_STREAMING";
    if (n->sstream)
        return "PL_SHAPE_SERVER_STREAMING";
    return "PL_SHAPE_UNARY";
}

static void emit_service_header(text_t *h, const file_t *f, const service_t *s)
{
    char *full = service_full_name(f, s);
    char *svc = c_name(full);

    emit(h, "\n/* ---- service %s ---- */\n\n", full);
    for (size_t i = 0; i < s->method_count; i++) {
        method_names_t n = names_for(f, s, &s->method[i]);
        emit(h, "extern const pl_method_t %s_method;\n", n.fn);
        free_names(&n);
    }
    emit(h, "extern const pl_service_desc_t %s_service;\n\n", svc);

    /* typed server handlers */
    emit(h, "/* Server handlers; a NULL entry makes that method answer UNIMPLEMENTED.\n"
            " * Requests (and their views) stay valid until the call ends for unary and\n"
            " * server-streaming methods, and only during the callback for streamed\n"
            " * requests. */\n");
    emit(h, "typedef struct %s_handlers {\n", svc);
    for (size_t i = 0; i < s->method_count; i++) {
        method_names_t n = names_for(f, s, &s->method[i]);
        const char *m = s->method[i].name;
        if (n.cstream) {
            emit(h, "    void (*%s_start)(pl_call_t *call, void *svc);\n", m);
            emit(h, "    void (*%s)(pl_call_t *call, const %s *req, void *svc); /* each message */\n", m, n.req);
            emit(h, "    void (*%s_half_close)(pl_call_t *call, void *svc);\n", m);
        } else {
            emit(h, "    void (*%s)(pl_call_t *call, const %s *req, void *svc);\n", m, n.req);
        }
        free_names(&n);
    }
    emit(h, "} %s_handlers_t;\n\n", svc);

    for (size_t i = 0; i < s->method_count; i++) {
        method_names_t n = names_for(f, s, &s->method[i]);
        const char *m = s->method[i].name;
        emit(h,
             "static inline void %s_on_message(pl_call_t *call, const void *msg, void *svc)\n{\n"
             "    ((const %s_handlers_t *)pl_call_handlers(call))->%s(call, (const %s *)msg, svc);\n}\n",
             n.fn, svc, m, n.req);
        if (n.cstream) {
            emit(h,
                 "static inline void %s_on_start(pl_call_t *call, void *svc)\n{\n"
                 "    ((const %s_handlers_t *)pl_call_handlers(call))->%s_start(call, svc);\n}\n",
                 n.fn, svc, m);
            emit(h,
                 "static inline void %s_on_half_close(pl_call_t *call, void *svc)\n{\n"
                 "    ((const %s_handlers_t *)pl_call_handlers(call))->%s_half_close(call, svc);\n}\n",
                 n.fn, svc, m);
        }
        free_names(&n);
    }

    emit(h, "\n/* Registers the service on srv; h must outlive the server. */\n");
    emit(h, "static inline int %s_register(pl_server_t *srv, const %s_handlers_t *h, void *svc)\n{\n", svc, svc);
    emit(h, "    pl_method_impl_t impls[%zu] = {\n", s->method_count ? (size_t)s->method_count : 1);
    for (size_t i = 0; i < s->method_count; i++) {
        method_names_t n = names_for(f, s, &s->method[i]);
        const char *m = s->method[i].name;
        if (n.cstream)
            emit(h,
                 "        {&%s_method, h->%s ? %s_on_message : NULL, h->%s_start ? %s_on_start : NULL,\n"
                 "         h->%s_half_close ? %s_on_half_close : NULL},\n",
                 n.fn, m, n.fn, m, n.fn, m, n.fn);
        else
            emit(h, "        {&%s_method, h->%s ? %s_on_message : NULL, NULL, NULL},\n", n.fn, m, n.fn);
        free_names(&n);
    }
    emit(h, "    };\n    return pl_server_add_service(srv, &%s_service, impls, h, svc);\n}\n\n", svc);

    /* typed server responses and client calls */
    for (size_t i = 0; i < s->method_count; i++) {
        method_names_t n = names_for(f, s, &s->method[i]);
        if (n.sstream)
            emit(h,
                 "static inline int %s_write(pl_call_t *call, const %s *msg)\n{\n"
                 "    return pl_call_send(call, msg);\n}\n",
                 n.fn, n.resp);
        else
            emit(h,
                 "static inline int %s_reply(pl_call_t *call, const %s *msg)\n{\n"
                 "    return pl_call_reply(call, msg);\n}\n",
                 n.fn, n.resp);

        if (!n.cstream && !n.sstream) {
            emit(h, "/* Client: unary. Views in *resp stay valid until the channel's next unary call. */\n");
            emit(h,
                 "static inline pl_code_t %s(pl_channel_t *ch, const pl_call_opts_t *opts, const %s *req,\n"
                 "                                %s *resp, pl_status_t *st)\n{\n"
                 "    return pl_ccall_unary(ch, &%s_method, opts, req, resp, st);\n}\n",
                 n.fn, n.req, n.resp, n.fn);
        } else if (!n.cstream) {
            emit(h, "/* Client: server streaming; then _recv until 0, pl_ccall_finish, pl_ccall_free. */\n");
            emit(h,
                 "static inline pl_ccall_t *%s_start(pl_channel_t *ch, const pl_call_opts_t *opts, const %s *req)\n{\n"
                 "    pl_ccall_t *c = pl_ccall_start(ch, &%s_method, opts);\n"
                 "    if (c && pl_ccall_send(c, req) == 0)\n"
                 "        pl_ccall_close_send(c);\n"
                 "    return c;\n}\n",
                 n.fn, n.req, n.fn);
        } else {
            emit(h, "/* Client: %s streaming; _send, pl_ccall_close_send, %s. */\n", n.sstream ? "bidi" : "client",
                 n.sstream ? "_recv until 0, pl_ccall_finish" : "_close_and_recv");
            emit(h,
                 "static inline pl_ccall_t *%s_start(pl_channel_t *ch, const pl_call_opts_t *opts)\n{\n"
                 "    return pl_ccall_start(ch, &%s_method, opts);\n}\n",
                 n.fn, n.fn);
            emit(h,
                 "static inline int %s_send(pl_ccall_t *c, const %s *req)\n{\n"
                 "    return pl_ccall_send(c, req);\n}\n",
                 n.fn, n.req);
        }
        if (n.sstream)
            emit(h,
                 "static inline int %s_recv(pl_ccall_t *c, %s *resp)\n{\n"
                 "    return pl_ccall_recv(c, resp);\n}\n",
                 n.fn, n.resp);
        else if (n.cstream)
            emit(h,
                 "static inline pl_code_t %s_close_and_recv(pl_ccall_t *c, %s *resp, pl_status_t *st)\n{\n"
                 "    pl_ccall_close_send(c);\n"
                 "    int got = pl_ccall_recv(c, resp);\n"
                 "    pl_code_t code = pl_ccall_finish(c, st);\n"
                 "    if (code == PL_CODE_OK && got != 1) {\n"
                 "        code = PL_CODE_INTERNAL;\n"
                 "        if (st)\n"
                 "            pl_status_set(st, code, \"server sent no response message\");\n"
                 "    }\n"
                 "    return code;\n}\n",
                 n.fn, n.resp);
        free_names(&n);
    }
    free(svc);
    free(full);
}

static void emit_service_source(text_t *c, const file_t *f, const service_t *s)
{
    const char *pkg = f->package && *f->package ? f->package : "";
    char *svc = NULL;
    for (size_t i = 0; i < s->method_count; i++) {
        method_names_t n = names_for(f, s, &s->method[i]);
        emit(c,
             "const pl_method_t %s_method = {\n    \"/%s%s%s/%s\", \"%s\", %s,\n"
             "    &%s_msg, sizeof(%s), &%s_msg, sizeof(%s),\n};\n",
             n.fn, pkg, *pkg ? "." : "", s->name, s->method[i].name, s->method[i].name, shape_name(&n), n.req, n.req,
             n.resp, n.resp);
        free_names(&n);
    }
    {
        char *full = service_full_name(f, s);
        svc = c_name(full);
        emit(c, "static const pl_method_t *const %s_methods[] = {\n", svc);
        for (size_t i = 0; i < s->method_count; i++)
            emit(c, "    &%s_%s_method,\n", svc, s->method[i].name);
        if (s->method_count == 0)
            emit(c, "    NULL,\n");
        emit(c, "};\nconst pl_service_desc_t %s_service = {\"%s\", %s_methods, %zu};\n\n", svc, full, svc,
             (size_t)s->method_count);
        free(full);
    }
    free(svc);
}

static void add_file(google_protobuf_compiler_CodeGeneratorResponse *resp, const char *name, text_t *t)
{
    size_t i = resp->file_count++;
    resp->file = realloc(resp->file, sizeof(*resp->file) * resp->file_count);
    if (!resp->file)
        die("out of memory");
    memset(&resp->file[i], 0, sizeof(resp->file[i]));
    resp->file[i].name = xstrdup(name);
    resp->file[i].content = t->buf ? t->buf : xstrdup("");
}

static void generate_file(google_protobuf_compiler_CodeGeneratorResponse *resp, const file_t *f)
{
    char *base = base_name(f->name);
    char *guard = guard_name(base);
    text_t h = {0}, c = {0};

    emit(&h, "/* Generated by protoc-gen-parley from %s. Do not edit. */\n", f->name);
    emit(&h, "#ifndef %s\n#define %s\n\n#include \"runtime/rpc.h\"\n#include \"%s.pb.h\"\n", guard, guard, base);
    for (size_t i = 0; i < f->service_count; i++)
        emit_service_header(&h, f, &f->service[i]);
    emit(&h, "\n#endif\n");

    emit(&c, "/* Generated by protoc-gen-parley from %s. Do not edit. */\n#include \"%s.parley.h\"\n\n", f->name, base);
    for (size_t i = 0; i < f->service_count; i++)
        emit_service_source(&c, f, &f->service[i]);
    if (f->service_count == 0)
        emit(&c, "/* %s declares no services. */\ntypedef int pl_gen_empty_unit;\n", f->name);

    char *name = xmalloc(strlen(base) + 16);
    sprintf(name, "%s.parley.h", base);
    add_file(resp, name, &h);
    sprintf(name, "%s.parley.c", base);
    add_file(resp, name, &c);
    free(name);
    free(guard);
    free(base);
}

/* ---- SET_descriptors.{h,c} ---- */

typedef struct symbol {
    char *name;
    size_t file;
} symbol_t;

typedef struct symbols {
    symbol_t *v;
    size_t n, cap;
} symbols_t;

static void add_symbol(symbols_t *s, const char *prefix, const char *name, size_t file)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 64;
        s->v = realloc(s->v, s->cap * sizeof(*s->v));
        if (!s->v)
            die("out of memory");
    }
    size_t len = strlen(prefix) + strlen(name) + 2;
    char *full = xmalloc(len);
    snprintf(full, len, "%s%s%s", prefix, *prefix ? "." : "", name);
    s->v[s->n].name = full;
    s->v[s->n].file = file;
    s->n++;
}

static void add_message_symbols(symbols_t *s, const char *prefix, const message_t *m, size_t file, text_t *msgs,
                                bool generated)
{
    add_symbol(s, prefix, m->name, file);
    const char *full = s->v[s->n - 1].name;
    char *scope = xstrdup(full);
    if (generated) {
        char *cn = c_name(scope);
        emit(msgs, "    &%s_msg,\n", cn);
        free(cn);
    }
    for (size_t i = 0; i < m->nested_type_count; i++)
        add_message_symbols(s, scope, &m->nested_type[i], file, msgs, generated);
    for (size_t i = 0; i < m->enum_type_count; i++)
        add_symbol(s, scope, m->enum_type[i].name, file);
    free(scope);
}

static int symbol_cmp(const void *a, const void *b)
{
    return strcmp(((const symbol_t *)a)->name, ((const symbol_t *)b)->name);
}

static bool is_generated(const input_t *in, const char *name)
{
    for (size_t i = 0; i < in->req.file_to_generate_count; i++)
        if (strcmp(in->req.file_to_generate[i], name) == 0)
            return true;
    return false;
}

static void generate_registry(google_protobuf_compiler_CodeGeneratorResponse *resp, const input_t *in)
{
    const char *set = in->registry;
    text_t h = {0}, c = {0}, msgs = {0}, svcs = {0};
    symbols_t syms = {0};

    emit(&h, "/* Generated by protoc-gen-parley. Do not edit. */\n");
    emit(&h, "#ifndef PL_GEN_%s_DESCRIPTORS_H\n#define PL_GEN_%s_DESCRIPTORS_H\n\n", set, set);
    emit(&h, "#include \"runtime/descriptors.h\"\n\nextern const pl_descriptor_set_t %s_descriptors;\n\n#endif\n", set);

    emit(&c, "/* Generated by protoc-gen-parley. Do not edit. */\n#include \"%s_descriptors.h\"\n", set);
    for (size_t i = 0; i < in->req.file_to_generate_count; i++) {
        char *base = base_name(in->req.file_to_generate[i]);
        emit(&c, "#include \"%s.parley.h\"\n", base);
        free(base);
    }
    emit(&c, "\n");

    for (size_t i = 0; i < in->req.proto_file_count; i++) {
        const file_t *f = &in->req.proto_file[i];
        const char *pkg = f->package ? f->package : "";
        bool gen = is_generated(in, f->name);
        emit(&c, "static const uint8_t file%zu[] = {", i);
        for (size_t b = 0; b < in->raw[i].len; b++)
            emit(&c, "%s%u,", b % 20 == 0 ? "\n    " : "", in->raw[i].data[b]);
        emit(&c, "\n};\n");
        emit(&c, "static const uint16_t file%zu_deps[] = {", i);
        for (size_t d = 0; d < f->dependency_count; d++) {
            size_t idx;
            if (!find_file(in, f->dependency[d], &idx))
                die("%s imports %s, which protoc did not pass", f->name, f->dependency[d]);
            emit(&c, "%zu, ", idx);
        }
        emit(&c, "%s};\n", f->dependency_count ? "" : "0");
        for (size_t m = 0; m < f->message_type_count; m++)
            add_message_symbols(&syms, pkg, &f->message_type[m], i, &msgs, gen);
        for (size_t e = 0; e < f->enum_type_count; e++)
            add_symbol(&syms, pkg, f->enum_type[e].name, i);
        for (size_t s = 0; s < f->service_count; s++) {
            add_symbol(&syms, pkg, f->service[s].name, i);
            char *svc_full = xstrdup(syms.v[syms.n - 1].name);
            for (size_t m = 0; m < f->service[s].method_count; m++)
                add_symbol(&syms, svc_full, f->service[s].method[m].name, i);
            if (gen) {
                char *cn = c_name(svc_full);
                emit(&svcs, "    &%s_service,\n", cn);
                free(cn);
            }
            free(svc_full);
        }
    }

    emit(&c, "\nstatic const pl_proto_file_t files[] = {\n");
    for (size_t i = 0; i < in->req.proto_file_count; i++)
        emit(&c, "    {\"%s\", file%zu, sizeof(file%zu), file%zu_deps, %zu},\n", in->req.proto_file[i].name, i, i, i,
             (size_t)in->req.proto_file[i].dependency_count);
    emit(&c, "};\n\n");

    qsort(syms.v, syms.n, sizeof(*syms.v), symbol_cmp);
    emit(&c, "static const pl_proto_symbol_t symbols[] = {\n");
    for (size_t i = 0; i < syms.n; i++) {
        emit(&c, "    {\"%s\", %zu},\n", syms.v[i].name, syms.v[i].file);
        free(syms.v[i].name);
    }
    emit(&c, "};\n\nstatic const pb_msgdesc_t *const messages[] = {\n%s    NULL,\n};\n\n", msgs.buf ? msgs.buf : "");
    emit(&c, "static const pl_service_desc_t *const services[] = {\n%s    NULL,\n};\n\n", svcs.buf ? svcs.buf : "");
    emit(&c,
         "const pl_descriptor_set_t %s_descriptors = {\n"
         "    files, sizeof(files) / sizeof(files[0]),\n"
         "    symbols, sizeof(symbols) / sizeof(symbols[0]),\n"
         "    messages, sizeof(messages) / sizeof(messages[0]) - 1,\n"
         "    services, sizeof(services) / sizeof(services[0]) - 1,\n};\n",
         set);

    char *name = xmalloc(strlen(set) + 32);
    sprintf(name, "%s_descriptors.h", set);
    add_file(resp, name, &h);
    sprintf(name, "%s_descriptors.c", set);
    add_file(resp, name, &c);
    free(name);
    free(msgs.buf);
    free(svcs.buf);
    free(syms.v);
}

int main(int argc, char **argv)
{
    if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        printf("protoc-gen-parley: protoc plugin; use as protoc --plugin=protoc-gen-parley=PATH "
               "--parley_out=[registry=NAME:]DIR FILES...\n");
        return 0;
    }
    size_t len;
    uint8_t *buf = read_all(stdin, &len);
    input_t in = {0};
    pb_istream_t is = pb_istream_from_buffer(buf, len);
    if (!pb_decode(&is, google_protobuf_compiler_CodeGeneratorRequest_fields, &in.req))
        die("cannot decode CodeGeneratorRequest: %s", PB_GET_ERROR(&is));
    slice_proto_files(&in, buf, len);
    parse_parameter(&in);

    google_protobuf_compiler_CodeGeneratorResponse resp = google_protobuf_compiler_CodeGeneratorResponse_init_zero;
    resp.has_supported_features = true;
    resp.supported_features = 1; /* FEATURE_PROTO3_OPTIONAL */
    for (size_t i = 0; i < in.req.file_to_generate_count; i++) {
        const file_t *f = find_file(&in, in.req.file_to_generate[i], NULL);
        if (!f)
            die("protoc did not pass %s", in.req.file_to_generate[i]);
        generate_file(&resp, f);
    }
    if (in.registry)
        generate_registry(&resp, &in);

    size_t out_len;
    if (!pb_get_encoded_size(&out_len, google_protobuf_compiler_CodeGeneratorResponse_fields, &resp))
        die("cannot size the response");
    uint8_t *out = xmalloc(out_len);
    pb_ostream_t os = pb_ostream_from_buffer(out, out_len);
    if (!pb_encode(&os, google_protobuf_compiler_CodeGeneratorResponse_fields, &resp))
        die("cannot encode the response: %s", PB_GET_ERROR(&os));
    if (fwrite(out, 1, os.bytes_written, stdout) != os.bytes_written || fflush(stdout) != 0)
        die("writing the response failed");
    return 0;
}
