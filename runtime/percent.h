/* percent.h — grpc-message percent-encoding (PROTOCOL-HTTP2.md): bytes
 * outside 0x20..0x7E and '%' itself become %XX; the UTF-8 text survives. */
#ifndef PL_RUNTIME_PERCENT_H
#define PL_RUNTIME_PERCENT_H

#include <stddef.h>

/* Encodes src into a new NUL-terminated string (free()); NULL on ENOMEM. */
char *pl_percent_encode(const char *src, size_t len);
/* Decodes into a new NUL-terminated string; malformed escapes are kept
 * verbatim, as the spec asks of receivers. NULL on ENOMEM. */
char *pl_percent_decode(const char *src, size_t len);

#endif
