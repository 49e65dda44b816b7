/* SPDX-License-Identifier: BSD-3-Clause */
/* vtpmd-ctl: global options, the table of subcommands, and the socket exchange. */
#include <errno.h>
#include <getopt.h>
#include <json-c/json.h>
#include <openssl/crypto.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "config.h"
#include "parse.h"
#include "util.h"
#include "vtpmd-ctl.h"

#define DEFAULT_CONTROL "/run/vtpmd/control"
#define REPLY_TIMEOUT_MS (300 * 1000) /* manufacturing with RSA key generation can take a while */

static const Command *const commands[] = {
        &cmd_create, &cmd_list, &cmd_show, &cmd_pcrread, &cmd_ek_cert, &cmd_destroy, &cmd_export, &cmd_backup,
        &cmd_import, &cmd_reset, &cmd_restart, &cmd_status, &cmd_ca_cert, &cmd_pool_status, &cmd_pool_init,
        &cmd_pool_join, &cmd_pool_admit, &cmd_pool_remove, &cmd_pool_leave,
};

static void vsay(const char *fmt, va_list ap) {
        fputs("vtpmd-ctl: ", stderr);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
}

int cli_fail(const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        vsay(fmt, ap);
        va_end(ap);
        return EXIT_FAILURE;
}

int cli_usage_error(const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        vsay(fmt, ap);
        va_end(ap);
        return CLI_EXIT_USAGE;
}

int cli_parse_uuid(const char *s, char ret[CTL_UUID_LEN]) {
        if (parse_uuid(s, ret) < 0) {
                cli_fail("not a UUID: \"%.64s\" (expected xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)", s);
                return -EINVAL;
        }
        return 0;
}

void cli_print_json(json_object *o) {
        puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
}

const char *cli_str(json_object *o, const char *key) {
        json_object *v;

        if (!json_object_object_get_ex(o, key, &v) || !v)
                return "-";
        return json_object_get_string(v);
}

void cli_print_rows(json_object *o, const CliRow *rows, size_t n, int width, bool skip_missing) {
        for (size_t i = 0; i < n; i++)
                if (!skip_missing || json_object_object_get_ex(o, rows[i].key, NULL))
                        printf("%-*s %s%s\n", width, rows[i].label, cli_str(o, rows[i].key), strempty(rows[i].suffix));
}

void cli_usage(const Command *cmd) {
        printf("Usage: vtpmd-ctl [--control PATH] [--json] %s%s%s\n\n%s\n", cmd->name, *cmd->usage ? " " : "",
               cmd->usage, cmd->summary);
}

void cli_reply_done(CliReply *r) {
        json_object_put(r->items);
        json_object_put(r->result);
        *r = (CliReply){};
}

static int send_request(int fd, const char *buf, size_t len, int pass_fd) {
        union {
                struct cmsghdr h;
                uint8_t raw[CMSG_SPACE(sizeof(int))];
        } control = {};
        struct iovec iov = { .iov_base = (void *) buf, .iov_len = len };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

        if (pass_fd >= 0) {
                struct cmsghdr *c;
                mh.msg_control = control.raw;
                mh.msg_controllen = sizeof(control.raw);
                c = CMSG_FIRSTHDR(&mh);
                c->cmsg_level = SOL_SOCKET;
                c->cmsg_type = SCM_RIGHTS;
                c->cmsg_len = CMSG_LEN(sizeof(int));
                memcpy(CMSG_DATA(c), &pass_fd, sizeof(int));
        }
        if (sendmsg(fd, &mh, MSG_NOSIGNAL) != (ssize_t) len)
                return negative_errno();
        return 0;
}

/* A failure of the request: one line on stderr, and with --json also an object
 * on stdout, {"error": message, "errno": N}, so a script reading JSON gets JSON. */
static int vcall_fail(const CliContext *ctx, int r, const char *fmt, va_list ap) _printf_(3, 0);
static int vcall_fail(const CliContext *ctx, int r, const char *fmt, va_list ap) {
        char msg[CTL_MAX_ERROR + 256];

        vsnprintf(msg, sizeof(msg), fmt, ap);
        if (ctx->quiet)
                return r;
        cli_fail("%s", msg);
        if (ctx->json) {
                json_object *o = json_object_new_object();
                if (o) {
                        json_object_object_add(o, "error", json_object_new_string(msg));
                        json_object_object_add(o, "errno", json_object_new_int(r < 0 ? -r : EIO));
                        cli_print_json(o);
                        json_object_put(o);
                }
        }
        return r;
}

int cli_request_fail(const CliContext *ctx, int r, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        r = vcall_fail(ctx, r, fmt, ap);
        va_end(ap);
        return r;
}

static int call_fail(const CliContext *ctx, int r, const char *fmt, ...) _printf_(3, 4);
static int call_fail(const CliContext *ctx, int r, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        r = vcall_fail(ctx, r, fmt, ap);
        va_end(ap);
        return r;
}

int cli_call(CliContext *ctx, const CtlRequest *req, int pass_fd, CliReply *ret) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        _cleanup_close_ int fd = -1;
        _cleanup_free_ char *buf = NULL;
        _cleanup_free_ uint8_t *in = NULL;
        CliReply out = {};
        size_t len = 0;
        int r;

        if (strlen(ctx->control_path) >= sizeof(sa.sun_path)) {
                return call_fail(ctx, -ENAMETOOLONG, "control socket path too long: %s", ctx->control_path);
        }
        memcpy(sa.sun_path, ctx->control_path, strlen(ctx->control_path) + 1);
        fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0) {
                r = negative_errno();
                return call_fail(ctx, r, "cannot connect to %s: %s%s", ctx->control_path, strerror(-r),
                                 r == -ENOENT || r == -ECONNREFUSED ? " (is vtpmd running?)"
                                 : r == -EACCES || r == -EPERM
                                         ? " (the socket is for root and the group ControlGroup= of "
                                           "vtpmd.conf(5) names: run as root, or as a member of that group)"
                                         : "");
        }
        r = ctl_request_encode(req, &buf, &len);
        if (r < 0) {
                return call_fail(ctx, r, "cannot encode the request: %s", strerror(-r));
        }
        r = send_request(fd, buf, len, pass_fd);
        explicit_wipe(buf, len);
        /* vtpmd may have answered and hung up before reading the request (too
         * many clients, permission denied): its answer is still there to read. */
        int send_error = r < 0 ? r : 0;
        if (r < 0 && r != -EPIPE && r != -ECONNRESET) {
                return call_fail(ctx, r, "cannot send the request to %s: %s", ctx->control_path, strerror(-r));
        }
        bool reset_seen = false;
        in = malloc(CTL_MAX_PACKET + 1);
        out.items = json_object_new_array();
        if (!in || !out.items) {
                json_object_put(out.items);
                return call_fail(ctx, -ENOMEM, "out of memory");
        }
        for (;;) {
                struct pollfd p = { .fd = fd, .events = POLLIN };
                CtlReply reply;
                ssize_t n;

                r = poll(&p, 1, REPLY_TIMEOUT_MS);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r <= 0) {
                        r = r == 0 ? -ETIMEDOUT : negative_errno();
                        call_fail(ctx, r, "no reply from vtpmd: %s", strerror(-r));
                        break;
                }
                n = recv(fd, in, CTL_MAX_PACKET + 1, send_error ? MSG_DONTWAIT : 0);
                if (n < 0 && errno == EINTR)
                        continue;
                /* A reset is reported before what vtpmd sent ahead of it: read on once. */
                if (n < 0 && errno == ECONNRESET && !reset_seen) {
                        reset_seen = true;
                        continue;
                }
                if (n <= 0 && send_error) {
                        r = send_error;
                        call_fail(ctx, r, "cannot send the request to %s: %s", ctx->control_path, strerror(-r));
                        break;
                }
                if (n <= 0) {
                        r = n == 0 ? -ECONNRESET : negative_errno();
                        call_fail(ctx, r, "vtpmd closed the connection without a reply");
                        break;
                }
                if (ctl_reply_parse(in, (size_t) n, &reply) < 0) {
                        r = -EBADMSG;
                        call_fail(ctx, r, "malformed reply from vtpmd (%zd bytes)", n);
                        break;
                }
                if (reply.kind == CTL_REPLY_ITEM) {
                        json_object_array_add(out.items, reply.obj);
                        continue;
                }
                if (reply.kind == CTL_REPLY_ERROR) {
                        r = reply.error;
                        call_fail(ctx, r, "%s", reply.message);
                        break;
                }
                /* Ours alone (ctl_reply_parse): the protocol's "ok" is no part of the result. */
                json_object_object_del(reply.obj, "ok");
                out.result = reply.obj;
                *ret = out;
                return 0;
        }
        cli_reply_done(&out);
        return r;
}

static void help(void) {
        printf("Usage: vtpmd-ctl [--control PATH] [--json] COMMAND [ARGS...]\n"
               "\n"
               "Manage the vTPMs of vtpmd, the Xen vTPM backend.\n"
               "\n"
               "Commands:\n");
        /* The whole usage, however long, and the summary below it: nothing cut off. */
        for (size_t i = 0; i < ELEMENTSOF(commands); i++)
                printf("  %s%s%s\n      %s\n", commands[i]->name, commands[i]->usage[0] ? " " : "",
                       commands[i]->usage, commands[i]->summary);
        printf("\n"
               "Options:\n"
               "  --control PATH   vtpmd's control socket (default: $VTPMD_CONTROL, else " DEFAULT_CONTROL ")\n"
               "  --json           machine-readable output\n"
               "  -h, --help       show this help ('vtpmd-ctl COMMAND --help' for a command)\n"
               "  --version        show the version\n");
}

/* Its own version and OpenSSL's (the library it links), then what vtpmd answers in status: its
 * version and those of libtpms, OpenSSL and tpm2-tss, or that it does not answer. */
static int version(CliContext *ctx) {
        CliReply reply = {};

        printf("vtpmd-ctl " VTPMD_VERSION " (%s)\n", OpenSSL_version(OPENSSL_VERSION));
        ctx->quiet = true;
        if (cli_call(ctx, &(CtlRequest){ .op = CTL_OP_STATUS }, -1, &reply) < 0)
                printf("vtpmd at %s: not reachable\n", ctx->control_path);
        else
                printf("vtpmd %s at %s: libtpms %s, %s, tpm2-tss %s\n", cli_str(reply.result, "version"),
                       ctx->control_path, cli_str(reply.result, "libtpms"), cli_str(reply.result, "openssl"),
                       cli_str(reply.result, "tpm2_tss"));
        cli_reply_done(&reply);
        return fflush(stdout) == 0 && !ferror(stdout) ? EXIT_SUCCESS : cli_fail("cannot write the output");
}

int main(int argc, char **argv) {
        enum { OPT_CONTROL = 0x100, OPT_JSON, OPT_VERSION };
        static const struct option options[] = {
                { "control", required_argument, NULL, OPT_CONTROL },
                { "json", no_argument, NULL, OPT_JSON },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, OPT_VERSION },
                {},
        };
        CliContext ctx = { .control_path = DEFAULT_CONTROL };
        const char *env = getenv("VTPMD_CONTROL");
        int c;

        if (env && *env)
                ctx.control_path = env;
        opterr = 0;
        while ((c = getopt_long(argc, argv, "+:h", options, NULL)) >= 0) {
                switch (c) {
                case OPT_CONTROL:
                        if (!*optarg)
                                return cli_usage_error("--control: empty path");
                        ctx.control_path = optarg;
                        break;
                case OPT_JSON:
                        ctx.json = true;
                        break;
                case 'h':
                        help();
                        return EXIT_SUCCESS;
                case OPT_VERSION:
                        return version(&ctx);
                case ':':
                        return cli_usage_error("missing argument to option %s (see vtpmd-ctl --help)",
                                               argv[optind - 1]);
                default:
                        return cli_usage_error("unknown option %s (see vtpmd-ctl --help)", argv[optind - 1]);
                }
        }
        if (optind >= argc)
                return cli_usage_error("no command given (see vtpmd-ctl --help)");
        /* "pool VERB": one command named "pool VERB", its argv starting at VERB. */
        char pool_name[32] = "";
        if (streq(argv[optind], "pool")) {
                if (optind + 1 >= argc)
                        return cli_usage_error("pool: no verb given (status, init, join, admit HOST, remove HOST, leave)");
                snprintf(pool_name, sizeof(pool_name), "pool %.20s", argv[++optind]);
        }
        for (size_t i = 0; i < ELEMENTSOF(commands); i++)
                if (streq(pool_name[0] ? pool_name : argv[optind], commands[i]->name)) {
                        int sub_argc = argc - optind;
                        char **sub_argv = argv + optind;
                        optind = 0; /* glibc: fully re-initialise getopt for the subcommand */
                        return cli_run(&ctx, commands[i], sub_argc, sub_argv);
                }
        return cli_usage_error("unknown command \"%.64s\" (see vtpmd-ctl --help)", argv[optind]);
}
