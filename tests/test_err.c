/* Error context: set, wrap, message, clear, truncation, per-thread state. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "shiplog/err.h"

static int clear_first(void **state)
{
	(void)state;
	sl_err_clear();
	return 0;
}

static void test_empty_initially(void **state)
{
	(void)state;
	assert_string_equal(sl_err_msg(), "");
}

static void test_set_returns_negative_errno(void **state)
{
	(void)state;
	assert_int_equal(sl_err_set(EBADMSG, "crc 0x%08x != 0x%08x", 0xdeadbeefu, 0x1u), -EBADMSG);
	assert_string_equal(sl_err_msg(), "crc 0xdeadbeef != 0x00000001");
	/* A second set replaces the message. */
	assert_int_equal(sl_err_set(ENOSPC, "full"), -ENOSPC);
	assert_string_equal(sl_err_msg(), "full");
}

static void test_wrap_prefixes_context(void **state)
{
	(void)state;
	int rc = sl_err_set(EIO, "write at %d failed", 4096);

	assert_int_equal(sl_err_wrap(rc, "segment %d", 7), -EIO);
	assert_string_equal(sl_err_msg(), "segment 7: write at 4096 failed");
	assert_int_equal(sl_err_wrap(rc, "opening log"), -EIO);
	assert_string_equal(sl_err_msg(), "opening log: segment 7: write at 4096 failed");
}

static void test_wrap_without_message_uses_strerror(void **state)
{
	char want[SL_ERR_MSG_MAX];

	(void)state;
	snprintf(want, sizeof(want), "ctx: %s", strerror(ENOENT));
	assert_int_equal(sl_err_wrap(-ENOENT, "ctx"), -ENOENT);
	assert_string_equal(sl_err_msg(), want);
}

static void test_clear(void **state)
{
	(void)state;
	sl_err_set(EINVAL, "something");
	sl_err_clear();
	assert_string_equal(sl_err_msg(), "");
}

/* The current message may itself be an argument of wrap. */
static void test_wrap_own_message_as_argument(void **state)
{
	(void)state;
	sl_err_set(EINVAL, "root");
	sl_err_wrap(-EINVAL, "[%s]", sl_err_msg());
	assert_string_equal(sl_err_msg(), "[root]: root");
}

static void test_truncation(void **state)
{
	char big[2 * SL_ERR_MSG_MAX];

	(void)state;
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	sl_err_set(E2BIG, "%s", big);
	assert_int_equal(strlen(sl_err_msg()), SL_ERR_MSG_MAX - 1);
	/* Wrapping a full message keeps the new context and stays terminated. */
	sl_err_wrap(-E2BIG, "outer");
	assert_int_equal(strlen(sl_err_msg()), SL_ERR_MSG_MAX - 1);
	assert_memory_equal(sl_err_msg(), "outer: xxx", 10);
	/* A context longer than the buffer is itself truncated. */
	sl_err_wrap(-E2BIG, "%s", big);
	assert_int_equal(strlen(sl_err_msg()), SL_ERR_MSG_MAX - 1);
}

static void *other_thread(void *arg)
{
	char *seen = arg;

	/* A fresh thread starts empty, and its message stays its own. */
	strcpy(seen, sl_err_msg());
	sl_err_set(EPIPE, "from the other thread");
	return NULL;
}

static void test_per_thread(void **state)
{
	char seen[SL_ERR_MSG_MAX] = "unset";
	pthread_t t;

	(void)state;
	sl_err_set(EAGAIN, "main thread");
	assert_int_equal(pthread_create(&t, NULL, other_thread, seen), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_string_equal(seen, "");
	assert_string_equal(sl_err_msg(), "main thread");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_empty_initially) /* must run first */,
	    cmocka_unit_test_setup(test_set_returns_negative_errno, clear_first),
	    cmocka_unit_test_setup(test_wrap_prefixes_context, clear_first),
	    cmocka_unit_test_setup(test_wrap_without_message_uses_strerror, clear_first),
	    cmocka_unit_test_setup(test_clear, clear_first),
	    cmocka_unit_test_setup(test_wrap_own_message_as_argument, clear_first),
	    cmocka_unit_test_setup(test_truncation, clear_first),
	    cmocka_unit_test_setup(test_per_thread, clear_first),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
