# What the unit tier's shell tests share: the tree's root, a scratch folder
# removed at exit, and the harness's lines (PASS/FAIL/SKIP, the closing count).
# A test is a function run by t_run; it fails by t_fail and skips by t_skip.
set -u
if [ -f Makefile ] && [ -d tests/unit ]; then T_ROOT=$PWD; else T_ROOT=$(cd "$(dirname "$0")/../../.." && pwd); fi
cd "$T_ROOT" || exit 1
T_SCRATCH=$(mktemp -d /tmp/nestvm-test.XXXXXX)
trap 'rm -rf "$T_SCRATCH"' EXIT
T_NESTVM=$T_ROOT/build/nestvm
t_passed=0 t_failed=0 t_skipped=0

# Runs one test function in a subshell, so a failure leaves it at once.
t_run() {
	local out rc
	out=$( (set -e; "$1") 2>&1; echo "rc=$?")
	rc=${out##*rc=}
	out=${out%rc=*}
	if [ "$rc" = 0 ]; then
		t_passed=$((t_passed + 1)); echo "PASS $1"
	elif [ "$rc" = 77 ]; then
		t_skipped=$((t_skipped + 1)); echo "SKIP $1: $(printf '%s' "$out" | tail -n 1)"
	else
		t_failed=$((t_failed + 1)); echo "FAIL $1:"; printf '%s\n' "$out" | tail -n 20 | sed 's/^/    /'
	fi
}

# The reason goes to the output, which t_run shows.
t_fail() { echo "$*"; return 1; }
t_skip() { echo "$*"; exit 77; }

# Fails unless the text ($1) holds the string ($2).
t_has() { case $1 in *"$2"*) return 0 ;; esac; echo "expected '$2' in: $1"; return 1; }

t_end() { echo "$t_passed passed, $t_failed failed, $t_skipped skipped"; [ "$t_failed" -eq 0 ]; }

# A stand-in guest image: the tests check where it goes, not that it boots.
t_fake_image() {
	mkdir -p "$1"
	printf 'not a kernel\n' >"$1/vmlinuz"
	printf 'not an initrd\n' >"$1/initrd.img"
}
