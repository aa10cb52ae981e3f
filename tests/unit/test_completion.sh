#!/usr/bin/env bash
# The bash completion (dist/nestvm.bash-completion), sourced as bash-completion
# sources it, completes commands, options, VM names and switch names.
. "$(dirname "$0")/../../../tests/unit/shlib.sh" 2>/dev/null || . tests/unit/shlib.sh

STORE=$T_SCRATCH/store
export NESTVM_STORE=$STORE

setup_store() {
	t_fake_image "$T_SCRATCH/img"
	"$T_NESTVM" vm new alpha --kernel "$T_SCRATCH/img/vmlinuz" >/dev/null
	"$T_NESTVM" vm new beta --kernel "$T_SCRATCH/img/vmlinuz" >/dev/null
	"$T_NESTVM" switch new lan >/dev/null
	"$T_NESTVM" switch stop lan
	mkdir -p "$T_SCRATCH/other"
	"$T_NESTVM" vm new gamma --store "$T_SCRATCH/other" --kernel "$T_SCRATCH/img/vmlinuz" >/dev/null
}

# Completes the command line $1 (the cursor at its end) and prints the
# candidates, one a line, sorted.
complete_line() {
	bash -c '
		[ -f /usr/share/bash-completion/bash_completion ] && . /usr/share/bash-completion/bash_completion
		. dist/nestvm.bash-completion
		read -ra COMP_WORDS <<<"$1"
		[[ $1 == *" " ]] && COMP_WORDS+=("")
		COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
		COMP_WORDS[0]=$2
		COMP_LINE=$2${1#nestvm}
		COMP_POINT=${#COMP_LINE}
		_nestvm nestvm "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
		printf "%s\n" "${COMPREPLY[@]}" | sort' _ "$1" "$T_NESTVM"
}

expect() {
	local got
	got=$(complete_line "$1" | tr '\n' ' ')
	[ "$got" = "$2 " ] || t_fail "'$1' completed to '$got', want '$2'"
}

test_commands() {
	t_has "$(complete_line 'nestvm ')" "autostart"
	expect 'nestvm sw' 'switch'
	expect 'nestvm vm s' 'save set show start stop'
	expect 'nestvm autostart ' 'help list start stop'
}

test_options_from_the_help() {
	expect 'nestvm vm set alpha --au' '--autostart'
	expect 'nestvm vm set alpha --autostart ' 'off on'
	expect 'nestvm autostart stop --t' '--timeout'
	expect 'nestvm status --js' '--json'
}

test_vm_names() {
	expect 'nestvm vm start ' 'alpha beta'
	expect 'nestvm vm show a' 'alpha'
	expect 'nestvm nested enable b' 'beta'
	expect 'nestvm run --name ' 'alpha beta'
	expect "nestvm vm show --store $T_SCRATCH/other " 'gamma'
	expect 'nestvm vm new ' ''
}

test_switch_names() {
	expect 'nestvm switch start ' 'lan'
	expect 'nestvm vm new x --nic ' 'lan'
	expect 'nestvm vm set alpha --switch l' 'lan'
}

setup_store
t_run test_commands
t_run test_options_from_the_help
t_run test_vm_names
t_run test_switch_names
t_end
