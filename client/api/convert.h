/* convert.h — from the generated wire structs (nanopb) to the public plain
 * structs of parley.h, copying into one caller-sized block so that each
 * public object is one allocation: measure with the _size functions, then
 * fill through a bump allocator. */
#ifndef PL_CLIENT_API_CONVERT_H
#define PL_CLIENT_API_CONVERT_H

#include <stddef.h>
#include <stdint.h>

#include "parley/parley.h"
#include "parley/v1/chats.pb.h"
#include "parley/v1/common.pb.h"
#include "parley/v1/messaging.pb.h"

/* Hands out aligned pieces of a block sized beforehand. */
typedef struct pl_bump {
    uint8_t *p;
    size_t left;
} pl_bump_t;

/* Room a piece of len takes, alignment included. */
static inline size_t pl_bump_room(size_t len)
{
    return (len + 15) & ~(size_t)15;
}
void *pl_bump_alloc(pl_bump_t *b, size_t len);
/* A NUL-terminated copy of s[0..len) ("" when s is NULL). */
const char *pl_bump_str(pl_bump_t *b, const char *s, size_t len);

/* The ChatEvent inside a system message (heap; NULL when the message is
 * not a system message or the event does not decode). */
parley_v1_ChatEvent *pl_chat_event_decode(const parley_v1_Message *m);
size_t pl_message_size(const parley_v1_Message *m, const parley_v1_ChatEvent *ce);
void pl_message_fill(parley_message_t *out, const parley_v1_Message *m, const parley_v1_ChatEvent *ce, pl_bump_t *b);

size_t pl_chat_size(const parley_v1_Chat *chat);
void pl_chat_fill(parley_chat_t *out, const parley_v1_Chat *chat, pl_bump_t *b);

size_t pl_mismatch_size(const parley_v1_DeviceMismatch *dm);
void pl_mismatch_fill(const parley_v1_DeviceMismatch *dm, pl_bump_t *b, const parley_account_devices_t **missing,
                      size_t *missing_count, const int64_t **stale, size_t *stale_count);

#endif
