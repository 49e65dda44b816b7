/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vtpmd-ctl export UUID --to FILE: the vTPM's state, encrypted to a key or
 * passphrase, for import on another host. vtpmd writes into a temporary file
 * we open (so it writes only where the caller may), which becomes FILE only
 * when complete; FILE is never overwritten.
 *
 * vtpmd-ctl backup UUID --to FILE: the same of an attached vTPM, while its
 * guest runs; import restores it.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"
#include "vtpmd-ctl.h"

enum { OPT_TO = 0x100 };

/* export or backup: the same file, the same keys. */
#define NAME(call) ctl_op_to_string((call)->req.op)

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

static int option(CliCall *call, int c, const char *arg) {
        if (c == OPT_TO) {
                call->path = arg;
                return 0;
        }
        return cli_key_option(call, c, arg) < 0 ? cli_fail("%s: unexpected option", NAME(call)) : 0;
}

static int prepare(CliCall *call, const char *arg) {
        const char *to = call->path;
        struct stat st;

        if (!to || !*to)
                return cli_fail("%s: --to FILE is required", NAME(call));
        if (lstat(to, &st) == 0)
                return cli_fail("%s: %s already exists; not overwriting it", NAME(call), to);
        if (cli_key_for_export(&call->key, call->req.key, &call->req.kdf) < 0)
                return EXIT_FAILURE;
        call->req.has_key = true;
        if (asprintf(&call->tmp_path, "%s.XXXXXX", to) < 0) {
                call->tmp_path = NULL;
                return cli_fail("out of memory");
        }
        call->pass_fd = mkostemp(call->tmp_path, O_CLOEXEC);
        if (call->pass_fd < 0) {
                int r = -errno;
                free(call->tmp_path);
                call->tmp_path = NULL;
                return cli_fail("%s: cannot create %s: %s", NAME(call), to, strerror(-r));
        }
        return 0;
}

/* vtpmd has written the whole file: only now does it get its name. */
static int complete(CliCall *call) {
        if (link(call->tmp_path, call->path) < 0)
                return cli_fail("%s: cannot create %s: %s", NAME(call), call->path, strerror(errno));
        (void) unlink(call->tmp_path);
        free(call->tmp_path);
        call->tmp_path = NULL;
        (void) sync_dir_of(call->path);
        return 0;
}

const Command cmd_export = {
        .name = "export",
        .usage = "UUID --to FILE (--passphrase-file FILE | --key-file FILE)",
        .summary = "write a detached vTPM's state to FILE, encrypted, for import on another host",
        .op = CTL_OP_EXPORT,
        .n_positional = 1,
        .uuid_argument = true,
        .options = (const struct option[]){ { "to", required_argument, NULL, OPT_TO }, CLI_KEY_OPTIONS, {} },
        .option = option,
        .prepare = prepare,
        .complete = complete,
};

const Command cmd_backup = {
        .name = "backup",
        .usage = "UUID|GUEST --to FILE (--passphrase-file FILE | --key-file FILE)",
        .summary = "write a vTPM's state to FILE as export does, also while its guest runs (import restores it)",
        .op = CTL_OP_BACKUP,
        .n_positional = 1,
        .uuid_argument = true,
        .options = (const struct option[]){ { "to", required_argument, NULL, OPT_TO }, CLI_KEY_OPTIONS, {} },
        .option = option,
        .prepare = prepare,
        .complete = complete,
};
