/* test_limits.c - CPU and memory limits read from fake cgroup trees (server/limits.c):
 * v2 quota and memory.max, the lowest limit on the path up to the root, v1 files, "max" and
 * -1 meaning no limit, and the CPU count the server plans for. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "server/limits.h"

static char root[256];

static void put(const char *rel, const char *text) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s", root, rel);
    for (char *s = p + strlen(root) + 1; (s = strchr(s, '/')); s++) {
        *s = 0;
        mkdir(p, 0700);
        *s = '/';
    }
    FILE *f = fopen(p, "w");
    cr_assert_not_null(f, "%s", p);
    fputs(text, f);
    fclose(f);
}

static void fresh(void) {
    snprintf(root, sizeof root, "/tmp/sn-limits-XXXXXX");
    cr_assert_not_null(mkdtemp(root));
}

static void cleanup(void) {
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    cr_assert_eq(system(cmd), 0);
}

static sn_limits read_tree(void) {
    char proc[300], mnt[300];
    snprintf(proc, sizeof proc, "%s/proc-self-cgroup", root);
    snprintf(mnt, sizeof mnt, "%s/fs", root);
    sn_limits l;
    sn_limits_read(proc, mnt, &l);
    return l;
}

Test(limits, v2_two_cpu_quota_gives_two_workers) {
    fresh();
    put("proc-self-cgroup", "0::/kubepods/pod1/ctr\n");
    put("fs/kubepods/pod1/ctr/cpu.max", "200000 100000\n");
    put("fs/kubepods/pod1/ctr/memory.max", "536870912\n");
    sn_limits l = read_tree();
    cr_assert_float_eq(l.quota_cpus, 2.0, 1e-9);
    cr_assert_eq(l.memory_max, 536870912LL);
    l.affinity_cpus = 64; /* a 64-core node */
    cr_assert_eq(sn_limits_cpus(&l), 2);
    cleanup();
}

Test(limits, v2_lowest_limit_on_the_path_wins) {
    fresh();
    put("proc-self-cgroup", "0::/a/b\n");
    put("fs/a/b/cpu.max", "max 100000\n"); /* no quota here */
    put("fs/a/cpu.max", "150000 100000\n");
    put("fs/cpu.max", "400000 100000\n");
    put("fs/a/b/memory.max", "max\n");
    put("fs/a/memory.max", "1073741824\n");
    sn_limits l = read_tree();
    cr_assert_float_eq(l.quota_cpus, 1.5, 1e-9);
    cr_assert_eq(l.memory_max, 1073741824LL);
    cr_assert(strstr(l.cpu_from, "/fs/a/cpu.max"), "%s", l.cpu_from);
    l.affinity_cpus = 8;
    cr_assert_eq(sn_limits_cpus(&l), 2, "1.5 CPUs round up to 2");
    cleanup();
}

Test(limits, v1_quota_and_memory) {
    fresh();
    put("proc-self-cgroup", "4:memory:/docker/x\n1:cpu,cpuacct:/docker/x\n0::/\n");
    put("fs/cpu,cpuacct/docker/x/cpu.cfs_quota_us", "300000\n");
    put("fs/cpu,cpuacct/docker/x/cpu.cfs_period_us", "100000\n");
    put("fs/memory/docker/x/memory.limit_in_bytes", "268435456\n");
    put("fs/memory/memory.limit_in_bytes", "9223372036854771712\n"); /* v1's "no limit" */
    sn_limits l = read_tree();
    cr_assert_float_eq(l.quota_cpus, 3.0, 1e-9);
    cr_assert_eq(l.memory_max, 268435456LL);
    cleanup();
}

Test(limits, no_limits_means_affinity) {
    fresh();
    put("proc-self-cgroup", "1:cpu:/\n0::/\n");
    put("fs/cpu/cpu.cfs_quota_us", "-1\n");
    put("fs/cpu/cpu.cfs_period_us", "100000\n");
    put("fs/memory.max", "max\n");
    sn_limits l = read_tree();
    cr_assert_eq(l.quota_cpus, 0);
    cr_assert_eq(l.memory_max, 0);
    cr_assert_gt(l.affinity_cpus, 0, "the test process has an affinity mask");
    cr_assert_eq(sn_limits_cpus(&l), l.affinity_cpus);
    l.affinity_cpus = 3;
    cr_assert_eq(sn_limits_cpus(&l), 3);
    char d[1024];
    sn_limits_describe(&l, d, sizeof d);
    cr_assert(strstr(d, "no CPU quota") && strstr(d, "-> 3 CPUs"), "%s", d);
    cleanup();
}

Test(limits, quota_below_one_cpu_still_gives_one) {
    fresh();
    put("proc-self-cgroup", "0::/small\n");
    put("fs/small/cpu.max", "50000 100000\n");
    sn_limits l = read_tree();
    l.affinity_cpus = 16;
    cr_assert_eq(sn_limits_cpus(&l), 1);
    cleanup();
}
