# seed.awk - one POST .../allow_policies/batch body of `n` policies numbered
# from `first`, for tests/load/load.sh:
#
#   awk -v first=0 -v n=1000 -f tests/load/seed.awk
#
# On a fresh server policy i gets id i + 1.  By i % 10 it is:
#   0-5  EMAIL  user<i>@<org><i % 97>.example    (mixed.lua edits these)
#   6-7  DOMAIN d<i>.<org>.example
#   8    IP     23.<i / 256 % 256>.<i % 256>.10  (must be globally reachable)
#   9    EMAIL  regex r<i>-[a-z0-9]+@<org>\.example (cheap: anchored, no nesting)
# Flags and comments vary with i so list filters select real fractions.
BEGIN {
	split("acme globex initech umbrella hooli stark wayne wonka tyrell cyberdyne", org, " ")
	printf "{\"deletes\":[],\"patches\":[],\"puts\":[],\"posts\":["
	for (i = first; i < first + n; i++) {
		kind = i % 10
		o = org[int(i / 10) % 10 + 1]
		regex = "false"
		exempt = "false"
		if (kind <= 5) {
			type = "EMAIL"
			pattern = sprintf("user%d@%s%d.example", i, o, i % 97)
			exempt = (i % 4 == 0) ? "true" : "false"
		} else if (kind <= 7) {
			type = "DOMAIN"
			pattern = sprintf("d%d.%s.example", i, o)
		} else if (kind == 8) {
			type = "IP"
			pattern = sprintf("23.%d.%d.10", int(i / 256) % 256, i % 256)
		} else {
			type = "EMAIL"
			regex = "true"
			pattern = sprintf("r%d-[a-z0-9]+@%s\\\\.example", i, o)
		}
		comments = (i % 3 == 0) ? "null" : sprintf("\"seed %d for %s\"", i, o)
		printf "%s{\"pattern\":\"%s\",\"pattern_type\":\"%s\",\"is_regex\":%s," \
		       "\"is_trusted_sender\":%s,\"is_acceptable_sender\":%s," \
		       "\"is_exempt_recipient\":%s,\"verify_sender\":%s,\"comments\":%s}",
		       (i > first ? "," : ""), pattern, type, regex,
		       (i % 2 == 0) ? "true" : "false", (i % 2 == 0) ? "false" : "true",
		       exempt, (i % 7 == 0) ? "false" : "true", comments
	}
	printf "]}\n"
}
