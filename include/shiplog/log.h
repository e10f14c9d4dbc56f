/* Logging to stderr with a level and a wall-clock timestamp. Lives in io/
 * because it writes to a file descriptor; core/ never logs, it returns
 * errors with messages (shiplog/err.h) and counters instead. */
#ifndef SHIPLOG_LOG_H
#define SHIPLOG_LOG_H

enum sl_log_level {
	SL_LOG_DEBUG = 0,
	SL_LOG_INFO,
	SL_LOG_WARN,
	SL_LOG_ERROR,
	SL_LOG_OFF,
};

/* Messages below this level are dropped. Default INFO, or $SHIPLOG_LOG
 * (debug|info|warn|error|off) read on first use. */
void sl_log_set_level(enum sl_log_level level);
enum sl_log_level sl_log_get_level(void);

void sl_log(enum sl_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define sl_debug(...) sl_log(SL_LOG_DEBUG, __VA_ARGS__)
#define sl_info(...)  sl_log(SL_LOG_INFO, __VA_ARGS__)
#define sl_warn(...)  sl_log(SL_LOG_WARN, __VA_ARGS__)
#define sl_error(...) sl_log(SL_LOG_ERROR, __VA_ARGS__)

#endif
