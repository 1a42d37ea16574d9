/* tls.c — OpenSSL server context for HTTP/2 over TLS. */
#include "transport/tls.h"

#include <nghttp2/nghttp2.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>

/* TLS 1.2 suites allowed by RFC 9113 §9.2.2 (ECDHE + AEAD). */
#define TLS12_CIPHERS                                                                                                  \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"                         \
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
/* TLS 1.3: every suite is AEAD with (EC)DHE; named so the set cannot widen. */
#define TLS13_SUITES "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"
#define TLS_GROUPS "X25519:P-256:P-384"
/* Ties sessions to this server so resumption works with client certificates. */
#define SESSION_ID_CONTEXT "parley"
#define CLIENT_CHAIN_DEPTH 4

void pl_tls_error_string(char *out, size_t len)
{
    unsigned long e;
    size_t used = 0;
    out[0] = '\0';
    while ((e = ERR_get_error()) != 0 && used + 2 < len) {
        char buf[256];
        ERR_error_string_n(e, buf, sizeof(buf));
        int n = snprintf(out + used, len - used, "%s%s", used ? "; " : "", buf);
        if (n < 0)
            break;
        used += (size_t)n;
    }
    if (!out[0])
        snprintf(out, len, "unknown TLS error");
}

/* A ClientHello without the ALPN extension never reaches the ALPN callback,
 * and OpenSSL would complete the handshake with no protocol: refuse it here. */
static int on_client_hello(SSL *ssl, int *alert, void *arg)
{
    (void)arg;
    const unsigned char *ext;
    size_t len;
    if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_application_layer_protocol_negotiation, &ext, &len) != 1) {
        *alert = SSL_AD_NO_APPLICATION_PROTOCOL;
        return SSL_CLIENT_HELLO_ERROR;
    }
    return SSL_CLIENT_HELLO_SUCCESS;
}

static int on_alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
                          unsigned int inlen, void *arg)
{
    (void)ssl;
    (void)arg;
    /* 1 when "h2" was offered; HTTP/1.1 alone is no protocol of ours */
    if (nghttp2_select_next_protocol((unsigned char **)out, outlen, in, inlen) != 1)
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    return SSL_TLSEXT_ERR_OK;
}

static SSL_CTX *fail_with(SSL_CTX *ctx, char *err, size_t err_len, const char *what, const char *file)
{
    char detail[256];
    pl_tls_error_string(detail, sizeof(detail));
    snprintf(err, err_len, "tls: %s%s%s: %s", what, file ? " " : "", file ? file : "", detail);
    SSL_CTX_free(ctx);
    return NULL;
}

static int use_client_ca(SSL_CTX *ctx, const char *ca_file)
{
    if (SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1)
        return -1;
    STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(ca_file);
    if (!names)
        return -1;
    SSL_CTX_set_client_CA_list(ctx, names); /* takes names */
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    SSL_CTX_set_verify_depth(ctx, CLIENT_CHAIN_DEPTH);
    return 0;
}

SSL_CTX *pl_tls_server_ctx_new(const char *cert_file, const char *key_file, const char *client_ca_file, char *err,
                               size_t err_len)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx)
        return fail_with(NULL, err, err_len, "cannot create a context", NULL);
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
        SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) != 1)
        return fail_with(ctx, err, err_len, "cannot restrict protocol versions", NULL);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                                 SSL_OP_NO_SESSION_RESUMPTION_ON_RENEGOTIATION);
    /* Partial writes and moving buffers suit our non-blocking writer; freeing
     * idle read/write buffers keeps an idle TLS connection small. */
    SSL_CTX_set_mode(ctx,
                     SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
    if (SSL_CTX_set_cipher_list(ctx, TLS12_CIPHERS) != 1 || SSL_CTX_set_ciphersuites(ctx, TLS13_SUITES) != 1 ||
        SSL_CTX_set1_groups_list(ctx, TLS_GROUPS) != 1)
        return fail_with(ctx, err, err_len, "cannot set cipher suites", NULL);
    /* Resumption by stateless tickets only: no server-side session cache to
     * grow with the number of clients (a reload starts new ticket keys). */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_session_id_context(ctx, (const unsigned char *)SESSION_ID_CONTEXT, sizeof(SESSION_ID_CONTEXT) - 1);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1)
        return fail_with(ctx, err, err_len, "cannot load certificate", cert_file);
    if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1)
        return fail_with(ctx, err, err_len, "cannot load private key", key_file);
    if (SSL_CTX_check_private_key(ctx) != 1) {
        ERR_clear_error();
        snprintf(err, err_len, "tls: private key %s does not match certificate %s", key_file, cert_file);
        SSL_CTX_free(ctx);
        return NULL;
    }
    if (client_ca_file && client_ca_file[0] && use_client_ca(ctx, client_ca_file) != 0)
        return fail_with(ctx, err, err_len, "cannot load client CA", client_ca_file);
    SSL_CTX_set_client_hello_cb(ctx, on_client_hello, NULL);
    SSL_CTX_set_alpn_select_cb(ctx, on_alpn_select, NULL);
    return ctx;
}

void pl_tls_describe(SSL_CTX *ctx, char *out, size_t len)
{
    X509 *cert = ctx ? SSL_CTX_get0_certificate(ctx) : NULL;
    if (!cert) {
        snprintf(out, len, "no certificate");
        return;
    }
    char subject[256] = "";
    X509_NAME_oneline(X509_get_subject_name(cert), subject, sizeof(subject));
    char *serial = NULL;
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
    if (bn)
        serial = BN_bn2hex(bn);
    char expires[64] = "";
    BIO *bio = BIO_new(BIO_s_mem());
    if (bio && ASN1_TIME_print(bio, X509_get0_notAfter(cert)) == 1) {
        int n = BIO_read(bio, expires, (int)sizeof(expires) - 1);
        expires[n > 0 ? n : 0] = '\0';
    }
    BIO_free(bio);
    snprintf(out, len, "subject %s, serial %s, expires %s", subject, serial ? serial : "?", expires);
    OPENSSL_free(serial);
    BN_free(bn);
}
