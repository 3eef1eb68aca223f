/*
 * test_netaddr.c - CIDR parsing and containment across IPv4 and IPv6.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "allowd/error.h"
#include "allowd/netaddr.h"

static bool in(const char *cidr, const char *ip)
{
	allowd_cidr c;
	uint8_t a[16];
	assert_int_equal(allowd_cidr_parse(&c, cidr), 0);
	assert_int_equal(allowd_ip_parse(a, ip), 0);
	return allowd_cidr_contains(&c, a);
}

static void ipv4_blocks(void **state)
{
	(void)state;
	assert_true(in("192.0.2.0/24", "192.0.2.77"));
	assert_false(in("192.0.2.0/24", "192.0.3.1"));
	assert_true(in("10.1.2.3", "10.1.2.3"));
	assert_false(in("10.1.2.3", "10.1.2.4"));
	assert_true(in("0.0.0.0/0", "8.8.8.8"));
	assert_true(in("10.0.0.0/9", "10.127.255.255"));
	assert_false(in("10.0.0.0/9", "10.128.0.0"));
	assert_true(in("192.0.2.9/24", "192.0.2.1")); /* host bits cleared */
}

static void ipv6_blocks_and_mapped(void **state)
{
	(void)state;
	assert_true(in("2001:db8::/32", "2001:db8:ffff::1"));
	assert_false(in("2001:db8::/32", "2001:db9::1"));
	assert_true(in("192.0.2.0/24", "::ffff:192.0.2.5"));
	assert_false(in("::/0", "1.2.3.4") == false);
	assert_true(in("::1", "::1"));
}

static void rejects_garbage(void **state)
{
	allowd_cidr c;
	uint8_t a[16];
	(void)state;
	assert_int_equal(allowd_cidr_parse(&c, "1.2.3.4/33"), ALLOWD_EINVALID);
	assert_int_equal(allowd_cidr_parse(&c, "1.2.3.4/"), ALLOWD_EINVALID);
	assert_int_equal(allowd_cidr_parse(&c, "1.2.3.4/-1"), ALLOWD_EINVALID);
	assert_int_equal(allowd_cidr_parse(&c, "::/129"), ALLOWD_EINVALID);
	assert_int_equal(allowd_cidr_parse(&c, "example.com"), ALLOWD_EINVALID);
	assert_int_equal(allowd_cidr_parse(&c, ""), ALLOWD_EINVALID);
	assert_int_equal(allowd_ip_parse(a, "1.2.3"), ALLOWD_EINVALID);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(ipv4_blocks),
		cmocka_unit_test(ipv6_blocks_and_mapped),
		cmocka_unit_test(rejects_garbage),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
