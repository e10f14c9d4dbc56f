/* placeholder */
#include "bench_util.h"
int bench_codec_main(const struct bench_common *c, int argc, char **argv)
{
	(void)c; (void)argc; (void)argv;
	return 1;
}
