#!/usr/bin/env bash
# The documents and the command line agree: every flag that `herald ... --help` prints is
# named in README.md or docs/, and every flag that README.md and docs/*.md name in code (a
# `span` or a fenced block) is one that some --help prints: herald's own commands, or
# herald-bench's and fedisim's, or one of the few other programs the documents show (curl,
# cmake, ctest, ...), each listed below with where it is used.
source "$(dirname "$0")/lib/common.sh"
need python3
BENCH="$HD_BUILD/bench/herald-bench"

# Every command's usage: `herald help` walks the groups, `herald help CMD SUB` the rest.
{
    "$HERALD" --help
    for c in key "key add" "key list" "key export-public" actor "actor set" follow \
        "follow add" "follow remove" "follow import" "follow list" enqueue run stats top \
        sign block "block add" "block remove" "block list" "block export" "block import" \
        allow "allow add" "allow remove" "allow list" federation "federation mode" host \
        "host list" "host show" "host pause" "host resume" "host set" "host reset" dead \
        "dead list" "dead retry" "dead purge" gone "gone list" queue "queue list" \
        "queue flush" "queue shape"; do
        # shellcheck disable=SC2086
        "$HERALD" help $c || fail "herald help $c"
    done
} >"$T/herald.help"
# Commands other engineers' modules add are read the same way when present.
for c in activity cluster; do
    "$HERALD" help "$c" >>"$T/herald.help" 2>/dev/null || true
done
"$BENCH" --help >"$T/other.help" 2>&1 || true
"$FEDISIM" --help >>"$T/other.help" 2>&1 || true
[ -s "$T/other.help" ] || fail "herald-bench and fedisim printed no usage"

python3 - "$T/herald.help" "$T/other.help" "$HD_SRC" <<'EOF'
import re, sys, pathlib

herald_help, other_help, src = open(sys.argv[1]).read(), open(sys.argv[2]).read(), sys.argv[3]
FLAG = re.compile(r'(?<![\w-])--([a-z][a-z0-9]*(?:-[a-z0-9]+)*)')
herald_flags = set(FLAG.findall(herald_help))
other_flags = set(FLAG.findall(other_help))
# Flags of other programs that the documents show, and the program.
FOREIGN = {
    'unix-socket': 'curl', 'data-binary': 'curl', 'fail': 'curl', 'silent': 'curl',
    'header': 'curl', 'request': 'curl', 'data': 'curl',
    'build': 'cmake', 'install': 'cmake', 'prefix': 'cmake', 'target': 'cmake',
    'test-dir': 'ctest', 'output-on-failure': 'ctest',
    'cflags': 'pkg-config', 'libs': 'pkg-config',
    'now': 'systemctl',
    'system': 'useradd', 'home': 'useradd',
    'http2-prior-knowledge': 'curl',
    'list': 'tests/tools/hostile_server (a test server)',
}
docs = [pathlib.Path(src, 'README.md')] + sorted(pathlib.Path(src, 'docs').glob('*.md'))
text = {d: d.read_text() for d in docs}

def code_parts(t):
    """Fenced blocks and `spans`: where a document names a flag as something to type."""
    parts = re.findall(r'^```.*?^```', t, flags=re.S | re.M)
    rest = re.sub(r'^```.*?^```', '', t, flags=re.S | re.M)
    return parts + re.findall(r'`([^`\n]+)`', rest)

bad = []
named = set()
for d, t in text.items():
    for part in code_parts(t):
        for f in FLAG.findall(part):
            named.add(f)
            if f not in herald_flags and f not in other_flags and f not in FOREIGN:
                bad.append(f'{d.relative_to(src)}: --{f} (in `{part.strip()[:70]}`) is in no --help')
alltext = '\n'.join(text.values())
for f in sorted(herald_flags):
    if not re.search(r'(?<![\w-])--' + re.escape(f) + r'(?![\w-])', alltext):
        bad.append(f'--{f} is in `herald --help` but not in README.md or docs/')
for b in sorted(set(bad)):
    print('FAIL:', b, file=sys.stderr)
print(f'{len(herald_flags)} herald flags, {len(named)} flags named in the documents')
sys.exit(1 if bad else 0)
EOF
pass "every herald --help flag is documented, and every documented flag is in some --help"
