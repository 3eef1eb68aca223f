/*
 * test_prepare.c - the fast paths of message preparation against what they
 * replace: the dotted-quad parser against inet_pton(AF_INET), and the
 * one-pass address normalisation against the plain rule (split at the last
 * '@', lower-case the local part, engine_domain the rest) on tricky and
 * random inputs; and the keyed hash the exact tables use.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine_int.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static uint64_t rng_state = 0x243F6A8885A308D3ULL;

static uint64_t rnd(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545F4914F6CDD1DULL;
}

static void same_as_inet_pton(const char *s)
{
	uint8_t want[4] = {0}, got[4] = {0};
	int w = inet_pton(AF_INET, s, want) == 1 ? 0 : -1;
	int g = engine_ipv4_parse(got, s);

	if (w != g)
		fail_msg("\"%s\": inet_pton %s, engine_ipv4_parse %s", s, w ? "rejects" : "accepts",
		         g ? "rejects" : "accepts");
	if (w == 0)
		assert_memory_equal(want, got, 4);
}

static void ipv4_parse_accepts_exactly_what_inet_pton_accepts(void **state)
{
	static const char *const tricky[] = {
	    "1.2.3.4",
	    "0.0.0.0",
	    "255.255.255.255",
	    "256.1.1.1",
	    "1.2.3.256",
	    "01.2.3.4",
	    "1.02.3.4",
	    "1.2.3.04",
	    "00.1.2.3",
	    "0.0.0.00",
	    "1.2.3",
	    "1.2.3.4.",
	    ".1.2.3.4",
	    "1..2.3",
	    "1.2.3.4.5",
	    "",
	    ".",
	    "...",
	    "1.2.3.4 ",
	    " 1.2.3.4",
	    "1.2.3.-4",
	    "1.2.3.+4",
	    "0x1.2.3.4",
	    "1.2.3.4x",
	    "1e2.2.3.4",
	    "1000.2.3.4",
	    "999.2.3.4",
	    "2550.1.1.1",
	    "25.5.1.1",
	    "1.2.3.4/24",
	    "::1",
	    "::ffff:1.2.3.4",
	    "1.2.3.4:80",
	    "4294967296",
	    "16909060",
	    "1.2.65535",
	    "255.255.255.2555",
	    "9.9.9.9",
	    "100.200.250.255",
	    "1.2.3.4\n",
	    "\xc2\xb9.2.3.4",
	    "١.2.3.4",
	};
	const char alphabet[] = "0123456789..:x 5";
	char buf[24];

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(tricky); i++)
		same_as_inet_pton(tricky[i]);
	for (int i = 0; i < 200000; i++) {
		size_t n = (size_t)(rnd() % 18);
		for (size_t k = 0; k < n; k++)
			buf[k] = alphabet[rnd() % (sizeof(alphabet) - 1)];
		buf[n] = '\0';
		same_as_inet_pton(buf);
	}
	for (int i = 0; i < 200000; i++) {
		uint64_t r = rnd();
		snprintf(buf, sizeof(buf), "%u.%u.%u.%u", (unsigned)(r % 300),
		         (unsigned)((r >> 16) % 300), (unsigned)((r >> 32) % 300),
		         (unsigned)((r >> 48) % 300));
		same_as_inet_pton(buf);
		if (r & 1) { /* a zero in front of one number */
			char z[48];
			size_t at = (size_t)((r >> 8) % strlen(buf));
			while (at && buf[at - 1] != '.')
				at--;
			snprintf(z, sizeof(z), "%.*s0%s", (int)at, buf, buf + at);
			same_as_inet_pton(z);
		}
	}
}

/* The rule engine_address implements, written plainly. */
static void plain_address(eaddr *a, const char *raw, char delim, int sender)
{
	const char *at;
	size_t local_len, i, dl;

	memset(a, 0, sizeof(*a));
	a->raw = raw;
	a->domain = a->norm;
	if (!raw || !*raw || !(at = strrchr(raw, '@')) || at == raw)
		return;
	local_len = (size_t)(at - raw);
	if (local_len + 2 >= sizeof(a->norm))
		return;
	for (i = 0; i < local_len; i++)
		a->norm[i] = (char)(raw[i] >= 'A' && raw[i] <= 'Z' ? raw[i] + 32 : raw[i]);
	a->norm[local_len] = '@';
	if (engine_domain(a->norm + local_len + 1, sizeof(a->norm) - local_len - 1, at + 1)) {
		a->norm[0] = '\0';
		return;
	}
	a->domain = a->norm + local_len + 1;
	a->ok = 1;
	dl = strlen(a->domain);
	a->norm_len = (uint16_t)strlen(a->norm);
	a->domain_len = (uint16_t)dl;
	a->h_norm = engine_hash(a->norm, a->norm_len);
	a->h_domain = sender ? engine_hash(a->domain, dl) : 0;
	if (delim) {
		const char *d =
		    memchr(a->norm, delim >= 'A' && delim <= 'Z' ? delim + 32 : delim, local_len);
		if (d && d != a->norm) {
			size_t base = (size_t)(d - a->norm);
			memcpy(a->sub, a->norm, base);
			a->sub[base] = '@';
			memcpy(a->sub + base + 1, a->domain, dl + 1);
			a->sub_len = (uint16_t)strlen(a->sub);
			a->h_sub = engine_hash(a->sub, a->sub_len);
		}
	}
}

static void same_address(const char *raw, char delim, int sender)
{
	eaddr *want = malloc(sizeof(*want)), *got = malloc(sizeof(*got));

	assert_non_null(want);
	assert_non_null(got);
	plain_address(want, raw, delim, sender);
	memset(got, 0x5a, sizeof(*got)); /* nothing may depend on a cleared struct */
	engine_address(got, raw, delim, sender);
	if (want->ok != got->ok || (want->ok && strcmp(want->norm, got->norm) != 0))
		fail_msg("\"%s\": want ok %d \"%s\", got ok %d \"%s\"", raw, want->ok, want->norm,
		         got->ok, got->ok ? got->norm : "");
	if (want->ok) {
		assert_int_equal(want->domain - want->norm, got->domain - got->norm);
		assert_string_equal(want->sub, got->sub);
		assert_int_equal(want->norm_len, got->norm_len);
		assert_int_equal(want->domain_len, got->domain_len);
		assert_int_equal(want->sub_len, got->sub_len);
		assert_true(want->h_norm == got->h_norm);
		assert_true(want->h_domain == got->h_domain);
		if (want->sub_len)
			assert_true(want->h_sub == got->h_sub);
	}
	assert_ptr_equal(got->raw, raw);
	free(want);
	free(got);
}

static void one_pass_address_equals_the_plain_rule(void **state)
{
	static const char *const tricky[] = {
	    "User@Example.COM",
	    "user@example.com.",
	    "user@example.com..",
	    "@example.com",
	    "user@",
	    "user@.",
	    "user",
	    "",
	    "a@b@Example.org",
	    "\"A@B\"@Example.org",
	    "John.Doe+Tag@Example.com",
	    "+tag@example.com",
	    "Pelé@Example.com",
	    "ÄBc@example.com",
	    "user@Exämple.COM",
	    "user@bücher.example.",
	    "USER@XN--BCHER-KVA.example",
	    "a+b+c@x.y",
	    "[@]Z@Q.R",
	    "ZZZZZZZZ@AAAAAAAA",
	    "@",
	    "@@",
	    "a@@b",
	    "user@ex ample.com",
	    "\x7f\x80@A\x7f.COM",
	};
	const char alphabet[] = "aZz@A.+-_\"é09Q";
	char buf[400];

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(tricky); i++)
		for (int sender = 0; sender < 2; sender++) {
			same_address(tricky[i], '+', sender);
			same_address(tricky[i], '\0', sender);
			same_address(tricky[i], 'Z', sender);
		}
	same_address(NULL, '+', 1);
	for (int i = 0; i < 100000; i++) {
		uint64_t r = rnd();
		size_t n = r & 1 ? (size_t)(r >> 8) % 24 : 300 + (size_t)(r >> 8) % 40;
		for (size_t k = 0; k < n; k++)
			buf[k] = alphabet[rnd() % (sizeof(alphabet) - 1)];
		if (n > 4 && (r & 2))
			buf[n - 1 - (r >> 20) % 4] = '@';
		buf[n] = '\0';
		same_address(buf, r & 4 ? '+' : r & 8 ? '\0' : 'Z', (int)((r >> 5) & 1));
	}
	/* every length around the buffer's edge, ASCII and not */
	for (size_t n = 300; n < 330; n++) {
		memset(buf, 'A', n);
		buf[n / 2] = '@';
		buf[n] = '\0';
		same_address(buf, '+', 1);
		buf[n - 1] = '.';
		same_address(buf, '+', 1);
		memcpy(buf + n - 3, "\xc3\xa9.", 3);
		same_address(buf, '+', 1);
	}
}

/*
 * engine_hash reads words, the last one overlapping, and zero-pads short
 * inputs: every byte must still count.  For every length up to the longest
 * hashed by NH and a little past it (SipHash), flipping any one byte, or
 * appending a zero byte, changes the hash (a chance collision would be
 * 2^-32 per pair, which these few thousand pairs never reach), and hashing
 * is deterministic.
 */
static void hash_depends_on_every_byte_and_the_length(void **state)
{
	static unsigned char buf[400];
	(void)state;

	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (unsigned char)rnd();
	for (size_t len = 0; len <= 340; len++) {
		uint64_t h = engine_hash(buf, len);
		unsigned char keep = buf[len];
		assert_true(h == engine_hash(buf, len));
		for (size_t i = 0; i < len; i++) {
			buf[i] ^= 0x01;
			if (engine_hash(buf, len) == h)
				fail_msg("length %zu: flipping byte %zu leaves the hash unchanged", len, i);
			buf[i] ^= 0x01;
		}
		buf[len] = 0;
		if (engine_hash(buf, len + 1) == h)
			fail_msg("length %zu: a trailing zero byte leaves the hash unchanged", len);
		buf[len] = keep;
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(ipv4_parse_accepts_exactly_what_inet_pton_accepts),
	    cmocka_unit_test(one_pass_address_equals_the_plain_rule),
	    cmocka_unit_test(hash_depends_on_every_byte_and_the_length),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
