/* provision.h — registering and saving the devices a load run drives. */
#ifndef PL_LOAD_PROVISION_H
#define PL_LOAD_PROVISION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "parley/channel.h"

typedef struct pl_load_target {
    const char *host;
    uint16_t port;
    bool use_tls;
    const char *ca_file;
    const char *server_name;
} pl_load_target_t;

typedef struct pl_load_device {
    int64_t account_id;
    int64_t device_id;
    char token[80];
    int64_t direct_chat; /* with its pair (devices 2k and 2k+1) */
    int64_t group_chat;  /* 0 without groups */
} pl_load_device_t;

/* Registers n devices (one account each) through t, then a direct chat per
 * pair and groups of group_size (0: none). 0, or -1 with a message. */
int pl_load_provision(const pl_load_target_t *t, const char *sms_file, pl_load_device_t *devs, int n, int group_size,
                      bool quiet, char *err, size_t err_len);
int pl_load_save(const char *path, const pl_load_device_t *devs, int n);
/* Reads a saved set (malloc'd). 0, or -1 if the file cannot be read. */
int pl_load_read(const char *path, pl_load_device_t **devs, int *count);

#endif
