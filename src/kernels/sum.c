/* sum.c - a sum of floats that vectorises: 16 independent float partial sums (no
 * reassociation needed), added in double at the end. */
#include "kernels.h"

double nb_k_sum(const float *restrict x, int64_t n) {
    float acc[16] = {0};
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (int j = 0; j < 16; j++) acc[j] += x[i + j];
    double s = 0;
    for (; i < n; i++) s += x[i];
    for (int j = 0; j < 16; j++) s += acc[j];
    return s;
}
