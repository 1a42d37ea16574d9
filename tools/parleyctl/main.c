/* main.c — parleyctl: a grpcurl-style command line client for any gRPC
 * server (Parley's or not). Flags and dispatch only; the work is in
 * schema.c (descriptors from reflection or --protoset), describe.c
 * (list, describe), invoke.c (call) and json*.c (the JSON mapping). */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "b64.h"
#include "codes.h"
#include "describe.h"
#include "input.h"
#include "invoke.h"
#include "json.h"
#include "runtime/clock.h"
#include "schema.h"

#define DEFAULT_CONNECT_TIMEOUT_S 10.0
#define DEFAULT_MAX_MESSAGE (4u << 20)
#define MAX_PROTOSETS 64
#define MAX_REQUEST_METADATA (64u << 10)
#define MAX_DECODE_INPUT (64u << 20)

static const char usage_text[] =
    "usage: parleyctl [flags] HOST:PORT list [SERVICE]\n"
    "       parleyctl [flags] HOST:PORT describe [SYMBOL]\n"
    "       parleyctl [flags] HOST:PORT call METHOD      (or: HOST:PORT METHOD)\n"
    "       parleyctl --protoset FILE list|describe ...   (no server needed)\n"
    "       parleyctl --protoset FILE encode|decode TYPE  (or with HOST:PORT for reflection)\n"
    "\n"
    "A gRPC client for the command line, in the manner of grpcurl. The schema\n"
    "comes from the server's reflection service (grpc.reflection.v1, falling\n"
    "back to v1alpha), or from FileDescriptorSet files given with --protoset\n"
    "(protoc --include_imports --descriptor_set_out=FILE ...), in which case\n"
    "reflection is not used.\n"
    "\n"
    "Commands:\n"
    "  list                 the server's services, sorted, one per line\n"
    "  list SERVICE         its methods, as pkg.Service.Method\n"
    "  describe [SYMBOL]    a service, method, message, enum or field as proto\n"
    "                       text; without SYMBOL, every service\n"
    "  call METHOD          calls pkg.Service/Method (or pkg.Service.Method).\n"
    "                       Requests are JSON read from -d, or else from\n"
    "                       standard input; several requests are written one\n"
    "                       after another (one per line is usual). Unary and\n"
    "                       server-streaming methods take one request (none:\n"
    "                       an empty message); client-streaming and bidi\n"
    "                       methods send each request as soon as it is read\n"
    "                       and close the stream at the end of the input.\n"
    "                       Responses print on standard output as they arrive:\n"
    "                       pretty JSON for unary and client streaming, one\n"
    "                       compact object per line for server streaming and\n"
    "                       bidi (which interleaves sending and printing).\n"
    "  encode TYPE          (debugging) one JSON message of TYPE from -d or\n"
    "                       stdin to protobuf binary on stdout\n"
    "  decode TYPE          (debugging) protobuf binary of TYPE on stdin to JSON\n"
    "\n"
    "Flags (--flag VALUE or --flag=VALUE; a single dash works too):\n"
    "  --plaintext          h2c, HTTP/2 over cleartext TCP (the default)\n"
    "  --tls                TLS with ALPN h2, verifying the server's certificate\n"
    "                       against the system's roots\n"
    "  --cacert FILE        trust the PEM certificates in FILE instead (implies --tls)\n"
    "  --servername NAME    the name to verify in the certificate and to send\n"
    "                       as :authority and SNI (implies --tls)\n"
    "  --insecure           TLS without verifying the certificate (implies --tls)\n"
    "  -H, --header 'KEY: VALUE'\n"
    "                       request metadata, repeatable; the value of a key\n"
    "                       ending in -bin is base64 (standard or URL-safe,\n"
    "                       padding optional). Sent on reflection calls too.\n"
    "  -d, --data JSON      the request(s); -d @ reads standard input\n"
    "  --max-time SECONDS   deadline for the whole run (connection, reflection\n"
    "                       and the call, which gets the remaining time as its\n"
    "                       grpc-timeout); fractions allowed\n"
    "  --connect-timeout SECONDS  limit on connecting (default 10)\n"
    "  --protoset FILE      schema from a FileDescriptorSet file (repeatable)\n"
    "  --emit-defaults      also print fields holding their default value\n"
    "                       (0, \"\", false, [], {}; null for unset messages)\n"
    "  --compact            print every response on one line\n"
    "  --max-msg-sz BYTES   largest response message accepted (default 4194304)\n"
    "  -v, --verbose        print response headers and trailers on stderr\n"
    "  -h, --help           this text\n"
    "\n"
    "JSON follows the proto3 mapping: lowerCamelCase names out (declared names\n"
    "accepted in), 64-bit integers as strings (numbers accepted in; give values\n"
    "of 2^53 and more as strings when the request also holds a number beyond\n"
    "64 bits), bytes as base64 (URL-safe accepted in), enums by name (numbers\n"
    "accepted in), maps as objects sorted by key, default values left out.\n"
    "Unknown fields in a request are an error naming the field. Well-known\n"
    "types: Timestamp, Duration, wrappers, FieldMask, Struct, Value, ListValue\n"
    "and Empty have their JSON forms; google.protobuf.Any is not supported\n"
    "(an error says so). Groups (proto2) are not supported.\n"
    "\n"
    "Exit status: 0 success; 1 failure outside the call's status (connection,\n"
    "reflection, unknown symbol, bad JSON input, undecodable response);\n"
    "2 bad command line; 64 + the gRPC code when the call ends with a non-OK\n"
    "status (e.g. 66 Unknown, 68 DeadlineExceeded, 76 Unimplemented, 78\n"
    "Unavailable), after printing on stderr:\n"
    "  ERROR:\n"
    "    Code: <Name>\n"
    "    Message: <message>\n";

typedef struct options {
    bool tls, plaintext, insecure;
    const char *cacert, *servername;
    const char *data;
    double max_time, connect_timeout;
    const char *protosets[MAX_PROTOSETS];
    size_t protoset_count;
    bool emit_defaults, compact, verbose;
    size_t max_message;
    pl_metadata_t md;
    const char *positional[4];
    size_t positional_count;
} options_t;

static int usage_error(const char *fmt, const char *arg)
{
    fputs("parleyctl: ", stderr);
    fprintf(stderr, fmt, arg);
    fputs(" (try --help)\n", stderr);
    return PCTL_EXIT_USAGE;
}

static int parse_seconds(const char *flag, const char *v, double *out)
{
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    if (errno || *end || !(d > 0) || d > 1e9)
        return usage_error("%s needs a positive number of seconds", flag);
    *out = d;
    return 0;
}

/* -H 'key: value' */
static int add_header(options_t *o, const char *arg)
{
    const char *colon = strchr(arg, ':');
    if (!colon)
        return usage_error("-H '%s': expected 'key: value'", arg);
    const char *k = arg, *kend = colon;
    while (k < kend && isspace((unsigned char)*k))
        k++;
    while (kend > k && isspace((unsigned char)kend[-1]))
        kend--;
    const char *val = colon + 1;
    while (*val && isspace((unsigned char)*val))
        val++;
    char key[256];
    size_t klen = (size_t)(kend - k);
    if (klen == 0 || klen >= sizeof(key))
        return usage_error("-H '%s': bad key", arg);
    for (size_t i = 0; i < klen; i++)
        key[i] = (char)tolower((unsigned char)k[i]);
    key[klen] = '\0';
    if (!pl_metadata_key_is_valid((const uint8_t *)key, klen))
        return usage_error("-H: \"%s\" is not a valid metadata key (lowercase letters, digits, - _ .)", key);
    if (pl_metadata_key_is_reserved((const uint8_t *)key, klen))
        return usage_error("-H: \"%s\" is reserved for the protocol", key);
    int rc;
    if (pl_metadata_key_is_binary((const uint8_t *)key, klen)) {
        uint8_t *raw;
        size_t rlen;
        if (pctl_b64_decode(val, strlen(val), &raw, &rlen) != 0)
            return usage_error("-H: the value of %s must be base64", key);
        rc = pl_metadata_add(&o->md, key, raw, rlen);
        free(raw);
    } else {
        rc = pl_metadata_add(&o->md, key, val, strlen(val));
    }
    if (rc != 0)
        return usage_error("-H '%s': the value must be printable ASCII, and all headers under 64 KiB", arg);
    return 0;
}

/* Parses argv into o; returns -1 when done (help printed), else an exit
 * status (0 to go on). */
static int parse_args(int argc, char **argv, options_t *o)
{
    bool flags_done = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (flags_done || a[0] != '-' || a[1] == '\0') {
            if (o->positional_count == 4)
                return usage_error("unexpected argument \"%s\"", a);
            o->positional[o->positional_count++] = a;
            continue;
        }
        if (strcmp(a, "--") == 0) {
            flags_done = true;
            continue;
        }
        /* --name, -name, --name=value */
        const char *name = a + (a[1] == '-' ? 2 : 1);
        char flag[64];
        const char *eq = strchr(name, '=');
        size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
        if (nlen >= sizeof(flag))
            return usage_error("unknown flag %s", a);
        memcpy(flag, name, nlen);
        flag[nlen] = '\0';
        const char *value = eq ? eq + 1 : NULL;
#define IS(s) (strcmp(flag, s) == 0)
#define VALUE()                                                                                                        \
    do {                                                                                                               \
        if (!value) {                                                                                                  \
            if (i + 1 >= argc)                                                                                         \
                return usage_error("%s needs a value", a);                                                             \
            value = argv[++i];                                                                                         \
        }                                                                                                              \
    } while (0)
        if (IS("h") || IS("help")) {
            fputs(usage_text, stdout);
            return -1;
        } else if (IS("tls")) {
            o->tls = true;
        } else if (IS("plaintext")) {
            o->plaintext = true;
        } else if (IS("insecure")) {
            o->insecure = o->tls = true;
        } else if (IS("cacert")) {
            VALUE();
            o->cacert = value;
            o->tls = true;
        } else if (IS("servername")) {
            VALUE();
            o->servername = value;
            o->tls = true;
        } else if (IS("H") || IS("header")) {
            VALUE();
            int rc = add_header(o, value);
            if (rc)
                return rc;
        } else if (IS("d") || IS("data")) {
            VALUE();
            o->data = strcmp(value, "@") == 0 ? NULL : value;
        } else if (IS("max-time")) {
            VALUE();
            if (parse_seconds(a, value, &o->max_time))
                return PCTL_EXIT_USAGE;
        } else if (IS("connect-timeout")) {
            VALUE();
            if (parse_seconds(a, value, &o->connect_timeout))
                return PCTL_EXIT_USAGE;
        } else if (IS("protoset")) {
            VALUE();
            if (o->protoset_count == MAX_PROTOSETS)
                return usage_error("too many --protoset files%s", "");
            o->protosets[o->protoset_count++] = value;
        } else if (IS("emit-defaults")) {
            o->emit_defaults = true;
        } else if (IS("compact")) {
            o->compact = true;
        } else if (IS("v") || IS("verbose")) {
            o->verbose = true;
        } else if (IS("max-msg-sz")) {
            VALUE();
            char *end;
            errno = 0;
            unsigned long long n = strtoull(value, &end, 10);
            if (errno || *end || n == 0 || n > (1ull << 31))
                return usage_error("--max-msg-sz needs a size in bytes (at most 2 GiB)%s", "");
            o->max_message = (size_t)n;
        } else {
            return usage_error("unknown flag %s", a);
        }
        if (eq && (IS("tls") || IS("plaintext") || IS("insecure") || IS("emit-defaults") || IS("compact") || IS("v") ||
                   IS("verbose")))
            return usage_error("flag %s takes no value", a);
#undef IS
#undef VALUE
    }
    if (o->tls && o->plaintext)
        return usage_error("--plaintext conflicts with --tls, --cacert, --servername and --insecure%s", "");
    return 0;
}

static bool is_verb(const char *s)
{
    return strcmp(s, "list") == 0 || strcmp(s, "describe") == 0 || strcmp(s, "call") == 0 || strcmp(s, "encode") == 0 ||
           strcmp(s, "decode") == 0;
}

/* "host:port" or "[v6]:port" into host (copied) and port. */
static int split_address(const char *addr, char *host, size_t cap, uint16_t *port)
{
    const char *colon = strrchr(addr, ':');
    if (!colon || colon == addr)
        return -1;
    const char *h = addr, *hend = colon;
    if (*h == '[') {
        if (hend[-1] != ']')
            return -1;
        h++;
        hend--;
    }
    if ((size_t)(hend - h) >= cap || hend == h)
        return -1;
    memcpy(host, h, (size_t)(hend - h));
    host[hend - h] = '\0';
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (*end || p < 1 || p > 65535)
        return -1;
    *port = (uint16_t)p;
    return 0;
}

/* encode: one JSON message to binary on stdout. */
static int cmd_encode(pctl_schema_t *s, const char *type, const options_t *o)
{
    pctl_err_t err;
    pctl_symbol_t sym;
    if (pctl_schema_find(s, type, &sym, &err) != 0 ||
        (sym.kind != PCTL_SYM_MESSAGE && pctl_fail(&err, "%s is not a message type", type))) {
        fprintf(stderr, "parleyctl: %s\n", err.text);
        return PCTL_EXIT_FAILURE;
    }
    pctl_input_t in;
    if (o->data)
        pctl_input_from_string(&in, o->data);
    else
        pctl_input_from_fd(&in, STDIN_FILENO);
    json_t *j = NULL, *extra = NULL;
    int got = pctl_input_next(&in, &j, &err);
    if (got == 1 && pctl_input_next(&in, &extra, &err) < 0)
        got = -1;
    if (got <= 0 || extra) {
        if (got == 0)
            pctl_fail(&err, "no JSON message in the input");
        else if (extra)
            pctl_fail(&err, "encode takes one JSON message, and the input holds more");
        fprintf(stderr, "parleyctl: %s\n", err.text);
        json_decref(j);
        json_decref(extra);
        pctl_input_dispose(&in);
        return PCTL_EXIT_FAILURE;
    }
    pctl_input_dispose(&in);
    pctl_buf_t out;
    pctl_buf_init(&out, 1u << 30);
    int rc = pctl_json_to_wire(sym.u.message, j, &out, &err);
    json_decref(j);
    if (rc != 0) {
        fprintf(stderr, "parleyctl: %s\n", err.text);
    } else if (out.len && fwrite(out.data, 1, out.len, stdout) != out.len) {
        fprintf(stderr, "parleyctl: cannot write the output\n");
        rc = -1;
    }
    pctl_buf_dispose(&out);
    return rc ? PCTL_EXIT_FAILURE : PCTL_EXIT_OK;
}

/* decode: binary on stdin to JSON. */
static int cmd_decode(pctl_schema_t *s, const char *type, const options_t *o)
{
    pctl_err_t err;
    pctl_symbol_t sym;
    if (pctl_schema_find(s, type, &sym, &err) != 0 ||
        (sym.kind != PCTL_SYM_MESSAGE && pctl_fail(&err, "%s is not a message type", type))) {
        fprintf(stderr, "parleyctl: %s\n", err.text);
        return PCTL_EXIT_FAILURE;
    }
    pctl_buf_t in;
    pctl_buf_init(&in, MAX_DECODE_INPUT);
    uint8_t chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), stdin)) > 0)
        if (pctl_buf_append(&in, chunk, n) != 0) {
            pctl_buf_dispose(&in);
            fprintf(stderr, "parleyctl: the input is over %u MiB\n", MAX_DECODE_INPUT >> 20);
            return PCTL_EXIT_FAILURE;
        }
    pctl_jw_t w;
    pctl_jw_init(&w, !o->compact, 1u << 30);
    pctl_json_opts_t jo = {o->emit_defaults};
    int rc = pctl_json_from_wire(sym.u.message, in.data, in.len, &jo, &w, &err);
    if (rc != 0) {
        fprintf(stderr, "parleyctl: %s\n", err.text);
    } else {
        fwrite(w.out.data, 1, w.out.len, stdout);
        fputc('\n', stdout);
    }
    pctl_jw_dispose(&w);
    pctl_buf_dispose(&in);
    return rc ? PCTL_EXIT_FAILURE : PCTL_EXIT_OK;
}

static int run(options_t *o)
{
    const char *addr = NULL, *verb, *arg = NULL;
    size_t p = 0;
    if (o->positional_count == 0)
        return usage_error("no command%s", "");
    if (!is_verb(o->positional[0]))
        addr = o->positional[p++];
    if (p == o->positional_count)
        return usage_error("no command after %s", addr);
    verb = o->positional[p++];
    if (!is_verb(verb)) {
        arg = verb; /* grpcurl style: HOST:PORT METHOD */
        verb = "call";
    } else if (p < o->positional_count) {
        arg = o->positional[p++];
    }
    if (p < o->positional_count)
        return usage_error("unexpected argument \"%s\"", o->positional[p]);
    bool is_call = strcmp(verb, "call") == 0;
    bool is_codec = strcmp(verb, "encode") == 0 || strcmp(verb, "decode") == 0;
    if ((is_call || is_codec) && !arg)
        return usage_error("%s needs a name", verb);
    if (!addr && (is_call || o->protoset_count == 0))
        return usage_error("%s needs HOST:PORT (or --protoset for list, describe, encode, decode)", verb);

    int64_t deadline = o->max_time > 0 ? pl_now_usec() + (int64_t)(o->max_time * 1e6) : 0;
    pctl_schema_t schema = {pctl_pool_new(), NULL};
    pl_channel_t *ch = NULL;
    pctl_err_t err;
    int exit_code = PCTL_EXIT_FAILURE;
    if (!schema.pool) {
        fprintf(stderr, "parleyctl: out of memory\n");
        return PCTL_EXIT_FAILURE;
    }
    if (o->protoset_count && pctl_schema_load_protosets(&schema, o->protosets, o->protoset_count, &err) != 0) {
        fprintf(stderr, "parleyctl: %s\n", err.text);
        goto done;
    }
    if (addr && (is_call || o->protoset_count == 0)) {
        char host[256];
        pl_channel_opts_t co = {0};
        if (split_address(addr, host, sizeof(host), &co.port) != 0) {
            exit_code = usage_error("\"%s\" is not HOST:PORT", addr);
            goto done;
        }
        double ct = o->connect_timeout > 0 ? o->connect_timeout : DEFAULT_CONNECT_TIMEOUT_S;
        if (o->max_time > 0 && o->max_time < ct)
            ct = o->max_time;
        co.host = host;
        co.use_tls = o->tls;
        co.ca_file = o->cacert;
        co.server_name = o->servername;
        co.insecure = o->insecure;
        co.connect_timeout_ms = (int)(ct * 1000) > 0 ? (int)(ct * 1000) : 1;
        co.max_recv_message = (uint32_t)o->max_message;
        co.user_agent = "parleyctl/" PARLEY_VERSION;
        char why[512];
        ch = pl_channel_connect(&co, why, sizeof(why));
        if (!ch) {
            fprintf(stderr, "parleyctl: cannot connect to %s: %s\n", addr, why);
            goto done;
        }
        if (o->protoset_count == 0) {
            pctl_reflect_opts_t ro = {ch, &o->md, deadline, o->max_message};
            schema.reflect = pctl_reflect_new(&ro);
            if (!schema.reflect) {
                fprintf(stderr, "parleyctl: out of memory\n");
                goto done;
            }
        }
    }

    int rc = 0;
    if (strcmp(verb, "list") == 0) {
        rc = pctl_list(&schema, arg, stdout, &err);
    } else if (strcmp(verb, "describe") == 0) {
        rc = pctl_describe(&schema, arg, stdout, &err);
    } else if (strcmp(verb, "encode") == 0) {
        exit_code = cmd_encode(&schema, arg, o);
        goto done;
    } else if (strcmp(verb, "decode") == 0) {
        exit_code = cmd_decode(&schema, arg, o);
        goto done;
    } else {
        const pctl_method_t *m;
        if (pctl_schema_find_method(&schema, arg, &m, &err) != 0) {
            rc = -1;
        } else {
            pctl_invoke_opts_t io = {&o->md,     deadline,         o->data,    STDIN_FILENO,
                                     o->compact, o->emit_defaults, o->verbose, o->max_message};
            exit_code = pctl_invoke(ch, m, &io);
            goto done;
        }
    }
    if (rc != 0)
        fprintf(stderr, "parleyctl: %s\n", err.text);
    exit_code = rc ? PCTL_EXIT_FAILURE : PCTL_EXIT_OK;
done:
    pctl_reflect_free(schema.reflect);
    pl_channel_free(ch);
    pctl_pool_free(schema.pool);
    return exit_code;
}

int main(int argc, char **argv)
{
    options_t o = {0};
    o.max_message = DEFAULT_MAX_MESSAGE;
    pl_metadata_init(&o.md, MAX_REQUEST_METADATA);
    int rc = parse_args(argc, argv, &o);
    if (rc == 0)
        rc = run(&o);
    else if (rc < 0)
        rc = PCTL_EXIT_OK;
    pl_metadata_dispose(&o.md);
    return rc;
}
