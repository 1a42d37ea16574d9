/* tls.c — OpenSSL server context for HTTP/2 over TLS. */
#include "transport/tls.h"

#include <nghttp2/nghttp2.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <string.h>

/* TLS 1.2 suites allowed by RFC 9113 §9.2.2 (ECDHE + AEAD); TLS 1.3 keeps
 * OpenSSL's defaults, which are all AEAD. */
#define TLS12_CIPHERS                                                                                           \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"                \
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

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

static int on_alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
                          unsigned int inlen, void *arg)
{
    (void)ssl;
    (void)arg;
    /* nghttp2_select_next_protocol returns 1 when "h2" was offered */
    if (nghttp2_select_next_protocol((unsigned char **)out, outlen, in, inlen) != 1)
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    return SSL_TLSEXT_ERR_OK;
}

SSL_CTX *pl_tls_server_ctx_new(const char *cert_file, const char *key_file, char *err, size_t err_len)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        pl_tls_error_string(err, err_len);
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                                 SSL_OP_NO_SESSION_RESUMPTION_ON_RENEGOTIATION);
    /* Partial writes and moving buffers suit our non-blocking writer; freeing
     * idle read/write buffers keeps an idle TLS connection small. */
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_RELEASE_BUFFERS);
    if (SSL_CTX_set_cipher_list(ctx, TLS12_CIPHERS) != 1)
        goto fail;
    if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
        char detail[256];
        pl_tls_error_string(detail, sizeof(detail));
        snprintf(err, err_len, "tls: cannot load certificate %s: %s", cert_file, detail);
        SSL_CTX_free(ctx);
        return NULL;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1) {
        char detail[256];
        pl_tls_error_string(detail, sizeof(detail));
        snprintf(err, err_len, "tls: cannot load private key %s: %s", key_file, detail);
        SSL_CTX_free(ctx);
        return NULL;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        snprintf(err, err_len, "tls: private key %s does not match certificate %s", key_file, cert_file);
        SSL_CTX_free(ctx);
        return NULL;
    }
    SSL_CTX_set_alpn_select_cb(ctx, on_alpn_select, NULL);
    return ctx;
fail:
    pl_tls_error_string(err, err_len);
    SSL_CTX_free(ctx);
    return NULL;
}
