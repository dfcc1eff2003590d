/* rng.c - MT19937 (Matsumoto & Nishimura 1998) with PyTorch's seeding and transforms, so
 * that nabla and PyTorch draw the same numbers from the same seed. */
#include <math.h>
#include "internal.h"

enum { N = NB_RNG_STATE_N, M = 397 };

void nb_rng_seed(nb_rng *r, uint64_t seed) {
    if (!r) {
        nb__error(NB_EINVAL, "rng_seed: rng is NULL");
        return;
    }
    r->state[0] = (uint32_t)(seed & 0xffffffffu);
    for (uint32_t j = 1; j < N; j++)
        r->state[j] = 1812433253u * (r->state[j - 1] ^ (r->state[j - 1] >> 30)) + j;
    r->left = 1;
    r->next = 0;
}

/* The value of a draw from a NULL generator: NaN, with the error set. */
static double null_rng(const char *fn) {
    nb__error(NB_EINVAL, "%s: rng is NULL", fn);
    return NAN;
}

static uint32_t twist(uint32_t u, uint32_t v) {
    uint32_t mixed = (u & 0x80000000u) | (v & 0x7fffffffu);
    return (mixed >> 1) ^ ((v & 1u) ? 0x9908b0dfu : 0u);
}

static void next_state(nb_rng *r) {
    uint32_t *s = r->state;
    for (int j = 0; j < N - M; j++) s[j] = s[j + M] ^ twist(s[j], s[j + 1]);
    for (int j = N - M; j < N - 1; j++) s[j] = s[j + M - N] ^ twist(s[j], s[j + 1]);
    s[N - 1] = s[M - 1] ^ twist(s[N - 1], s[0]);
    r->left = N;
    r->next = 0;
}

uint32_t nb_rng_u32(nb_rng *r) {
    if (!r) {
        nb__error(NB_EINVAL, "rng_u32: rng is NULL");
        return 0;
    }
    if (--r->left <= 0) next_state(r);
    uint32_t y = r->state[r->next++ % N];
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    y ^= y >> 18;
    return y;
}

float nb_rng_uniform(nb_rng *r) {
    if (!r) return (float)null_rng("rng_uniform");
    return (float)(nb_rng_u32(r) & 0xffffffu) * (1.0f / 16777216.0f);
}

double nb_rng_uniform_double(nb_rng *r) {
    if (!r) return null_rng("rng_uniform_double");
    uint64_t hi = nb_rng_u32(r), lo = nb_rng_u32(r);
    uint64_t v = hi << 32 | lo;
    return (double)(v & ((UINT64_C(1) << 53) - 1)) * (1.0 / 9007199254740992.0);
}

double nb_rng_normal(nb_rng *r) {
    if (!r) return null_rng("rng_normal");
    double u1 = nb_rng_uniform_double(r), u2 = nb_rng_uniform_double(r);
    return sqrt(-2.0 * log(1.0 - u1)) * cos(6.283185307179586 * u2);
}

uint32_t nb_rng_below(nb_rng *r, uint32_t n) {
    if (!r || n == 0) { /* n 0 would divide by zero below */
        nb__error(NB_EINVAL, "rng_below: %s", r ? "n must be > 0, got 0" : "rng is NULL");
        return 0;
    }
    uint32_t threshold = (uint32_t)(-n) % n; /* rejection: unbiased */
    for (;;) {
        uint32_t x = nb_rng_u32(r);
        if (x >= threshold) return x % n;
    }
}

/* torch.randperm on CPU: a forward Fisher-Yates with random() % (n - i). */
void nb_randperm(nb_rng *r, int64_t n, int64_t *out) {
    if (n > 0 && (!r || !out)) {
        nb__error(NB_EINVAL, "randperm: %s is NULL", r ? "out" : "rng");
        return;
    }
    for (int64_t i = 0; i < n; i++) out[i] = i;
    for (int64_t i = 0; i < n - 1; i++) {
        int64_t z = (int64_t)(nb_rng_u32(r) % (uint64_t)(n - i));
        int64_t t = out[i];
        out[i] = out[z + i];
        out[z + i] = t;
    }
}
