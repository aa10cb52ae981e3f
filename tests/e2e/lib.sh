# Sourced by tests/e2e/cases.sh inside the simulated host (busybox sh, cwd
# /nestvm): what every case file uses.
passed=0 failed=0 skipped=0
K=image/vmlinuz I=image/initrd.img
out=/tmp/e2e.out

# A case's PASS line carries its wall time, to see where a slow run went.
pass() { echo "PASS $1 ($(($(date +%s) - case_t0)) s)"; passed=$((passed + 1)); }
fail() { echo "FAIL $1: $2"; failed=$((failed + 1)); sed 's/^/    | /' "$out" | tail -n 25; }

# boot NAME EXPECTED_STATUS NESTVM-ARGS...: runs nestvm, output in $out. A
# nestvm that ignores SIGTERM is killed 10 s later: no case hangs the run. A
# nestvm stopped by the bound (busybox's timeout passes on the signal's 143)
# is said to be so, which tests/e2e/soak counts apart from other failures.
boot() {
	name=$1 want=$2; shift 2
	t=$(date +%s) bound=${BOOT_BOUND:-240}
	timeout -k 10 "$bound" ./nestvm "$@" >"$out" 2>&1 </dev/null
	status=$?
	if [ "$status" != "$want" ]; then
		if [ $(($(date +%s) - t)) -ge "$bound" ] && [ "$status" -ge 124 ]; then
			fail "$name" "nestvm ran past its ${bound} s bound (exit $status), expected $want"
		else
			fail "$name" "nestvm exited $status, expected $want"
		fi
		return 1
	fi
	return 0
}

# nv NESTVM-ARGS...: runs nestvm (killed after NV_BOUND seconds, default
# 600), appending the command and its output to $out; the status is in $status.
nv() {
	echo "\$ nestvm $*" >>"$out"
	timeout -k 10 "${NV_BOUND:-600}" ./nestvm "$@" >>"$out" 2>&1
	status=$?
	echo "[status $status]" >>"$out"
}

# nv_expect NAME WANT NESTVM-ARGS...: as nv, failing NAME on another status.
nv_expect() {
	name=$1 want=$2; shift 2
	nv "$@"
	[ "$status" = "$want" ] || { fail "$name" "nestvm $* exited $status, expected $want"; return 1; }
}

# console_count FILE PREFIX: the highest "PREFIX N" in a console log.
console_count() {
	grep -o "$2 [0-9]*" "$1" 2>/dev/null | awk '{ print $2 }' | sort -n | tail -n 1
}

# wait_console_count FILE PREFIX N [TRIES]: until that count reaches N, a
# try a second (default 240); 1 if it never does.
wait_console_count() {
	_t=0
	while [ $_t -lt "${4:-240}" ]; do
		_c=$(console_count "$1" "$2")
		[ -n "$_c" ] && [ "$_c" -ge "$3" ] && return 0
		sleep 1
		_t=$((_t + 1))
	done
	return 1
}

# expect NAME PATTERN: the output holds a line matching the extended regex.
expect() {
	grep -Eq "$2" "$out" || { fail "$1" "no line matching '$2'"; return 1; }
}

# e2e_case FUNCTION: runs one case; with $only set, only the case it names.
e2e_case() {
	[ -z "${only:-}" ] || [ "$1" = "$only" ] || return 0
	case_t0=$(date +%s)
	"$@"
}
