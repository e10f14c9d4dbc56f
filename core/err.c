/* Per-thread error message with context; see include/shiplog/err.h. */
#include "shiplog/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char err_msg[SL_ERR_MSG_MAX];

int sl_err_set(int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err_msg, sizeof(err_msg), fmt, ap);
	va_end(ap);
	return code > 0 ? -code : code;
}

/* Append `src` to dst[*len..cap), truncating; keeps dst NUL-terminated. */
static void append_bounded(char *dst, size_t *len, size_t cap, const char *src)
{
	size_t n = strlen(src);

	if (*len + 1 >= cap)
		return;
	if (n > cap - 1 - *len)
		n = cap - 1 - *len;
	memcpy(dst + *len, src, n);
	*len += n;
	dst[*len] = '\0';
}

int sl_err_wrap(int rc, const char *fmt, ...)
{
	char msg[SL_ERR_MSG_MAX];
	size_t len;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	len = strlen(msg);
	append_bounded(msg, &len, sizeof(msg), ": ");
	append_bounded(msg, &len, sizeof(msg),
		       err_msg[0] != '\0' ? err_msg : strerror(rc < 0 ? -rc : rc));
	memcpy(err_msg, msg, len + 1);
	return rc;
}

const char *sl_err_msg(void)
{
	return err_msg;
}

void sl_err_clear(void)
{
	err_msg[0] = '\0';
}
