# tests/e2e/cases.sh FILE[:CASE]...: inside a simulated host (cwd /nestvm),
# runs the cases of tests/e2e/FILE.sh, or only the function CASE of it, then
# prints the closing count that tests/run reads.
. tests/e2e/lib.sh
for unit in "$@"; do
	only=
	case $unit in *:*) only=${unit#*:} ;; esac
	unset NV_BOUND          # a file's own bound ends with it
	. "tests/e2e/${unit%%:*}.sh"
done
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
