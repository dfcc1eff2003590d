/* alloc.c - every heap allocation of nabla, through replaceable hooks. */
#include <stdatomic.h>
#include <stdlib.h>
#include "internal.h"

static void *(*hook_malloc)(size_t) = malloc;
static void *(*hook_realloc)(void *, size_t) = realloc;
static void (*hook_free)(void *) = free;
static atomic_bool allocated; /* hooks may only change before the first allocation */

int nb_set_allocator(void *(*m)(size_t), void *(*r)(void *, size_t), void (*f)(void *)) {
    if (atomic_load(&allocated))
        return nb__error(NB_ESTATE, "nb_set_allocator: nabla has already allocated memory");
    if ((m == NULL) != (f == NULL) || (m == NULL) != (r == NULL))
        return nb__error(NB_EINVAL, "nb_set_allocator: give all three functions or none");
    hook_malloc = m ? m : malloc;
    hook_realloc = r ? r : realloc;
    hook_free = f ? f : free;
    return NB_OK;
}

void *nb__malloc(size_t n) {
    atomic_store_explicit(&allocated, true, memory_order_relaxed);
    void *p = hook_malloc(n ? n : 1);
    if (!p) nb__error(NB_ENOMEM, "out of memory (%zu bytes)", n);
    return p;
}

void *nb__calloc(size_t n, size_t size) {
    if (size && n > SIZE_MAX / size) return nb__null(NB_ENOMEM, "out of memory (overflow)");
    void *p = nb__malloc(n * size);
    if (p) memset(p, 0, n * size);
    return p;
}

void *nb__realloc(void *p, size_t n) {
    atomic_store_explicit(&allocated, true, memory_order_relaxed);
    void *q = hook_realloc(p, n ? n : 1);
    if (!q) nb__error(NB_ENOMEM, "out of memory (%zu bytes)", n);
    return q;
}

void nb__free(void *p) {
    if (p) hook_free(p);
}

char *nb__strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = nb__malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

void *nb__zalloc(void *opaque, unsigned items, unsigned size) {
    (void)opaque;
    return nb__calloc(items, size);
}

void nb__zfree(void *opaque, void *p) {
    (void)opaque;
    nb__free(p);
}

/* Aligned blocks keep the offset to the raw pointer just before the aligned address, so they
 * work with any malloc hook. */
void *nb__malloc_aligned(size_t n) {
    if (n > SIZE_MAX - NB_ALIGN - sizeof(void *)) return nb__null(NB_ENOMEM, "out of memory");
    unsigned char *raw = nb__malloc(n + NB_ALIGN + sizeof(void *));
    if (!raw) return NULL;
    uintptr_t a = ((uintptr_t)(raw + sizeof(void *)) + NB_ALIGN - 1) & ~(uintptr_t)(NB_ALIGN - 1);
    ((void **)a)[-1] = raw;
    return (void *)a;
}

void nb__free_aligned(void *p) {
    if (p) nb__free(((void **)p)[-1]);
}

/* Grow an aligned block to n bytes keeping its first `used` bytes. Reallocates the raw block
 * (no copy for large blocks on glibc, which remaps pages) and moves the data if the new
 * block's alignment offset differs: the peak stays near n, not old + n. */
void *nb__realloc_aligned(void *p, size_t used, size_t n) {
    if (!p) return nb__malloc_aligned(n);
    if (n > SIZE_MAX - NB_ALIGN - sizeof(void *)) return nb__null(NB_ENOMEM, "out of memory");
    unsigned char *raw = ((void **)p)[-1];
    size_t off = (size_t)((unsigned char *)p - raw);
    unsigned char *nraw = nb__realloc(raw, n + NB_ALIGN + sizeof(void *));
    if (!nraw) return NULL;
    uintptr_t a = ((uintptr_t)(nraw + sizeof(void *)) + NB_ALIGN - 1) & ~(uintptr_t)(NB_ALIGN - 1);
    if ((unsigned char *)a != nraw + off) memmove((void *)a, nraw + off, used);
    ((void **)a)[-1] = nraw;
    return (void *)a;
}
