#!/usr/bin/env bash
# man/nestvm.1 kept true: every command, subcommand and option that the
# built-in help names is in the man page, and the page renders cleanly.
. "$(dirname "$0")/../../../tests/unit/shlib.sh" 2>/dev/null || . tests/unit/shlib.sh

MAN=man/nestvm.1

# The commands and options of the help, one "COMMAND[ SUB]|--option" a line.
help_words() {
	local cmd sub
	for cmd in run vm nested switch autostart status probe version; do
		echo "$cmd|"
	done
	for cmd in run status; do
		"$T_NESTVM" $cmd --help | sed -n "s/^ *\(-[a-zA-Z], \)\{0,1\}\(--[a-z-]*\).*/$cmd|\2/p"
	done
	for cmd in vm switch autostart; do
		for sub in $("$T_NESTVM" $cmd help | sed -n '/^Commands:/,/^$/s/^  \([a-z-]*\) .*/\1/p'); do
			echo "$cmd $sub|"
			"$T_NESTVM" $cmd $sub --help |
				sed -n "s/^ *\(-[a-zA-Z], \)\{0,1\}\(--[a-z-]*\).*/$cmd $sub|\2/p"
		done
	done
	"$T_NESTVM" nested enable --help | sed -n "s/^ *\(-[a-zA-Z], \)\{0,1\}\(--[a-z-]*\).*/nested enable|\2/p"
}

# Prints what the page ($1) lacks; the page's "\-" is "-" here.
missing_from() {
	local text line what
	text=$(sed 's/\\-/-/g; s/\\f[BIRP]//g' "$1")
	help_words | sort -u | while IFS= read -r line; do
		what=${line%%|*}
		[ -n "${line#*|}" ] && what=${line#*|}
		# An option by itself, a command as the man page's bold heading word.
		if [[ $what == --* ]]; then
			grep -qE -- "(^|[^a-z-])$what([^a-z-]|$)" <<<"$text" || echo "$line"
		else
			grep -qE -- "^\.(B|SS|TP)? ?\"?(nestvm )?$what([^a-z-]|$)|^\.B (nestvm )?$what" <<<"$text" || echo "$line"
		fi
	done
}

test_help_is_in_the_man_page() {
	local n miss
	n=$(help_words | sort -u | wc -l)
	[ "$n" -gt 60 ] || t_fail "only $n commands and options read from the help: the help's format changed?"
	miss=$(missing_from "$MAN")
	[ -z "$miss" ] || t_fail "the man page lacks: $miss"
}

# The check itself catches a page that lost an option or a command.
test_a_missing_option_is_caught() {
	sed '/autostart/d' "$MAN" >"$T_SCRATCH/lacking.1"
	t_has "$(missing_from "$T_SCRATCH/lacking.1")" "vm set|--autostart"
	sed '/discard/d' "$MAN" >"$T_SCRATCH/lacking.1"
	t_has "$(missing_from "$T_SCRATCH/lacking.1")" "vm discard-saved|"
}

test_renders_without_warnings() {
	command -v man >/dev/null || t_skip "no man here (apt-get install man-db)"
	local warn
	warn=$(MANWIDTH=80 man --warnings -l "$MAN" 2>&1 >/dev/null)
	[ -z "$warn" ] || t_fail "man warns: $warn"
	t_has "$(MANWIDTH=80 man -l "$MAN" 2>/dev/null)" "nestvm - virtual machine monitor"
}

t_run test_help_is_in_the_man_page
t_run test_a_missing_option_is_caught
t_run test_renders_without_warnings
t_end
