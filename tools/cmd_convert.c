/* cmd_convert.c - `shufflenet convert`: the command-line face of tools/convert.c. */
#include "cli.h"

#include <stdio.h>

int sn_cmd_convert(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "shufflenet convert: not available in this build yet\n");
    return 2;
}
