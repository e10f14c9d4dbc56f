/* libshiplog: the client side of shipd's shared-memory rings. See
 * include/shiplog/client.h. (First cut: the API compiles; the calls answer
 * -ENOSYS until the rings land.) */
#include "shiplog/client.h"

#include <errno.h>
#include <stddef.h>

#include "shiplog/err.h"

int sl_client_open(struct sl_client **out, const struct sl_client_opts *o)
{
	(void)o;
	if (out)
		*out = NULL;
	return sl_err_set(ENOSYS, "libshiplog: not implemented yet");
}

void sl_client_close(struct sl_client *c)
{
	(void)c;
}

int64_t sl_client_append(struct sl_client *c, const void *rec, uint32_t len, unsigned flags)
{
	(void)c, (void)rec, (void)len, (void)flags;
	return -ENOSYS;
}

int64_t sl_client_appendv(struct sl_client *c, const struct iovec *recs, unsigned n, unsigned flags)
{
	(void)c, (void)recs, (void)n, (void)flags;
	return -ENOSYS;
}

int sl_client_reached(struct sl_client *c, uint64_t lsn, enum sl_client_level level)
{
	(void)c, (void)lsn, (void)level;
	return -ENOSYS;
}

int sl_client_wait(struct sl_client *c, uint64_t lsn, enum sl_client_level level, int timeout_ms)
{
	(void)c, (void)lsn, (void)level, (void)timeout_ms;
	return -ENOSYS;
}

int sl_client_fd(const struct sl_client *c)
{
	(void)c;
	return -ENOSYS;
}

int sl_client_arm(struct sl_client *c, uint64_t lsn, enum sl_client_level level)
{
	(void)c, (void)lsn, (void)level;
	return -ENOSYS;
}

int sl_client_arm_consume(struct sl_client *c)
{
	(void)c;
	return -ENOSYS;
}

int sl_client_dispatch(struct sl_client *c)
{
	(void)c;
	return -ENOSYS;
}

int sl_client_consume(struct sl_client *c, struct sl_client_rec *recs, unsigned max, int timeout_ms)
{
	(void)c, (void)recs, (void)max, (void)timeout_ms;
	return -ENOSYS;
}

int sl_client_applied(struct sl_client *c, uint64_t lsn)
{
	(void)c, (void)lsn;
	return -ENOSYS;
}

int sl_client_info(struct sl_client *c, struct sl_client_info *out)
{
	(void)c, (void)out;
	return -ENOSYS;
}

uint64_t sl_client_epoch(const struct sl_client *c)
{
	(void)c;
	return 0;
}

uint32_t sl_client_leader(const struct sl_client *c)
{
	(void)c;
	return 0;
}

const char *sl_client_errmsg(void)
{
	return sl_err_msg();
}

const char *sl_client_level_name(enum sl_client_level level)
{
	static const char *const names[] = {"received", "durable", "applied", "committed",
					    "applied_here"};

	return (unsigned)level < sizeof(names) / sizeof(names[0]) ? names[level] : "unknown";
}
