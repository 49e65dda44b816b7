/* SPDX-License-Identifier: BSD-3-Clause */
/* vtpmd-ctl import FILE: a vTPM exported by vtpmd-ctl export, on this host. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"
#include "vtpmd-ctl.h"

static int run(CliContext *ctx, int argc, char **argv) {
        enum { OPT_PASSPHRASE_FILE = 0x100, OPT_KEY_FILE };
        static const struct option options[] = {
                CLI_COMMON_OPTIONS,
                { "passphrase-file", required_argument, NULL, OPT_PASSPHRASE_FILE },
                { "key-file", required_argument, NULL, OPT_KEY_FILE },
                {},
        };
        CtlRequest req = { .op = CTL_OP_IMPORT };
        uint8_t hdr[CTL_EXPORT_HEADER_SIZE];
        CtlExportHeader h;
        CliKeyArgs ka = {};
        CliReply reply = {};
        _cleanup_close_ int fd = -1;
        const char *file;
        struct stat st;
        ssize_t n;
        int c, r;

        while ((c = getopt_long(argc, argv, ":h", options, NULL)) >= 0) {
                r = cli_common_option(ctx, &cmd_import, c, argv);
                if (r == CLI_CONTINUE)
                        continue;
                if (r >= 0)
                        return r;
                switch (c) {
                case OPT_PASSPHRASE_FILE:
                        ka.passphrase_file = optarg;
                        break;
                case OPT_KEY_FILE:
                        ka.key_file = optarg;
                        break;
                default:
                        return cli_fail("import: unexpected option");
                }
        }
        if (cli_positional(&cmd_import, argc, argv, 1) < 0)
                return EXIT_FAILURE;
        file = argv[optind];
        fd = open(file, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return cli_fail("import: cannot open %s: %s", file, strerror(errno));
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
                return cli_fail("import: %s is not a regular file", file);
        n = pread(fd, hdr, sizeof(hdr), 0);
        if (n < 0)
                return cli_fail("import: cannot read %s: %s", file, strerror(errno));
        r = n == (ssize_t) sizeof(hdr) ? ctl_export_header_parse(hdr, sizeof(hdr), true, &h) : -EBADMSG;
        if (r == -EPROTONOSUPPORT)
                return cli_fail("import: %s was written by an unknown version of vtpmd", file);
        if (r < 0)
                return cli_fail("import: %s is not a vtpmd export, or it is truncated", file);
        if (cli_key_for_import(&ka, &h.kdf, req.key) < 0)
                return EXIT_FAILURE;
        req.has_key = true;
        r = cli_call(ctx, &req, fd, &reply);
        ctl_request_done(&req);
        if (r < 0)
                return EXIT_FAILURE;
        if (ctx->json)
                cli_print_json(reply.result);
        else
                printf("%s\n", cli_str(reply.result, "uuid"));
        cli_reply_done(&reply);
        return EXIT_SUCCESS;
}

const Command cmd_import = {
        .name = "import",
        .usage = "FILE (--passphrase-file FILE | --key-file FILE)",
        .summary = "import a vTPM exported with vtpmd-ctl export; prints its UUID",
        .run = run,
};
