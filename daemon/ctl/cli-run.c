/* SPDX-License-Identifier: BSD-3-Clause */
/* The one skeleton of every vtpmd-ctl subcommand (vtpmd-ctl.h). */
#include <assert.h>
#include <errno.h>
#include <getopt.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "parse.h"
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

        if (argc - optind == n || (cmd->second && n > 0 && argc - optind == n + 1))
                return 0;
        if (argc - optind < n)
                return cli_usage_error("%s: missing argument (usage: vtpmd-ctl %s %s)", cmd->name, cmd->name,
                                       cmd->usage);
        return cli_usage_error("%s: unexpected argument \"%.64s\"", cmd->name, argv[optind + n + !!cmd->second]);
}

/* A UUID argument that is not a UUID may name a guest: the one vTPM attached
 * to the guest of that name (list's rows) is meant. Prints the error. */
static int resolve_vtpm(CliContext *ctx, const Command *cmd, const char *arg, char ret[CTL_UUID_LEN]) {
        CliReply reply = {};
        const char *found = NULL;
        char others[3 * CTL_UUID_LEN + 8] = "";
        size_t n = 0;
        int r;

        if (parse_uuid(arg, ret) >= 0)
                return 0;
        if (!ctl_guest_name_valid(arg))
                return cli_parse_uuid(arg, ret);
        if (cli_call(ctx, &(CtlRequest){ .op = CTL_OP_LIST }, -1, &reply) < 0)
                return -EIO;
        for (size_t i = 0; i < json_object_array_length(reply.items); i++) {
                json_object *o = json_object_array_get_idx(reply.items, i);
                if (!streq(cli_str(o, "name"), arg))
                        continue;
                if (n++ == 0)
                        found = cli_str(o, "uuid");
                else if (n <= 3)
                        snprintf(others + strlen(others), sizeof(others) - strlen(others), "%s%s",
                                 others[0] ? ", " : "", cli_str(o, "uuid"));
        }
        r = n == 1 ? 0 : n == 0 ? -ENOENT : -ENOTUNIQ;
        if (n == 1 && parse_uuid(found, ret) < 0)
                r = cli_request_fail(ctx, -EBADMSG, "%s: malformed list reply", cmd->name);
        if (n == 0)
                cli_request_fail(ctx, r, "%s: not a UUID, and no guest with a vTPM attached is named \"%s\" "
                                 "(vtpmd-ctl list shows both)", cmd->name, arg);
        if (n > 1)
                cli_request_fail(ctx, r, "%s: guest \"%s\" has %zu vTPMs attached (%s, %s%s): give the UUID",
                                 cmd->name, arg, n, found, others, n > 3 ? ", ..." : "");
        cli_reply_done(&reply);
        return r;
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
        if (cmd->second && optind + (int) cmd->n_positional < argc &&
            (r = cmd->second(call, argv[optind + cmd->n_positional])) != 0)
                return r;
        if (cmd->uuid_argument) {
                if (resolve_vtpm(ctx, cmd, arg, call->req.uuid) < 0)
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
