/* nabla/value.h - named values: hyperparameters, optimizer state, scheduler state.
 *
 * An nb_value is a name plus a value of one kind (None, number, int, bool, list of doubles,
 * string, tensor): the representation of a hyperparameter, an optimizer's per-parameter state
 * and a scheduler's fields, in tables that state_dicts and checkpoints share (optim.h,
 * sched.h). Included by nabla/optim.h.
 */
#ifndef NABLA_VALUE_H
#define NABLA_VALUE_H

#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- named values: hyperparameters, optimizer state, scheduler state ---------------------- */
typedef enum nb_value_kind {
    NB_VALUE_NONE = 0, /* Python None */
    NB_VALUE_NUMBER,   /* double */
    NB_VALUE_INT,      /* integer stored in num (exact up to 2^53) */
    NB_VALUE_BOOL,     /* num is 0 or 1 */
    NB_VALUE_LIST,     /* len doubles in list (betas, etas, base_lrs, ...) */
    NB_VALUE_STRING,   /* str */
    NB_VALUE_TENSOR,   /* tensor (heap, owned by the holder of the value) */
} nb_value_kind;

#define NB_VALUE_NAME_MAX 32
#define NB_VALUE_INLINE 4 /* lists up to this length live inside the value */

typedef struct nb_value {
    char name[NB_VALUE_NAME_MAX];
    nb_value_kind kind;
    double num;                   /* NUMBER, INT, BOOL */
    int len;                      /* LIST: number of elements */
    double inl[NB_VALUE_INLINE];  /* LIST with len <= NB_VALUE_INLINE */
    double *list;                 /* LIST with len > NB_VALUE_INLINE (owned by the holder) */
    char str[NB_VALUE_NAME_MAX];  /* STRING */
    nb_tensor *tensor;            /* TENSOR (owned by the holder) */
} nb_value;

/* Value constructors, for overrides and tests (plain structs, nothing to free; the name and a
 * string are copied into the struct, truncated to NB_VALUE_NAME_MAX - 1 bytes). A value in a
 * table that nabla returns belongs to that table: a LIST's elements and a TENSOR live as long
 * as the value. */
nb_value nb_num(const char *name, double v);
nb_value nb_int(const char *name, int64_t v);
nb_value nb_bool(const char *name, bool v);
nb_value nb_pair(const char *name, double a, double b);
nb_value nb_str(const char *name, const char *s);
nb_value nb_none(const char *name);
/* The elements of a LIST value (inside v, or v's heap list): valid as long as v is. */
const double *nb_value_elems(const nb_value *v);

#ifdef __cplusplus
}
#endif
#endif
