/* SPDX-License-Identifier: BSD-3-Clause */
/* The one skeleton of every vtpmd-ctl subcommand (vtpmd-ctl.h). */
#include <assert.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"
#include "vtpmd-ctl.h"

/* The longest option table of a subcommand (create's six) and the common two, with room to grow. */
#define CLI_OPTIONS_MAX 16
enum { OPT_JSON = 0x1000 };

static void options_merge(const Command *cmd, struct option out[CLI_OPTIONS_MAX]) {
        size_t n = 0;

        out[n++] = (struct option){ "json", no_argument, NULL, OPT_JSON };
        out[n++] = (struct option){ "help", no_argument, NULL, 'h' };
        for (const struct option *o = cmd->options; o && o->name; o++) {
                assert(n < CLI_OPTIONS_MAX - 1);
                out[n++] = *o;
        }
        out[n] = (struct option){};
}

static int positional(const Command *cmd, int argc, char **argv) {
        int n = (int) cmd->n_positional;

        if (argc - optind == n)
                return 0;
        if (argc - optind < n)
                return cli_usage_error("%s: missing argument (usage: vtpmd-ctl %s %s)", cmd->name, cmd->name,
                                       cmd->usage);
        return cli_usage_error("%s: unexpected argument \"%.64s\"", cmd->name, argv[optind + n]);
}

/* Everything before the request. Returns -1 to go on, else the exit status. */
static int parse(CliContext *ctx, const Command *cmd, CliCall *call, int argc, char **argv) {
        struct option options[CLI_OPTIONS_MAX];
        const char *arg = NULL;
        int c, r;

        options_merge(cmd, options);
        while ((c = getopt_long(argc, argv, ":h", options, NULL)) >= 0)
                switch (c) {
                case OPT_JSON:
                        ctx->json = true;
                        break;
                case 'h':
                        cli_usage(cmd);
                        return EXIT_SUCCESS;
                case '?':
                case ':':
                        return cli_usage_error("%s: %s option %s (see vtpmd-ctl %s --help)", cmd->name,
                                        c == ':' ? "missing argument to" : "unknown", argv[optind - 1], cmd->name);
                default:
                        /* getopt returns only what the table holds: c is one of cmd->options. */
                        r = cmd->option(call, c, optarg);
                        if (r != 0)
                                return r;
                }
        if ((r = positional(cmd, argc, argv)) != 0)
                return r;
        if (cmd->n_positional > 0)
                arg = argv[optind];
        if (cmd->uuid_argument) {
                if (cli_parse_uuid(arg, call->req.uuid) < 0)
                        return EXIT_FAILURE;
                call->req.has_uuid = true;
        }
        if (cmd->prepare && (r = cmd->prepare(call, arg)) != 0)
                return r;
        return -1;
}

int cli_run(CliContext *ctx, const Command *cmd, int argc, char **argv) {
        CliCall call = { .req = { .op = cmd->op }, .pass_fd = -1 };
        CliReply reply = {};
        int r;

        r = parse(ctx, cmd, &call, argc, argv);
        if (r < 0) {
                r = cli_call(ctx, &call.req, call.pass_fd, &reply) < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
                if (r == EXIT_SUCCESS && cmd->complete)
                        r = cmd->complete(&call);
        }
        /* The request's key is wiped whatever happened. */
        ctl_request_done(&call.req);
        if (call.tmp_path)
                (void) unlink(call.tmp_path);
        free(call.tmp_path);
        safe_close(call.pass_fd);
        if (r == EXIT_SUCCESS && (reply.items || reply.result)) {
                if (ctx->json)
                        cli_print_json(cmd->replies_list ? reply.items : reply.result);
                else if (cmd->print)
                        cmd->print(&reply);
                /* A full disk or a closed pipe: the output is lost, and a script must know. The command
                 * itself happened, so what it made (a new vTPM's UUID) goes to stderr. */
                if (fflush(stdout) != 0 || ferror(stdout)) {
                        int e = errno ?: EIO;
                        const char *uuid = reply.result ? cli_str(reply.result, "uuid") : "-";
                        if (streq(uuid, "-"))
                                cli_fail("%s: cannot write the output: %s (the command itself succeeded)", cmd->name,
                                         strerror(e));
                        else
                                cli_fail("%s: cannot write the output: %s (the command itself succeeded: vTPM %s)",
                                         cmd->name, strerror(e), uuid);
                        r = EXIT_FAILURE;
                }
        }
        cli_reply_done(&reply);
        return r;
}
