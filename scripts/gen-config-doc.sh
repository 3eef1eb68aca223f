#!/usr/bin/env bash
# Regenerates the option table in docs/configuration.md from the binary.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-build/allowd}
python3 - "$bin" <<'PY'
import subprocess, sys
table = subprocess.run([sys.argv[1], '--help-markdown'], capture_output=True, text=True, check=True).stdout
p = 'docs/configuration.md'
s = open(p).read()
b = s.index('<!-- options:begin'); b = s.index('\n', b) + 1
e = s.index('<!-- options:end -->')
open(p, 'w').write(s[:b] + table + s[e:])
PY
