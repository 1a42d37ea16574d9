/* tls_hardening — the server's TLS policy, checked against a running
 * interop_server --use_tls=true (started by tests/harness/with_server.py):
 *
 *   policy     TLS 1.2 and 1.3 only, ECDHE+AEAD suites only for TLS 1.2,
 *              ALPN h2 required (none, or only http/1.1: the handshake fails)
 *   trickle    a ClientHello trickled byte by byte is cut at the handshake timeout
 *   reload     SIGHUP swaps the certificate: a long-lived stream accepted with
 *              the old one carries on; new connections get the new one
 *              (subject and serial compared with the files); a broken file
 *              on disk keeps the last good certificate
 *   mtls       with --tls_client_ca_file: no client certificate, or one
 *              from another CA, is refused; one from the CA is served
 *
 * usage: tls_hardening --port=N --pid=N --case=NAME --certs=DIR [--live_dir=DIR] */
#include <errno.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "cases.h"
#include "check.h"
#include "grpc/testing/test.parley.h"
#include "h2_wire.h"
#include "runtime/clock.h"
#include "runtime/codec.h"

static uint16_t port;
static pid_t server_pid;
static const char *certs = "";    /* tests/certs */
static const char *live_dir = ""; /* where the server reads its certificate for the reload case */

typedef struct tls_opts {
    int min_version, max_version; /* 0: library default */
    const char *ciphers12;        /* TLS 1.2 cipher list, or NULL */
    const char *alpn;             /* wire format ("\x02h2"), or NULL for no ALPN extension */
    size_t alpn_len;
    const char *client_cert, *client_key; /* file names under certs, or NULL */
} tls_opts_t;

static void path_of(char *out, size_t len, const char *dir, const char *file)
{
    snprintf(out, len, "%s/%s", dir, file);
}

/* Connects and handshakes. Returns the SSL (connected, blocking fd) or NULL
 * with the reason in why. */
static SSL *tls_connect(const tls_opts_t *o, char *why, size_t why_len)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    char path[512];
    path_of(path, sizeof(path), certs, "ca.pem");
    SSL_CTX_load_verify_locations(ctx, path, NULL);
    path_of(path, sizeof(path), certs, "ca2.pem");
    SSL_CTX_load_verify_locations(ctx, path, NULL);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if (o->min_version)
        SSL_CTX_set_min_proto_version(ctx, o->min_version);
    if (o->max_version)
        SSL_CTX_set_max_proto_version(ctx, o->max_version);
    if (o->min_version < TLS1_2_VERSION && o->min_version)
        SSL_CTX_set_security_level(ctx, 0); /* let the client offer what the server must refuse */
    if (o->ciphers12)
        SSL_CTX_set_cipher_list(ctx, o->ciphers12);
    if (o->alpn)
        SSL_CTX_set_alpn_protos(ctx, (const unsigned char *)o->alpn, (unsigned)o->alpn_len);
    if (o->client_cert) {
        path_of(path, sizeof(path), certs, o->client_cert);
        SSL_CTX_use_certificate_file(ctx, path, SSL_FILETYPE_PEM);
        path_of(path, sizeof(path), certs, o->client_key);
        SSL_CTX_use_PrivateKey_file(ctx, path, SSL_FILETYPE_PEM);
    }
    int fd = h2w_tcp_connect(port, NULL);
    SSL *ssl = fd >= 0 ? SSL_new(ctx) : NULL;
    SSL_CTX_free(ctx); /* the SSL keeps its reference */
    if (!ssl) {
        snprintf(why, why_len, "cannot connect");
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    SSL_set_fd(ssl, fd);
    SSL_set_tlsext_host_name(ssl, "localhost");
    SSL_set1_host(ssl, "localhost");
    ERR_clear_error();
    if (SSL_connect(ssl) != 1) {
        unsigned long e = ERR_get_error();
        snprintf(why, why_len, "handshake failed: %s", e ? ERR_reason_error_string(e) : "connection closed");
        SSL_free(ssl);
        close(fd);
        return NULL;
    }
    return ssl;
}

static void tls_free(SSL *ssl)
{
    int fd = SSL_get_fd(ssl);
    SSL_free(ssl);
    close(fd);
}

/* subject and serial of a certificate, as text */
static void describe(X509 *cert, char *subject, size_t slen, char *serial, size_t serlen)
{
    X509_NAME_oneline(X509_get_subject_name(cert), subject, (int)slen);
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
    char *hex = bn ? BN_bn2hex(bn) : NULL;
    snprintf(serial, serlen, "%s", hex ? hex : "?");
    OPENSSL_free(hex);
    BN_free(bn);
}

static int file_serial(const char *file, char *subject, size_t slen, char *serial, size_t serlen)
{
    char path[512];
    path_of(path, sizeof(path), certs, file);
    FILE *f = fopen(path, "r");
    X509 *cert = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
    if (f)
        fclose(f);
    if (!cert)
        return -1;
    describe(cert, subject, slen, serial, serlen);
    X509_free(cert);
    return 0;
}

static void peer_serial(SSL *ssl, char *subject, size_t slen, char *serial, size_t serlen)
{
    X509 *cert = SSL_get1_peer_certificate(ssl);
    if (!cert) {
        snprintf(subject, slen, "none");
        snprintf(serial, serlen, "none");
        return;
    }
    describe(cert, subject, slen, serial, serlen);
    X509_free(cert);
}

/* One EmptyCall over a fresh HTTP/2 session on ssl: its grpc-status, or -1
 * (the connection failed: why says how). */
static int empty_call_over(SSL *ssl, char *why, size_t why_len)
{
    h2w_conn_t c;
    h2w_conn_init(&c, SSL_get_fd(ssl), ssl);
    h2w_buf_t b = {0}, block = {0};
    h2w_grpc_request_block(&block, "/grpc.testing.TestService/EmptyCall");
    static const uint8_t empty_message[5] = {0};
    int status = -1;
    snprintf(why, why_len, "no answer");
    if (h2w_send_preface(&c, NULL, 0) != 0) {
        snprintf(why, why_len, "cannot send the preface");
        goto out;
    }
    h2w_frame(&b, NGHTTP2_SETTINGS, NGHTTP2_FLAG_ACK, 0, NULL, 0);
    h2w_frame(&b, NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS, 1, block.data, block.len);
    h2w_frame(&b, NGHTTP2_DATA, NGHTTP2_FLAG_END_STREAM, 1, empty_message, sizeof(empty_message));
    h2w_write(&c, b.data, b.len, 2000);
    int64_t until = pl_now_msec() + 3000;
    while (status < 0 && pl_now_msec() < until) {
        h2w_frame_t f;
        int r = h2w_read_frame(&c, &f, 200);
        if (r == 0) {
            unsigned long e = ERR_peek_last_error();
            snprintf(why, why_len, "connection ended%s%s", e ? ": " : "", e ? ERR_reason_error_string(e) : "");
            break;
        }
        char v[16];
        if (r == 1 && f.type == NGHTTP2_HEADERS && h2w_find_header(&c, &f, "grpc-status", v, sizeof(v)))
            status = atoi(v);
    }
out:
    h2w_buf_free(&b);
    h2w_buf_free(&block);
    c.ssl = NULL; /* the caller owns ssl and its fd */
    c.fd = -1;
    h2w_conn_close(&c);
    return status;
}

/* ---- policy ---- */

static int policy(void)
{
    static const struct {
        const char *what;
        tls_opts_t o;
        bool ok;
    } cases[] = {
        {"TLS 1.3, ALPN h2", {TLS1_3_VERSION, TLS1_3_VERSION, NULL, "\x02h2", 3, NULL, NULL}, true},
        {"TLS 1.2 ECDHE-ECDSA-AES128-GCM-SHA256, ALPN h2",
         {TLS1_2_VERSION, TLS1_2_VERSION, "ECDHE-ECDSA-AES128-GCM-SHA256", "\x02h2", 3, NULL, NULL},
         true},
        {"TLS 1.2 ECDHE-ECDSA-CHACHA20-POLY1305, ALPN h2",
         {TLS1_2_VERSION, TLS1_2_VERSION, "ECDHE-ECDSA-CHACHA20-POLY1305", "\x02h2", 3, NULL, NULL},
         true},
        {"TLS 1.1", {TLS1_1_VERSION, TLS1_1_VERSION, "DEFAULT:@SECLEVEL=0", "\x02h2", 3, NULL, NULL}, false},
        {"TLS 1.0", {TLS1_VERSION, TLS1_VERSION, "DEFAULT:@SECLEVEL=0", "\x02h2", 3, NULL, NULL}, false},
        {"TLS 1.2 CBC (ECDHE-ECDSA-AES128-SHA256)",
         {TLS1_2_VERSION, TLS1_2_VERSION, "ECDHE-ECDSA-AES128-SHA256", "\x02h2", 3, NULL, NULL},
         false},
        {"TLS 1.2 CBC (ECDHE-ECDSA-AES256-SHA)",
         {TLS1_2_VERSION, TLS1_2_VERSION, "ECDHE-ECDSA-AES256-SHA", "\x02h2", 3, NULL, NULL},
         false},
        {"TLS 1.3 without ALPN", {TLS1_3_VERSION, TLS1_3_VERSION, NULL, NULL, 0, NULL, NULL}, false},
        {"TLS 1.2 without ALPN",
         {TLS1_2_VERSION, TLS1_2_VERSION, "ECDHE-ECDSA-AES128-GCM-SHA256", NULL, 0, NULL, NULL},
         false},
        {"TLS 1.3, ALPN http/1.1 only", {TLS1_3_VERSION, TLS1_3_VERSION, NULL, "\x08http/1.1", 9, NULL, NULL}, false},
        {"TLS 1.3, ALPN http/1.1 and h2",
         {TLS1_3_VERSION, TLS1_3_VERSION, NULL, "\x08http/1.1\x02h2", 12, NULL, NULL},
         true},
    };
    int failures = 0;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char why[256] = "";
        SSL *ssl = tls_connect(&cases[i].o, why, sizeof(why));
        int status = -1;
        char detail[300] = "";
        if (ssl) {
            const unsigned char *proto;
            unsigned plen;
            SSL_get0_alpn_selected(ssl, &proto, &plen);
            status = empty_call_over(ssl, why, sizeof(why));
            snprintf(detail, sizeof(detail), "%s, %s, ALPN %.*s, EmptyCall grpc-status %d", SSL_get_version(ssl),
                     SSL_get_cipher(ssl), (int)plen, (const char *)proto, status);
            tls_free(ssl);
        } else {
            snprintf(detail, sizeof(detail), "%s", why);
        }
        bool ok = ssl && status == 0;
        printf("%-48s %s (%s)\n", cases[i].what, ok ? "served" : "refused", detail);
        if (ok != cases[i].ok) {
            printf("  ^ want %s\n", cases[i].ok ? "served" : "refused");
            failures++;
        }
    }
    if (failures)
        FAIL("%d of the policy cases went the wrong way", failures);
    return 0;
}

/* ---- a ClientHello trickled byte by byte ---- */

static int trickle(void)
{
    /* the start of a real ClientHello record; what follows never matters */
    static const uint8_t hello[] = {0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03, 1,  2,  3,  4,
                                    5,    6,    7,    8,    9,    10,   11,   12,   13,   14,   15,   16, 17, 18, 19,
                                    20,   21,   22,   23,   24,   25,   26,   27,   28,   29,   30,   31, 32, 0};
    int fd = h2w_tcp_connect(port, NULL);
    if (fd < 0)
        FAIL("connect");
    h2w_conn_t c;
    h2w_conn_init(&c, fd, NULL);
    int64_t t0 = pl_now_msec();
    size_t sent = 0;
    while (sent < sizeof(hello) && !c.is_eof && !c.is_reset && pl_now_msec() - t0 < 10000) {
        if (h2w_write(&c, hello + sent, 1, 100) == 1)
            sent++;
        h2w_frame_t f;
        h2w_read_frame(&c, &f, 100);
    }
    long ms = (long)(pl_now_msec() - t0);
    printf("ClientHello trickled 1 byte/100 ms: %zu bytes sent; connection %s after %ld ms\n", sent,
           c.is_eof || c.is_reset ? "closed" : "STILL OPEN", ms);
    bool closed = c.is_eof || c.is_reset;
    h2w_conn_close(&c);
    if (!closed)
        FAIL("a trickled TLS handshake was not cut off");
    return 0;
}

/* ---- reload ---- */

/* Replaces live_dir/name with certs/src atomically (write, then rename). */
static int install(const char *src, const char *name)
{
    char from[512], tmp[512], to[512];
    path_of(from, sizeof(from), certs, src);
    snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", live_dir, name);
    path_of(to, sizeof(to), live_dir, name);
    FILE *in = fopen(from, "rb"), *out = fopen(tmp, "wb");
    if (!in || !out) {
        if (in)
            fclose(in);
        if (out)
            fclose(out);
        return -1;
    }
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
        fwrite(buf, 1, n, out);
    fclose(in);
    fclose(out);
    return rename(tmp, to);
}

static int write_garbage(const char *name)
{
    char to[512];
    path_of(to, sizeof(to), live_dir, name);
    FILE *f = fopen(to, "w");
    if (!f)
        return -1;
    fputs("-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n", f);
    return fclose(f);
}

/* A FullDuplexCall on an open TLS connection: one request (a 10-byte
 * response wanted), one response back. */
static int duplex_round(h2w_conn_t *c, const h2w_buf_t *msg, bool first, bool end)
{
    h2w_buf_t b = {0};
    if (first) {
        h2w_buf_t block = {0};
        h2w_grpc_request_block(&block, "/grpc.testing.TestService/FullDuplexCall");
        h2w_frame(&b, NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS, 1, block.data, block.len);
        h2w_buf_free(&block);
    }
    h2w_frame(&b, NGHTTP2_DATA, end ? NGHTTP2_FLAG_END_STREAM : 0, 1, msg->data, msg->len);
    h2w_write(c, b.data, b.len, 2000);
    h2w_buf_free(&b);
    int64_t until = pl_now_msec() + 3000;
    while (pl_now_msec() < until) {
        h2w_frame_t f;
        int r = h2w_read_frame(c, &f, 200);
        if (r == 0)
            return -1;
        if (r != 1)
            continue;
        char v[16];
        if (f.type == NGHTTP2_HEADERS && h2w_find_header(c, &f, "grpc-status", v, sizeof(v)) && atoi(v) != 0)
            return -1;
        if (f.type == NGHTTP2_DATA && f.stream_id == 1 && f.length >= 5)
            return 0; /* the response message */
    }
    return -1;
}

static int reload(void)
{
    char old_subject[256], old_serial[80], new_subject[256], new_serial[80], subject[256], serial[80], why[256];
    if (file_serial("server.pem", old_subject, sizeof(old_subject), old_serial, sizeof(old_serial)) != 0 ||
        file_serial("server2.pem", new_subject, sizeof(new_subject), new_serial, sizeof(new_serial)) != 0)
        FAIL("cannot read the test certificates in %s", certs);
    tls_opts_t o = {0, 0, NULL, "\x02h2", 3, NULL, NULL};

    /* a long-lived stream on the old certificate */
    SSL *old = tls_connect(&o, why, sizeof(why));
    if (!old)
        FAIL("first connection: %s", why);
    peer_serial(old, subject, sizeof(subject), serial, sizeof(serial));
    printf("before SIGHUP: served %s, serial %s\n", subject, serial);
    if (strcmp(serial, old_serial) != 0)
        FAIL("the server did not start with server.pem (serial %s)", old_serial);
    h2w_conn_t c;
    h2w_conn_init(&c, SSL_get_fd(old), old);
    grpc_testing_StreamingOutputCallRequest req = {0};
    req.response_parameters_count = 1;
    req.response_parameters[0].size = 10;
    uint8_t pb[64];
    long pblen = pl_pb_encoded_size(grpc_testing_StreamingOutputCallRequest_fields, &req);
    if (pblen < 0 || pblen > (long)sizeof(pb) ||
        pl_pb_encode(grpc_testing_StreamingOutputCallRequest_fields, &req, pb, (size_t)pblen) != 0)
        FAIL("cannot encode the request");
    h2w_buf_t msg = {0};
    h2w_grpc_message(&msg, pb, (size_t)pblen);
    if (h2w_send_preface(&c, NULL, 0) != 0 || duplex_round(&c, &msg, true, false) != 0)
        FAIL("the long-lived stream did not start");

    /* rotate the files, then SIGHUP */
    if (install("server2.pem", "cert.pem") != 0 || install("server2.key", "key.pem") != 0)
        FAIL("cannot install the new certificate in %s", live_dir);
    int64_t t0 = pl_now_msec();
    kill(server_pid, SIGHUP);
    bool switched = false;
    while (!switched && pl_now_msec() - t0 < 3000) {
        usleep(50 * 1000);
        SSL *probe = tls_connect(&o, why, sizeof(why));
        if (!probe)
            continue;
        peer_serial(probe, subject, sizeof(subject), serial, sizeof(serial));
        switched = strcmp(serial, new_serial) == 0;
        if (switched) {
            int status = empty_call_over(probe, why, sizeof(why));
            printf("after SIGHUP (%lld ms): a new connection is served %s, serial %s; EmptyCall grpc-status %d\n",
                   (long long)(pl_now_msec() - t0), subject, serial, status);
            if (status != 0)
                FAIL("a call on the new certificate failed: %s", why);
        }
        tls_free(probe);
    }
    if (!switched)
        FAIL("new connections still get serial %s 3 s after SIGHUP, want %s (%s)", serial, new_serial, new_subject);

    /* the old connection and its stream carry on */
    if (duplex_round(&c, &msg, false, false) != 0)
        FAIL("the stream opened before the reload broke");
    peer_serial(old, subject, sizeof(subject), serial, sizeof(serial));
    printf("the stream opened before SIGHUP carries on (its connection still has serial %s)\n", serial);
    if (strcmp(serial, old_serial) != 0)
        FAIL("the old connection's certificate changed");

    /* a broken file: the reload fails and the last good certificate stays */
    if (write_garbage("cert.pem") != 0)
        FAIL("cannot write %s/cert.pem", live_dir);
    kill(server_pid, SIGHUP);
    usleep(300 * 1000);
    SSL *after = tls_connect(&o, why, sizeof(why));
    if (!after)
        FAIL("after a failed reload no connection is served: %s", why);
    peer_serial(after, subject, sizeof(subject), serial, sizeof(serial));
    int status = empty_call_over(after, why, sizeof(why));
    tls_free(after);
    printf("after a SIGHUP with a broken certificate file: still served %s, serial %s (grpc-status %d)\n", subject,
           serial, status);
    if (strcmp(serial, new_serial) != 0 || status != 0)
        FAIL("a failed reload did not keep the last good certificate");

    if (duplex_round(&c, &msg, false, true) != 0)
        FAIL("the long-lived stream did not finish");
    h2w_buf_free(&msg);
    c.ssl = NULL;
    c.fd = -1;
    h2w_conn_close(&c);
    tls_free(old);
    return 0;
}

/* ---- mTLS ---- */

static int mtls(void)
{
    static const struct {
        const char *what;
        const char *cert, *key;
        int version;
        bool ok;
    } cases[] = {
        {"TLS 1.3, no client certificate", NULL, NULL, TLS1_3_VERSION, false},
        {"TLS 1.2, no client certificate", NULL, NULL, TLS1_2_VERSION, false},
        {"TLS 1.3, certificate from another CA", "rogue_client.pem", "rogue_client.key", TLS1_3_VERSION, false},
        {"TLS 1.2, certificate from another CA", "rogue_client.pem", "rogue_client.key", TLS1_2_VERSION, false},
        {"TLS 1.3, certificate from the client CA", "client.pem", "client.key", TLS1_3_VERSION, true},
        {"TLS 1.2, certificate from the client CA", "client.pem", "client.key", TLS1_2_VERSION, true},
    };
    int failures = 0;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        tls_opts_t o = {cases[i].version, cases[i].version, NULL, "\x02h2", 3, cases[i].cert, cases[i].key};
        char why[256] = "";
        SSL *ssl = tls_connect(&o, why, sizeof(why));
        int status = -1;
        /* TLS 1.3: the client finishes its handshake before the server
         * has judged its certificate; the refusal comes as an alert on the
         * first read */
        if (ssl) {
            status = empty_call_over(ssl, why, sizeof(why));
            tls_free(ssl);
        }
        bool ok = status == 0;
        printf("%-44s %s (%s)\n", cases[i].what, ok ? "served" : "refused", ok ? "EmptyCall grpc-status 0" : why);
        if (ok != cases[i].ok) {
            printf("  ^ want %s\n", cases[i].ok ? "served" : "refused");
            failures++;
        }
    }
    if (failures)
        FAIL("%d of the mTLS cases went the wrong way", failures);
    return 0;
}

static bool tls_arg(const char *arg)
{
    if (strncmp(arg, "--certs=", 8) == 0)
        certs = arg + 8;
    else if (strncmp(arg, "--live_dir=", 11) == 0)
        live_dir = arg + 11;
    else
        return false;
    return true;
}

int main(int argc, char **argv)
{
    static const pl_test_case_t cases[] = {
        {"policy", policy}, {"trickle", trickle}, {"reload", reload}, {"mtls", mtls}};
    const char *which = NULL;
    int rc = pl_test_cases_parse(argc, argv, "tls_hardening", tls_arg, &port, &server_pid, &which);
    if (rc == 0 && !certs[0]) {
        fprintf(stderr, "usage: tls_hardening --port=N --pid=N --case=NAME --certs=DIR [--live_dir=DIR]\n");
        rc = 2;
    }
    return rc ? rc : pl_test_cases_run("tls_hardening", cases, sizeof(cases) / sizeof(cases[0]), which);
}
