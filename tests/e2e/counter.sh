# A guest program that counts, one number a second, on its console: what a
# save and a resume must neither reset nor skip. $1: the lines' prefix.
i=0
while :; do
	i=$((i + 1))
	echo "${1:-count} $i"
	sleep 1
done
