/* term.h — parley-chat's line-based terminal: a prompt with the line being
 * typed, and lines printed above it as they come. On a terminal the input
 * is read a key at a time (so typing can be noticed) with a small line
 * editor; otherwise (a pipe, a file) it is read line by line. */
#ifndef PARLEY_CHAT_TERM_H
#define PARLEY_CHAT_TERM_H

#include <stdbool.h>
#include <stddef.h>

typedef enum term_input {
    TERM_NOTHING = 0, /* nothing complete yet */
    TERM_LINE = 1,    /* a line was entered (term_line) */
    TERM_EOF = 2,     /* end of input (Ctrl-D on an empty line) */
    TERM_EDITED = 3,  /* keys were typed (the line is not complete) */
} term_input_t;

/* Sets the terminal up (raw input if stdin is a terminal). */
void term_open(void);
/* Puts the terminal back as it was (also at exit). */
void term_close(void);
bool term_is_interactive(void);
/* The prompt shown before the line being typed (copied). */
void term_set_prompt(const char *prompt);
/* Input already read but not yet handed out (call term_read again before
 * waiting for stdin to be readable). */
bool term_has_buffered_input(void);
/* Reads what stdin has (call when it is readable). */
term_input_t term_read(void);
/* The line entered (valid until the next term_read). */
const char *term_line(void);
/* Characters in the line being typed. */
size_t term_pending_len(void);
/* Prints a line above the prompt (printf-style, no newline needed). */
void term_print(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Reads one line in the ordinary (cooked) way, before the chat starts,
 * with prompt; false at end of input. */
bool term_ask(const char *prompt, char *out, size_t cap);

#endif
