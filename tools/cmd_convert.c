/* cmd_convert.c - `shufflenet convert`: the command-line face of tools/convert.c. */
#include "tools/cli.h"
#include "tools/convert.h"

#include <stdio.h>
#include <string.h>

int sn_cmd_convert(int argc, char **argv) {
    sn_convert_opts o = {0};
    const char *in = NULL, *out = NULL;
    for (int i = 1; i < argc; i++) {
        const char *v;
        if (sn_cli_is_help(argv[i])) {
            fputs(sn_convert_usage(), stdout);
            return 0;
        } else if ((v = sn_cli_opt(argc, argv, &i, "--preset")))
            o.preset = v;
        else if (!strcmp(argv[i], "--synthetic"))
            o.synthetic = 1;
        else if (!strcmp(argv[i], "--trained"))
            o.synthetic = -1;
        else if ((v = sn_cli_opt(argc, argv, &i, "--shuffle-order")))
            o.shuffle_order = v;
        else if ((v = sn_cli_opt(argc, argv, &i, "--channel-order")))
            o.channel_order = v;
        else if ((v = sn_cli_opt(argc, argv, &i, "--resize")))
            o.resize = v;
        else if ((v = sn_cli_opt(argc, argv, &i, "--resize-short")))
            o.resize_short = (int)sn_cli_int("--resize-short", v, 1, 8192);
        else if ((v = sn_cli_opt(argc, argv, &i, "--long-side")))
            o.long_side = v;
        else if ((v = sn_cli_opt(argc, argv, &i, "--crop")))
            o.crop = (int)sn_cli_int("--crop", v, 1, 8192);
        else if ((v = sn_cli_opt(argc, argv, &i, "--mean")))
            o.mean = v;
        else if ((v = sn_cli_opt(argc, argv, &i, "--std")))
            o.std = v;
        else if ((v = sn_cli_opt(argc, argv, &i, "--source")))
            o.source = v;
        else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "shufflenet convert: unknown option %s (see --help)\n", argv[i]);
            return 2;
        } else if (!in)
            in = argv[i];
        else if (!out)
            out = argv[i];
        else {
            fprintf(stderr, "shufflenet convert: unexpected argument %s\n", argv[i]);
            return 2;
        }
    }
    if (!in || !out) {
        fprintf(stderr, "shufflenet convert: need IN and OUT.safetensors (see --help)\n");
        return 2;
    }
    char err[SN_ERRLEN];
    sn_convert_summary s;
    if (sn_convert_checkpoint(in, out, &o, &s, err, sizeof(err))) {
        fprintf(stderr, "shufflenet convert: %s\n", err);
        return 2;
    }
    fprintf(stderr,
            "%s -> %s: %s layout (%s container), groups %d, width %s, stem %d, stages "
            "%d/%d/%d, %d classes, %s weights, %d tensors\n",
            in, out, s.layout, s.container, s.groups, s.width, s.stem_channels, s.stage_channels[0],
            s.stage_channels[1], s.stage_channels[2], s.num_classes,
            s.synthetic ? "synthetic" : "trained", s.ntensors);
    return 0;
}
