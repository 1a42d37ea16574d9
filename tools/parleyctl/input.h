/* input.h — JSON values one after another, from a string (-d) or a file
 * descriptor (stdin): a value may span lines and a line may hold several;
 * whitespace separates them. Reading from a descriptor is incremental, so
 * a caller can wait for input and for the network in one poll(). */
#ifndef PCTL_INPUT_H
#define PCTL_INPUT_H

#include <jansson.h>
#include <stdbool.h>

#include "err.h"
#include "wire.h"

#define PCTL_INPUT_PENDING 2

typedef struct pctl_input {
    int fd; /* -1: string source, or the descriptor is at its end */
    bool is_eof;
    pctl_buf_t buf; /* bytes read and not yet parsed, from pos */
    size_t pos;
    const char *data; /* string source (borrowed) */
    size_t data_len;
    size_t count; /* values returned so far */
} pctl_input_t;

void pctl_input_from_string(pctl_input_t *in, const char *data);
void pctl_input_from_fd(pctl_input_t *in, int fd);
void pctl_input_dispose(pctl_input_t *in);

/* The next complete value (a new reference): 1, 0 at the end of the
 * input, -1 on a syntax error, PCTL_INPUT_PENDING when the bytes read so
 * far hold no complete value (read more with pctl_input_read). */
int pctl_input_try_next(pctl_input_t *in, json_t **out, pctl_err_t *err);
/* One read() from the descriptor: 0, or -1 on a read error or a value
 * over the size limit. */
int pctl_input_read(pctl_input_t *in, pctl_err_t *err);
/* try_next, reading (blocking) as needed: 1, 0 or -1. */
int pctl_input_next(pctl_input_t *in, json_t **out, pctl_err_t *err);

#endif
