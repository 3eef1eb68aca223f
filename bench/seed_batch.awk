# seed_batch.awk - prints one POST .../allow_policies/batch body of `n`
# new policies, numbered from `first`, for bench/api.sh:
#
#   awk -v first=0 -v n=1000 -f bench/seed_batch.awk
#
# Policy i (unique over all i) is, by i % 10:
#   0-4 EMAIL  (1 in 100 of them a regex), 5-7 DOMAIN, 8-9 IP
#   (public IPv4 hosts, IPv4 /24 blocks and IPv6 hosts).
# Flags and comments vary with i so every list filter selects a real
# fraction: is_trusted_sender ~1/2, is_acceptable_sender ~1/3,
# is_exempt_recipient ~1/4 of EMAILs, verify_sender ~6/7, comments 1/3 null.
BEGIN {
	split("alice bob carol dave erin frank grace heidi ivan judy mallory niaj olivia peggy rupert sybil", given, " ")
	split("smith jones brown taylor wilson evans thomas roberts walker wright green hall wood clarke hughes lewis", family, " ")
	split("com net org io de fr co.uk nl se ch jp com.au net.br", tld, " ")
	split("acme globex initech umbrella hooli stark wayne wonka tyrell cyberdyne", org, " ")
	split("security finance sales support legal", team, " ")
	split("23 45 62 81 91 104 151 185", oct, " ")

	printf "{\"deletes\":[],\"patches\":[],\"puts\":[],\"posts\":["
	for (i = first; i < first + n; i++) {
		kind = i % 10
		regex = "false"
		if (kind < 5) {
			type = "EMAIL"
			if (i % 100 == 1) {
				regex = "true"
				pattern = sprintf("^%s\\\\.[a-z]+%d@%s%d\\\\.example\\\\.com$",
						  given[i % 16 + 1], i, org[i % 10 + 1], i % 97)
			} else {
				pattern = sprintf("%s.%s%d@%s%d.%s", given[i % 16 + 1],
						  family[int(i / 16) % 16 + 1], i, org[i % 10 + 1], i % 97,
						  tld[i % 13 + 1])
			}
		} else if (kind < 8) {
			type = "DOMAIN"
			pattern = sprintf("mx%d.%s%d.%s", i, org[int(i / 10) % 10 + 1], i % 211,
					  tld[int(i / 7) % 13 + 1])
		} else {
			type = "IP"
			a = oct[i % 8 + 1]; b = int(i / 8) % 256; c = int(i / 2048) % 256
			if (i % 20 == 19)
				pattern = sprintf("2a00:1450:%x:%x::%x", int(i / 65536) + 1, i % 65536, i % 251 + 1)
			else if (i % 20 == 8)
				pattern = sprintf("%s.%d.%d.0/24", a, b, c)
			else
				pattern = sprintf("%s.%d.%d.%d", a, b, c, i % 250 + 2)
		}
		trusted = (i % 2 == 0)
		acceptable = (int(i / 2) % 3 == 0)
		exempt = (type == "EMAIL" && int(i / 3) % 4 == 0)
		if (!trusted && !acceptable && !exempt)
			trusted = 1
		verify = (i % 7 != 0)
		if (i % 3 == 0)
			comments = "null"
		else if (i % 3 == 1)
			comments = sprintf("\"ticket INC-%d %s onboarding\"", i, org[i % 10 + 1])
		else
			comments = sprintf("\"allow for %s team\"", team[i % 5 + 1])

		printf "%s{\"pattern\":\"%s\",\"pattern_type\":\"%s\",\"is_regex\":%s," \
		       "\"is_trusted_sender\":%s,\"is_acceptable_sender\":%s," \
		       "\"is_exempt_recipient\":%s,\"verify_sender\":%s,\"comments\":%s}",
		       (i > first ? "," : ""), pattern, type, regex,
		       (trusted ? "true" : "false"), (acceptable ? "true" : "false"),
		       (exempt ? "true" : "false"), (verify ? "true" : "false"), comments
	}
	printf "]}\n"
}
