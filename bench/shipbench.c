/* shipbench: shiplog's benchmarks. Each subcommand measures one part of the
 * system and, in the same run, the machine limit it is judged against. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"

struct subcommand {
	const char *name;
	const char *summary;
	int (*main)(const struct bench_common *c, int argc, char **argv);
};

static const struct subcommand subcommands[] = {
    {"codec", "batch encode/decode (LZ4 + CRC32C) against plain LZ4 on the same data",
     bench_codec_main},
    {"store", "log store append throughput and durable latency against raw io_uring writes",
     bench_store_main},
    {"proto", "the protocol state machine alone: leader to followers on one core, faults off",
     bench_proto_main},
    {"cluster", "3 nodes in one process over a real transport: commit latency, lag, throughput",
     bench_cluster_main},
    {"client", "append-to-commit through libshiplog against the same append in the node process",
     bench_client_main},
    {"failover",
     "3 shipd processes: leader kill to the first new commit, acknowledged records lost",
     bench_failover_main},
};

static void usage(FILE *f)
{
	fprintf(f, "usage: shipbench <subcommand> [options]\n\n"
		   "subcommands:\n");
	for (size_t i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++)
		fprintf(f, "  %-8s %s\n", subcommands[i].name, subcommands[i].summary);
	fprintf(f, "\ncommon options (any subcommand):\n"
		   "  --json          one JSON object per result line on stdout\n"
		   "  --seconds S     measuring time per phase (default 2)\n"
		   "  --dir DIR       directory for file-system benchmarks (default: a new\n"
		   "                  directory under /var/tmp, removed afterwards)\n"
		   "  --seed N        workload seed (default 1)\n"
		   "  -h, --help      this help; `shipbench SUB --help` for a subcommand's own\n");
}

static int parse_double(const char *opt, const char *s, double *out)
{
	char *end;

	errno = 0;
	*out = strtod(s, &end);
	if (errno || end == s || *end != '\0' || *out <= 0) {
		fprintf(stderr, "shipbench: %s wants a positive number, got '%s'\n", opt, s);
		return -EINVAL;
	}
	return 0;
}

/* Take the common options out of argv, leaving the subcommand's own. */
static int parse_common(struct bench_common *c, int *argc, char **argv)
{
	int out = 1;

	for (int i = 1; i < *argc; i++) {
		const char *a = argv[i];
		int has_val = i + 1 < *argc;

		if (strcmp(a, "--json") == 0) {
			c->json = 1;
		} else if (strcmp(a, "--seconds") == 0 && has_val) {
			if (parse_double(a, argv[++i], &c->seconds))
				return -EINVAL;
		} else if (strcmp(a, "--dir") == 0 && has_val) {
			c->dir = argv[++i];
		} else if (strcmp(a, "--seed") == 0 && has_val) {
			c->seed = strtoull(argv[++i], NULL, 0);
		} else {
			argv[out++] = argv[i];
		}
	}
	*argc = out;
	argv[out] = NULL;
	return 0;
}

int main(int argc, char **argv)
{
	struct bench_common c = {.seconds = 2.0, .seed = 1};

	if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	for (size_t i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++) {
		if (strcmp(argv[1], subcommands[i].name) != 0)
			continue;
		argc--;
		argv++;
		if (parse_common(&c, &argc, argv))
			return 2;
		return subcommands[i].main(&c, argc, argv);
	}
	fprintf(stderr, "shipbench: unknown subcommand '%s'\n\n", argv[1]);
	usage(stderr);
	return 2;
}
