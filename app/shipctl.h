/* shipctl's commands share these: the parsed options and the helpers that
 * reach a running shipd. app/shipctl.c holds main, status and lag;
 * app/shipctl_log.c the commands that read a log (tail, verify);
 * app/shipctl_cluster.c verify --cluster. */
#ifndef SHIPLOG_APP_SHIPCTL_H
#define SHIPLOG_APP_SHIPCTL_H

#include <signal.h>
#include <stdint.h>

#define SHIPCTL_TIMEOUT_MS  5000
#define SHIPCTL_SOCKETS_MAX 16 /* verify --cluster: nodes named */

struct ctl_opts {
	const char *socket;
	const char *config;
	const char *dir; /* tail, verify: a log directory */
	int json;
	int follow;
	int hex;
	int batches;
	int force;	      /* promote --force */
	uint64_t from;	      /* tail: first LSN (0: the oldest held) */
	uint64_t count;	      /* tail: records; lag: refreshes (0: no limit) */
	uint64_t interval_ms; /* lag and tail -f: between looks (0: the default) */
	int cluster;	      /* verify --cluster */
	/* Every -s, and the control socket of every -c (verify --cluster). */
	const char *sockets[SHIPCTL_SOCKETS_MAX];
	int is_config[SHIPCTL_SOCKETS_MAX]; /* given with -c */
	int nsockets;
};

/* Set by SIGINT and SIGTERM while a command loops (lag, tail -f). */
extern volatile sig_atomic_t shipctl_stop;

/* The control socket: -s, or the one in shipd's configuration. NULL after
 * printing why. */
const char *shipctl_socket(const struct ctl_opts *o);
/* Ask shipd for `request` into reply (SL_CTL_REPLY_MAX + 1 bytes). 0, or 1
 * after printing why (unreachable, or it refused). */
int shipctl_ask(const char *socket, const char *request, char *reply);
/* Sleep `ms` unless stopped first; returns shipctl_stop. */
int shipctl_nap(uint64_t ms);

int shipctl_tail(const struct ctl_opts *o);
int shipctl_verify(const struct ctl_opts *o);
int shipctl_verify_cluster(const struct ctl_opts *o);

#endif
