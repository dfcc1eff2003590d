/* nabla/error.h - status codes and the thread-local last-error message.
 *
 * Every fallible call returns NULL or a negative nb_status; nb_last_error() then names the
 * cause ("linear: input has 783 features, expected 784"). The library never prints, never exits.
 */
#ifndef NABLA_ERROR_H
#define NABLA_ERROR_H

#ifdef __cplusplus
extern "C" {
#endif

typedef enum nb_status {
    NB_OK = 0,
    NB_EINVAL = -1,   /* invalid argument or hyperparameter */
    NB_ESHAPE = -2,   /* incompatible shapes */
    NB_ENOMEM = -3,   /* allocation failed */
    NB_EIO = -4,      /* file could not be read or written */
    NB_EFORMAT = -5,  /* file content is malformed */
    NB_ESTATE = -6,   /* call not valid in the object's current state */
} nb_status;

/* Message of the last error on this thread ("" if none). Valid until the next failing call. */
const char *nb_last_error(void);
/* Status of the last error on this thread (NB_OK if none). */
nb_status nb_last_status(void);
/* Forget the last error on this thread. */
void nb_clear_error(void);
/* Short name of a status ("invalid argument"): a static string, valid for the life of the
 * process. */
const char *nb_status_str(nb_status s);

#ifdef __cplusplus
}
#endif
#endif
