/* errors.h — the runtime's internal error codes (0 is success). */
#ifndef PL_RUNTIME_ERRORS_H
#define PL_RUNTIME_ERRORS_H

#define PL_ERR_NOMEM (-1)   /* allocation failed */
#define PL_ERR_FULL (-2)    /* bounded queue full: retry when writable */
#define PL_ERR_CLOSED (-3)  /* the call or connection has ended */
#define PL_ERR_PROTO (-4)   /* the peer broke the protocol */
#define PL_ERR_LIMIT (-5)   /* a configured size limit was exceeded */
#define PL_ERR_IO (-6)      /* socket or TLS failure */
#define PL_ERR_TIMEOUT (-7) /* a deadline passed */
#define PL_ERR_INVALID (-8) /* invalid argument */

#endif
