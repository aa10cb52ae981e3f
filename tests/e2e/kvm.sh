# Sourced by tests/e2e/cases.sh inside the simulated host, in a simulated host
# of its own: its nested guests (a KVM test's guest runs VMRUN in turn) leave
# QEMU's TCG more likely to freeze in the cases after them.
# The in-process KVM tests again, on the simulated host's KVM, which has the
# nested state this host's lacks.
case_kvm_tests_in_host() {
	: >"$out"
	for t in kvm-tests/test_*; do
		case $t in *.d) continue ;; esac
		"$t" >>"$out" 2>&1 || { fail kvm_tests_in_host "$t failed"; return; }
	done
	expect kvm_tests_in_host '^note: nested state saved' &&
	expect kvm_tests_in_host 'hardware speed' && pass kvm_tests_in_host
}

e2e_case case_kvm_tests_in_host
