/* cli.h - helpers shared by the `shufflenet` subcommands in tools/. */
#ifndef SN_CLI_H
#define SN_CLI_H

#include "engine/shufflenet.h"

/* Largest file the CLI reads as an image (1 GiB: no image is that large). */
#define SN_CLI_MAX_FILE ((size_t)1 << 30)

int sn_cli_is_help(const char *a);
/* Matches "--key value" or "--key=value" at argv[*i]; returns the value or NULL. */
const char *sn_cli_opt(int argc, char **argv, int *i, const char *key);
/* Parses an integer option or exits 2 with a message naming it. */
long sn_cli_int(const char *key, const char *v, long lo, long hi);
/* Loads a model or exits 2 with the loader's message. */
sn_model *sn_cli_load_model(const char *path);

/* Measured fp32 FMA throughput of this core in GFLOP/s at the vector width of the kernels in
 * use, about `ms` milliseconds of probing (tools/fmapeak.c); only when
 * sn_fma_peak_available(). */
int sn_fma_peak_available(void);
double sn_fma_peak_gflops(double ms);

int sn_cmd_convert(int argc, char **argv);
int sn_cmd_bench(int argc, char **argv);

#endif
