/*
 * Power-cut shim for the black-box durability test (`powercut.rs`), preloaded with LD_PRELOAD.
 *
 * It models the disk's volatile write cache as an undo log. Before every write to a regular file
 * under $NIMBUS_POWERCUT_DIR it appends to $NIMBUS_POWERCUT_LOG (which must lie outside that
 * directory) the bytes and the size the write is about to replace; after every successful fsync
 * or fdatasync of such a file it appends a sync mark. `powercut.rs` then "cuts the power" by
 * undoing, per file, every write the file's last sync does not cover.
 *
 * Log format: records of ten native-endian u64 fields (`struct record`), then `path_len` bytes
 * of path, then `old_len` bytes of old data. A record's position is its byte offset in the log;
 * a sync mark covers the records before position `covers` (the log's size when the sync call
 * began: a write racing the sync is not covered, as on a real disk). Only the last record can be
 * cut short (the process was killed while appending it, so its write never ran): the reader
 * ignores it.
 *
 * Seen: write, writev, pwrite, pwrite64, pwritev, pwritev64, ftruncate, ftruncate64, fallocate,
 * fallocate64, posix_fallocate, posix_fallocate64 (undo records); fsync, fdatasync (sync mark
 * for the file), syncfs (for its file system), sync (for everything). sync_file_range only starts
 * write-back (no cache flush, no metadata): it makes nothing durable and is passed through.
 * Not modelled: directory entries (files created, renamed or unlinked stay so), other metadata,
 * O_SYNC/O_DSYNC files (their writes count as unsynced until an fsync, the safe side), open with
 * O_TRUNC, writes through mmap and raw syscalls that bypass libc (copy_file_range, io_uring).
 * One process at a time appends to a log (a record is appended in pieces under a mutex).
 *
 * Test-only fault point: with $NIMBUS_POWERCUT_STALL_PATH, $NIMBUS_POWERCUT_STALL_AFTER (N) and
 * $NIMBUS_POWERCUT_STALL_MARK set, the calling thread of the (N+1)th fsync or fdatasync of that
 * exact path with writes since its previous one creates the mark file and blocks forever before
 * syncing: the test then knows that writes are in the file, unsynced (for a WAL: a commit's
 * frames, unacknowledged), and kills the process.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#define MAGIC 0x3143455254554350ULL /* "PCUTREC1" */
#define KIND_UNDO 1
#define KIND_SYNC 2    /* one file (dev, ino) */
#define KIND_SYNC_FS 3 /* every file of device `dev`; dev 0: every file */

struct record {
    uint64_t magic;
    uint64_t kind;
    uint64_t dev;
    uint64_t ino;
    uint64_t offset;   /* UNDO: where the old bytes go back */
    uint64_t len;      /* UNDO: bytes the operation wrote (what a cut drops) */
    uint64_t old_size; /* UNDO: the file's size before the operation */
    uint64_t old_len;  /* UNDO: old bytes following the path */
    uint64_t covers;   /* SYNC*: records before this log position are durable */
    uint64_t path_len;
};

static int enabled;
static char dir[PATH_MAX];
static size_t dir_len;
static int log_fd = -1;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static char stall_path[PATH_MAX];
static const char *stall_mark;
static long stall_after;
static long stall_seen;
/* Whether the stall path was written since the last sync call on it began. */
static int stall_dirty;
/* Old bytes are copied to the log through this buffer, under `lock`. */
static char chunk[64 * 1024];

/* The next definition of `name` (libc's), looked up on first use: a wrapper may run before
 * this library's constructor. */
#define REAL(name)                                                                                 \
    static __typeof__(name) *real;                                                                \
    if (!real) real = (__typeof__(name) *)dlsym(RTLD_NEXT, #name)

static void die(const char *what) {
    char msg[256];
    int n = snprintf(msg, sizeof msg, "powercut shim: %s: %s\n", what, strerror(errno));
    REAL(write);
    if (n > 0) real(2, msg, (size_t)n);
    _exit(97);
}

__attribute__((constructor)) static void init(void) {
    const char *d = getenv("NIMBUS_POWERCUT_DIR");
    if (!d || !*d) return;
    const char *log_path = getenv("NIMBUS_POWERCUT_LOG");
    if (!log_path || !*log_path) {
        errno = EINVAL;
        die("NIMBUS_POWERCUT_DIR without NIMBUS_POWERCUT_LOG");
    }
    /* /proc/self/fd links are canonical: compare against the canonical directory when it
     * exists already, else against the path as given (the test passes a canonical one). */
    if (!realpath(d, dir)) snprintf(dir, sizeof dir, "%s", d);
    dir_len = strlen(dir);
    while (dir_len > 1 && dir[dir_len - 1] == '/') dir[--dir_len] = 0;
    log_fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (log_fd < 0) die("opening NIMBUS_POWERCUT_LOG");
    const char *sp = getenv("NIMBUS_POWERCUT_STALL_PATH");
    if (sp && *sp) {
        snprintf(stall_path, sizeof stall_path, "%s", sp);
        stall_mark = getenv("NIMBUS_POWERCUT_STALL_MARK");
        const char *after = getenv("NIMBUS_POWERCUT_STALL_AFTER");
        stall_after = after ? strtol(after, NULL, 10) : 0;
        if (!stall_mark || !*stall_mark) {
            errno = EINVAL;
            die("NIMBUS_POWERCUT_STALL_PATH without NIMBUS_POWERCUT_STALL_MARK");
        }
    }
    enabled = 1;
}

/* Whether `fd` is a regular file under the tracked directory; fills `st` and `path`. */
static int tracked(int fd, struct stat *st, char *path) {
    if (!enabled || fd < 0 || fstat(fd, st) != 0 || !S_ISREG(st->st_mode)) return 0;
    char link[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, PATH_MAX - 1);
    if (n <= 0) return 0;
    path[n] = 0;
    return strncmp(path, dir, dir_len) == 0 && path[dir_len] == '/';
}

static void log_bytes(const void *buf, size_t len) {
    REAL(write);
    const char *p = buf;
    while (len > 0) {
        ssize_t n = real(log_fd, p, len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) die("appending to NIMBUS_POWERCUT_LOG");
        p += n;
        len -= (size_t)n;
    }
}

static uint64_t log_position(void) {
    struct stat st;
    if (fstat(log_fd, &st) != 0) die("stat of NIMBUS_POWERCUT_LOG");
    return (uint64_t)st.st_size;
}

/* Appends an undo record for an operation about to write `len` bytes at `offset` of `fd`, or
 * (ftruncate, len 0) to cut the file at `offset`: the old size and the old bytes from `offset`
 * up to the old size (the whole old tail for a truncate). Called with `lock` held; `st` is the
 * file's state now. */
static void log_undo(int fd, const struct stat *st, const char *path, uint64_t offset, uint64_t len,
                     int is_truncate) {
    uint64_t old_size = (uint64_t)st->st_size;
    uint64_t end = is_truncate ? old_size : offset + len;
    if (end > old_size) end = old_size;
    uint64_t old_len = offset < end ? end - offset : 0;
    size_t path_len = strlen(path);
    struct record r = {MAGIC, KIND_UNDO, (uint64_t)st->st_dev, (uint64_t)st->st_ino, offset, len,
                       old_size, old_len, 0, path_len};
    /* A write-only descriptor cannot be read: read the old bytes through a second one. */
    int rfd = fd;
    int flags = fcntl(fd, F_GETFL);
    if (old_len > 0 && flags >= 0 && (flags & O_ACCMODE) == O_WRONLY) {
        char link[64];
        snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
        rfd = open(link, O_RDONLY | O_CLOEXEC);
        if (rfd < 0) die("reopening a write-only file to read its old bytes");
    }
    log_bytes(&r, sizeof r);
    log_bytes(path, path_len);
    uint64_t done = 0;
    while (done < old_len) {
        size_t want = old_len - done < sizeof chunk ? (size_t)(old_len - done) : sizeof chunk;
        ssize_t n = pread(rfd, chunk, want, (off_t)(offset + done));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) die("reading the bytes a write replaces");
        log_bytes(chunk, (size_t)n);
        done += (uint64_t)n;
    }
    if (rfd != fd) close(rfd);
}

/* The offset a write() or writev() of `fd` writes at. */
static uint64_t current_offset(int fd, const struct stat *st) {
    int flags = fcntl(fd, F_GETFL);
    if (flags >= 0 && (flags & O_APPEND)) return (uint64_t)st->st_size;
    off_t at = lseek(fd, 0, SEEK_CUR);
    return at < 0 ? 0 : (uint64_t)at;
}

static size_t iov_len(const struct iovec *iov, int count) {
    size_t total = 0;
    for (int i = 0; i < count; i++) total += iov[i].iov_len;
    return total;
}

/* Runs `op` (a write of `len` bytes at `offset`, or a truncate to `offset`) on a tracked file
 * with its undo record logged first; the lock keeps the log in the order the writes happen. */
#define WITH_UNDO(fd, offset_expr, len, is_truncate, op)                                           \
    do {                                                                                           \
        struct stat st_;                                                                           \
        char path_[PATH_MAX];                                                                      \
        if (!tracked(fd, &st_, path_)) return op;                                                  \
        pthread_mutex_lock(&lock);                                                                 \
        if (fstat(fd, &st_) != 0) die("stat of a tracked file");                                   \
        log_undo(fd, &st_, path_, (offset_expr), (len), (is_truncate));                            \
        if (stall_path[0] && strcmp(path_, stall_path) == 0) stall_dirty = 1;                      \
        __typeof__(op) result_ = op;                                                               \
        int errno_ = errno;                                                                        \
        pthread_mutex_unlock(&lock);                                                               \
        errno = errno_;                                                                            \
        return result_;                                                                            \
    } while (0)

ssize_t write(int fd, const void *buf, size_t n) {
    REAL(write);
    WITH_UNDO(fd, current_offset(fd, &st_), n, 0, real(fd, buf, n));
}

ssize_t writev(int fd, const struct iovec *iov, int count) {
    REAL(writev);
    WITH_UNDO(fd, current_offset(fd, &st_), iov_len(iov, count), 0, real(fd, iov, count));
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t offset) {
    REAL(pwrite);
    WITH_UNDO(fd, (uint64_t)offset, n, 0, real(fd, buf, n, offset));
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off64_t offset) {
    REAL(pwrite64);
    WITH_UNDO(fd, (uint64_t)offset, n, 0, real(fd, buf, n, offset));
}

ssize_t pwritev(int fd, const struct iovec *iov, int count, off_t offset) {
    REAL(pwritev);
    WITH_UNDO(fd, (uint64_t)offset, iov_len(iov, count), 0, real(fd, iov, count, offset));
}

ssize_t pwritev64(int fd, const struct iovec *iov, int count, off64_t offset) {
    REAL(pwritev64);
    WITH_UNDO(fd, (uint64_t)offset, iov_len(iov, count), 0, real(fd, iov, count, offset));
}

int ftruncate(int fd, off_t length) {
    REAL(ftruncate);
    WITH_UNDO(fd, (uint64_t)length, 0, 1, real(fd, length));
}

int ftruncate64(int fd, off64_t length) {
    REAL(ftruncate64);
    WITH_UNDO(fd, (uint64_t)length, 0, 1, real(fd, length));
}

int fallocate(int fd, int mode, off_t offset, off_t len) {
    REAL(fallocate);
    WITH_UNDO(fd, (uint64_t)offset, (uint64_t)len, 0, real(fd, mode, offset, len));
}

int fallocate64(int fd, int mode, off64_t offset, off64_t len) {
    REAL(fallocate64);
    WITH_UNDO(fd, (uint64_t)offset, (uint64_t)len, 0, real(fd, mode, offset, len));
}

int posix_fallocate(int fd, off_t offset, off_t len) {
    REAL(posix_fallocate);
    WITH_UNDO(fd, (uint64_t)offset, (uint64_t)len, 0, real(fd, offset, len));
}

int posix_fallocate64(int fd, off64_t offset, off64_t len) {
    REAL(posix_fallocate64);
    WITH_UNDO(fd, (uint64_t)offset, (uint64_t)len, 0, real(fd, offset, len));
}

/* The fault point: blocks the calling thread for good before the chosen sync. */
static void maybe_stall(const char *path) {
    if (!stall_path[0] || strcmp(path, stall_path) != 0) return;
    pthread_mutex_lock(&lock);
    long seen = stall_dirty ? ++stall_seen : 0;
    pthread_mutex_unlock(&lock);
    if (seen <= stall_after) return;
    int fd = open(stall_mark, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) die("creating NIMBUS_POWERCUT_STALL_MARK");
    close(fd);
    for (;;) pause();
}

static void log_sync(uint64_t kind, uint64_t dev, uint64_t ino, uint64_t covers) {
    struct record r = {MAGIC, kind, dev, ino, 0, 0, 0, 0, covers, 0};
    pthread_mutex_lock(&lock);
    log_bytes(&r, sizeof r);
    pthread_mutex_unlock(&lock);
}

/* Runs a sync call on `fd`; when it succeeds on a tracked file, marks every write logged
 * before the call began as durable. */
static int file_sync(int fd, int (*real)(int)) {
    struct stat st;
    char path[PATH_MAX];
    if (!tracked(fd, &st, path)) return real(fd);
    maybe_stall(path);
    pthread_mutex_lock(&lock);
    uint64_t covers = log_position();
    if (stall_path[0] && strcmp(path, stall_path) == 0) stall_dirty = 0;
    pthread_mutex_unlock(&lock);
    int rc = real(fd);
    if (rc == 0) {
        int saved = errno;
        log_sync(KIND_SYNC, (uint64_t)st.st_dev, (uint64_t)st.st_ino, covers);
        errno = saved;
    }
    return rc;
}

int fsync(int fd) {
    REAL(fsync);
    return file_sync(fd, real);
}

int fdatasync(int fd) {
    REAL(fdatasync);
    return file_sync(fd, real);
}

int syncfs(int fd) {
    REAL(syncfs);
    struct stat st;
    if (!enabled || fstat(fd, &st) != 0) return real(fd);
    pthread_mutex_lock(&lock);
    uint64_t covers = log_position();
    pthread_mutex_unlock(&lock);
    int rc = real(fd);
    if (rc == 0) {
        int saved = errno;
        log_sync(KIND_SYNC_FS, (uint64_t)st.st_dev, 0, covers);
        errno = saved;
    }
    return rc;
}

void sync(void) {
    REAL(sync);
    if (!enabled) {
        real();
        return;
    }
    pthread_mutex_lock(&lock);
    uint64_t covers = log_position();
    pthread_mutex_unlock(&lock);
    real();
    log_sync(KIND_SYNC_FS, 0, 0, covers);
}

int sync_file_range(int fd, off64_t offset, off64_t nbytes, unsigned int flags) {
    REAL(sync_file_range);
    /* Write-back only: no sync mark (see the header). */
    return real(fd, offset, nbytes, flags);
}
