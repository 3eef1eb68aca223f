/*
 * netaddr.h - IPv4/IPv6 addresses and CIDR blocks: parsing and containment.
 * IPv4 is held as IPv4-mapped IPv6 (::ffff:a.b.c.d), so one comparison
 * serves both families and a v4 client seen on a v6 socket still matches.
 */
#ifndef ALLOWD_NETADDR_H
#define ALLOWD_NETADDR_H

#include <stdbool.h>
#include <stdint.h>

typedef struct allowd_cidr {
	uint8_t addr[16]; /* network address, host bits cleared */
	int prefix;       /* 0..128, in IPv6 terms (an IPv4 /24 is 120) */
} allowd_cidr;

/*
 * Parses "addr" or "addr/len" (IPv4 or IPv6).  Host bits beyond the
 * prefix are cleared.  Returns 0 or ALLOWD_EINVALID.
 */
int allowd_cidr_parse(allowd_cidr *out, const char *s);

/* Parses a single address (no prefix) into 16 bytes; 0 or ALLOWD_EINVALID. */
int allowd_ip_parse(uint8_t out[16], const char *s);

bool allowd_cidr_contains(const allowd_cidr *c, const uint8_t addr[16]);

#endif
