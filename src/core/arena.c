/* arena.c - bump allocator for the temporaries of one step.
 * Chunks are kept across resets; a reset that saw more than one chunk merges them into one
 * chunk of the combined size, so from the second step on a step makes no heap allocation. */
#include "internal.h"

static nb_chunk *chunk_new(size_t cap) {
    nb_chunk *c = nb__malloc(sizeof *c);
    if (!c) return NULL;
    c->mem = nb__malloc_aligned(cap);
    if (!c->mem) {
        nb__free(c);
        return NULL;
    }
    c->next = NULL;
    c->cap = cap;
    c->used = 0;
    return c;
}

static void chunks_free(nb_chunk *c) {
    while (c) {
        nb_chunk *n = c->next;
        nb__free_aligned(c->mem);
        nb__free(c);
        c = n;
    }
}

nb_arena *nb_arena_new(size_t capacity) {
    nb_arena *ar = nb__calloc(1, sizeof *ar);
    if (!ar) return NULL;
    ar->head = ar->cur = chunk_new(capacity ? capacity : (size_t)1 << 20);
    if (!ar->head) {
        nb__free(ar);
        return NULL;
    }
    ar->total_cap = ar->head->cap;
    return ar;
}

void *nb__arena_alloc(nb_arena *ar, size_t n) {
    if (!ar) return nb__null(NB_EINVAL, "an op was given a NULL arena: ops write their output in an arena (nb_arena_new)");
    if (n > SIZE_MAX / 4) /* rounding up, or doubling a chunk, would wrap around */
        return nb__null(NB_ENOMEM, "out of memory (%zu bytes asked of an arena)", n);
    n = (n + NB_ALIGN - 1) & ~(size_t)(NB_ALIGN - 1);
    nb_chunk *c = ar->cur;
    while (c->used + n > c->cap) {
        if (!c->next) {
            size_t cap = c->cap * 2 > n ? c->cap * 2 : n;
            c->next = chunk_new(cap);
            if (!c->next) return NULL;
            ar->total_cap += cap;
        }
        c = c->next;
        c->used = 0;
    }
    ar->cur = c;
    void *p = c->mem + c->used;
    c->used += n;
    ar->used += n;
    if (ar->used > ar->peak) ar->peak = ar->used;
    return p;
}

void nb_arena_reset(nb_arena *ar) {
    if (!ar) return;
    if (ar->head->next) { /* merge all chunks into one big enough for the whole step */
        nb_chunk *c = chunk_new(ar->total_cap);
        if (c) {
            chunks_free(ar->head);
            ar->head = c;
        }
    }
    for (nb_chunk *c = ar->head; c; c = c->next) c->used = 0;
    ar->cur = ar->head;
    ar->used = 0;
    ar->last_node = NULL;
    ar->nnodes = 0;
    ar->record_failed = NULL;
}

int nb_arena_set_autocast(nb_arena *ar, nb_dtype dt) {
    if (!ar) return nb__error(NB_EINVAL, "arena_set_autocast: arena is NULL");
    if (dt != NB_FLOAT32 && dt != NB_BF16)
        return nb__error(NB_EINVAL, "arena_set_autocast: CPU autocast supports bfloat16 only "
                         "(NB_BF16, or NB_FLOAT32 to turn it off), got %s", nb__dtype_name(dt));
    ar->autocast = dt;
    return NB_OK;
}

nb_dtype nb_arena_autocast(const nb_arena *ar) { return ar ? ar->autocast : NB_FLOAT32; }

size_t nb_arena_used(const nb_arena *ar) { return ar ? ar->used : 0; }
size_t nb_arena_peak(const nb_arena *ar) { return ar ? ar->peak : 0; }

void nb_arena_free(nb_arena *ar) {
    if (!ar) return;
    chunks_free(ar->head);
    nb__free(ar);
}
