/* labels.h - the ImageNet class list (config/imagenet-classes.tsv: index, wnid, label). */
#ifndef SN_LABELS_H
#define SN_LABELS_H

#include <stddef.h>

typedef struct {
    int count;
    char **wnid;
    char **label;
} sn_labels;

/* Load a TSV with a header line "index<TAB>wnid<TAB>label". Returns 0 or -1 (err filled). */
int sn_labels_load(const char *path, sn_labels *l, char *err, size_t errlen);
/* Default path lookup: $SHUFFLENET_LABELS, config/imagenet-classes.tsv, next to the binary
 * (../config/ relative to build/), /usr/share/shufflenet/imagenet-classes.tsv. */
int sn_labels_load_default(sn_labels *l, char *err, size_t errlen);
void sn_labels_free(sn_labels *l);

#endif
