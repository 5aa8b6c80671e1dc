/* modelinfo.c - a model's architecture, cost, weights origin and preprocessing as JSON. */
#include "common/modelinfo.h"

json_t *sn_model_info_json(const sn_model_info *I) {
    json_t *ch =
        json_pack("{s:i, s:[i,i,i], s:[i,i,i]}", "stem", I->stem_channels, "stages",
                  I->stage_channels[0], I->stage_channels[1], I->stage_channels[2], "repeats",
                  I->stage_repeats[0], I->stage_repeats[1], I->stage_repeats[2]);
    json_t *pre = json_pack(
        "{s:s, s:s, s:i, s:s, s:i, s:[f,f,f], s:[f,f,f]}", "channel_order",
        I->pre.rgb ? "rgb" : "bgr", "resize",
        I->pre.resize == SN_RESIZE_PILLOW_BILINEAR ? "pillow_bilinear" : "opencv_bilinear",
        "resize_short", I->pre.resize_short, "long_side", I->pre.long_round ? "round" : "floor",
        "crop", I->pre.crop, "mean", (double)I->pre.mean[0], (double)I->pre.mean[1],
        (double)I->pre.mean[2], "std", (double)I->pre.std[0], (double)I->pre.std[1],
        (double)I->pre.std[2]);
    return json_pack(
        "{s:s, s:i, s:f, s:o, s:i, s:b, s:s, s:s, s:I, s:I, s:s, s:s, s:i, s:o}", "architecture",
        "shufflenet-v1", "groups", I->groups, "width", (double)I->width, "channels", ch,
        "num_classes", I->num_classes, "fc_bias", I->fc_bias, "shuffle_order",
        I->order == SN_SHUFFLE_MEGVII ? "megvii" : "paper", "shuffle_position",
        I->position == SN_SHUFFLE_BEFORE_DW ? "before_dw" : "after_dw", "macs", (json_int_t)I->macs,
        "params", (json_int_t)I->params, "weights", I->synthetic ? "synthetic" : "trained",
        "source", I->source, "input_size", I->input_size, "preprocess", pre);
}
