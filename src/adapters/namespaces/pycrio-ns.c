/*
 * pycrio-ns: make and pin a pod's namespaces, and start its infra process (like cri-o's pinns).
 *
 * A compiled helper, because RunPodSandbox ran two of them and a Python helper's interpreter start-up cost
 * more than its work (docs/bench.md). Forking the daemon instead is unsafe: it is multi-threaded (gRPC),
 * and a child of it may only make raw syscalls. Built by `make helpers` (scripts/bootstrap.sh), linked
 * statically so one binary runs on any x86-64 Linux guest, whatever its glibc.
 *
 *   pycrio-ns pin --dir DIR [--ns net|ipc|uts]... [--hostname NAME] [--sysctl NAME=VALUE]...
 *       Unshare the namespaces, set the hostname (uts), bring lo up (net), write the sysctls inside them,
 *       and bind-mount /proc/self/ns/<kind> onto DIR/<kind>, so the namespaces outlive this process.
 *   pycrio-ns infra --rootfs DIR --init PATH --pid-file PATH [--net P] [--ipc P] [--uts P] [--new-pid]
 *                   [--cgroup-procs FILE]...
 *       Join the pinned namespaces, unshare a PID namespace (--new-pid) and fork. The child writes itself
 *       into the cgroups, unshares a mount namespace, pivots into an empty tmpfs at DIR holding only a
 *       read-only bind of the init, and execs it as `<init> -P`. Prints "<pid> <start time>" (start time:
 *       /proc/<pid>/stat field 22) and writes the same to the pid file, once the exec succeeded.
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

static int pin(int argc, char **argv) {
    enum { DIR_, NS, HOSTNAME, SYSCTL };
    static const struct option_spec specs[] = {{"dir", 0}, {"ns", 1}, {"hostname", 0}, {"sysctl", 1}};
    struct parsed p;
    parse(argc, argv, specs, 4, &p);
    const char *dir = required(&p, DIR_, "dir");
    int flags = 0, has_net = 0, has_uts = 0;
    for (int i = 0; i < p.counts[NS]; i++) {
        int known = 0;
        for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
            if (strcmp(p.values[NS][i], kinds[k].name) == 0) {
                flags |= kinds[k].flag;
                known = 1;
            }
        }
        if (!known) die(EXIT_USAGE, "--ns '%s': one of ipc, net, uts", p.values[NS][i]);
        has_net |= strcmp(p.values[NS][i], "net") == 0;
        has_uts |= strcmp(p.values[NS][i], "uts") == 0;
    }
    if (unshare(flags) < 0) fail("unshare", NULL);
    const char *hostname = single(&p, HOSTNAME);
    if (has_uts && hostname && *hostname && sethostname(hostname, strlen(hostname)) < 0) {
        fail("sethostname", hostname);
    }
    if (has_net) loopback_up();
    for (int i = 0; i < p.counts[SYSCTL]; i++) write_sysctl(p.values[SYSCTL][i]);
    for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
        if (!(flags & kinds[k].flag)) continue;
        char target[4096], source[64];
        if (snprintf(target, sizeof(target), "%s/%s", dir, kinds[k].name) >= (int)sizeof(target)) {
            die(EXIT_USAGE, "--dir is too long");
        }
        snprintf(source, sizeof(source), "/proc/self/ns/%s", kinds[k].name);
        int fd = open(target, O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444);
        if (fd < 0) fail("create", target);
        close(fd);
        if (mount(source, target, NULL, MS_BIND, NULL) < 0) fail("mount", target);
    }
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

static void become_infra(const char *rootfs, const char *init, const char **procs, int n_procs, int devnull) {
    for (int i = 0; i < n_procs; i++) {
        int fd = open(procs[i], O_WRONLY | O_CLOEXEC);
        if (fd < 0 || write(fd, "0", 1) != 1) child_fail("join cgroup", procs[i]);  /* 0: the writer */
        close(fd);
    }
    if (setsid() < 0) child_fail("setsid", NULL);
    /* A mount namespace of the child's own: pivot_root moves every process of a namespace. */
    if (unshare(CLONE_NEWNS) < 0) child_fail("unshare", "mount namespace");
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) child_fail("mount", "/");
    if (mount("tmpfs", rootfs, "tmpfs", MS_NOSUID | MS_NODEV, "size=64k,mode=0755") < 0) {
        child_fail("mount", rootfs);
    }
    /* Under its own name, so `ps` on the node shows what each pod's PID 1 is. */
    const char *slash = strrchr(init, '/');
    const char *name = slash ? slash + 1 : init;
    char target[4096], self[4096];
    snprintf(target, sizeof(target), "%s/%s", rootfs, name);
    snprintf(self, sizeof(self), "/%s", name);
    int fd = open(target, O_CREAT | O_WRONLY | O_CLOEXEC, 0755);
    if (fd < 0) child_fail("create", target);
    close(fd);
    if (mount(init, target, NULL, MS_BIND, NULL) < 0) child_fail("mount", target);
    if (mount(NULL, target, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY, NULL) < 0) child_fail("remount", target);
    char old[4096];
    snprintf(old, sizeof(old), "%s/old", rootfs);
    if (mkdir(old, 0755) < 0) child_fail("mkdir", old);
    if (chdir(rootfs) < 0) child_fail("chdir", rootfs);
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
    enum { ROOTFS, INIT, PID_FILE, NET, IPC, UTS, NEW_PID, CGROUP_PROCS };
    static const struct option_spec specs[] = {
        {"rootfs", 0}, {"init", 0}, {"pid-file", 0}, {"net", 0},
        {"ipc", 0},    {"uts", 0},  {"new-pid", 2},  {"cgroup-procs", 1},
    };
    struct parsed p;
    parse(argc, argv, specs, 8, &p);
    const char *rootfs = required(&p, ROOTFS, "rootfs");
    const char *init = required(&p, INIT, "init");
    const char *pid_file = required(&p, PID_FILE, "pid-file");
    const int joins[][2] = {{NET, CLONE_NEWNET}, {IPC, CLONE_NEWIPC}, {UTS, CLONE_NEWUTS}};
    for (int i = 0; i < 3; i++) {
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
        become_infra(rootfs, init, p.values[CGROUP_PROCS], p.counts[CGROUP_PROCS], devnull);
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
