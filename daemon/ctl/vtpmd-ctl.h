/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vtpmd-ctl: a thin client of vtpmd's control socket. A subcommand is a
 * declaration (`Command`, one file each: cmd-<name>.c) in the table of
 * vtpmd-ctl.c; cli_run() (cli-run.c) is the one skeleton they all go
 * through. Errors are one line on stderr, "vtpmd-ctl: ...", and a non-zero
 * exit.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ctl.h"

struct json_object;
struct option;

typedef struct CliContext {
        const char *control_path;
        bool json;
        bool quiet; /* a failed request prints nothing (--version asking vtpmd) */
} CliContext;

/* The result of one request: list rows (an array, may be empty) and the final
 * reply object, without the protocol's "ok" member. */
typedef struct CliReply {
        struct json_object *items;
        struct json_object *result;
} CliReply;

/* Export keys: --passphrase-file (PBKDF2) or --key-file (32 bytes or 64 hex digits). */
typedef struct CliKeyArgs {
        const char *passphrase_file;
        const char *key_file;
} CliKeyArgs;

/* What a subcommand's arguments set, around its one request. */
typedef struct CliCall {
        CtlRequest req;
        CliKeyArgs key;   /* --passphrase-file / --key-file */
        const char *path; /* export --to FILE */
        char *tmp_path;   /* export: the file vtpmd writes, linked to path once complete */
        int pass_fd;      /* sent with the request (SCM_RIGHTS); -1: none */
} CliCall;

/*
 * cli_run() does, for every subcommand: the common options (--json, --help)
 * and the command's own, exactly n_positional arguments (a strict UUID if
 * uuid_argument), prepare, the request, complete, then the reply on stdout:
 * as JSON with --json, else through print. The hooks are optional; each
 * returns 0, or EXIT_FAILURE with its one error line printed.
 */
typedef struct Command {
        const char *name;
        const char *usage;   /* the arguments, for --help */
        const char *summary; /* one line */
        CtlOp op;
        unsigned n_positional;        /* 0 or 1 */
        bool uuid_argument;           /* the positional argument is the vTPM's UUID */
        bool replies_list;            /* --json prints the rows (list), not the result */
        const struct option *options; /* beyond --json and --help, ending in {}; NULL: none */
        /* One of options[] was given; arg is its argument or NULL. */
        int (*option)(CliCall *call, int c, const char *arg);
        /* An optional second positional argument (pcrread's BANK:PCRS); NULL: none taken. */
        int (*second)(CliCall *call, const char *arg);
        /* Every argument is parsed (arg: the positional one, or NULL). */
        int (*prepare)(CliCall *call, const char *arg);
        /* The request succeeded: what makes its result visible. */
        int (*complete)(CliCall *call);
        /* Human output of the reply; NULL: none. */
        void (*print)(const CliReply *reply);
} Command;

extern const Command cmd_create, cmd_list, cmd_show, cmd_destroy, cmd_export, cmd_import, cmd_reset, cmd_status,
        cmd_ca_cert, cmd_pool_status, cmd_pool_init, cmd_pool_join, cmd_pool_admit, cmd_pool_remove,
        cmd_pool_leave, cmd_ek_cert, cmd_restart, cmd_pcrread,
        cmd_backup;

/* Runs cmd (argv[0] is its name); returns the exit status. */
int cli_run(CliContext *ctx, const Command *cmd, int argc, char **argv);

/* Prints "vtpmd-ctl: <message>" and returns EXIT_FAILURE. */
int cli_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The same for a command line that cannot be parsed: returns CLI_EXIT_USAGE. */
#define CLI_EXIT_USAGE 2
int cli_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A failure once the command line is parsed: the one line on stderr and, with --json, a JSON
 * error object ({"error", "errno"}) on stdout. Returns r. */
int cli_request_fail(const CliContext *ctx, int r, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Sends req (with pass_fd as SCM_RIGHTS if >= 0) and collects the reply. On
 * failure prints the one-line reason and returns < 0. */
int cli_call(CliContext *ctx, const CtlRequest *req, int pass_fd, CliReply *ret);
void cli_reply_done(CliReply *r);
/* Strict UUID argument; prints the error. */
int cli_parse_uuid(const char *s, char ret[CTL_UUID_LEN]);
/* Prints a result object or the list rows as JSON. */
void cli_print_json(struct json_object *o);
/* A member as text for human output: "-" for null or missing. */
const char *cli_str(struct json_object *o, const char *key);
/* One line of human output: "<label padded> <value><suffix>". */
typedef struct CliRow {
        const char *key, *label, *suffix;
} CliRow;
/* The rows of o in order; with skip_missing, those o has no member for are left out. */
void cli_print_rows(struct json_object *o, const CliRow *rows, size_t n, int width, bool skip_missing);
/* Prints cmd's usage line and summary (its --help). */
void cli_usage(const Command *cmd);

/* --passphrase-file FILE and --key-file FILE, for a command's options[]. */
enum { CLI_OPT_PASSPHRASE_FILE = 0x200, CLI_OPT_KEY_FILE };
#define CLI_KEY_OPTIONS                                                                  \
        { "passphrase-file", required_argument, NULL, CLI_OPT_PASSPHRASE_FILE },         \
        { "key-file", required_argument, NULL, CLI_OPT_KEY_FILE }
/* Takes one of CLI_KEY_OPTIONS into call->key: 0, or -1 if c is none of them. */
int cli_key_option(CliCall *call, int c, const char *arg);
/* For export: a new salt when a passphrase is used. Prints the error. */
int cli_key_for_export(const CliKeyArgs *a, uint8_t key[CTL_KEY_SIZE], CtlKdfParams *ret_kdf);
/* For import: as the blob's header says. Prints the error. */
int cli_key_for_import(const CliKeyArgs *a, const CtlKdfParams *kdf, uint8_t key[CTL_KEY_SIZE]);
