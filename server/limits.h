/* limits.h - what this process may use, read from its container rather than the host: CPUs
 * (affinity mask and cgroup CPU quota) and memory (cgroup memory limit). A 2-CPU pod on a
 * 64-core node gets 2 workers, not 64. cgroup v2 (cpu.max, memory.max) and v1
 * (cpu.cfs_quota_us / cpu.cfs_period_us, memory.limit_in_bytes) are both read; the lowest
 * limit on the path from the process's cgroup up to the root wins. */
#ifndef SN_LIMITS_H
#define SN_LIMITS_H

#include <stddef.h>

typedef struct {
    int affinity_cpus;    /* CPUs in the affinity mask (sched_getaffinity) */
    double quota_cpus;    /* CPU quota / period, in CPUs; 0 = no quota */
    long long memory_max; /* bytes; 0 = no limit */
    char cpu_from[1500];  /* the file the quota came from ("" when none) */
    char mem_from[1500];  /* the file the memory limit came from ("" when none) */
} sn_limits;

/* Read the limits. proc_cgroup is /proc/self/cgroup and root the cgroup mount
 * (/sys/fs/cgroup) in production; tests pass a fake tree. Missing files mean no limit. */
void sn_limits_read(const char *proc_cgroup, const char *root, sn_limits *l);
/* CPUs to plan for: min(affinity, ceil(quota)), at least 1. */
int sn_limits_cpus(const sn_limits *l);
/* One line describing what was found, for the start-up log. */
void sn_limits_describe(const sn_limits *l, char *buf, size_t len);

#endif
