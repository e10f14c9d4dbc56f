/* shipctl: talks to a running shipd through its control socket (app/ctl.h).
 * One subcommand per request; the table below is where later ones (tail,
 * verify, lag, promote) go. The socket is given with -s, or found in the
 * daemon's configuration with -c. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "ctl.h"
#include "shiplog/err.h"

#define DEFAULT_CONFIG "/etc/shiplog/shipd.ini"
#define TIMEOUT_MS     5000

struct ctl_opts {
	const char *socket;
	const char *config;
	int json;
};

struct command {
	const char *name;
	const char *args;
	const char *help;
	int (*run)(const struct ctl_opts *o, const char *socket);
};

static int cmd_status(const struct ctl_opts *o, const char *socket);

static const struct command commands[] = {
    {"status", "[--json]", "role, positions, commit and delivered LSNs, per-follower lag, counters",
     cmd_status},
};
#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *f)
{
	fprintf(f, "usage: shipctl COMMAND [options]\n"
		   "Asks a running shipd through its control socket.\n\n"
		   "commands:\n");
	for (size_t i = 0; i < N_COMMANDS; i++)
		fprintf(f, "  %s %-10s %s\n", commands[i].name, commands[i].args, commands[i].help);
	fprintf(f, "\noptions:\n"
		   "  -s, --socket PATH   the control socket\n"
		   "  -c, --config FILE   read the socket's path from shipd's configuration\n"
		   "                      (default " DEFAULT_CONFIG " when -s is not given)\n"
		   "      --json          status as one JSON object\n"
		   "  -h, --help          this help\n\n"
		   "exit status: 0 done, 1 shipd unreachable or it refused, 2 bad usage\n");
}

/* Send one request, print the reply. A reply starting "error: " is shipd
 * refusing: printed to stderr, exit 1. */
static int ask(const char *socket, const char *request)
{
	static char reply[SL_CTL_REPLY_MAX + 1];
	int n = sl_ctl_request(socket, request, TIMEOUT_MS, reply, sizeof(reply));

	if (n < 0) {
		fprintf(stderr, "shipctl: %s%s\n", sl_err_msg(),
			n == -ENOENT || n == -ECONNREFUSED ? " — is shipd running?" : "");
		return 1;
	}
	if (strncmp(reply, "error: ", 7) == 0) {
		fprintf(stderr, "shipctl: shipd at %s: %s", socket, reply + 7);
		return 1;
	}
	fputs(reply, stdout);
	return ferror(stdout) || fflush(stdout) ? 1 : 0;
}

static int cmd_status(const struct ctl_opts *o, const char *socket)
{
	return ask(socket, o->json ? "status json" : "status");
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"socket", required_argument, 0, 's'},
	    {"config", required_argument, 0, 'c'},
	    {"json", no_argument, 0, 'j'},
	    {"help", no_argument, 0, 'h'},
	    {0, 0, 0, 0},
	};
	struct ctl_opts o = {0};
	struct sl_config *cfg = NULL;
	const struct command *cmd = NULL;
	int c, rc;

	/* GNU getopt permutes: options may follow the command. */
	while ((c = getopt_long(argc, argv, "s:c:h", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			o.socket = optarg;
			break;
		case 'c':
			o.config = optarg;
			break;
		case 'j':
			o.json = 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, "shipctl: %s\n",
			optind == argc ? "which command?" : "one command at a time");
		usage(stderr);
		return 2;
	}
	for (size_t i = 0; i < N_COMMANDS; i++)
		if (strcmp(argv[optind], commands[i].name) == 0)
			cmd = &commands[i];
	if (!cmd) {
		fprintf(stderr, "shipctl: unknown command '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	if (o.socket && o.config) {
		fprintf(stderr, "shipctl: -s and -c both name the socket: give one\n");
		return 2;
	}
	/* No filesystem checks: finding the socket must not need write
	 * access to the log directory. */
	if (!o.socket && sl_config_load(o.config ? o.config : DEFAULT_CONFIG, 0, &cfg)) {
		fprintf(stderr, "shipctl: %s\n", sl_err_msg());
		return 1;
	}
	rc = cmd->run(&o, o.socket ? o.socket : cfg->control_socket);
	sl_config_free(cfg);
	return rc;
}
