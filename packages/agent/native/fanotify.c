// fso_fanotify: who made each change (issue 16), from the kernel's fanotify.
//
// One fanotify group with a filesystem mark on each watched root's file
// system (FAN_REPORT_DFID_NAME_TARGET: every create, delete, write, attribute
// change and rename on it names its directory and entry, a rename both names
// at once). Its queue is unlimited (FAN_UNLIMITED_QUEUE), so nothing is
// dropped. A reader thread drains it and, for each event under a watched
// root, reads /proc/<pid> at once: the process that made the change is most
// likely still there (a `cp` or a `sed -i` lives a few milliseconds, the
// thread reads within microseconds). Batches reach JavaScript through a
// thread-safe function, each with `caughtUp`: the time before the read that
// found the queue empty, so that every event queued before it has been
// delivered (the agent waits for that, not for a fixed delay, before it
// decides that a change has no record).
//
// A process that lives a millisecond (`touch`, `cp` of a small file) can be
// gone before its event is read. So the thread also keeps a table of the
// host's processes from the kernel's process connector (NETLINK_CONNECTOR,
// CN_IDX_PROC: every fork, exec, uid/gid change and exit, as it happens): a
// fork inherits its parent's ids, an exec is looked at in /proc at once (the
// new program has barely started), an exit is kept 30 s. An event whose
// process is gone is answered from the table: the ids always (they come
// with the fork and the uid events). The executable comes from the same
// fanotify queue, in order: the mark reports FAN_OPEN_EXEC, so the program
// a process runs is read before its changes (on the marked file system; an
// ELF program's dynamic loader is not the program). A process gone before
// its name was read is named as the kernel names a program: its file's name.
//
// JavaScript API (see src/who/whoSource.ts):
//   open(callback(records, caughtUpMs)) → handle     throws Error with .code (EPERM, EINVAL, ENOSYS)
//   mark(handle, path)                                 a filesystem mark on path's file system
//   setRoots(handle, [realpath, …])                    only events under these reach JavaScript
//   sync(handle)                                       asks for a batch with a fresh caughtUp
//   remember(handle, dir) → key | undefined            a watched directory's handle, kept with its path
//   forget(handle, key, dir)                           its watch is gone
//   close(handle)                                      stops the thread, releases everything
//
// An event names its directory by handle, and the handle is turned into a
// path when the event is read. A directory deleted by then (an `rm -rf`
// deletes a tree's leaves first, their directories right after) cannot be
// opened by its handle any more: the directories the agent watches are
// remembered by handle beforehand, and their paths answer for them.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <node_api.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/cn_proc.h>
#include <linux/connector.h>
#include <linux/netlink.h>
#include <dirent.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/fanotify.h>
#include <sys/ioctl.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#ifndef FAN_RENAME
#define FAN_RENAME 0x10000000
#endif
#ifndef FAN_REPORT_TARGET_FID
#define FAN_REPORT_TARGET_FID 0x00001000
#endif
#ifndef FAN_REPORT_DFID_NAME
#define FAN_REPORT_DFID_NAME 0x00000c00
#endif
#ifndef FAN_EVENT_INFO_TYPE_OLD_DFID_NAME
#define FAN_EVENT_INFO_TYPE_OLD_DFID_NAME 10
#define FAN_EVENT_INFO_TYPE_NEW_DFID_NAME 12
#endif

#define MAX_MOUNTS 64
#define CACHE_SLOTS 16384
#define MAX_HANDLE 128
#define BATCH_MAX 2048

typedef struct {
  uint64_t mask;
  char *path;     // the entry (for a rename: its new name)
  char *old_path; // a rename's old name, else NULL
  int32_t pid;
  int64_t uid, euid, gid, auid, ppid; // -1: unknown
  char *exe, *comm;
  int proc_errno; // 0, or why /proc/<pid> could not be read (ENOENT: the process is gone)
  double at;      // when the reader read it (epoch ms)
} rec_t;

typedef struct {
  rec_t *recs;
  size_t n, cap;
  double caught_up; // epoch ms; 0 when this batch is not a drained queue's
} batch_t;

typedef struct {
  __kernel_fsid_t fsid;
  int fd;
} mount_t;

typedef struct {
  uint32_t hash;
  uint16_t len;
  unsigned char key[8 + 8 + MAX_HANDLE]; // fsid, handle type and bytes
  char *path;
} cache_slot_t;

// One process the connector told of (or /proc, at start).
typedef struct {
  int32_t pid; // 0: free slot
  int64_t uid, euid, gid, auid, ppid;
  char *exe;
  char *fan_exe; // the program it ran, from fanotify's FAN_OPEN_EXEC since its fork (NULL: none seen)
  char comm[17];
  double exited_at; // 0: alive
} proc_t;

#define PROC_SLOTS 65536

// A watched directory, by handle (the same key as the cache's).
typedef struct dir_node {
  struct dir_node *next;
  uint32_t hash;
  uint16_t len;
  char *path;
  unsigned char key[];
} dir_node_t;

typedef struct {
  int fan_fd, wake_fd, cn_fd;
  dir_node_t **dirs; // guarded by lock: the reader asks only for a directory gone before its event was read
  size_t n_dirs, dir_buckets;
  proc_t *procs; // reader thread only (filled before it starts)
  pthread_t thread;
  int started;
  volatile int stopping;
  napi_threadsafe_function tsfn;
  pthread_mutex_t lock; // guards mounts and roots
  mount_t mounts[MAX_MOUNTS];
  int n_mounts;
  char **roots;
  size_t n_roots;
  cache_slot_t *cache; // directory handle → path, reader thread only
  int closed;
  int env_gone; // the environment is being torn down: its thread-safe function is not ours to release
} fan_t;

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static const char *errno_name(int e) {
  switch (e) {
    case EPERM: return "EPERM";
    case EINVAL: return "EINVAL";
    case ENOSYS: return "ENOSYS";
    case ENOENT: return "ENOENT";
    case ESRCH: return "ESRCH";
    case EACCES: return "EACCES";
    case EMFILE: return "EMFILE";
    case ENOMEM: return "ENOMEM";
    case ENODEV: return "ENODEV";
    case EXDEV: return "EXDEV";
    case EOPNOTSUPP: return "EOPNOTSUPP";
    default: return "EIO";
  }
}

static napi_value throw_errno(napi_env env, const char *what, int e) {
  char msg[256];
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(e));
  napi_throw_error(env, errno_name(e), msg);
  return NULL;
}

// ---- directory handle → path ------------------------------------------------

static uint32_t fnv(const unsigned char *p, size_t n) {
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 16777619u;
  return h;
}

static void cache_clear(fan_t *f) {
  for (int i = 0; i < CACHE_SLOTS; i++) {
    free(f->cache[i].path);
    f->cache[i].path = NULL;
  }
}

// A directory deleted or moved: the names cached at or under `dir` are wrong from here on; others stay
// (an rm -rf deletes a tree's leaves first, and their directories are gone by the time their events are read).
static void cache_forget(fan_t *f, const char *dir) {
  if (!dir) return;
  size_t n = strlen(dir);
  for (int i = 0; i < CACHE_SLOTS; i++) {
    char *p = f->cache[i].path;
    if (p && strncmp(p, dir, n) == 0 && (p[n] == 0 || p[n] == '/')) {
      free(p);
      f->cache[i].path = NULL;
    }
  }
}

/** A directory's key: its file system's id, the handle's type and bytes. Returns its length, 0 for a handle too long. */
static uint16_t handle_key(const __kernel_fsid_t *fsid, const struct file_handle *fh, unsigned char *key) {
  if (fh->handle_bytes > MAX_HANDLE) return 0;
  memcpy(key, fsid, 8);
  memcpy(key + 8, &fh->handle_type, sizeof fh->handle_type);
  memset(key + 8 + sizeof fh->handle_type, 0, 8 - sizeof fh->handle_type);
  memcpy(key + 16, fh->f_handle, fh->handle_bytes);
  return (uint16_t)(16 + fh->handle_bytes);
}

// ---- watched directories: handle → path (caller holds f->lock) -------------

static dir_node_t **dirs_find(fan_t *f, const unsigned char *key, uint16_t len, uint32_t h) {
  if (!f->dirs) return NULL;
  dir_node_t **at = &f->dirs[h % f->dir_buckets];
  for (; *at; at = &(*at)->next)
    if ((*at)->hash == h && (*at)->len == len && memcmp((*at)->key, key, len) == 0) return at;
  return NULL;
}

static int dirs_put(fan_t *f, const unsigned char *key, uint16_t len, const char *path) {
  uint32_t h = fnv(key, len);
  dir_node_t **found = dirs_find(f, key, len, h);
  if (found) {
    // The same directory under a new name (a rename): the new name answers.
    char *copy = strdup(path);
    if (!copy) return -1;
    free((*found)->path);
    (*found)->path = copy;
    return 0;
  }
  if (f->n_dirs >= f->dir_buckets * 2) {
    size_t buckets = f->dir_buckets ? f->dir_buckets * 4 : 1024;
    dir_node_t **next = calloc(buckets, sizeof *next);
    if (!next) return -1;
    for (size_t i = 0; i < f->dir_buckets; i++)
      for (dir_node_t *n = f->dirs[i], *after; n; n = after) {
        after = n->next;
        n->next = next[n->hash % buckets];
        next[n->hash % buckets] = n;
      }
    free(f->dirs);
    f->dirs = next;
    f->dir_buckets = buckets;
  }
  dir_node_t *n = malloc(sizeof *n + len);
  if (!n) return -1;
  n->path = strdup(path);
  if (!n->path) {
    free(n);
    return -1;
  }
  n->hash = h;
  n->len = len;
  memcpy(n->key, key, len);
  n->next = f->dirs[h % f->dir_buckets];
  f->dirs[h % f->dir_buckets] = n;
  f->n_dirs++;
  return 0;
}

static void dirs_clear(fan_t *f) {
  for (size_t i = 0; i < f->dir_buckets; i++)
    for (dir_node_t *n = f->dirs[i], *after; n; n = after) {
      after = n->next;
      free(n->path);
      free(n);
    }
  free(f->dirs);
  f->dirs = NULL;
  f->n_dirs = f->dir_buckets = 0;
}

/**
 * A watched directory moved from `from` to `to` (NULL: out of sight, a move's first half): the entries at or
 * under `from` take the new name, or are dropped. Scans every entry: directory moves are rare beside the
 * changes inside them.
 */
static void dirs_move(fan_t *f, const char *from, const char *to) {
  if (!from) return;
  size_t n = strlen(from);
  pthread_mutex_lock(&f->lock);
  for (size_t i = 0; i < f->dir_buckets; i++) {
    for (dir_node_t **at = &f->dirs[i]; *at;) {
      dir_node_t *node = *at;
      if (strncmp(node->path, from, n) != 0 || (node->path[n] != 0 && node->path[n] != '/')) {
        at = &node->next;
        continue;
      }
      char *moved = NULL;
      if (to && asprintf(&moved, "%s%s", to, node->path + n) < 0) moved = NULL;
      if (moved) {
        free(node->path);
        node->path = moved;
        at = &node->next;
      } else {
        *at = node->next;
        free(node->path);
        free(node);
        f->n_dirs--;
      }
    }
  }
  pthread_mutex_unlock(&f->lock);
}

/** The path of a watched directory by its key, or NULL. */
static char *dirs_path(fan_t *f, const unsigned char *key, uint16_t len) {
  pthread_mutex_lock(&f->lock);
  dir_node_t **found = dirs_find(f, key, len, fnv(key, len));
  char *path = found ? strdup((*found)->path) : NULL;
  pthread_mutex_unlock(&f->lock);
  return path;
}

static char *resolve_dir(fan_t *f, const __kernel_fsid_t *fsid, struct file_handle *fh) {
  unsigned char key[8 + 8 + MAX_HANDLE];
  uint16_t len = handle_key(fsid, fh, key);
  if (len == 0) return NULL;
  uint32_t h = fnv(key, len);
  cache_slot_t *slot = &f->cache[h % CACHE_SLOTS];
  if (slot->path && slot->hash == h && slot->len == len && memcmp(slot->key, key, len) == 0) return strdup(slot->path);

  int mount_fd = -1;
  pthread_mutex_lock(&f->lock);
  for (int i = 0; i < f->n_mounts; i++)
    if (memcmp(&f->mounts[i].fsid, fsid, sizeof *fsid) == 0) mount_fd = f->mounts[i].fd;
  pthread_mutex_unlock(&f->lock);
  if (mount_fd < 0) return NULL;
  int fd = open_by_handle_at(mount_fd, fh, O_PATH | O_CLOEXEC);
  if (fd < 0) return dirs_path(f, key, len); // ESTALE: the directory is gone already; watched, its path is known
  char link[64], target[PATH_MAX];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  ssize_t n = readlink(link, target, sizeof target - 1);
  close(fd);
  if (n <= 0) return NULL;
  target[n] = 0;
  static const char deleted[] = " (deleted)";
  size_t dl = sizeof deleted - 1;
  if ((size_t)n > dl && strcmp(target + n - dl, deleted) == 0) return dirs_path(f, key, len);
  free(slot->path);
  slot->hash = h;
  slot->len = len;
  memcpy(slot->key, key, len);
  slot->path = strdup(target);
  return strdup(target);
}

// ---- the process behind an event --------------------------------------------

static char *read_small(const char *file, size_t *len) {
  int fd = open(file, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return NULL;
  char *buf = malloc(4097);
  ssize_t n = read(fd, buf, 4096);
  int e = errno;
  close(fd);
  if (n < 0) {
    free(buf);
    errno = e;
    return NULL;
  }
  buf[n] = 0;
  if (len) *len = (size_t)n;
  return buf;
}

static int64_t field(const char *status, const char *name) {
  const char *p = strstr(status, name);
  if (!p) return -1;
  return strtoll(p + strlen(name), NULL, 10);
}

static void read_process(rec_t *r) {
  char file[64];
  r->uid = r->euid = r->gid = r->auid = r->ppid = -1;
  snprintf(file, sizeof file, "/proc/%d/status", r->pid);
  char *status = read_small(file, NULL);
  if (!status) {
    r->proc_errno = errno ? errno : ENOENT;
    return;
  }
  r->ppid = field(status, "\nPPid:\t");
  const char *uid = strstr(status, "\nUid:\t");
  if (uid) {
    char *end;
    r->uid = strtoll(uid + 6, &end, 10);
    r->euid = strtoll(end, NULL, 10);
  }
  r->gid = field(status, "\nGid:\t");
  free(status);
  snprintf(file, sizeof file, "/proc/%d/loginuid", r->pid);
  char *login = read_small(file, NULL);
  if (login) {
    long long v = strtoll(login, NULL, 10);
    r->auid = v == 4294967295LL ? -1 : v;
    free(login);
  }
  snprintf(file, sizeof file, "/proc/%d/comm", r->pid);
  size_t len = 0;
  char *comm = read_small(file, &len);
  if (comm) {
    if (len > 0 && comm[len - 1] == '\n') comm[len - 1] = 0;
    r->comm = comm;
  }
  snprintf(file, sizeof file, "/proc/%d/exe", r->pid);
  char target[PATH_MAX];
  ssize_t n = readlink(file, target, sizeof target - 1);
  if (n > 0) {
    target[n] = 0;
    r->exe = strdup(target);
  }
  r->proc_errno = 0;
}

// ---- the process table (the kernel's process connector) --------------------

static proc_t *proc_slot(fan_t *f, int32_t pid) { return &f->procs[(uint32_t)pid % PROC_SLOTS]; }

static proc_t *proc_find(fan_t *f, int32_t pid) {
  if (pid <= 0) return NULL; // an empty slot has pid 0
  proc_t *p = proc_slot(f, pid);
  return p->pid == pid ? p : NULL;
}

/**
 * The program a process in the table runs: what /proc said at its exec (or its parent's, at its fork),
 * else, when the process was gone by its exec's look, the last FAN_OPEN_EXEC since its fork.
 */
static const char *proc_exe(const proc_t *p) { return p->exe ? p->exe : p->fan_exe; }

/** A slot for `pid`, emptied (another pid in it is dropped: the table is direct-mapped, 65,536 slots). */
static proc_t *proc_take(fan_t *f, int32_t pid) {
  proc_t *p = proc_slot(f, pid);
  free(p->exe);
  free(p->fan_exe);
  memset(p, 0, sizeof *p);
  p->pid = pid;
  p->uid = p->euid = p->gid = p->auid = p->ppid = -1;
  return p;
}

/** Looks at /proc/<pid> now; 0, or errno. */
static int proc_look(fan_t *f, int32_t pid) {
  rec_t r;
  memset(&r, 0, sizeof r);
  r.pid = pid;
  read_process(&r);
  if (r.proc_errno != 0) {
    free(r.exe);
    free(r.comm);
    return r.proc_errno;
  }
  proc_t *p = proc_take(f, pid);
  p->uid = r.uid, p->euid = r.euid, p->gid = r.gid, p->auid = r.auid, p->ppid = r.ppid;
  p->exe = r.exe;
  if (r.comm) snprintf(p->comm, sizeof p->comm, "%s", r.comm);
  free(r.comm);
  return 0;
}

static void proc_seed(fan_t *f) {
  DIR *d = opendir("/proc");
  if (!d) return;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    char *end;
    long pid = strtol(e->d_name, &end, 10);
    if (*end == 0 && pid > 0) proc_look(f, (int32_t)pid);
  }
  closedir(d);
}

static int connector_open(void) {
  int fd = socket(PF_NETLINK, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_CONNECTOR);
  if (fd < 0) return -1;
  struct sockaddr_nl addr = {.nl_family = AF_NETLINK, .nl_groups = CN_IDX_PROC, .nl_pid = 0};
  if (bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
    close(fd);
    return -1;
  }
  struct {
    struct nlmsghdr nl;
    struct cn_msg cn;
    enum proc_cn_mcast_op op;
  } __attribute__((packed)) msg;
  memset(&msg, 0, sizeof msg);
  msg.nl.nlmsg_len = sizeof msg;
  msg.nl.nlmsg_type = NLMSG_DONE;
  msg.nl.nlmsg_pid = (uint32_t)getpid();
  msg.cn.id.idx = CN_IDX_PROC;
  msg.cn.id.val = CN_VAL_PROC;
  msg.cn.len = sizeof(enum proc_cn_mcast_op);
  msg.op = PROC_CN_MCAST_LISTEN;
  if (send(fd, &msg, sizeof msg, 0) < 0) {
    close(fd);
    return -1;
  }
  return fd;
}

/** Reads what the connector has: forks, execs, id changes, exits. */
static void connector_drain(fan_t *f) {
  char buf[16384] __attribute__((aligned(NLMSG_ALIGNTO)));
  for (;;) {
    ssize_t n = recv(f->cn_fd, buf, sizeof buf, 0);
    if (n <= 0) return; // EAGAIN (drained), or ENOBUFS: some were dropped, /proc is the fallback
    for (struct nlmsghdr *nl = (struct nlmsghdr *)buf; NLMSG_OK(nl, (size_t)n); nl = NLMSG_NEXT(nl, n)) {
      struct cn_msg *cn = NLMSG_DATA(nl);
      if (cn->id.idx != CN_IDX_PROC || cn->id.val != CN_VAL_PROC) continue;
      struct proc_event *ev = (struct proc_event *)cn->data;
      switch (ev->what) {
        case PROC_EVENT_FORK: {
          if (ev->event_data.fork.child_pid != ev->event_data.fork.child_tgid) break; // a thread
          proc_t *parent = proc_find(f, ev->event_data.fork.parent_tgid);
          proc_t copy;
          int have = parent != NULL;
          // Copied before the child's slot is taken: it may be the parent's own slot (pid_max > 65,536).
          char *exe = have && proc_exe(parent) ? strdup(proc_exe(parent)) : NULL;
          if (have) copy = *parent;
          proc_t *child = proc_take(f, ev->event_data.fork.child_tgid);
          if (have) {
            child->uid = copy.uid, child->euid = copy.euid, child->gid = copy.gid, child->auid = copy.auid;
            child->exe = exe;
            memcpy(child->comm, copy.comm, sizeof child->comm);
          }
          child->ppid = ev->event_data.fork.parent_tgid;
          break;
        }
        case PROC_EVENT_EXEC: {
          int32_t pid = ev->event_data.exec.process_tgid;
          // A new program: its executable and name from /proc now; gone already, they are unknown (not the parent's).
          proc_t *known = proc_find(f, pid);
          proc_t keep = {0};
          int have = known != NULL;
          if (have) {
            keep = *known;
            keep.exe = NULL;
            // The program's FAN_OPEN_EXEC may have been read already: it stays (a fork is what forgets it).
            known->fan_exe = NULL;
          }
          int looked = proc_look(f, pid) == 0;
          proc_t *p = looked ? proc_find(f, pid) : proc_take(f, pid);
          if (have) {
            if (!looked) p->uid = keep.uid, p->euid = keep.euid, p->gid = keep.gid, p->auid = keep.auid, p->ppid = keep.ppid;
            p->fan_exe = keep.fan_exe;
          }
          break;
        }
        case PROC_EVENT_UID: {
          proc_t *p = proc_find(f, ev->event_data.id.process_tgid);
          if (p) p->uid = ev->event_data.id.r.ruid, p->euid = ev->event_data.id.e.euid;
          break;
        }
        case PROC_EVENT_GID: {
          proc_t *p = proc_find(f, ev->event_data.id.process_tgid);
          if (p) p->gid = ev->event_data.id.r.rgid;
          break;
        }
        case PROC_EVENT_COMM: {
          if (ev->event_data.comm.process_pid != ev->event_data.comm.process_tgid) break;
          proc_t *p = proc_find(f, ev->event_data.comm.process_tgid);
          if (p) snprintf(p->comm, sizeof p->comm, "%s", ev->event_data.comm.comm);
          break;
        }
        case PROC_EVENT_EXIT: {
          if (ev->event_data.exit.process_pid != ev->event_data.exit.process_tgid) break;
          proc_t *p = proc_find(f, ev->event_data.exit.process_tgid);
          if (p) p->exited_at = now_ms();
          break;
        }
        default:
          break;
      }
    }
  }
}

/** What `r` lacks of the program of `p`: its executable, and its name (gone before it was read at its exec: its file's name, as the kernel gives it, 15 bytes). */
static void proc_fill_names(const proc_t *p, rec_t *r) {
  const char *exe = proc_exe(p);
  if (!r->exe && exe) r->exe = strdup(exe);
  if (!r->comm && p->comm[0]) r->comm = strdup(p->comm);
  const char *base = exe ? strrchr(exe, '/') : NULL;
  if (!r->comm && base) r->comm = strndup(base + 1, 15);
}

/** The table's word for a process /proc no longer has (exited within the last 30 s). */
static int proc_fill(fan_t *f, rec_t *r) {
  proc_t *p = proc_find(f, r->pid);
  if (!p || (p->exited_at > 0 && now_ms() - p->exited_at > 30000)) return 0;
  r->uid = p->uid, r->euid = p->euid, r->gid = p->gid, r->auid = p->auid, r->ppid = p->ppid;
  free(r->exe);
  free(r->comm);

  r->exe = NULL;
  r->comm = NULL;
  proc_fill_names(p, r);
  r->proc_errno = 0;
  return 1;
}

// ---- the reader thread ------------------------------------------------------

/**
 * FAN_OPEN_EXEC of `path` by `pid`, in the queue's order before its changes:
 * the program it runs. The dynamic loader an ELF program brings (opened by
 * the kernel at the same exec) is not it; a script's interpreter is, as
 * /proc/<pid>/exe would say.
 */
static void exec_seen(fan_t *f, int32_t pid, const char *path) {
  if (f->cn_fd < 0) return;
  const char *base = strrchr(path, '/');
  base = base ? base + 1 : path;
  if (strncmp(base, "ld-linux", 8) == 0 || strncmp(base, "ld-musl", 7) == 0 || strcmp(base, "ld.so") == 0) return;
  proc_t *p = proc_find(f, pid);
  if (!p) p = proc_take(f, pid);
  free(p->fan_exe);
  p->fan_exe = strdup(path);
}

static int under_roots(fan_t *f, const char *p) {
  if (!p) return 0;
  int hit = 0;
  pthread_mutex_lock(&f->lock);
  for (size_t i = 0; i < f->n_roots && !hit; i++) {
    size_t n = strlen(f->roots[i]);
    if (strncmp(p, f->roots[i], n) == 0 && (p[n] == 0 || p[n] == '/' || (n == 1 && f->roots[i][0] == '/'))) hit = 1;
  }
  pthread_mutex_unlock(&f->lock);
  return hit;
}

static char *join(const char *dir, const char *name) {
  if (!dir) return NULL;
  if (!name || !*name || strcmp(name, ".") == 0) return strdup(dir);
  size_t a = strlen(dir), b = strlen(name);
  char *p = malloc(a + b + 2);
  memcpy(p, dir, a);
  size_t at = a;
  if (a == 0 || dir[a - 1] != '/') p[at++] = '/';
  memcpy(p + at, name, b + 1);
  return p;
}

static batch_t *batch_new(void) {
  batch_t *b = calloc(1, sizeof *b);
  b->cap = 64;
  b->recs = calloc(b->cap, sizeof(rec_t));
  return b;
}

static void batch_free(batch_t *b) {
  for (size_t i = 0; i < b->n; i++) {
    free(b->recs[i].path);
    free(b->recs[i].old_path);
    free(b->recs[i].exe);
    free(b->recs[i].comm);
  }
  free(b->recs);
  free(b);
}

static rec_t *batch_push(batch_t *b) {
  if (b->n == b->cap) {
    b->cap *= 2;
    b->recs = realloc(b->recs, b->cap * sizeof(rec_t));
  }
  rec_t *r = &b->recs[b->n++];
  memset(r, 0, sizeof *r);
  return r;
}

static void post(fan_t *f, batch_t *b) {
  napi_status status = napi_call_threadsafe_function(f->tsfn, b, napi_tsfn_nonblocking);
  if (status == napi_ok) return;
  batch_free(b);
  // The environment is going away: no call after napi_closing.
  if (status == napi_closing) f->stopping = 1;
}

static void parse(fan_t *f, char *buf, ssize_t len, batch_t *b, double at) {
  pid_t self = getpid();
  struct fanotify_event_metadata *m = (struct fanotify_event_metadata *)buf;
  for (; FAN_EVENT_OK(m, len); m = FAN_EVENT_NEXT(m, len)) {
    if (m->vers != FANOTIFY_METADATA_VERSION) continue;
    if (m->fd >= 0) close(m->fd);
    if (m->mask & FAN_Q_OVERFLOW) continue; // not with an unlimited queue
    char *path = NULL, *old_path = NULL;
    char *p = (char *)(m + 1);
    char *end = (char *)m + m->event_len;
    while (p + sizeof(struct fanotify_event_info_header) <= end) {
      struct fanotify_event_info_header *h = (struct fanotify_event_info_header *)p;
      if (h->len == 0) break;
      if (h->info_type == FAN_EVENT_INFO_TYPE_DFID_NAME || h->info_type == FAN_EVENT_INFO_TYPE_OLD_DFID_NAME ||
          h->info_type == FAN_EVENT_INFO_TYPE_NEW_DFID_NAME) {
        struct fanotify_event_info_fid *fid = (struct fanotify_event_info_fid *)h;
        struct file_handle *fh = (struct file_handle *)fid->handle;
        const char *name = (const char *)fh->f_handle + fh->handle_bytes;
        char *dir = resolve_dir(f, &fid->fsid, fh);
        char *full = join(dir, name);
        free(dir);
        if (h->info_type == FAN_EVENT_INFO_TYPE_OLD_DFID_NAME) {
          free(old_path);
          old_path = full;
        } else {
          free(path);
          path = full;
        }
      }
      p += h->len;
    }
    // A directory moved: the names cached at or under its old and new names are wrong from here on, and the
    // watched directories under it are named anew (the agent's watcher tells the same later). A directory
    // deleted was empty, and its name is right for the events queued before: nothing to forget.
    if ((m->mask & FAN_ONDIR) && (m->mask & (FAN_RENAME | FAN_MOVED_FROM | FAN_MOVED_TO))) {
      cache_forget(f, path);
      cache_forget(f, old_path);
      if (m->mask & FAN_RENAME) dirs_move(f, old_path, path);
      else if (m->mask & FAN_MOVED_FROM) dirs_move(f, path, NULL);
    }
    // A program started: what its process runs, for when it is gone before its changes are read. The kernel
    // merges a process's events on one file: a change of the file it then ran is still a change.
    if ((m->mask & FAN_OPEN_EXEC) && path && m->pid > 0) {
      exec_seen(f, m->pid, path);
      if ((m->mask & ~(uint64_t)(FAN_OPEN_EXEC | FAN_ONDIR)) == 0) {
        free(path);
        free(old_path);
        continue;
      }
    }
    // No name to file it under (a rename into a directory gone before it was read): nothing to index.
    if (m->pid == self || !path || !(under_roots(f, path) || under_roots(f, old_path))) {
      free(path);
      free(old_path);
      continue;
    }
    // The same process on the same name as the record before it (a create, its writes, its close):
    // one record with the kinds together, as the index reads each kind of a mask on its own.
    rec_t *last = b->n > 0 ? &b->recs[b->n - 1] : NULL;
    if (last && last->pid == m->pid && !old_path && !last->old_path && path && last->path && !(m->mask & (FAN_RENAME | FAN_MOVED_FROM | FAN_MOVED_TO)) &&
        !(last->mask & (FAN_RENAME | FAN_MOVED_FROM | FAN_MOVED_TO)) && strcmp(last->path, path) == 0) {
      last->mask |= m->mask;
      free(path);
      continue;
    }
    rec_t *r = batch_push(b);
    r->mask = m->mask;
    r->path = path;
    r->old_path = old_path;
    r->pid = m->pid;
    r->at = at;
    // The same process, just read in this batch: no second look.
    rec_t *same = NULL;
    for (size_t i = b->n - 1; i > 0 && b->n - i < 32; i--)
      if (b->recs[i - 1].pid == r->pid) {
        same = &b->recs[i - 1];
        break;
      }
    if (same) {
      r->uid = same->uid, r->euid = same->euid, r->gid = same->gid, r->auid = same->auid, r->ppid = same->ppid;
      r->proc_errno = same->proc_errno;
      r->exe = same->exe ? strdup(same->exe) : NULL;
      r->comm = same->comm ? strdup(same->comm) : NULL;
    } else if (r->pid <= 0) {
      // A writer outside the agent's pid namespace (an agent in a container without the host's pids): unknown.
      r->uid = r->euid = r->gid = r->auid = r->ppid = -1;
      r->proc_errno = ESRCH;
    } else {
      read_process(r);
      if (r->proc_errno != 0 && f->cn_fd >= 0) proc_fill(f, r);
      // An exited process not yet reaped (a zombie), or reaped between two reads, has its ids in /proc but not its program.
      proc_t *p = (r->exe == NULL || r->comm == NULL) && r->proc_errno == 0 ? proc_find(f, r->pid) : NULL;
      if (p) proc_fill_names(p, r);
    }
  }
}

static void *reader(void *arg) {
  fan_t *f = arg;
  char *buf = malloc(256 * 1024);
  while (!f->stopping) {
    struct pollfd fds[3] = {{.fd = f->fan_fd, .events = POLLIN}, {.fd = f->wake_fd, .events = POLLIN}, {.fd = f->cn_fd, .events = POLLIN}};
    int r = poll(fds, f->cn_fd >= 0 ? 3 : 2, -1);
    if (r < 0 && errno != EINTR) {
      // Not expected; said to JavaScript as a batch without caughtUp would be silent: wait and retry instead.
      usleep(10000);
      continue;
    }
    if (f->stopping) break;
    int asked = 0;
    if (fds[1].revents & POLLIN) {
      uint64_t v;
      if (read(f->wake_fd, &v, sizeof v) > 0) asked = 1;
    }
    // Forks and execs first: the events that follow may be of a process that has just exited.
    if (f->cn_fd >= 0) connector_drain(f);
    if (!(fds[0].revents & POLLIN) && !asked) continue;
    // What is queued now, and when: once that many bytes are read, everything queued before `snapshot`
    // is in this batch or posted (a queue that never empties still moves caughtUp on).
    batch_t *b = batch_new();
    double snapshot = now_ms();
    int queued = 0;
    if (ioctl(f->fan_fd, FIONREAD, &queued) < 0) queued = -1;
    size_t consumed = 0;
    while (!f->stopping) {
      double started = now_ms();
      ssize_t n = read(f->fan_fd, buf, 256 * 1024);
      if (n < 0) {
        if (errno == EINTR) continue;
        // EAGAIN: the queue is empty, so everything queued before `started` is in this batch or posted.
        b->caught_up = started;
        break;
      }
      consumed += (size_t)n;
      if (f->cn_fd >= 0) connector_drain(f);
      parse(f, buf, n, b, now_ms());
      if (queued >= 0 && consumed >= (size_t)queued) {
        b->caught_up = snapshot;
        break; // back to poll: the wake fd, the connector and what came since are looked at too
      }
      if (b->n >= BATCH_MAX) {
        post(f, b);
        b = batch_new();
      }
    }
    if (b->n > 0 || asked) post(f, b);
    else batch_free(b);
  }
  free(buf);
  return NULL;
}

// ---- JavaScript -------------------------------------------------------------

static void set_num(napi_env env, napi_value o, const char *k, double v) {
  napi_value x;
  napi_create_double(env, v, &x);
  napi_set_named_property(env, o, k, x);
}

static void set_id(napi_env env, napi_value o, const char *k, int64_t v) {
  napi_value x;
  if (v < 0) napi_get_null(env, &x);
  else napi_create_double(env, (double)v, &x);
  napi_set_named_property(env, o, k, x);
}

static void set_str(napi_env env, napi_value o, const char *k, const char *s) {
  napi_value x;
  if (s) napi_create_string_utf8(env, s, NAPI_AUTO_LENGTH, &x);
  else napi_get_null(env, &x);
  napi_set_named_property(env, o, k, x);
}

static void call_js(napi_env env, napi_value cb, void *context, void *data) {
  (void)context;
  batch_t *b = data;
  if (env == NULL || cb == NULL) {
    batch_free(b);
    return;
  }
  napi_value arr, undefined, argv[2];
  napi_create_array_with_length(env, b->n, &arr);
  for (size_t i = 0; i < b->n; i++) {
    rec_t *r = &b->recs[i];
    napi_value o;
    napi_create_object(env, &o);
    set_num(env, o, "mask", (double)r->mask);
    set_str(env, o, "path", r->path);
    set_str(env, o, "oldPath", r->old_path);
    set_num(env, o, "pid", r->pid);
    set_id(env, o, "uid", r->uid);
    set_id(env, o, "euid", r->euid);
    set_id(env, o, "gid", r->gid);
    set_id(env, o, "auid", r->auid);
    set_id(env, o, "ppid", r->ppid);
    set_str(env, o, "exe", r->exe);
    set_str(env, o, "comm", r->comm);
    set_str(env, o, "procError", r->proc_errno ? errno_name(r->proc_errno) : NULL);
    set_num(env, o, "at", r->at);
    napi_set_element(env, arr, (uint32_t)i, o);
  }
  argv[0] = arr;
  if (b->caught_up > 0) napi_create_double(env, b->caught_up, &argv[1]);
  else napi_get_null(env, &argv[1]);
  napi_get_undefined(env, &undefined);
  batch_free(b);
  napi_call_function(env, undefined, cb, 2, argv, NULL);
}

static void stop(fan_t *f) {
  if (f->closed) return;
  f->closed = 1;
  f->stopping = 1;
  uint64_t one = 1;
  if (write(f->wake_fd, &one, sizeof one) < 0) { /* the thread sees stopping at its next wake anyway */ }
  if (f->started) pthread_join(f->thread, NULL);
  close(f->fan_fd);
  close(f->wake_fd);
  if (f->cn_fd >= 0) close(f->cn_fd);
  for (int i = 0; i < f->n_mounts; i++) close(f->mounts[i].fd);
  f->n_mounts = 0;
  cache_clear(f);
  if (!f->env_gone) napi_release_threadsafe_function(f->tsfn, napi_tsfn_abort);
}

/** The environment ends (process exit, a worker's end) without close(): the thread stops before it goes. */
static void env_cleanup(void *data) {
  fan_t *f = data;
  f->env_gone = 1;
  stop(f);
}

static void free_handle(fan_t *f) {
  dirs_clear(f);
  for (size_t i = 0; i < f->n_roots; i++) free(f->roots[i]);
  free(f->roots);
  free(f->cache);
  for (int i = 0; i < PROC_SLOTS; i++) {
    free(f->procs[i].exe);
    free(f->procs[i].fan_exe);
  }
  free(f->procs);
  pthread_mutex_destroy(&f->lock);
  free(f);
}

static void finalize_handle(napi_env env, void *data, void *hint) {
  (void)hint;
  fan_t *f = data;
  napi_remove_env_cleanup_hook(env, env_cleanup, f);
  stop(f);
  free_handle(f);
}

static fan_t *get_handle(napi_env env, napi_value v) {
  void *data = NULL;
  if (napi_get_value_external(env, v, &data) != napi_ok || !data) {
    napi_throw_type_error(env, NULL, "not a fanotify handle");
    return NULL;
  }
  fan_t *f = data;
  if (f->closed) {
    napi_throw_error(env, "ECLOSED", "the fanotify handle is closed");
    return NULL;
  }
  return f;
}

/** Up to `want` arguments in argv, the first a live handle (a type error when any is missing, ECLOSED when closed). */
static fan_t *handle_arg(napi_env env, napi_callback_info info, size_t want, napi_value *argv) {
  size_t argc = want;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < want) {
    napi_throw_type_error(env, NULL, "missing arguments");
    return NULL;
  }
  return get_handle(env, argv[0]);
}

static napi_value js_open(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  napi_valuetype t;
  if (argc < 1 || napi_typeof(env, argv[0], &t) != napi_ok || t != napi_function) {
    napi_throw_type_error(env, NULL, "open(callback) needs a function");
    return NULL;
  }
  unsigned flags = FAN_CLASS_NOTIF | FAN_CLOEXEC | FAN_NONBLOCK | FAN_UNLIMITED_QUEUE | FAN_REPORT_DFID_NAME | FAN_REPORT_FID |
                   FAN_REPORT_TARGET_FID;
  int fd = fanotify_init(flags, O_RDONLY | O_LARGEFILE | O_CLOEXEC);
  // Linux 5.9–5.16 have no FAN_REPORT_TARGET_FID: the entry's name is enough.
  if (fd < 0 && errno == EINVAL) fd = fanotify_init(flags & ~(unsigned)FAN_REPORT_TARGET_FID, O_RDONLY | O_LARGEFILE | O_CLOEXEC);
  if (fd < 0) return throw_errno(env, "fanotify_init", errno);
  int wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake < 0) {
    int e = errno;
    close(fd);
    return throw_errno(env, "eventfd", e);
  }
  fan_t *f = calloc(1, sizeof *f);
  f->fan_fd = fd;
  f->wake_fd = wake;
  f->cache = calloc(CACHE_SLOTS, sizeof(cache_slot_t));
  f->procs = calloc(PROC_SLOTS, sizeof(proc_t));
  pthread_mutex_init(&f->lock, NULL);
  // Listening first, then /proc: a process started in between is in one or the other.
  f->cn_fd = connector_open();
  if (f->cn_fd >= 0) proc_seed(f);
  napi_value name;
  napi_create_string_utf8(env, "fso_fanotify", NAPI_AUTO_LENGTH, &name);
  if (napi_create_threadsafe_function(env, argv[0], NULL, name, 0, 1, NULL, NULL, f, call_js, &f->tsfn) != napi_ok) {
    close(fd);
    close(wake);
    if (f->cn_fd >= 0) close(f->cn_fd);
    free_handle(f);
    napi_throw_error(env, "EIO", "cannot create the thread-safe function");
    return NULL;
  }
  // The agent's own timers and sockets keep it alive; this thread must not.
  napi_unref_threadsafe_function(env, f->tsfn);
  if (pthread_create(&f->thread, NULL, reader, f) != 0) {
    f->closed = 1;
    close(fd);
    close(wake);
    if (f->cn_fd >= 0) close(f->cn_fd);
    napi_release_threadsafe_function(f->tsfn, napi_tsfn_abort);
    free_handle(f);
    napi_throw_error(env, "EAGAIN", "cannot start the fanotify reader thread");
    return NULL;
  }
  f->started = 1;
  napi_add_env_cleanup_hook(env, env_cleanup, f);
  napi_value handle;
  napi_create_external(env, f, finalize_handle, NULL, &handle);
  return handle;
}

static int get_string(napi_env env, napi_value v, char *out, size_t size) {
  size_t n;
  if (napi_get_value_string_utf8(env, v, out, size, &n) != napi_ok) return -1;
  return n + 1 >= size ? -1 : 0;
}

/** A handle and a path, the arguments of mark and remember; NULL (a TypeError thrown) without them. */
static fan_t *handle_and_path(napi_env env, napi_callback_info info, char *path, const char *usage) {
  napi_value argv[2];
  fan_t *f = handle_arg(env, info, 2, argv);
  if (!f) return NULL;
  if (get_string(env, argv[1], path, PATH_MAX) != 0) {
    napi_throw_type_error(env, NULL, usage);
    return NULL;
  }
  return f;
}

static napi_value js_mark(napi_env env, napi_callback_info info) {
  char path[PATH_MAX];
  fan_t *f = handle_and_path(env, info, path, "mark(handle, path) needs a path");
  if (!f) return NULL;
  // Before Linux 5.17 there is no FAN_RENAME: its two halves instead. A kernel that refuses FAN_OPEN_EXEC
  // with this group's reporting: without it (a process gone early then has no executable, as before).
  const uint64_t changes = FAN_CREATE | FAN_DELETE | FAN_MODIFY | FAN_CLOSE_WRITE | FAN_ATTRIB | FAN_ONDIR;
  const uint64_t masks[] = {changes | FAN_RENAME | FAN_OPEN_EXEC, changes | FAN_RENAME, changes | FAN_MOVED_FROM | FAN_MOVED_TO | FAN_OPEN_EXEC,
                            changes | FAN_MOVED_FROM | FAN_MOVED_TO};
  uint64_t mask = 0;
  for (size_t i = 0; i < sizeof masks / sizeof masks[0]; i++) {
    if (fanotify_mark(f->fan_fd, FAN_MARK_ADD | FAN_MARK_FILESYSTEM, masks[i], AT_FDCWD, path) == 0) {
      mask = masks[i];
      break;
    }
    if (errno != EINVAL || i + 1 == sizeof masks / sizeof masks[0]) return throw_errno(env, "fanotify_mark", errno);
  }
  int dir = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) return throw_errno(env, "open", errno);
  struct statfs sfs;
  if (fstatfs(dir, &sfs) < 0) {
    int e = errno;
    close(dir);
    return throw_errno(env, "fstatfs", e);
  }
  __kernel_fsid_t fsid;
  memcpy(&fsid, &sfs.f_fsid, sizeof fsid);
  pthread_mutex_lock(&f->lock);
  int known = 0;
  for (int i = 0; i < f->n_mounts; i++)
    if (memcmp(&f->mounts[i].fsid, &fsid, sizeof fsid) == 0) known = 1;
  if (!known && f->n_mounts < MAX_MOUNTS) {
    f->mounts[f->n_mounts].fsid = fsid;
    f->mounts[f->n_mounts].fd = dir;
    f->n_mounts++;
  } else {
    close(dir);
  }
  pthread_mutex_unlock(&f->lock);
  napi_value result;
  napi_get_boolean(env, (mask & FAN_RENAME) != 0, &result);
  return result;
}

static napi_value js_set_roots(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  fan_t *f = handle_arg(env, info, 2, argv);
  if (!f) return NULL;
  uint32_t n = 0;
  if (napi_get_array_length(env, argv[1], &n) != napi_ok) {
    napi_throw_type_error(env, NULL, "setRoots(handle, roots) needs an array");
    return NULL;
  }
  char **roots = calloc(n ? n : 1, sizeof(char *));
  for (uint32_t i = 0; i < n; i++) {
    napi_value v;
    char path[PATH_MAX];
    napi_get_element(env, argv[1], i, &v);
    if (get_string(env, v, path, sizeof path) != 0) {
      for (uint32_t j = 0; j < i; j++) free(roots[j]);
      free(roots);
      napi_throw_type_error(env, NULL, "setRoots: every root must be a path");
      return NULL;
    }
    roots[i] = strdup(path);
  }
  pthread_mutex_lock(&f->lock);
  char **old = f->roots;
  size_t old_n = f->n_roots;
  f->roots = roots;
  f->n_roots = n;
  pthread_mutex_unlock(&f->lock);
  for (size_t i = 0; i < old_n; i++) free(old[i]);
  free(old);
  return NULL;
}

static napi_value js_sync(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  fan_t *f = handle_arg(env, info, 1, argv);
  if (!f) return NULL;
  uint64_t one = 1;
  if (write(f->wake_fd, &one, sizeof one) < 0) return throw_errno(env, "eventfd write", errno);
  return NULL;
}

static napi_value js_remember(napi_env env, napi_callback_info info) {
  char path[PATH_MAX];
  fan_t *f = handle_and_path(env, info, path, "remember(handle, dir) needs a path");
  if (!f) return NULL;
  union {
    struct file_handle fh;
    unsigned char bytes[sizeof(struct file_handle) + MAX_HANDLE];
  } u;
  u.fh.handle_bytes = MAX_HANDLE;
  int mount_id;
  struct statfs sfs;
  napi_value result;
  napi_get_undefined(env, &result);
  // A file system without handles (some FUSE), or a directory gone already: nothing to remember.
  if (name_to_handle_at(AT_FDCWD, path, &u.fh, &mount_id, 0) < 0 || statfs(path, &sfs) < 0) return result;
  __kernel_fsid_t fsid;
  memcpy(&fsid, &sfs.f_fsid, sizeof fsid);
  unsigned char key[8 + 8 + MAX_HANDLE];
  uint16_t len = handle_key(&fsid, &u.fh, key);
  if (len == 0) return result;
  pthread_mutex_lock(&f->lock);
  int failed = dirs_put(f, key, len, path);
  pthread_mutex_unlock(&f->lock);
  if (failed) return result;
  void *data;
  napi_create_buffer_copy(env, len, key, &data, &result);
  return result;
}

static napi_value js_forget(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  fan_t *f = handle_arg(env, info, 3, argv);
  if (!f) return NULL;
  void *key;
  size_t len;
  char path[PATH_MAX];
  if (napi_get_buffer_info(env, argv[1], &key, &len) != napi_ok || len > 16 + MAX_HANDLE || get_string(env, argv[2], path, sizeof path) != 0) {
    napi_throw_type_error(env, NULL, "forget(handle, key, dir) needs remember's key and the directory");
    return NULL;
  }
  pthread_mutex_lock(&f->lock);
  dir_node_t **found = dirs_find(f, key, (uint16_t)len, fnv(key, len));
  // Only under this name: a directory renamed is remembered under its new name before its old watch goes.
  if (found && strcmp((*found)->path, path) == 0) {
    dir_node_t *n = *found;
    *found = n->next;
    free(n->path);
    free(n);
    f->n_dirs--;
  }
  pthread_mutex_unlock(&f->lock);
  return NULL;
}

static napi_value js_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  void *data = NULL;
  if (argc < 1 || napi_get_value_external(env, argv[0], &data) != napi_ok || !data) return NULL;
  stop((fan_t *)data);
  return NULL;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"open", NULL, js_open, NULL, NULL, NULL, napi_enumerable, NULL},
      {"mark", NULL, js_mark, NULL, NULL, NULL, napi_enumerable, NULL},
      {"setRoots", NULL, js_set_roots, NULL, NULL, NULL, napi_enumerable, NULL},
      {"sync", NULL, js_sync, NULL, NULL, NULL, napi_enumerable, NULL},
      {"remember", NULL, js_remember, NULL, NULL, NULL, napi_enumerable, NULL},
      {"forget", NULL, js_forget, NULL, NULL, NULL, napi_enumerable, NULL},
      {"close", NULL, js_close, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
