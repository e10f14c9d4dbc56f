/* stderr logging; see include/shiplog/log.h. */
#include "shiplog/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int log_level = -1;

static enum sl_log_level level_from_env(void)
{
	static const char *const names[] = {"debug", "info", "warn", "error", "off"};
	const char *v = getenv("SHIPLOG_LOG");

	if (v != NULL)
		for (int i = 0; i <= SL_LOG_OFF; i++)
			if (strcmp(v, names[i]) == 0)
				return (enum sl_log_level)i;
	return SL_LOG_INFO;
}

void sl_log_set_level(enum sl_log_level level)
{
	log_level = (int)level;
}

enum sl_log_level sl_log_get_level(void)
{
	if (log_level < 0)
		log_level = (int)level_from_env();
	return (enum sl_log_level)log_level;
}

void sl_log(enum sl_log_level level, const char *fmt, ...)
{
	static const char tags[] = "DIWE";
	char line[1024];
	struct timespec ts;
	struct tm tm;
	va_list ap;
	int n;

	if (level < sl_log_get_level() || level >= SL_LOG_OFF)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = snprintf(line, sizeof(line), "%02d:%02d:%02d.%06ld %c ", tm.tm_hour, tm.tm_min,
		     tm.tm_sec, ts.tv_nsec / 1000, tags[level]);
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s\n", line);
}
