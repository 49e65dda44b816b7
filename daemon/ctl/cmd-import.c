/* SPDX-License-Identifier: BSD-3-Clause */
/* vtpmd-ctl import FILE: a vTPM exported by vtpmd-ctl export, on this host. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"
#include "vtpmd-ctl.h"

static int option(CliCall *call, int c, const char *arg) {
        return cli_key_option(call, c, arg) < 0 ? cli_fail("import: unexpected option") : 0;
}

/* The file is sent to vtpmd as an fd; its header says how the key is derived. */
static int prepare(CliCall *call, const char *file) {
        uint8_t hdr[CTL_EXPORT_HEADER_SIZE];
        CtlExportHeader h;
        struct stat st;
        ssize_t n;
        int r;

        call->pass_fd = open(file, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (call->pass_fd < 0)
                return cli_fail("import: cannot open %s: %s", file, strerror(errno));
        if (fstat(call->pass_fd, &st) < 0 || !S_ISREG(st.st_mode))
                return cli_fail("import: %s is not a regular file", file);
        n = pread(call->pass_fd, hdr, sizeof(hdr), 0);
        if (n < 0)
                return cli_fail("import: cannot read %s: %s", file, strerror(errno));
        r = n == (ssize_t) sizeof(hdr) ? ctl_export_header_parse(hdr, sizeof(hdr), true, &h) : -EBADMSG;
        if (r == -EPROTONOSUPPORT)
                return cli_fail("import: %s was written by an unknown version of vtpmd", file);
        if (r < 0)
                return cli_fail("import: %s is not a vtpmd export, or it is truncated", file);
        if (cli_key_for_import(&call->key, &h.kdf, call->req.key) < 0)
                return EXIT_FAILURE;
        call->req.has_key = true;
        return 0;
}

static void print(const CliReply *reply) {
        printf("%s\n", cli_str(reply->result, "uuid"));
}

const Command cmd_import = {
        .name = "import",
        .usage = "FILE (--passphrase-file FILE | --key-file FILE)",
        .summary = "import a vTPM exported with vtpmd-ctl export; prints its UUID",
        .op = CTL_OP_IMPORT,
        .n_positional = 1,
        .options = (const struct option[]){ CLI_KEY_OPTIONS, {} },
        .option = option,
        .prepare = prepare,
        .print = print,
};
