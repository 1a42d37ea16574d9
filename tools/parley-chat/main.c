/* main.c — parley-chat: a terminal chat on libparley. Options, the state
 * directory, registration (the code from the SMS file or typed), choosing
 * the first chat, and the loop that waits on the keyboard and on the
 * library's event fd. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "chat.h"
#include "parley/parley.h"
#include "state.h"
#include "term.h"

#define DEFAULT_SERVER "127.0.0.1:7443"
#define CODE_WAIT_MS 10000
#define SAVE_EVERY_MS 10000
#define DRAIN_ON_EOF_MS 10000 /* input ended (a pipe): time for the last sends to be answered */

/* the text as it prints */
/* clang-format off */
static const char usage[] =
    "usage: parley-chat --phone NUMBER [options]\n"
    "\n"
    "Chat in a terminal over Parley. The first run registers this device for your\n"
    "phone number (a one-time code by SMS); later runs reuse it. Type a line to send\n"
    "it; messages, \"delivered\"/\"read\" receipts and who is typing appear as they come.\n"
    "\n"
    "Try it on one machine, with the local stack (tools/run; its SMS codes go to\n"
    ".parley/sms.log), in three terminals from the repository's top directory:\n"
    "\n"
    "  1$ tools/run\n"
    "  2$ build/tools/parley-chat/parley-chat --phone +15550000001 --name Alice \\\n"
    "        --sms-file .parley/sms.log\n"
    "  3$ build/tools/parley-chat/parley-chat --phone +15550000002 --name Bob \\\n"
    "        --sms-file .parley/sms.log --to +15550000001\n"
    "\n"
    "Bob's chat with Alice opens at once; Alice's opens when Bob's first message\n"
    "arrives (or type /to +15550000002 in terminal 2). Then type away.\n"
    "\n"
    "Who you are:\n"
    "  --phone NUMBER        your number in E.164 form (+ and digits); required\n"
    "  --name NAME           the name others see (your profile's display name); also\n"
    "                        names this device (default \"parley-chat\")\n"
    "  --sms-file FILE       read the verification code from FILE, where a local\n"
    "                        server's file SMS provider appends \"<number> <code>\"\n"
    "                        lines (tools/run: .parley/sms.log); without it you are\n"
    "                        asked to type the code\n"
    "  --state-dir DIR       where this device's credentials and read positions are\n"
    "                        kept (the token in it is a password: mode 0600). Default:\n"
    "                        with a server on this machine, run beside tools/run's stack\n"
    "                        (.parley/ in the current directory): .parley/chat/NUMBER,\n"
    "                        deleted with the stack by tools/run --reset; otherwise\n"
    "                        ~/.parley-chat/HOST:PORT/NUMBER. Two copies of parley-chat\n"
    "                        must not share one: the second takes the device over.\n"
    "\n"
    "Where to start:\n"
    "  --to NUMBER           the direct chat with NUMBER (who must have registered)\n"
    "  --group NAME          a new group named NAME, with ...\n"
    "  --members N1,N2,...   ... these numbers as members\n"
    "  --chat ID             a chat by its id (see /chats)\n"
    "                        (default: the chat open when parley-chat last ended,\n"
    "                        else the first chat a message arrives in)\n"
    "\n"
    "The server:\n"
    "  --server HOST:PORT    default " DEFAULT_SERVER " (where tools/run listens unless\n"
    "                        started with --port N: then 127.0.0.1:N)\n"
    "  --tls                 TLS with ALPN h2 (default: cleartext h2c, for local use)\n"
    "  --ca-file FILE        trust the CAs in FILE (e.g. tests/certs/ca.pem for\n"
    "                        tools/run --tls-cert tests/certs/server.pem ...)\n"
    "  --server-name NAME    the name the certificate must carry (default the host)\n"
    "\n"
    "  --help                this text\n"
    "\n"
    "In the chat:\n"
    "  text + Enter          send it to the chat on screen (//text sends \"/text\")\n"
    "  /to NUMBER            switch to the direct chat with NUMBER\n"
    "  /group NAME N1 N2...  create a group with these numbers and switch to it\n"
    "  /chats                list your chats, with unread counts\n"
    "  /open ID              switch to a chat\n"
    "  /history [N]          show the last N messages (default 20)\n"
    "  /who                  the members and how far each has read\n"
    "  /quit                 leave (also Ctrl-D on an empty line, or Ctrl-C)\n"
    "\n"
    "What you see:\n"
    "  [14:03] Bob: hi             a message (time of the server's acceptance)\n"
    "  [14:03] you: hello          yours, shown as you send it; if the server is\n"
    "                              unreachable it waits and goes when it is back\n"
    "     \xe2\x9c\x93 sent / \xe2\x9c\x93\xe2\x9c\x93 delivered / \xe2\x9c\x93\xe2\x9c\x93 read       what became of your last message\n"
    "  [Bob is typing...] Bob>     the prompt says who is typing\n"
    "  * ...                       connection, presence and chat changes\n"
    "\n"
    "With input from a pipe, each line is sent and parley-chat exits once the\n"
    "server has them all, e.g.: echo hello | parley-chat --phone N --to M\n"
    "\n"
    "Exit status: 0, 1 on an error (registration, the server unreachable at start),\n"
    "2 on bad usage.\n";
/* clang-format on */

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

typedef struct options {
    const char *phone, *name, *sms_file, *state_dir, *to, *group, *members, *server, *ca_file, *server_name;
    int64_t chat;
    bool tls;
} options_t;

static bool valid_phone(const char *p)
{
    if (p[0] != '+' || strlen(p) < 8 || strlen(p) > 16)
        return false;
    for (const char *q = p + 1; *q; q++)
        if (*q < '0' || *q > '9')
            return false;
    return true;
}

static int parse(int argc, char **argv, options_t *o)
{
    enum {
        O_PHONE = 1,
        O_NAME,
        O_SMS,
        O_STATE,
        O_TO,
        O_GROUP,
        O_MEMBERS,
        O_CHAT,
        O_SERVER,
        O_TLS,
        O_CA,
        O_SNAME,
        O_HELP
    };
    static const struct option longs[] = {
        {"phone", required_argument, NULL, O_PHONE},
        {"name", required_argument, NULL, O_NAME},
        {"sms-file", required_argument, NULL, O_SMS},
        {"state-dir", required_argument, NULL, O_STATE},
        {"to", required_argument, NULL, O_TO},
        {"group", required_argument, NULL, O_GROUP},
        {"members", required_argument, NULL, O_MEMBERS},
        {"chat", required_argument, NULL, O_CHAT},
        {"server", required_argument, NULL, O_SERVER},
        {"tls", no_argument, NULL, O_TLS},
        {"ca-file", required_argument, NULL, O_CA},
        {"server-name", required_argument, NULL, O_SNAME},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    memset(o, 0, sizeof(*o));
    o->server = DEFAULT_SERVER;
    int opt;
    while ((opt = getopt_long(argc, argv, "h", longs, NULL)) != -1) {
        switch (opt) {
        case O_PHONE: o->phone = optarg; break;
        case O_NAME: o->name = optarg; break;
        case O_SMS: o->sms_file = optarg; break;
        case O_STATE: o->state_dir = optarg; break;
        case O_TO: o->to = optarg; break;
        case O_GROUP: o->group = optarg; break;
        case O_MEMBERS: o->members = optarg; break;
        case O_CHAT: o->chat = strtoll(optarg, NULL, 10); break;
        case O_SERVER: o->server = optarg; break;
        case O_TLS: o->tls = true; break;
        case O_CA: o->ca_file = optarg; break;
        case O_SNAME: o->server_name = optarg; break;
        case 'h':
        case O_HELP: fputs(usage, stdout); exit(0);
        default: fputs("parley-chat --help explains the options\n", stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "parley-chat: unexpected argument \"%s\" (--help)\n", argv[optind]);
        return 2;
    }
    if (!o->phone) {
        fprintf(stderr, "parley-chat: --phone NUMBER is required (--help)\n");
        return 2;
    }
    const char *bad = !valid_phone(o->phone) ? o->phone : o->to && !valid_phone(o->to) ? o->to : NULL;
    if (bad) {
        fprintf(stderr, "parley-chat: \"%s\" is not a phone number in E.164 form, like +15551234567\n", bad);
        return 2;
    }
    if ((o->group != NULL) != (o->members != NULL) && o->members) {
        fprintf(stderr, "parley-chat: --members goes with --group NAME\n");
        return 2;
    }
    if ((o->to != NULL) + (o->group != NULL) + (o->chat != 0) > 1) {
        fprintf(stderr, "parley-chat: choose one of --to, --group, --chat\n");
        return 2;
    }
    return 0;
}

/* ---- registration ---- */

static off_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? st.st_size : 0;
}

/* The code the SMS file got for phone after offset. */
static bool code_from_file(const char *path, const char *phone, off_t offset, char code[16])
{
    int64_t deadline = now_ms() + CODE_WAIT_MS;
    while (now_ms() < deadline && !interrupted) {
        FILE *f = fopen(path, "r");
        bool found = false;
        if (f && fseeko(f, offset, SEEK_SET) == 0) {
            char line[128], p[64], c[32];
            while (fgets(line, sizeof(line), f))
                if (sscanf(line, "%63s %31s", p, c) == 2 && strcmp(p, phone) == 0 && strlen(c) < 16) {
                    strcpy(code, c);
                    found = true;
                }
        }
        if (f)
            fclose(f);
        if (found)
            return true;
        usleep(100 * 1000);
    }
    return false;
}

static int do_register(parley_client_t *c, const options_t *o, chat_state_t *st)
{
    printf("Registering this device for %s at %s.\n", o->phone, o->server);
    off_t offset = o->sms_file ? file_size(o->sms_file) : 0;
    parley_error_t err = {0};
    int rc = parley_request_code(c, o->phone, NULL, &err);
    if (rc != PARLEY_OK) {
        fprintf(stderr, "parley-chat: cannot get a code: %s\n", err.message);
        if (rc == PARLEY_UNAVAILABLE)
            fprintf(stderr, "  Is the server running? For a local one: tools/run (listens on %s)\n", DEFAULT_SERVER);
        return -1;
    }
    char code[16];
    if (o->sms_file) {
        if (!code_from_file(o->sms_file, o->phone, offset, code)) {
            fprintf(stderr,
                    "parley-chat: no code for %s appeared in %s within %d s; is it the file the server "
                    "writes ([sms] file, PARLEY_SMS_FILE)?\n",
                    o->phone, o->sms_file, CODE_WAIT_MS / 1000);
            return -1;
        }
        printf("The code %s came through %s.\n", code, o->sms_file);
    } else {
        char question[96];
        snprintf(question, sizeof(question), "Enter the code sent to %s: ", o->phone);
        if (!term_ask(question, code, sizeof(code)))
            return -1;
    }
    parley_registration_t reg;
    rc = parley_verify(c, o->phone, code, o->name ? o->name : "parley-chat", &reg, &err);
    if (rc != PARLEY_OK) {
        fprintf(stderr, "parley-chat: the code was not accepted: %s\n", err.message);
        return -1;
    }
    st->account_id = reg.account_id;
    st->device_id = reg.device_id;
    snprintf(st->token, sizeof(st->token), "%s", reg.token);
    snprintf(st->server, sizeof(st->server), "%s", o->server);
    char why[256];
    if (state_save(st, why, sizeof(why)) != 0)
        fprintf(stderr, "parley-chat: %s (you will have to register again next time)\n", why);
    printf("Registered: account %" PRId64 ", device %" PRId64 "%s; its credentials are kept in %s.\n", reg.account_id,
           reg.device_id, reg.is_new_account ? " (a new account)" : "", st->dir);
    return 0;
}

static parley_client_t *new_client(const options_t *o, const chat_state_t *st)
{
    parley_options_t po = {0};
    po.server = o->server;
    po.use_tls = o->tls;
    po.ca_file = o->ca_file;
    po.server_name = o->server_name;
    po.user_agent = "parley-chat/0.1";
    if (st->token[0]) {
        po.token = st->token;
        po.account_id = st->account_id;
        po.device_id = st->device_id;
    }
    parley_error_t err = {0};
    parley_client_t *c = parley_client_new(&po, &err);
    if (!c)
        fprintf(stderr, "parley-chat: %s\n", err.message);
    return c;
}

/* A client with working credentials: saved ones if the server still takes
 * them, else a new registration. */
static parley_client_t *sign_in(const options_t *o, chat_state_t *st)
{
    if (state_load(st, o->server)) {
        parley_client_t *c = new_client(o, st);
        if (!c)
            return NULL;
        parley_profile_t me;
        parley_error_t err = {0};
        int rc = parley_get_profile(c, 0, &me, &err);
        if (rc == PARLEY_OK)
            return c;
        parley_client_free(c);
        if (rc != PARLEY_UNAUTHENTICATED) {
            fprintf(stderr, "parley-chat: %s\n", err.message);
            if (rc == PARLEY_UNAVAILABLE)
                fprintf(stderr, "  Is the server running? For a local one: tools/run\n");
            return NULL;
        }
        printf("The saved credentials in %s are no longer valid (the device was removed or the server reset).\n",
               st->dir);
        state_forget(st);
    }
    parley_client_t *c = new_client(o, st);
    if (c && do_register(c, o, st) != 0) {
        parley_client_free(c);
        return NULL;
    }
    return c;
}

static void save_cursors(parley_client_t *c, chat_state_t *st)
{
    size_t n = parley_client_cursors(c, NULL, 0);
    parley_cursor_t *cur = calloc(n ? n : 1, sizeof(*cur));
    if (!cur)
        return;
    n = parley_client_cursors(c, cur, n);
    state_save_cursors(st, cur, n);
    free(cur);
}

static void first_chat(chat_app_t *a, const options_t *o, const chat_state_t *st)
{
    if (o->to) {
        chat_open_direct(a, o->to);
    } else if (o->group) {
        char list[1024];
        snprintf(list, sizeof(list), "%s", o->members ? o->members : "");
        char *phones[64], *save = NULL;
        int n = 0;
        for (char *t = strtok_r(list, ",", &save); t && n < 64; t = strtok_r(NULL, ",", &save))
            phones[n++] = t;
        chat_create_group(a, o->group, phones, n);
    } else if (o->chat) {
        chat_open(a, o->chat);
    } else if (st->last_chat) {
        chat_open(a, st->last_chat);
    } else {
        term_print("* no chat open yet: /to NUMBER starts one, /chats lists yours, /help tells the rest");
    }
}

int main(int argc, char **argv)
{
    options_t o;
    int rc = parse(argc, argv, &o);
    if (rc)
        return rc;
    setvbuf(stdout, NULL, _IOLBF, 0);
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    chat_state_t st;
    char err[600];
    if (state_init(&st, o.state_dir, o.phone, o.server, err, sizeof(err)) != 0) {
        fprintf(stderr, "parley-chat: %s\n", err);
        return 1;
    }
    parley_client_t *c = sign_in(&o, &st);
    if (!c)
        return 1;
    if (o.name) {
        parley_error_t perr = {0};
        if (parley_update_profile(c, o.name, NULL, &perr) != PARLEY_OK)
            fprintf(stderr, "parley-chat: cannot set your name: %s\n", perr.message);
    }
    size_t ncur = 0;
    parley_cursor_t *cur = state_load_cursors(&st, &ncur);
    parley_client_set_cursors(c, cur, ncur);
    free(cur);

    chat_app_t *app = calloc(1, sizeof(*app));
    if (!app) {
        parley_client_free(c);
        return 1;
    }
    chat_init(app, c);
    term_open();
    term_print("* %s (account %" PRId64 ") on %s; /help for commands", o.phone, app->me, o.server);
    first_chat(app, &o, &st);
    if (parley_client_start(c) != PARLEY_OK) {
        term_close();
        fprintf(stderr, "parley-chat: cannot start the connection\n");
        parley_client_free(c);
        free(app);
        return 1;
    }

    bool input_done = false;
    int64_t drain_deadline = 0, next_save = now_ms() + SAVE_EVERY_MS;
    while (!app->quit && !interrupted) {
        struct pollfd p[2] = {{parley_client_event_fd(c), POLLIN, 0}, {STDIN_FILENO, POLLIN, 0}};
        int timeout = term_has_buffered_input() ? 0 : 500;
        if (poll(p, input_done ? 1 : 2, timeout) < 0 && errno != EINTR)
            break;
        parley_event_t *ev;
        while (!app->quit && (ev = parley_client_next_event(c, 0))) {
            chat_on_event(app, ev);
            parley_event_free(ev);
        }
        if (!input_done && ((p[1].revents & (POLLIN | POLLHUP)) || term_has_buffered_input())) {
            switch (term_read()) {
            case TERM_LINE: chat_on_line(app, term_line()); break;
            case TERM_EDITED: chat_on_keys(app, term_pending_len()); break;
            case TERM_EOF:
                if (term_is_interactive()) {
                    app->quit = true;
                } else {
                    /* a pipe ran out: wait for what was sent to be answered */
                    input_done = true;
                    drain_deadline = now_ms() + DRAIN_ON_EOF_MS;
                }
                break;
            default: break;
            }
        }
        chat_tick(app);
        if (input_done && (parley_client_pending_sends(c) == 0 || now_ms() > drain_deadline))
            app->quit = true;
        if (now_ms() > next_save) {
            save_cursors(c, &st);
            next_save = now_ms() + SAVE_EVERY_MS;
        }
    }
    term_close();
    parley_client_stop(c);
    /* events the stop brought (answers to the last sends) */
    parley_event_t *ev;
    while ((ev = parley_client_next_event(c, 0))) {
        if (ev->type != PARLEY_EVENT_STATE)
            chat_on_event(app, ev);
        parley_event_free(ev);
    }
    size_t unsent = parley_client_pending_sends(c);
    if (unsent)
        fprintf(stderr, "parley-chat: %zu message%s could not be sent (the server was unreachable)\n", unsent,
                unsent == 1 ? "" : "s");
    if (app->signed_out) {
        state_forget(&st);
    } else {
        save_cursors(c, &st);
        st.last_chat = app->chat_id;
        if (state_save(&st, err, sizeof(err)) != 0)
            fprintf(stderr, "parley-chat: %s\n", err);
    }
    parley_client_free(c);
    free(app);
    return 0;
}
