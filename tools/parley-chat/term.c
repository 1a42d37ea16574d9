/* term.c — parley-chat's terminal: raw key input with a minimal line editor
 * (printable text and UTF-8, Backspace, Ctrl-U, Ctrl-W, Enter, Ctrl-D),
 * lines printed above the prompt, and plain line input when stdin is not
 * a terminal. */
#include "term.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#define LINE_MAX_BYTES 4096

static struct termios saved;
static bool is_raw, is_tty;
static char prompt[256] = "> ";
static char line[LINE_MAX_BYTES + 1]; /* being typed */
static size_t line_len;
static char done[LINE_MAX_BYTES + 1]; /* the last line entered */
static int esc_state;                 /* inside an escape sequence (arrow keys...) */

void term_close(void)
{
    if (is_raw) {
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved);
        is_raw = false;
        fputs("\r\033[K", stdout);
        fflush(stdout);
    }
}

void term_open(void)
{
    is_tty = isatty(STDIN_FILENO) && isatty(STDOUT_FILENO);
    if (!is_tty || tcgetattr(STDIN_FILENO, &saved) != 0) {
        is_tty = false;
        return;
    }
    struct termios raw = saved;
    raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO); /* ISIG stays: Ctrl-C still interrupts */
    raw.c_iflag &= ~(tcflag_t)(IXON | ICRNL);
    raw.c_cc[VMIN] = 1;
    raw.c_cc[VTIME] = 0;
    if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &raw) == 0) {
        is_raw = true;
        atexit(term_close);
    }
}

bool term_is_interactive(void)
{
    return is_raw;
}

static void redraw(void)
{
    if (!is_raw)
        return;
    fputs("\r\033[K", stdout);
    fputs(prompt, stdout);
    fwrite(line, 1, line_len, stdout);
    fflush(stdout);
}

void term_set_prompt(const char *p)
{
    snprintf(prompt, sizeof(prompt), "%s", p);
    redraw();
}

void term_print(const char *fmt, ...)
{
    if (is_raw)
        fputs("\r\033[K", stdout);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stdout, fmt, ap);
    va_end(ap);
    fputs(is_raw ? "\r\n" : "\n", stdout);
    redraw();
    fflush(stdout);
}

const char *term_line(void)
{
    return done;
}

size_t term_pending_len(void)
{
    return line_len;
}

/* Drops the last UTF-8 character of the line. */
static void backspace(void)
{
    while (line_len > 0) {
        unsigned char ch = (unsigned char)line[--line_len];
        if ((ch & 0xC0) != 0x80)
            break; /* the lead byte (or ASCII) went: done */
    }
}

static void erase_word(void)
{
    while (line_len > 0 && line[line_len - 1] == ' ')
        line_len--;
    while (line_len > 0 && line[line_len - 1] != ' ')
        line_len--;
}

/* Bytes read and not yet used: a read can bring more than one line (a
 * paste, a pipe); what follows the first line waits here. */
static char in[LINE_MAX_BYTES];
static size_t in_len;
static bool in_eof;

bool term_has_buffered_input(void)
{
    if (is_raw)
        return in_len > 0;
    return memchr(in, '\n', in_len) != NULL || (in_eof && (in_len || line_len));
}

/* Appends what stdin has to in[]; false at end of input. */
static bool fill(void)
{
    if (in_len == sizeof(in))
        return true;
    ssize_t n = read(STDIN_FILENO, in + in_len, sizeof(in) - in_len);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return true;
    if (n <= 0)
        return false;
    in_len += (size_t)n;
    return true;
}

static void consume(size_t n)
{
    memmove(in, in + n, in_len - n);
    in_len -= n;
}

static term_input_t finish_line(void)
{
    memcpy(done, line, line_len);
    done[line_len] = '\0';
    line_len = 0;
    return TERM_LINE;
}

/* Cooked input (a pipe, a file): whole lines. */
static term_input_t read_cooked(void)
{
    if (!memchr(in, '\n', in_len) && !in_eof && !fill())
        in_eof = true;
    char *nl = memchr(in, '\n', in_len);
    if (!nl && !in_eof)
        return TERM_NOTHING;
    size_t n = nl ? (size_t)(nl - in) : in_len;
    if (!nl && n == 0)
        return TERM_EOF;
    line_len = n < LINE_MAX_BYTES ? n : LINE_MAX_BYTES;
    memcpy(line, in, line_len);
    if (line_len && line[line_len - 1] == '\r')
        line_len--;
    consume(nl ? n + 1 : n);
    return finish_line();
}

term_input_t term_read(void)
{
    if (!is_raw)
        return read_cooked();
    if (!in_len && !fill())
        return TERM_EOF;
    term_input_t result = TERM_NOTHING;
    size_t i = 0;
    while (i < in_len) {
        unsigned char ch = (unsigned char)in[i++];
        if (esc_state) { /* ESC [ ... letter, or ESC O letter: skipped */
            if (esc_state == 1)
                esc_state = (ch == '[' || ch == 'O') ? 2 : 0;
            else if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || ch == '~')
                esc_state = 0;
            continue;
        }
        switch (ch) {
        case 27: esc_state = 1; break;
        case '\r':
        case '\n':
            consume(i);
            fputs("\r\033[K", stdout);
            return finish_line(); /* what follows waits in in[] */
        case 4:                   /* Ctrl-D */
            if (!line_len) {
                consume(i);
                return TERM_EOF;
            }
            break;
        case 127:
        case 8:
            backspace();
            result = TERM_EDITED;
            break;
        case 21: /* Ctrl-U */
            line_len = 0;
            result = TERM_EDITED;
            break;
        case 23: /* Ctrl-W */
            erase_word();
            result = TERM_EDITED;
            break;
        case '\t':
            ch = ' ';
            /* fall through */
        default:
            if (ch >= 32 && line_len < LINE_MAX_BYTES) {
                line[line_len++] = (char)ch;
                result = TERM_EDITED;
            }
        }
    }
    consume(i);
    redraw();
    return result;
}

bool term_ask(const char *question, char *out, size_t cap)
{
    /* unbuffered, so that nothing typed after the answer is lost to stdio */
    fputs(question, stdout);
    fflush(stdout);
    size_t n = 0;
    for (;;) {
        char ch;
        ssize_t r = read(STDIN_FILENO, &ch, 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            out[n] = '\0';
            return n > 0;
        }
        if (ch == '\n')
            break;
        if (ch != '\r' && n + 1 < cap)
            out[n++] = ch;
    }
    out[n] = '\0';
    return true;
}
