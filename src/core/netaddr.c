/*
 * netaddr.c - address and CIDR parsing on inet_pton, and prefix containment.
 */
#include "allowd/netaddr.h"
#include "allowd/error.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

int allowd_ip_parse(uint8_t out[16], const char *s)
{
	struct in_addr v4;

	if (inet_pton(AF_INET6, s, out) == 1)
		return 0;
	if (inet_pton(AF_INET, s, &v4) == 1) {
		memset(out, 0, 10);
		out[10] = out[11] = 0xff;
		memcpy(out + 12, &v4, 4);
		return 0;
	}
	return allowd_error_set(ALLOWD_EINVALID, NULL, "'%.64s' is not an IP address", s);
}

int allowd_cidr_parse(allowd_cidr *out, const char *s)
{
	char host[64];
	const char *slash = strchr(s, '/');
	size_t hlen = slash ? (size_t)(slash - s) : strlen(s);
	int v4, max, prefix;

	if (hlen == 0 || hlen >= sizeof(host))
		goto invalid;
	memcpy(host, s, hlen);
	host[hlen] = '\0';
	if (allowd_ip_parse(out->addr, host))
		goto invalid;
	v4 = strchr(host, ':') == NULL;
	max = v4 ? 32 : 128;
	prefix = max;
	if (slash) {
		char *end;
		long v;
		errno = 0;
		if (slash[1] < '0' || slash[1] > '9')
			goto invalid;
		v = strtol(slash + 1, &end, 10);
		if (errno || *end || v < 0 || v > max)
			goto invalid;
		prefix = (int)v;
	}
	out->prefix = v4 ? prefix + 96 : prefix;
	for (int bit = out->prefix; bit < 128; bit++)
		out->addr[bit / 8] &= (uint8_t) ~(0x80u >> (bit % 8));
	return 0;
invalid:
	return allowd_error_set(ALLOWD_EINVALID, NULL, "'%.64s' is not an IP address or CIDR block",
				s);
}

bool allowd_cidr_contains(const allowd_cidr *c, const uint8_t addr[16])
{
	int full = c->prefix / 8, rest = c->prefix % 8;

	if (memcmp(c->addr, addr, (size_t)full) != 0)
		return false;
	if (rest) {
		uint8_t mask = (uint8_t)(0xffu << (8 - rest));
		return (addr[full] & mask) == c->addr[full];
	}
	return true;
}
