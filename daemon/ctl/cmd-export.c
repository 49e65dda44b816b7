/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vtpmd-ctl export UUID --to FILE: the vTPM's state, encrypted to a key or
 * passphrase, for import on another host. vtpmd writes into a temporary file
 * we open (so it writes only where the caller may), which becomes FILE only
 * when complete; FILE is never overwritten.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <json-c/json.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"
#include "vtpmd-ctl.h"

static int sync_dir_of(const char *path) {
        _cleanup_free_ char *copy = strdup(path);
        _cleanup_close_ int fd = -1;

        if (!copy)
                return -ENOMEM;
        fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0 || fsync(fd) < 0)
                return negative_errno();
        return 0;
}

static int run(CliContext *ctx, int argc, char **argv) {
        enum { OPT_TO = 0x100, OPT_PASSPHRASE_FILE, OPT_KEY_FILE };
        static const struct option options[] = {
                CLI_COMMON_OPTIONS,
                { "to", required_argument, NULL, OPT_TO },
                { "passphrase-file", required_argument, NULL, OPT_PASSPHRASE_FILE },
                { "key-file", required_argument, NULL, OPT_KEY_FILE },
                {},
        };
        CtlRequest req = { .op = CTL_OP_EXPORT };
        CliKeyArgs ka = {};
        CliReply reply = {};
        const char *to = NULL;
        _cleanup_free_ char *tmp = NULL;
        _cleanup_close_ int fd = -1;
        struct stat st;
        int c, r;

        while ((c = getopt_long(argc, argv, ":h", options, NULL)) >= 0) {
                r = cli_common_option(ctx, &cmd_export, c, argv);
                if (r == CLI_CONTINUE)
                        continue;
                if (r >= 0)
                        return r;
                switch (c) {
                case OPT_TO:
                        to = optarg;
                        break;
                case OPT_PASSPHRASE_FILE:
                        ka.passphrase_file = optarg;
                        break;
                case OPT_KEY_FILE:
                        ka.key_file = optarg;
                        break;
                default:
                        return cli_fail("export: unexpected option");
                }
        }
        if (cli_positional(&cmd_export, argc, argv, 1) < 0 || cli_parse_uuid(argv[optind], req.uuid) < 0)
                return EXIT_FAILURE;
        req.has_uuid = true;
        if (!to || !*to)
                return cli_fail("export: --to FILE is required");
        if (lstat(to, &st) == 0)
                return cli_fail("export: %s already exists; not overwriting it", to);
        if (cli_key_for_export(&ka, req.key, &req.kdf) < 0)
                return EXIT_FAILURE;
        req.has_key = true;

        if (asprintf(&tmp, "%s.XXXXXX", to) < 0) {
                ctl_request_done(&req);
                return cli_fail("out of memory");
        }
        fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0) {
                r = -errno;
                ctl_request_done(&req);
                return cli_fail("export: cannot create %s: %s", to, strerror(-r));
        }
        r = cli_call(ctx, &req, fd, &reply);
        ctl_request_done(&req);
        if (r >= 0 && link(tmp, to) < 0) {
                r = -errno;
                cli_fail("export: cannot create %s: %s", to, strerror(-r));
        }
        (void) unlink(tmp);
        if (r < 0)
                return EXIT_FAILURE;
        (void) sync_dir_of(to);
        if (ctx->json)
                cli_print_json(reply.result);
        cli_reply_done(&reply);
        return EXIT_SUCCESS;
}

const Command cmd_export = {
        .name = "export",
        .usage = "UUID --to FILE (--passphrase-file FILE | --key-file FILE)",
        .summary = "write a detached vTPM's state to FILE, encrypted, for import on another host",
        .run = run,
};
