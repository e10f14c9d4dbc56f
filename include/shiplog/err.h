/* shiplog error context: a per-thread message that says where an error started
 * and what each caller was doing as it travelled up. Functions return 0 (or a
 * count) on success and a negative errno on failure; the message explains it. */
#ifndef SHIPLOG_ERR_H
#define SHIPLOG_ERR_H

#include <stddef.h>

#define SL_ERR_MSG_MAX 512

/* Record the first message of an error; returns -code so callers can
 * `return sl_err_set(EINVAL, "...")`. `code` is a positive errno. */
int sl_err_set(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prefix context to the current message ("opening log: <old message>");
 * returns `rc` unchanged (a negative errno) for `return sl_err_wrap(rc, ...)`. */
int sl_err_wrap(int rc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The current message, or "" when none was recorded. */
const char *sl_err_msg(void);

/* Forget the current message. */
void sl_err_clear(void);

#endif
