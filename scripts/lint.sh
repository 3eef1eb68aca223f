#!/usr/bin/env bash
# Lint: functions the house style bans (unbounded or unchecked parsing and
# copying) must not appear in the product's C sources.
set -euo pipefail
cd "$(dirname "$0")/.."

banned='\b(atoi|atol|atoll|atof|sscanf|strcpy|strcat|sprintf|vsprintf|gets|strtok|tmpnam|mktemp)[[:space:]]*\('
if grep -rnE "$banned" src include --include='*.c' --include='*.h'; then
	echo "lint: banned function used (see docs/conventions.md)" >&2
	exit 1
fi
echo "lint: ok"
