/*
 * pycrio-ns: make and pin a pod's namespaces, and start its infra process (like cri-o's pinns).
 *
 * A compiled helper, because RunPodSandbox ran two of them and a Python helper's interpreter start-up cost
 * more than its work (docs/bench.md). Forking the daemon instead is unsafe: it is multi-threaded (gRPC),
 * and a child of it may only make raw syscalls. Built by `make helpers` (scripts/bootstrap.sh), linked
 * statically so one binary runs on any x86-64 Linux guest, whatever its glibc.
 *
 *   pycrio-ns pin --dir DIR [--ns net|ipc|uts]... [--hostname NAME] [--sysctl NAME=VALUE]...
 *                 [--uid-map MAP --gid-map MAP]
 *       Unshare the namespaces, set the hostname (uts), bring lo up (net), write the sysctls inside them,
 *       and bind-mount /proc/self/ns/<kind> onto DIR/<kind>, so the namespaces outlive this process.
 *       With --uid-map/--gid-map ("container host length" lines joined by commas) the pod has a user
 *       namespace: a forked child unshares it, this process (still in the host's user namespace: only a
 *       process with CAP_SETUID/CAP_SETGID there may map ids other than its own) writes the child's
 *       uid_map and gid_map and pins it as DIR/user; the child then makes the other namespaces inside it,
 *       so it owns them, and this process pins them from /proc/<child>/ns (the child, inside the user
 *       namespace, could not mount onto the host's run dir). Without the maps nothing is forked.
 *   pycrio-ns infra --rootfs DIR --init PATH --pid-file PATH [--user P] [--net P] [--ipc P] [--uts P]
 *                   [--new-pid] [--cgroup-procs FILE]...
 *       Join the pinned namespaces (the user namespace first: it owns the others, and the PID namespace
 *       unshared next is then its too), unshare a PID namespace (--new-pid) and fork. The child writes
 *       itself into the cgroups, unshares a mount namespace, pivots into an empty tmpfs at DIR holding only
 *       a read-only bind of the init, and execs it as `<init> -P` (in a user namespace, as its root).
 *       Prints "<pid> <start time>" (start time: /proc/<pid>/stat field 22) and writes the same to the pid
 *       file, once the exec succeeded.
 *
 * Exit status: 0 done, 1 failed (stderr says why), 2 bad command line, 3 a sysctl was refused (pin; the
 * message names it).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define EXIT_FAILED 1
#define EXIT_USAGE 2
#define EXIT_BAD_SYSCTL 3

static const char *prog = "pycrio-ns";

static void die(int status, const char *format, ...) {
    va_list args;
    if (status != EXIT_BAD_SYSCTL) fprintf(stderr, "%s: ", prog);  /* that message goes to the client */
    va_start(args, format);
    vfprintf(stderr, format, args);
    va_end(args);
    fputc('\n', stderr);
    exit(status);
}

/* A syscall's failure: "<what> <path>: <strerror>", exit 1. */
static void fail(const char *what, const char *path) {
    die(EXIT_FAILED, "%s%s%s: %s", what, path ? " " : "", path ? path : "", strerror(errno));
}

/* The options of one subcommand, without dashes. A repeated option keeps every value (at most argc). */
struct option_spec {
    const char *name;
    int repeated;  /* 0: single value, 1: repeatable value, 2: flag */
};

struct parsed {
    const char **values[16];
    int counts[16];
};

static void parse(int argc, char **argv, const struct option_spec *specs, int n_specs, struct parsed *out) {
    for (int i = 0; i < n_specs; i++) {
        out->values[i] = calloc((size_t)argc + 1, sizeof(char *));
        out->counts[i] = 0;
        if (!out->values[i]) die(EXIT_FAILED, "out of memory");
    }
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        int found = -1;
        if (strncmp(arg, "--", 2) == 0) {
            for (int s = 0; s < n_specs; s++) {
                if (strcmp(arg + 2, specs[s].name) == 0) found = s;
            }
        }
        if (found < 0) die(EXIT_USAGE, "unrecognized argument '%s'", arg);
        if (specs[found].repeated == 2) {
            out->values[found][out->counts[found]++] = "";
            continue;
        }
        if (i + 1 >= argc) die(EXIT_USAGE, "%s needs a value", arg);
        if (specs[found].repeated == 0) out->counts[found] = 0;
        out->values[found][out->counts[found]++] = argv[++i];
    }
}

static const char *single(const struct parsed *p, int index) {
    return p->counts[index] ? p->values[index][p->counts[index] - 1] : NULL;
}

static const char *required(const struct parsed *p, int index, const char *name) {
    const char *value = single(p, index);
    if (!value) die(EXIT_USAGE, "required: --%s", name);
    return value;
}

/* ---- pin ------------------------------------------------------------------------------------------- */

static const struct {
    const char *name;
    int flag;
} kinds[] = {{"net", CLONE_NEWNET}, {"ipc", CLONE_NEWIPC}, {"uts", CLONE_NEWUTS}};

static void loopback_up(void) {
    int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (sock < 0) fail("socket", NULL);
    struct ifreq request;
    memset(&request, 0, sizeof(request));
    strcpy(request.ifr_name, "lo");
    if (ioctl(sock, SIOCGIFFLAGS, &request) < 0) fail("SIOCGIFFLAGS", "lo");
    request.ifr_flags |= IFF_UP;
    if (ioctl(sock, SIOCSIFFLAGS, &request) < 0) fail("SIOCSIFFLAGS", "lo");
    close(sock);
}

static void write_sysctl(const char *item) {
    const char *equals = strchr(item, '=');
    if (!equals) die(EXIT_USAGE, "--sysctl '%s': NAME=VALUE expected", item);
    size_t name_len = (size_t)(equals - item);
    const char *value = equals + 1;
    char path[4096];
    if (name_len + sizeof("/proc/sys/") > sizeof(path)) {
        die(EXIT_BAD_SYSCTL, "sysctl '%.*s' does not exist in the pod's namespaces", (int)name_len, item);
    }
    int at = snprintf(path, sizeof(path), "/proc/sys/");
    for (size_t i = 0; i < name_len; i++) path[at++] = item[i] == '.' ? '/' : item[i];
    path[at] = '\0';
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) {
        die(EXIT_BAD_SYSCTL, "sysctl '%.*s' does not exist in the pod's namespaces", (int)name_len, item);
    }
    size_t length = strlen(value);
    if (fd < 0 || write(fd, value, length) != (ssize_t)length) {
        die(EXIT_BAD_SYSCTL, "sysctl '%.*s': the kernel refused value '%s': %s", (int)name_len, item, value,
            strerror(errno));
    }
    close(fd);
}

/* One user namespace map (uid_map or gid_map) as the kernel takes it: "container host length" lines. */
#define MAX_MAP_LINES 5  /* the kernel's limit before Linux 4.15; the kubelet sends one */
#define MAX_ID 4294967295ULL  /* (uid_t)-1 means "no id" and may not be mapped */

struct id_map {
    char text[MAX_MAP_LINES * 3 * 11 + 1];
    size_t length;
};

/* A decimal id in 0..MAX_ID at *cursor (digits only: strtoull would take signs and spaces). */
static int parse_id(const char **cursor, unsigned long long *out) {
    const char *at = *cursor;
    unsigned long long value = 0;
    int digits = 0;
    while (*at >= '0' && *at <= '9') {
        value = value * 10 + (unsigned long long)(*at++ - '0');
        if (++digits > 10 || value > MAX_ID) return -1;
    }
    if (!digits) return -1;
    *cursor = at;
    *out = value;
    return 0;
}

/* Parse and check "--<option> C H L[,C H L]...", and write it out again as the kernel wants it. */
static void parse_map(const char *option, const char *text, struct id_map *out) {
    const char *at = text;
    out->length = 0;
    out->text[0] = '\0';
    for (int line = 0;; line++) {
        if (line == MAX_MAP_LINES) {
            die(EXIT_USAGE, "--%s '%s': more than %d mappings", option, text, MAX_MAP_LINES);
        }
        unsigned long long ids[3];
        for (int field = 0; field < 3; field++) {
            if (field && *at++ != ' ') {
                die(EXIT_USAGE, "--%s '%s': 'container host length' expected", option, text);
            }
            if (parse_id(&at, &ids[field]) < 0) {
                die(EXIT_USAGE, "--%s '%s': ids are decimal numbers up to %llu", option, text, MAX_ID - 1);
            }
        }
        if (ids[2] == 0) die(EXIT_USAGE, "--%s '%s': a mapping needs at least one id", option, text);
        if (ids[0] + ids[2] > MAX_ID || ids[1] + ids[2] > MAX_ID) {
            die(EXIT_USAGE, "--%s '%s': a mapping runs past id %llu", option, text, MAX_ID - 1);
        }
        out->length += (size_t)snprintf(out->text + out->length, sizeof(out->text) - out->length,
                                        "%llu %llu %llu\n", ids[0], ids[1], ids[2]);
        if (*at == '\0') return;
        if (*at++ != ',') die(EXIT_USAGE, "--%s '%s': mappings are separated by commas", option, text);
    }
}

/* Unshare the namespaces in `flags` and set them up; a failure exits (3 for a refused sysctl). */
static void make_namespaces(int flags, const char *hostname, const char **sysctls, int n_sysctls) {
    if (unshare(flags) < 0) fail("unshare", NULL);
    if ((flags & CLONE_NEWUTS) && hostname && *hostname && sethostname(hostname, strlen(hostname)) < 0) {
        fail("sethostname", hostname);
    }
    if (flags & CLONE_NEWNET) loopback_up();
    for (int i = 0; i < n_sysctls; i++) write_sysctl(sysctls[i]);
}

/* Bind-mount the namespace file `source` onto DIR/<kind>, so the namespace outlives its processes. */
static void pin_one(const char *source, const char *dir, const char *kind) {
    char target[4096];
    if (snprintf(target, sizeof(target), "%s/%s", dir, kind) >= (int)sizeof(target)) {
        die(EXIT_USAGE, "--dir is too long");
    }
    int fd = open(target, O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444);
    if (fd < 0) fail("create", target);
    close(fd);
    if (mount(source, target, NULL, MS_BIND, NULL) < 0) fail("mount", target);
}

static void pin_all(const char *proc, int flags, const char *dir) {
    for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
        if (!(flags & kinds[k].flag)) continue;
        char source[64];
        snprintf(source, sizeof(source), "%s/ns/%s", proc, kinds[k].name);
        pin_one(source, dir, kinds[k].name);
    }
}

/* A child's exit status once it ended: its own, or 1 when a signal ended it. */
static int child_status(pid_t pid) {
    int status;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) return EXIT_FAILED;
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : EXIT_FAILED;
}

/* The status to return for a child that stopped short (it said why on stderr, or exited at our EOF). */
static int child_failed(pid_t pid) {
    int status = child_status(pid);
    return status ? status : EXIT_FAILED;
}

static void write_map(pid_t pid, const char *name, const struct id_map *map) {
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, name);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) fail("open", path);
    if (write(fd, map->text, map->length) != (ssize_t)map->length) fail("write", path);  /* one write: all */
    close(fd);
}

/* One byte from `fd`, or 0 at EOF or on an error. */
static char read_byte(int fd) {
    char byte;
    ssize_t got;
    do got = read(fd, &byte, 1);
    while (got < 0 && errno == EINTR);
    return got == 1 ? byte : 0;
}

/*
 * Pipes: `ready` (child: unshared), `go` (parent: mapped; EOF: pinned or given up, the child may exit),
 * `made` (child: its namespaces are made). The child reports its own failures on the inherited stderr and
 * exits with the status this process then returns.
 */
static int pin_in_user_namespace(int flags, const char *dir, const char *hostname, const char **sysctls,
                                 int n_sysctls, const struct id_map *uids, const struct id_map *gids) {
    int ready[2], go[2], made[2];
    if (pipe2(ready, O_CLOEXEC) < 0 || pipe2(go, O_CLOEXEC) < 0 || pipe2(made, O_CLOEXEC) < 0) {
        fail("pipe", NULL);
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) fail("fork", NULL);
    if (pid == 0) {
        close(ready[0]);
        close(go[1]);
        close(made[0]);
        if (unshare(CLONE_NEWUSER) < 0) fail("unshare", "user namespace");
        if (write(ready[1], "u", 1) != 1) _exit(EXIT_FAILED);
        if (read_byte(go[0]) != 'g') _exit(EXIT_FAILED);  /* the parent gave up and said why */
        make_namespaces(flags, hostname, sysctls, n_sysctls);
        if (write(made[1], "m", 1) != 1) _exit(EXIT_FAILED);
        read_byte(go[0]);  /* EOF once the parent has pinned them */
        _exit(0);
    }
    close(ready[1]);
    close(go[0]);
    close(made[1]);
    if (read_byte(ready[0]) != 'u') return child_failed(pid);
    write_map(pid, "uid_map", uids);
    write_map(pid, "gid_map", gids);
    char proc[32];
    snprintf(proc, sizeof(proc), "/proc/%d", (int)pid);
    char source[64];
    snprintf(source, sizeof(source), "%s/ns/user", proc);
    pin_one(source, dir, "user");
    if (write(go[1], "g", 1) != 1) fail("write", "pipe");
    if (read_byte(made[0]) != 'm') return child_failed(pid);
    pin_all(proc, flags, dir);
    close(go[1]);
    int status = child_status(pid);
    if (status) die(EXIT_FAILED, "the user namespace child exited %d after the pinning", status);
    return 0;
}

static int pin(int argc, char **argv) {
    enum { DIR_, NS, HOSTNAME, SYSCTL, UID_MAP, GID_MAP };
    static const struct option_spec specs[] = {{"dir", 0},    {"ns", 1},      {"hostname", 0},
                                               {"sysctl", 1}, {"uid-map", 0}, {"gid-map", 0}};
    struct parsed p;
    parse(argc, argv, specs, 6, &p);
    const char *dir = required(&p, DIR_, "dir");
    int flags = 0;
    for (int i = 0; i < p.counts[NS]; i++) {
        int known = 0;
        for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
            if (strcmp(p.values[NS][i], kinds[k].name) == 0) {
                flags |= kinds[k].flag;
                known = 1;
            }
        }
        if (!known) die(EXIT_USAGE, "--ns '%s': one of ipc, net, uts", p.values[NS][i]);
    }
    for (int i = 0; i < p.counts[SYSCTL]; i++) {
        const char *item = p.values[SYSCTL][i];  /* checked before a user namespace child forks */
        if (!strchr(item, '=')) die(EXIT_USAGE, "--sysctl '%s': NAME=VALUE expected", item);
    }
    const char *hostname = single(&p, HOSTNAME);
    const char *uid_map = single(&p, UID_MAP), *gid_map = single(&p, GID_MAP);
    if (!uid_map != !gid_map) die(EXIT_USAGE, "--uid-map and --gid-map go together");
    if (uid_map) {
        struct id_map uids, gids;
        parse_map("uid-map", uid_map, &uids);
        parse_map("gid-map", gid_map, &gids);
        return pin_in_user_namespace(flags, dir, hostname, p.values[SYSCTL], p.counts[SYSCTL], &uids, &gids);
    }
    make_namespaces(flags, hostname, p.values[SYSCTL], p.counts[SYSCTL]);
    pin_all("/proc/self", flags, dir);
    return 0;
}

/* ---- infra ----------------------------------------------------------------------------------------- */

/* In the forked child: report what failed on the pipe to the parent and exit. */
static int report_fd = -1;

static void child_fail(const char *what, const char *path) {
    char message[512];
    int length = snprintf(message, sizeof(message), "%s%s%s: %s", what, path ? " " : "", path ? path : "",
                          strerror(errno));
    if (length > (int)sizeof(message) - 1) length = (int)sizeof(message) - 1;
    if (write(report_fd, message, (size_t)length) < 0) {
        /* nothing else to tell it with */
    }
    _exit(127);
}

static void become_infra(const char *rootfs, const char *init, const char **procs, int n_procs, int devnull,
                         int in_userns) {
    for (int i = 0; i < n_procs; i++) {
        int fd = open(procs[i], O_WRONLY | O_CLOEXEC);
        if (fd < 0 || write(fd, "0", 1) != 1) child_fail("join cgroup", procs[i]);  /* 0: the writer */
        close(fd);
    }
    if (setsid() < 0) child_fail("setsid", NULL);
    /* A mount namespace of the child's own: pivot_root moves every process of a namespace. */
    if (unshare(CLONE_NEWNS) < 0) child_fail("unshare", "mount namespace");
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) child_fail("mount", "/");
    /* In a user namespace the tmpfs is its root's (uid 0 there), for the files made in it below. */
    const char *options = in_userns ? "size=64k,mode=0755,uid=0,gid=0" : "size=64k,mode=0755";
    if (mount("tmpfs", rootfs, "tmpfs", MS_NOSUID | MS_NODEV, options) < 0) child_fail("mount", rootfs);
    if (chdir(rootfs) < 0) child_fail("chdir", rootfs);
    /* Become the pod's root once the host-owned paths are behind: its host uid may not traverse the run
       dir, and the host's root, unmapped in the namespace, may not make files in the tmpfs. */
    if (in_userns && setresgid(0, 0, 0) < 0) child_fail("setresgid", "0");
    if (in_userns && setresuid(0, 0, 0) < 0) child_fail("setresuid", "0");
    /* Under its own name, so `ps` on the node shows what each pod's PID 1 is. */
    const char *slash = strrchr(init, '/');
    const char *name = slash ? slash + 1 : init;
    char self[4096];
    if (!*name || snprintf(self, sizeof(self), "/%s", name) >= (int)sizeof(self)) {
        errno = EINVAL;
        child_fail("init name", init);
    }
    int fd = open(name, O_CREAT | O_WRONLY | O_CLOEXEC, 0755);
    if (fd < 0) child_fail("create", name);
    close(fd);
    if (mount(init, name, NULL, MS_BIND, NULL) < 0) child_fail("mount", name);
    if (mount(NULL, name, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY, NULL) < 0) child_fail("remount", name);
    if (mkdir("old", 0755) < 0) child_fail("mkdir", "old");
    if (syscall(SYS_pivot_root, ".", "old") < 0) child_fail("pivot_root", rootfs);
    if (chdir("/") < 0) child_fail("chdir", "/");
    if (umount2("/old", MNT_DETACH) < 0) child_fail("umount", "/old");
    if (rmdir("/old") < 0) child_fail("rmdir", "/old");
    if (mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID, NULL) < 0) {
        child_fail("remount", "/");
    }
    for (int target_fd = 0; target_fd < 3; target_fd++) {
        if (dup2(devnull, target_fd) < 0) child_fail("dup2", NULL);
    }
    char *const args[] = {self, "-P", NULL};
    execv(self, args);
    child_fail("exec", init);
}

/* Field 22 of /proc/<pid>/stat, or -1 when the process is gone or a zombie. */
static long long start_time(pid_t pid) {
    char path[64], stat[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t length = read(fd, stat, sizeof(stat) - 1);
    close(fd);
    if (length <= 0) return -1;
    stat[length] = '\0';
    char *field = strrchr(stat, ')');  /* the command name may hold spaces or parentheses */
    if (!field || field[1] == '\0') return -1;
    field += 2;  /* field 3, the state */
    if (*field == 'Z' || *field == 'X') return -1;
    for (int n = 3; n < 22; n++) {
        field = strchr(field, ' ');
        if (!field) return -1;
        field++;
    }
    return strtoll(field, NULL, 10);
}

static int infra(int argc, char **argv) {
    enum { ROOTFS, INIT, PID_FILE, USER, NET, IPC, UTS, NEW_PID, CGROUP_PROCS };
    static const struct option_spec specs[] = {
        {"rootfs", 0}, {"init", 0},    {"pid-file", 0}, {"user", 0},         {"net", 0},
        {"ipc", 0},    {"uts", 0},     {"new-pid", 2},  {"cgroup-procs", 1},
    };
    struct parsed p;
    parse(argc, argv, specs, 9, &p);
    const char *rootfs = required(&p, ROOTFS, "rootfs");
    const char *init = required(&p, INIT, "init");
    const char *pid_file = required(&p, PID_FILE, "pid-file");
    /* The user namespace first: it owns the others, and joining it gives the rights to join them. */
    const int joins[][2] = {
        {USER, CLONE_NEWUSER}, {NET, CLONE_NEWNET}, {IPC, CLONE_NEWIPC}, {UTS, CLONE_NEWUTS},
    };
    const char *user = single(&p, USER);
    for (int i = 0; i < 4; i++) {
        const char *path = single(&p, joins[i][0]);
        if (!path || !*path) continue;
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) fail("open", path);
        if (setns(fd, joins[i][1]) < 0) fail("setns", path);
        close(fd);
    }
    if (p.counts[NEW_PID] && unshare(CLONE_NEWPID) < 0) fail("unshare", "pid namespace");  /* for the child */
    int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (devnull < 0) fail("open", "/dev/null");
    int report[2];
    if (pipe2(report, O_CLOEXEC) < 0) fail("pipe", NULL);
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) fail("fork", NULL);
    if (pid == 0) {
        close(report[0]);
        report_fd = report[1];
        become_infra(rootfs, init, p.values[CGROUP_PROCS], p.counts[CGROUP_PROCS], devnull, user && *user);
    }
    close(report[1]);
    char failure[512];
    size_t got = 0;
    ssize_t chunk;
    while (got < sizeof(failure) - 1) {
        chunk = read(report[0], failure + got, sizeof(failure) - 1 - got);
        if (chunk < 0 && errno == EINTR) continue;
        if (chunk <= 0) break;
        got += (size_t)chunk;
    }
    failure[got] = '\0';
    if (got) {
        waitpid(pid, NULL, 0);
        die(EXIT_FAILED, "infra process failed to start: %s", failure);
    }
    long long started = start_time(pid);
    if (started < 0) die(EXIT_FAILED, "infra process exited right after it started");
    char tmp[4096];
    if (snprintf(tmp, sizeof(tmp), "%s.tmp", pid_file) >= (int)sizeof(tmp)) {
        die(EXIT_USAGE, "--pid-file is too long");
    }
    FILE *handle = fopen(tmp, "we");
    if (!handle) fail("create", tmp);
    fprintf(handle, "%d %lld\n", (int)pid, started);
    if (fclose(handle) != 0) fail("write", tmp);
    if (rename(tmp, pid_file) < 0) fail("rename", pid_file);
    printf("%d %lld\n", (int)pid, started);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2) die(EXIT_USAGE, "usage: pycrio-ns pin|infra OPTIONS");
    if (strcmp(argv[1], "pin") == 0) {
        prog = "pycrio-ns pin";
        return pin(argc - 2, argv + 2);
    }
    if (strcmp(argv[1], "infra") == 0) {
        prog = "pycrio-ns infra";
        return infra(argc - 2, argv + 2);
    }
    die(EXIT_USAGE, "unknown command '%s': pin or infra", argv[1]);
}
