# tests/e2e/cases.sh NAME...: inside a simulated host (cwd /nestvm), runs the
# cases of tests/e2e/NAME.sh for each NAME, then prints the closing count
# that tests/run reads.
. tests/e2e/lib.sh
for f in "$@"; do
	. "tests/e2e/$f.sh"
done
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
