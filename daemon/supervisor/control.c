/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The control socket. Each client is a small state machine: read one request
 * (one packet), run it (admin.c), queue its reply packets, send them as the
 * client reads, read the next request. Input is not read while a request is
 * running, so a client can have at most one request in flight; a client that
 * sends garbage gets an error reply, one that vanishes mid-request is
 * forgotten (its request still completes, the reply is dropped). A client
 * idle for CONTROL_IDLE_USEC (no request, or its replies not read) is told
 * so and closed; beyond CONTROL_MAX_CLIENTS a new client is told "too many
 * control clients" and closed. Every close after a reply is a shutdown
 * first and a drain of what the client sent: closing a socket with unread
 * input would make the client's next recv fail with ECONNRESET before it
 * reads the reply.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "admin.h"
#include "clock.h"
#include "control.h"
#include "ctl.h"
#include "log.h"
#include "ratelimit.h"
#include "util.h"

#ifndef SO_PEERGROUPS
#define SO_PEERGROUPS 59 /* Linux 4.13 */
#endif

#define CONTROL_BACKLOG 64
#define CONTROL_MAX_GROUPS 65536u /* NGROUPS_MAX on Linux */

typedef struct Packet {
        struct Packet *next;
        size_t len;
        char data[];
} Packet;

typedef struct Client Client;

typedef struct CallBox {
        AdminCall call;
        Client *client; /* NULL once the client is gone */
} CallBox;

struct Client {
        Control *control;
        int fd;
        sd_event_source *io;
        sd_event_source *idle; /* CONTROL_IDLE_USEC without progress: closed */
        uid_t uid;
        pid_t pid;
        Packet *out_head, *out_tail;
        CallBox *box;       /* the request being run */
        bool close_when_sent;
        bool dispatching;   /* inside admin_run: the caller updates the events */
        Client *next;
};

struct Control {
        const AdminContext *admin;
        char *path;
        int fd;
        sd_event_source *io;
        gid_t gid;
        bool have_gid;
        Client *clients;
        unsigned n_clients;
        RateLimit refuse_limit; /* "too many control clients" lines */
};

/* A client is done with: no more input (a send gets EPIPE), what it sent
 * and we did not read thrown away, then closed. Bounded: a client that keeps
 * sending cannot hold us here. */
static void close_drained(int fd) {
        if (fd < 0)
                return;
        (void) shutdown(fd, SHUT_RDWR);
        for (unsigned i = 0; i < 256; i++) {
                char b;
                ssize_t n = recv(fd, &b, 1, MSG_DONTWAIT | MSG_TRUNC);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        break;
        }
        safe_close(fd);
}

static void client_free(Client *cl) {
        Control *c;

        if (!cl)
                return;
        c = cl->control;
        for (Client **p = &c->clients; *p; p = &(*p)->next)
                if (*p == cl) {
                        *p = cl->next;
                        c->n_clients--;
                        break;
                }
        if (cl->box)
                cl->box->client = NULL; /* the request finishes on its own; its reply is dropped */
        while (cl->out_head) {
                Packet *p = cl->out_head;
                cl->out_head = p->next;
                free(p);
        }
        sd_event_source_disable_unref(cl->io);
        sd_event_source_disable_unref(cl->idle);
        close_drained(cl->fd);
        free(cl);
}

/* Returns false if the client is gone (freed). */
static bool client_update_events(Client *cl) {
        uint32_t ev = 0;

        /* One request at a time, and the next only once the last reply is
         * sent: a client that never reads cannot make us queue replies. */
        if (!cl->box && !cl->out_head && !cl->close_when_sent)
                ev |= EPOLLIN | EPOLLRDHUP;
        if (cl->out_head)
                ev |= EPOLLOUT;
        if (ev == 0 && cl->close_when_sent) {
                client_free(cl);
                return false;
        }
        (void) sd_event_source_set_io_events(cl->io, ev);
        return true;
}

static void client_queue(Client *cl, char *data, size_t len) {
        Packet *p = malloc(sizeof(*p) + len);

        if (!p) {
                /* Cannot answer: the client sees the connection end instead of a reply. */
                cl->close_when_sent = true;
                return;
        }
        p->next = NULL;
        p->len = len;
        memcpy(p->data, data, len);
        if (cl->out_tail)
                cl->out_tail->next = p;
        else
                cl->out_head = p;
        cl->out_tail = p;
}

static void client_queue_error(Client *cl, int error, const char *message) {
        _cleanup_free_ char *s = NULL;
        size_t n = 0;

        if (ctl_reply_encode_error(error, message, &s, &n) < 0) {
                cl->close_when_sent = true;
                return;
        }
        client_queue(cl, s, n);
}

static int client_idle_cb(sd_event_source *s, uint64_t usec, void *userdata);

/* Progress (a request read, a reply sent): the idle deadline starts again. */
static void client_touch(Client *cl) {
        uint64_t now = 0;
        (void) sd_event_now(cl->control->admin->event, CLOCK_MONOTONIC, &now);
        if (!cl->idle) {
                if (sd_event_add_time(cl->control->admin->event, &cl->idle, CLOCK_MONOTONIC, now + CONTROL_IDLE_USEC,
                                      0, client_idle_cb, cl) < 0)
                        cl->idle = NULL; /* no deadline: the client is only closed by its own doing */
                return;
        }
        (void) sd_event_source_set_time(cl->idle, now + CONTROL_IDLE_USEC);
        (void) sd_event_source_set_enabled(cl->idle, SD_EVENT_ONESHOT);
}

static bool client_write(Client *cl);

static int client_idle_cb(sd_event_source *s, uint64_t usec, void *userdata) {
        Client *cl = userdata;

        /* Its request is still running (manufacturing, a destroy waiting for
         * a worker): that is vtpmd's time, not the client's. */
        if (cl->box) {
                client_touch(cl);
                return 0;
        }
        if (cl->out_head) {
                log_msg(LOG_INFO, "Control client pid %d uid %u has not read its reply for %u s: closing",
                        (int) cl->pid, (unsigned) cl->uid, (unsigned) (CONTROL_IDLE_USEC / 1000000u));
                client_free(cl);
                return 0;
        }
        log_msg(LOG_INFO, "Control client pid %d uid %u sent no request for %u s: closing", (int) cl->pid,
                (unsigned) cl->uid, (unsigned) (CONTROL_IDLE_USEC / 1000000u));
        client_queue_error(cl, -ETIMEDOUT, "idle for too long: closing the connection");
        cl->close_when_sent = true;
        /* Once: a client that does not take it now is not waited for. */
        if (client_write(cl) && cl->out_head)
                client_free(cl);
        return 0;
}

static void call_item(AdminCall *call, json_object *item) {
        CallBox *box = (CallBox *) call;
        _cleanup_free_ char *s = NULL;
        size_t n = 0;

        if (!box->client)
                return;
        if (ctl_reply_encode_item(item, &s, &n) < 0)
                return; /* a row over the packet limit cannot happen: every field is bounded */
        client_queue(box->client, s, n);
}

static void call_finish(AdminCall *call, int error, const char *message, json_object *result) {
        CallBox *box = (CallBox *) call;
        Client *cl = box->client;
        _cleanup_free_ char *s = NULL;
        size_t n = 0;
        int r;

        free(box);
        if (!cl)
                return;
        cl->box = NULL;
        if (error < 0)
                client_queue_error(cl, error, message);
        else {
                r = ctl_reply_encode_ok(result, &s, &n);
                if (r < 0)
                        client_queue_error(cl, r, "reply too large");
                else
                        client_queue(cl, s, n);
        }
        if (!cl->dispatching)
                (void) client_update_events(cl);
}

static void client_handle_packet(Client *cl, const uint8_t *buf, size_t len, int fd) {
        Control *c = cl->control;
        _cleanup_close_ int passed = fd;
        CallBox *box;
        CtlRequest req;
        int r;

        r = ctl_request_parse(buf, len, &req);
        if (r < 0) {
                log_msg(LOG_DEBUG, "Control client pid %d sent a malformed request (%zu bytes)", (int) cl->pid, len);
                client_queue_error(cl, -EBADMSG, "malformed request");
                return;
        }
        if (ctl_op_takes_fd(req.op) != (passed >= 0)) {
                ctl_request_done(&req);
                client_queue_error(cl, -EBADMSG, passed >= 0 ? "unexpected file descriptor"
                                                             : "this request needs a file descriptor");
                return;
        }
        box = calloc(1, sizeof(*box));
        if (!box) {
                ctl_request_done(&req);
                client_queue_error(cl, -ENOMEM, "out of memory");
                return;
        }
        box->client = cl;
        box->call = (AdminCall){
                .ctx = c->admin,
                .req = req,
                .fd = TAKE_FD(passed),
                .item = call_item,
                .finish = call_finish,
        };
        explicit_wipe(&req, sizeof(req));
        cl->box = box;
        cl->dispatching = true;
        log_msg(LOG_DEBUG, "Control client pid %d uid %u: %s", (int) cl->pid, (unsigned) cl->uid,
                ctl_op_to_string(box->call.req.op));
        admin_run(&box->call);
        cl->dispatching = false;
}

static void client_read(Client *cl, uint32_t revents) {
        uint8_t buf[CTL_MAX_PACKET];
        union {
                struct cmsghdr h;
                uint8_t raw[CMSG_SPACE(sizeof(int) * 4)];
        } control;
        struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.raw,
                             .msg_controllen = sizeof(control.raw) };
        int fds[4], n_fds = 0;
        ssize_t n;

        n = recvmsg(cl->fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
                return;
        /* 0 is the end, or an empty packet: garbage like any other while the peer is still there. */
        if (n < 0 || (n == 0 && (revents & (EPOLLHUP | EPOLLRDHUP)))) {
                client_free(cl);
                return;
        }
        client_touch(cl);
        for (struct cmsghdr *h = CMSG_FIRSTHDR(&mh); h; h = CMSG_NXTHDR(&mh, h))
                if (h->cmsg_level == SOL_SOCKET && h->cmsg_type == SCM_RIGHTS) {
                        size_t k = (h->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                        for (size_t i = 0; i < k && n_fds < (int) ELEMENTSOF(fds); i++)
                                memcpy(&fds[n_fds++], CMSG_DATA(h) + i * sizeof(int), sizeof(int));
                }
        if ((mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) || n_fds > 1) {
                for (int i = 0; i < n_fds; i++)
                        safe_close(fds[i]);
                client_queue_error(cl, -EMSGSIZE, (mh.msg_flags & MSG_TRUNC) ? "request too large"
                                                                               : "too many file descriptors");
        } else
                client_handle_packet(cl, buf, (size_t) n, n_fds ? fds[0] : -1);
        (void) client_update_events(cl);
}

/* Returns false if the client is gone (freed). */
static bool client_write(Client *cl) {
        while (cl->out_head) {
                Packet *p = cl->out_head;
                ssize_t n = send(cl->fd, p->data, p->len, MSG_DONTWAIT | MSG_NOSIGNAL);

                if (n < 0 && (errno == EAGAIN || errno == EINTR))
                        break;
                if (n < 0) {
                        client_free(cl);
                        return false;
                }
                cl->out_head = p->next;
                if (!cl->out_head)
                        cl->out_tail = NULL;
                free(p);
                client_touch(cl);
        }
        return client_update_events(cl);
}

static int client_io_cb(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Client *cl = userdata;

        /* Writing may free the client (an error, or all sent before a close). */
        if ((revents & EPOLLOUT) && !client_write(cl))
                return 0;
        if (revents & (EPOLLIN | EPOLLRDHUP)) {
                client_read(cl, revents);
                return 0;
        }
        if (revents & (EPOLLHUP | EPOLLERR))
                client_free(cl);
        return 0;
}

static bool peer_in_group(int fd, gid_t gid) {
        gid_t small[64];
        _cleanup_free_ gid_t *big = NULL;
        gid_t *groups = small;
        socklen_t len = sizeof(small);

        if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) < 0) {
                if (errno != ERANGE || len == 0 || len > CONTROL_MAX_GROUPS * sizeof(gid_t))
                        return false;
                big = malloc(len);
                if (!big)
                        return false;
                groups = big;
                if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) < 0)
                        return false;
        }
        for (size_t i = 0; i < len / sizeof(gid_t); i++)
                if (groups[i] == gid)
                        return true;
        return false;
}

static int listen_io_cb(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Control *c = userdata;
        _cleanup_close_ int cfd = -1;
        struct ucred cred;
        socklen_t len = sizeof(cred);
        bool allowed;
        Client *cl;
        int r;

        cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (cfd < 0)
                return 0;
        if (c->n_clients >= CONTROL_MAX_CLIENTS) {
                _cleanup_free_ char *msg = NULL;
                size_t n = 0;
                unsigned dropped = 0;
                if (ratelimit_below(&c->refuse_limit, now_ns(), &dropped))
                        log_msg(LOG_WARNING, "Control socket: %u clients connected, refusing another%s", c->n_clients,
                                dropped ? " (and more refused before, not logged)" : "");
                /* One packet into an empty socket buffer: it cannot block. */
                if (ctl_reply_encode_error(-EUSERS, "too many control clients", &msg, &n) >= 0)
                        (void) send(cfd, msg, n, MSG_DONTWAIT | MSG_NOSIGNAL);
                close_drained(TAKE_FD(cfd));
                return 0;
        }
        if (getsockopt(cfd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 || len != sizeof(cred))
                return 0;
        allowed = cred.uid == 0 || cred.uid == geteuid() ||
                  (c->have_gid && (cred.gid == c->gid || peer_in_group(cfd, c->gid)));

        cl = calloc(1, sizeof(*cl));
        if (!cl)
                return 0;
        *cl = (Client){ .control = c, .fd = TAKE_FD(cfd), .uid = cred.uid, .pid = cred.pid };
        r = sd_event_add_io(c->admin->event, &cl->io, cl->fd, EPOLLIN | EPOLLRDHUP, client_io_cb, cl);
        if (r < 0) {
                safe_close(cl->fd);
                free(cl);
                return 0;
        }
        cl->next = c->clients;
        c->clients = cl;
        c->n_clients++;
        client_touch(cl);
        if (!allowed) {
                log_msg(LOG_WARNING, "Control socket: refusing pid %d uid %u gid %u (not root%s)", (int) cred.pid,
                        (unsigned) cred.uid, (unsigned) cred.gid, c->have_gid ? " nor in the admin group" : "");
                client_queue_error(cl, -EPERM, "permission denied: vtpmd-ctl needs root or vtpmd's admin group");
                cl->close_when_sent = true;
                (void) client_update_events(cl);
        }
        return 0;
}

static int prepare_path(const char *path) {
        _cleanup_close_ int probe = -1;
        _cleanup_free_ char *dir = strdup(path);
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        struct stat st;
        char *slash;

        if (!dir)
                return -ENOMEM;
        slash = strrchr(dir, '/');
        if (slash && slash != dir) {
                *slash = '\0';
                if (mkdir(dir, 0755) < 0 && errno != EEXIST)
                        return negative_errno();
        }
        if (lstat(path, &st) < 0)
                return errno == ENOENT ? 0 : negative_errno();
        if (!S_ISSOCK(st.st_mode))
                return -EEXIST;
        /* A socket left by a previous vtpmd, or one still serving? */
        memcpy(sa.sun_path, path, strlen(path) + 1);
        probe = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        if (probe < 0)
                return negative_errno();
        if (connect(probe, (struct sockaddr *) &sa, sizeof(sa)) == 0)
                return -EADDRINUSE;
        if (unlink(path) < 0 && errno != ENOENT)
                return negative_errno();
        return 0;
}

int control_open(const AdminContext *admin, const char *path, gid_t gid, bool have_gid, Control **ret) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        Control *c;
        mode_t old;
        int r;

        if (strlen(path) >= sizeof(sa.sun_path)) {
                log_msg(LOG_ERR, "Control socket path %s is too long (at most %zu bytes)", path,
                        sizeof(sa.sun_path) - 1);
                return -ENAMETOOLONG;
        }
        memcpy(sa.sun_path, path, strlen(path) + 1);
        r = prepare_path(path);
        if (r < 0) {
                log_msg(LOG_ERR, "Cannot create the control socket %s: %s", path,
                        r == -EADDRINUSE ? "another vtpmd is listening on it"
                        : r == -EEXIST   ? "a file that is not a socket is in the way"
                                         : strerror(-r));
                return r;
        }
        c = calloc(1, sizeof(*c));
        if (!c)
                return log_error_errno(-ENOMEM, "Out of memory");
        *c = (Control){ .admin = admin, .fd = -1, .gid = gid, .have_gid = have_gid, .path = strdup(path),
                        .refuse_limit = RATELIMIT_INIT(10000000000ull, 1) };
        if (!c->path) {
                r = -ENOMEM;
                goto fail;
        }
        c->fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (c->fd < 0) {
                r = negative_errno();
                goto fail;
        }
        /* Never reachable by others, not even for an instant. */
        old = umask(0177);
        r = bind(c->fd, (struct sockaddr *) &sa, sizeof(sa)) < 0 ? negative_errno() : 0;
        umask(old);
        if (r < 0)
                goto fail;
        if (have_gid && (chown(path, (uid_t) -1, gid) < 0 || chmod(path, 0660) < 0)) {
                r = negative_errno();
                (void) unlink(path);
                goto fail;
        }
        if (listen(c->fd, CONTROL_BACKLOG) < 0) {
                r = negative_errno();
                (void) unlink(path);
                goto fail;
        }
        r = sd_event_add_io(admin->event, &c->io, c->fd, EPOLLIN, listen_io_cb, c);
        if (r < 0) {
                (void) unlink(path);
                goto fail;
        }
        log_msg(LOG_INFO, "Control socket %s (mode %s)", path, have_gid ? "0660 with the admin group" : "0600");
        *ret = c;
        return 0;
fail:
        log_error_errno(r, "Cannot create the control socket %s", path);
        safe_close(c->fd);
        free(c->path);
        free(c);
        return r;
}

Control *control_close(Control *c) {
        if (!c)
                return NULL;
        while (c->clients) {
                Client *cl = c->clients;
                /* A running request (manufacturing, a destroy waiting for a
                 * worker) keeps its call; the process is ending anyway. */
                client_free(cl);
        }
        sd_event_source_disable_unref(c->io);
        safe_close(c->fd);
        if (c->path)
                (void) unlink(c->path);
        free(c->path);
        free(c);
        return NULL;
}
