/* client_internal.h — the contract between the channel (connection,
 * nghttp2 session) and the client calls. */
#ifndef PL_CLIENT_RPC_CLIENT_INTERNAL_H
#define PL_CLIENT_RPC_CLIENT_INTERNAL_H

#include <nghttp2/nghttp2.h>

#include "parley/channel.h"

/* channel.c → calls */
void pl_ccall_on_header(pl_ccall_t *c, bool trailers, const uint8_t *name, size_t name_len, const uint8_t *value,
                        size_t value_len);
void pl_ccall_on_headers_end(pl_ccall_t *c, bool end_stream);
void pl_ccall_on_data(pl_ccall_t *c, const uint8_t *data, size_t len);
void pl_ccall_on_stream_close(pl_ccall_t *c, uint32_t error_code);
/* The connection died: end the call with UNAVAILABLE. */
void pl_ccall_on_channel_lost(pl_ccall_t *c, const char *why);
ssize_t pl_ccall_read_body(pl_ccall_t *c, uint8_t *buf, size_t len, uint32_t *data_flags);

/* calls → channel */
nghttp2_session *pl_channel_session(pl_channel_t *ch);
const char *pl_channel_authority(const pl_channel_t *ch);
const char *pl_channel_scheme(const pl_channel_t *ch);
const char *pl_channel_user_agent(const pl_channel_t *ch);
uint32_t pl_channel_max_recv(const pl_channel_t *ch);
/* Writes what is queued without waiting. */
void pl_channel_flush(pl_channel_t *ch);
void pl_channel_track(pl_channel_t *ch, pl_ccall_t *c);
void pl_channel_untrack(pl_channel_t *ch, pl_ccall_t *c);
/* Keeps the payload behind the last unary response's views (takes it). */
void pl_channel_keep_unary_payload(pl_channel_t *ch, uint8_t *payload);

#endif
