/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Pure codec for the xenstore wire protocol (xs_wire.h, docs/misc/xenstore.txt,
 * semantics of Xen 4.17 xenstored): frame header, payload splitting, the
 * permission strings, node-name validation and the error-name table.
 *
 * No I/O and no logging: the simulated xenstored and the fuzzer drive it with
 * byte arrays. Every function accepts arbitrary client bytes.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* struct xsd_sockmsg: four host-endian uint32_t. */
#define XSWIRE_HDR_SIZE 16u
/* XENSTORE_PAYLOAD_MAX: the daemon drops a client that announces more. */
#define XSWIRE_PAYLOAD_MAX 4096u
#define XSWIRE_FRAME_MAX (XSWIRE_HDR_SIZE + XSWIRE_PAYLOAD_MAX)
/* XENSTORE_REL_PATH_MAX: 4.17 xenstored's default quota_max_path_len. */
#define XSWIRE_REL_PATH_MAX 2048u

/* enum xsd_sockmsg_type (Xen 4.17). */
enum {
        XSWIRE_CONTROL = 0,
        XSWIRE_DIRECTORY = 1,
        XSWIRE_READ = 2,
        XSWIRE_GET_PERMS = 3,
        XSWIRE_WATCH = 4,
        XSWIRE_UNWATCH = 5,
        XSWIRE_TRANSACTION_START = 6,
        XSWIRE_TRANSACTION_END = 7,
        XSWIRE_INTRODUCE = 8,
        XSWIRE_RELEASE = 9,
        XSWIRE_GET_DOMAIN_PATH = 10,
        XSWIRE_WRITE = 11,
        XSWIRE_MKDIR = 12,
        XSWIRE_RM = 13,
        XSWIRE_SET_PERMS = 14,
        XSWIRE_WATCH_EVENT = 15,
        XSWIRE_ERROR = 16,
        XSWIRE_IS_DOMAIN_INTRODUCED = 17,
        XSWIRE_RESUME = 18,
        XSWIRE_SET_TARGET = 19,
        /* 20 was XS_RESTRICT, removed */
        XSWIRE_RESET_WATCHES = 21,
        XSWIRE_DIRECTORY_PART = 22,
        XSWIRE_TYPE_COUNT = 23,
};

/* Permission bits as in xenstore_lib.h (XS_PERM_*). */
#define XSWIRE_PERM_NONE 0x00u
#define XSWIRE_PERM_READ 0x01u
#define XSWIRE_PERM_WRITE 0x02u
#define XSWIRE_PERM_OWNER 0x08u
/* Entry names a domain that no longer exists: kept, but never matches. */
#define XSWIRE_PERM_IGNORE 0x10u

/* Longest perm string: one letter, "%i" of a 32-bit id, NUL. */
#define XSWIRE_PERM_STRLEN_MAX 13u

typedef struct XsWireHeader {
        uint32_t type;
        uint32_t req_id;
        uint32_t tx_id;
        uint32_t len;
} XsWireHeader;

typedef struct XsWirePerm {
        uint32_t domid;
        uint32_t perms;
} XsWirePerm;

/* Looks at the first avail bytes of a stream. Returns 1 and the header when a
 * whole frame (header + payload) is there, 0 if more bytes are needed, -E2BIG
 * if the header announces a payload above XSWIRE_PAYLOAD_MAX (the real daemon
 * then drops the connection). */
int xswire_frame_peek(const uint8_t *buf, size_t avail, XsWireHeader *ret);

void xswire_header_encode(const XsWireHeader *h, uint8_t out[static XSWIRE_HDR_SIZE]);

/* Builds a whole frame (header + payload) in out, which must hold
 * XSWIRE_HDR_SIZE + len bytes. h->len is ignored. Returns the frame size or
 * -E2BIG if len exceeds XSWIRE_PAYLOAD_MAX. */
int xswire_frame_build(const XsWireHeader *h, const void *payload, size_t len, uint8_t *out,
                       size_t out_size);

/* Number of NUL bytes in the payload (xs_count_strings). */
size_t xswire_count_strings(const uint8_t *p, size_t len);

/* The payload is exactly one string: one NUL, at the end (onearg()). */
int xswire_onearg(const uint8_t *p, size_t len, const char **ret);

/* Splits the NUL-terminated strings at the start of the payload into vec (up
 * to n of them). Returns the number of NUL-terminated strings in the payload,
 * which may exceed n; bytes after the last NUL are ignored (get_strings()). */
size_t xswire_strings(const uint8_t *p, size_t len, const char **vec, size_t n);

/* WRITE: "<path>\0<value>" where the value is any bytes, NULs included. */
int xswire_write_args(const uint8_t *p, size_t len, const char **ret_path,
                      const uint8_t **ret_value, size_t *ret_value_len);

/* One perm string "<r|w|b|n><domid>" (xs_strings_to_perms: the id is parsed
 * with strtol base 0, must be non-empty and fully consumed). */
int xswire_perm_parse(const char *s, XsWirePerm *ret);
/* SET_PERMS: "<path>\0<perm>\0..." with at least one perm. *ret_perms is
 * malloc()ed; *ret_path points into p. */
int xswire_set_perms_args(const uint8_t *p, size_t len, const char **ret_path,
                          XsWirePerm **ret_perms, size_t *ret_n);
/* Formats like xs_perm_to_string ("%c%i"); the IGNORE flag is not shown.
 * Returns the length without NUL or -EINVAL for an invalid perms value. */
int xswire_perm_format(const XsWirePerm *perm, char buf[static XSWIRE_PERM_STRLEN_MAX]);

/* is_valid_nodename() of 4.17: absolute, no "//", no trailing '/' except "/",
 * characters [A-Za-z0-9/_@-], at most XSWIRE_REL_PATH_MAX bytes after a
 * leading "/local/domain/<id>/" (or in total without one). */
bool xswire_path_valid(const char *path);

/* canonicalize(): paths starting with '/' or '@' are returned as they are;
 * anything else is made relative to prefix ("/local/domain/<domid>"). Returns
 * a malloc()ed string. No validation: call xswire_path_valid() after. */
int xswire_path_canonicalize(const char *path, const char *prefix, char **ret);

/* Parent path ("/" for top-level nodes and for "/"), malloc()ed. */
int xswire_path_parent(const char *path, char **ret);

/* Watch matching: child equals parent or lies below it; everything lies below
 * "/". */
bool xswire_path_is_child(const char *child, const char *parent);

/* Error name for a positive errno; anything outside the xsd_errors table
 * becomes "EINVAL", like send_error(). */
const char *xswire_error_name(int errnum);
/* Positive errno for an error name from the table, or -EINVAL. */
int xswire_error_parse(const char *name);

/* Name of a message type, "UNKNOWN" if out of range. */
const char *xswire_type_name(uint32_t type);

/* WATCH_EVENT payload "<path>\0<token>\0" into out (XSWIRE_PAYLOAD_MAX bytes).
 * Returns its length, or -E2BIG: the real daemon silently drops such events. */
int xswire_event_payload(const char *path, const char *token, uint8_t out[static XSWIRE_PAYLOAD_MAX]);

/* atoi() exactly as xenstored applies it to domids and ports. */
int xswire_atoi(const char *s);
