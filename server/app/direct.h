/* direct.h — where a one-to-one chat lives: the logical shard derived from
 * its two accounts, whichever of them asks. The chat's id is made on that
 * shard once (migrations/0003_direct_chats.sql ensure_direct_chat), and the
 * pair's unique index makes a second one impossible. (An id computed from
 * the pair alone would have to squeeze two 63-bit ids into 64 bits, and
 * collide at scale.) */
#ifndef PL_APP_DIRECT_H
#define PL_APP_DIRECT_H

#include <stdint.h>

#include "store/shardmap.h"

static inline int pl_direct_chat_shard(int64_t x, int64_t y, int shards)
{
    int64_t lo = x < y ? x : y, hi = x < y ? y : x;
    uint8_t key[16];
    for (int i = 0; i < 8; i++) {
        key[i] = (uint8_t)((uint64_t)lo >> (56 - 8 * i));
        key[8 + i] = (uint8_t)((uint64_t)hi >> (56 - 8 * i));
    }
    return pl_shard_for_key(key, sizeof(key), shards);
}

#endif
