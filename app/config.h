/* shipd's configuration: an INI file (read with libinih) checked and turned
 * into the node configuration (struct sl_node_config) plus the daemon's own
 * settings. Every refusal says where: "FILE:LINE: [section] key: what is
 * wrong" (a missing key names the section's line, or the file alone when the
 * section is missing too). The keys are documented in docs/configuration.md. */
#ifndef SHIPLOG_APP_CONFIG_H
#define SHIPLOG_APP_CONFIG_H

#include <limits.h>
#include <stdint.h>

#include "client_srv.h"
#include "shiplog/node.h"

#define SL_CONFIG_FILE_MAX (1u << 20) /* larger files are refused */
#define SL_CONFIG_EAL_MAX  2048	      /* eal_args, all lines joined */
#define SL_CONFIG_SOCK_MAX 108	      /* sizeof(sockaddr_un.sun_path) */
#define SL_CONFIG_LINE_MAX 197	      /* libinih's fixed 200-byte line buffer */
#define SL_CONFIG_PORT_MAX 64	      /* a DPDK port name, NUL included (RTE_ETH_NAME_MAX_LEN) */

/* sl_config_load flags. */
#define SL_CONFIG_CHECK_FS 0x1u /* log_dir must be a writable directory, key_file readable */

struct sl_config {
	/* Ready for sl_node_open (store.create is left 0: shipd decides). Its
	 * strings point into this struct: use it in place, never copy it. */
	struct sl_node_config node;
	char path[PATH_MAX];			 /* the file it was read from */
	char log_dir[PATH_MAX];			 /* relative paths: to the file's directory */
	char control_socket[SL_CONFIG_SOCK_MAX]; /* default <log_dir>/shipd.sock */
	char key_file[PATH_MAX];		 /* "" when none */
	char eal_args[SL_CONFIG_EAL_MAX];	 /* "" when none */
	/* [peer.N] port, in the order of node.net.peers (which point here) */
	char peer_port[SL_NODES_MAX][SL_CONFIG_PORT_MAX];
	uint64_t drain_timeout_ns; /* bound on the shutdown drain (5 s) */
	/* [client]: libshiplog's socket (app/client_srv.h) */
	char client_socket[SL_CONFIG_SOCK_MAX]; /* default <log_dir>/client.sock */
	uint32_t client_ring_bytes;		/* each ring (4 MiB) */
	uint32_t client_max;			/* clients at once (64) */
	int client_engine;			/* 1: a consumer acknowledges applied */
};

/* Read and check the file at `path`. 0 and a new config in *out (free with
 * sl_config_free), or -errno with the message in sl_err_msg(). */
int sl_config_load(const char *path, unsigned flags, struct sl_config **out);

/* The same for INI text already in memory; `path` names it in messages and
 * anchors relative paths. */
int sl_config_parse(const char *path, const char *text, size_t len, unsigned flags,
		    struct sl_config **out);

void sl_config_free(struct sl_config *c);

/* What the ack policy cannot survive (docs/configuration.md, "What a policy
 * survives"): one line per risk a single failure brings (a leader that cannot
 * be replaced, commits that stop, committed records that may be lost), each
 * naming the keys at fault, up to `max` into out[]. Returns the count. The
 * policy nothing survives, acks=0 with local=none, is refused at load. */
#define SL_CONFIG_WARN_MAX 256
int sl_config_warnings(const struct sl_config *c, char out[][SL_CONFIG_WARN_MAX], int max);

/* Value parsers shared with the command-line tools. 0 or -EINVAL (with a
 * message naming the value). Sizes take K/M/G (binary) with optional "iB";
 * durations take ns, us, ms, s or m ("0" may stand alone). */
int sl_config_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);
int sl_config_parse_size(const char *s, uint64_t min, uint64_t max, uint64_t *out);
int sl_config_parse_duration(const char *s, uint64_t min_ns, uint64_t max_ns, uint64_t *out);

#endif
