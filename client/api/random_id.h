/* random_id.h — retry keys chosen by the library: a send's client message
 * id, a group create's client request id. */
#ifndef PARLEY_CLIENT_RANDOM_ID_H
#define PARLEY_CLIENT_RANDOM_ID_H

#define PL_RANDOM_ID_LEN 32 /* hex digits of 128 random bits */

/* Writes PL_RANDOM_ID_LEN hex digits and a NUL; -1 if the kernel gave no
 * randomness (out is then unchanged). */
int pl_random_id(char out[PL_RANDOM_ID_LEN + 1]);

#endif
