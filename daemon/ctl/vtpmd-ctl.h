/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vtpmd-ctl: a thin client of vtpmd's control socket. One file per
 * subcommand (cmd-<name>.c), each a `Command` in the table of vtpmd-ctl.c.
 * Errors are one line on stderr, "vtpmd-ctl: ...", and a non-zero exit.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "ctl.h"

struct json_object;

typedef struct CliContext {
        const char *control_path;
        bool json;
} CliContext;

typedef struct Command {
        const char *name;
        const char *usage;   /* the arguments, for --help */
        const char *summary; /* one line */
        int (*run)(CliContext *ctx, int argc, char **argv); /* argv[0] is the command; returns an exit status */
} Command;

/* The result of one request: list rows (an array, may be empty) and the final
 * reply object, without the protocol's "ok" member. */
typedef struct CliReply {
        struct json_object *items;
        struct json_object *result;
} CliReply;

/* Prints "vtpmd-ctl: <message>" and returns EXIT_FAILURE. */
int cli_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
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
/* Prints cmd's usage line and summary (its --help). */
void cli_usage(const Command *cmd);

/* Export keys: --passphrase-file (PBKDF2) or --key-file (32 bytes or 64 hex digits). */
typedef struct CliKeyArgs {
        const char *passphrase_file;
        const char *key_file;
} CliKeyArgs;
/* For export: a new salt when a passphrase is used. Prints the error. */
int cli_key_for_export(const CliKeyArgs *a, uint8_t key[CTL_KEY_SIZE], CtlKdfParams *ret_kdf);
/* For import: as the blob's header says. Prints the error. */
int cli_key_for_import(const CliKeyArgs *a, const CtlKdfParams *kdf, uint8_t key[CTL_KEY_SIZE]);

extern const Command cmd_create, cmd_list, cmd_show, cmd_destroy, cmd_export, cmd_import, cmd_reset, cmd_status,
        cmd_ca_cert;

/* Options every subcommand takes. */
#define CLI_OPT_JSON 0x1000
#define CLI_COMMON_OPTIONS { "json", no_argument, NULL, CLI_OPT_JSON }, { "help", no_argument, NULL, 'h' }
/* Handles a getopt result common to all subcommands: returns -1 if c is not
 * one of them, else an exit status to return (>= 0) or CLI_CONTINUE. */
#define CLI_CONTINUE 0x7fff
int cli_common_option(CliContext *ctx, const Command *cmd, int c, char **argv);
/* The positional arguments: exactly n of them, else prints the error. */
int cli_positional(const Command *cmd, int argc, char **argv, int n);
/* All the argument handling of a subcommand without options of its own: the
 * common options, then exactly n_positional arguments (argv[optind] on). Returns
 * CLI_CONTINUE to go on, else an exit status to return (help printed, or the
 * error). */
int cli_simple_args(CliContext *ctx, const Command *cmd, int argc, char **argv, int n_positional);
