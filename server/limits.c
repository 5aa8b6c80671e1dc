/* limits.c - CPU and memory limits from the affinity mask and the cgroup tree (limits.h). */
#include "server/limits.h"

#include <math.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* First line of a small file into buf; 0, or -1 when it cannot be read. */
static int read_line(const char *path, char *buf, size_t len) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char *ok = fgets(buf, (int)len, f);
    fclose(f);
    if (!ok) return -1;
    buf[strcspn(buf, "\n")] = 0;
    return 0;
}

/* Calls fn(dir) for dir = root/sub/path and each parent up to root/sub. */
static void walk_up(const char *root, const char *sub, const char *path,
                    void (*fn)(const char *dir, sn_limits *l), sn_limits *l) {
    char p[1024];
    snprintf(p, sizeof p, "%s", path);
    for (;;) {
        char dir[1400];
        snprintf(dir, sizeof dir, "%s%s%s%s", root, sub[0] ? "/" : "", sub, p);
        fn(dir, l);
        char *slash = strrchr(p, '/');
        if (!slash || p[0] == 0) break;
        *slash = 0; /* "/a/b" -> "/a" -> "" (the root itself) */
    }
}

static void set_cpu(sn_limits *l, double cpus, const char *from) {
    if (cpus > 0 && (l->quota_cpus == 0 || cpus < l->quota_cpus)) {
        l->quota_cpus = cpus;
        snprintf(l->cpu_from, sizeof l->cpu_from, "%s", from);
    }
}

static void set_mem(sn_limits *l, long long bytes, const char *from) {
    if (bytes > 0 && (l->memory_max == 0 || bytes < l->memory_max)) {
        l->memory_max = bytes;
        snprintf(l->mem_from, sizeof l->mem_from, "%s", from);
    }
}

static void v2_dir(const char *dir, sn_limits *l) {
    char f[1500], line[128];
    snprintf(f, sizeof f, "%s/cpu.max", dir);
    long long quota, period;
    if (read_line(f, line, sizeof line) == 0 && sscanf(line, "%lld %lld", &quota, &period) == 2 &&
        quota > 0 && period > 0) /* "max 100000" means no quota */
        set_cpu(l, (double)quota / (double)period, f);
    snprintf(f, sizeof f, "%s/memory.max", dir);
    if (read_line(f, line, sizeof line) == 0 && strcmp(line, "max") != 0)
        set_mem(l, atoll(line), f);
}

static void v1_cpu_dir(const char *dir, sn_limits *l) {
    char fq[1500], fp[1500], line[128];
    snprintf(fq, sizeof fq, "%s/cpu.cfs_quota_us", dir);
    snprintf(fp, sizeof fp, "%s/cpu.cfs_period_us", dir);
    if (read_line(fq, line, sizeof line) < 0) return;
    long long quota = atoll(line); /* -1: no quota */
    if (read_line(fp, line, sizeof line) < 0) return;
    long long period = atoll(line);
    if (quota > 0 && period > 0) set_cpu(l, (double)quota / (double)period, fq);
}

static void v1_mem_dir(const char *dir, sn_limits *l) {
    char f[1500], line[128];
    snprintf(f, sizeof f, "%s/memory.limit_in_bytes", dir);
    /* v1 says "no limit" with a huge number (LONG_MAX rounded to pages) */
    if (read_line(f, line, sizeof line) == 0) {
        long long v = atoll(line);
        if (v > 0 && v < (1LL << 60)) set_mem(l, v, f);
    }
}

void sn_limits_read(const char *proc_cgroup, const char *root, sn_limits *l) {
    memset(l, 0, sizeof *l);
    cpu_set_t set;
    l->affinity_cpus = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 0;
    FILE *f = fopen(proc_cgroup, "r");
    if (!f) return;
    char line[2048];
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        /* "hierarchy-ID:controller-list:cgroup-path" */
        char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2) continue;
        *c2 = 0;
        const char *ctrl = c1 + 1, *path = c2 + 1;
        if (strcmp(path, "/") == 0) path = "";
        if (!*ctrl) { /* v2: one unified hierarchy */
            walk_up(root, "", path, v2_dir, l);
            walk_up(root, "unified", path, v2_dir, l); /* hybrid layout */
            continue;
        }
        char list[256];
        snprintf(list, sizeof list, ",%s,", ctrl);
        if (strstr(list, ",cpu,")) {
            walk_up(root, ctrl, path, v1_cpu_dir, l); /* e.g. root/cpu,cpuacct */
            if (strcmp(ctrl, "cpu") != 0) walk_up(root, "cpu", path, v1_cpu_dir, l);
        }
        if (strstr(list, ",memory,")) walk_up(root, "memory", path, v1_mem_dir, l);
    }
    fclose(f);
}

int sn_limits_cpus(const sn_limits *l) {
    int n = l->affinity_cpus > 0 ? l->affinity_cpus : 1;
    if (l->quota_cpus > 0) {
        int q = (int)ceil(l->quota_cpus - 1e-9);
        if (q < n) n = q;
    }
    return n < 1 ? 1 : n;
}

void sn_limits_describe(const sn_limits *l, char *buf, size_t len) {
    char cpu[1600], mem[1600];
    if (l->quota_cpus > 0)
        snprintf(cpu, sizeof cpu, "quota %.2f CPUs (%s)", l->quota_cpus, l->cpu_from);
    else
        snprintf(cpu, sizeof cpu, "no CPU quota");
    if (l->memory_max > 0)
        snprintf(mem, sizeof mem, "memory limit %lld MiB (%s)", l->memory_max >> 20, l->mem_from);
    else
        snprintf(mem, sizeof mem, "no memory limit");
    snprintf(buf, len, "%d CPUs in the affinity mask, %s, %s -> %d CPUs", l->affinity_cpus, cpu,
             mem, sn_limits_cpus(l));
}
