/* rng.c - PCG-XSH-RR 64/32 (O'Neill 2014): small state, good statistics, reproducible. */
#include <math.h>
#include "internal.h"

void nb_rng_seed(nb_rng *r, uint64_t seed) {
    r->state = 0;
    r->inc = (0xda3e39cb94b95bdbULL << 1u) | 1u;
    nb_rng_u32(r);
    r->state += seed;
    nb_rng_u32(r);
}

uint32_t nb_rng_u32(nb_rng *r) {
    uint64_t old = r->state;
    r->state = old * 6364136223846793005ULL + r->inc;
    uint32_t xorshifted = (uint32_t)(((old >> 18u) ^ old) >> 27u);
    uint32_t rot = (uint32_t)(old >> 59u);
    return (xorshifted >> rot) | (xorshifted << ((-rot) & 31));
}

float nb_rng_uniform(nb_rng *r) { return (float)(nb_rng_u32(r) >> 8) * (1.0f / 16777216.0f); }

double nb_rng_uniform_double(nb_rng *r) {
    uint64_t hi = nb_rng_u32(r) >> 5, lo = nb_rng_u32(r) >> 6; /* 27 + 26 = 53 bits */
    return ((double)hi * 67108864.0 + (double)lo) * (1.0 / 9007199254740992.0);
}

double nb_rng_normal(nb_rng *r) {
    double u1 = nb_rng_uniform_double(r), u2 = nb_rng_uniform_double(r);
    return sqrt(-2.0 * log(1.0 - u1)) * cos(6.283185307179586 * u2);
}

uint32_t nb_rng_below(nb_rng *r, uint32_t n) {
    uint32_t threshold = (uint32_t)(-n) % n; /* Lemire-style rejection: unbiased */
    for (;;) {
        uint32_t x = nb_rng_u32(r);
        if (x >= threshold) return x % n;
    }
}
