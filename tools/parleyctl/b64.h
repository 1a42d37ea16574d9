/* b64.h — base64 for bytes fields and -bin metadata (libsodium): standard
 * alphabet with padding out, standard or URL-safe, padded or not, in. */
#ifndef PCTL_B64_H
#define PCTL_B64_H

#include <stddef.h>
#include <stdint.h>

/* NUL-terminated, malloc'd; NULL when out of memory. */
char *pctl_b64_encode(const uint8_t *data, size_t len);
/* Decodes into a malloc'd buffer (*out, *out_len); -1 if s is not base64. */
int pctl_b64_decode(const char *s, size_t len, uint8_t **out, size_t *out_len);

#endif
