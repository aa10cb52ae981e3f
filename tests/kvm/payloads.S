/* Tiny guest payloads for the in-process KVM tests. Each reports through
 * port 0xe9, which the test intercepts, and ends with HLT, a fault or an
 * ACPI poweroff. Position-independent: the tests copy them anywhere. */
	.section .rodata

/* Real mode: out 0x42, read a byte from the device, send it back plus one. */
	.globl payload_real_io, payload_real_io_end
	.code16
payload_real_io:
	mov $0x42, %al
	out %al, $0xe9
	in $0xe9, %al
	inc %al
	out %al, $0xe9
	hlt
payload_real_io_end:

/* 64-bit: write a quadword to MMIO at 0xd0000000, read one back, report its
 * low dword on the port. */
	.globl payload_long_mmio, payload_long_mmio_end
	.code64
payload_long_mmio:
	movabs $0xd0000000, %rbx
	movabs $0x1122334455667788, %rax
	mov %rax, (%rbx)
	mov 8(%rbx), %rax
	mov $0xe9, %dx
	out %eax, %dx
	hlt
payload_long_mmio_end:

/* 64-bit, every vCPU: report the index the VMM put in rsi. */
	.globl payload_long_smp, payload_long_smp_end
payload_long_smp:
	mov %esi, %eax
	mov $0xe9, %dx
	out %eax, %dx
	hlt
payload_long_smp_end:

/* 64-bit: an undefined opcode with no IDT is a triple fault. */
	.globl payload_long_ud, payload_long_ud_end
payload_long_ud:
	ud2
payload_long_ud_end:

/* A stand-in for a kernel's startup_64: entered per the 64-bit boot protocol
 * with rsi at the zero page. It prints the command line on COM1, reports the
 * e820 entry count and initrd size and the RSDP address on port 0xe9, then
 * powers off through ACPI PM1a_CNT (S5). */
	.globl payload_fake_kernel, payload_fake_kernel_end
payload_fake_kernel:
	mov 0x228(%rsi), %ebx          /* cmd_line_ptr */
1:	movzbl (%rbx), %eax
	test %al, %al
	jz 2f
	mov $0x3f8, %dx
	out %al, %dx
	inc %rbx
	jmp 1b
2:	movzbl 0x1e8(%rsi), %eax       /* e820_entries */
	mov $0xe9, %dx
	out %eax, %dx
	mov 0x21c(%rsi), %eax          /* ramdisk_size */
	out %eax, %dx
	mov 0x70(%rsi), %eax           /* acpi_rsdp_addr */
	out %eax, %dx
	mov $0x604, %dx
	mov $((5 << 10) | (1 << 13)), %ax
	out %ax, %dx
3:	hlt
	jmp 3b
payload_fake_kernel_end:

/* The tiny guest of the deep end-to-end case (tests/tiny-guest.c makes it a
 * bzImage file): like payload_fake_kernel it prints its command line and a
 * newline on COM1 and powers off through ACPI, but reports nothing else, so
 * that a VMM needs only its own devices to run it. */
	.globl payload_tiny_guest, payload_tiny_guest_end
payload_tiny_guest:
	mov 0x228(%rsi), %ebx          /* cmd_line_ptr */
	mov $0x3f8, %dx
1:	movzbl (%rbx), %eax
	test %al, %al
	jz 2f
	out %al, %dx
	inc %rbx
	jmp 1b
2:	mov $0x0a, %al
	out %al, %dx
	mov $0x604, %dx
	mov $((5 << 10) | (1 << 13)), %ax
	out %ax, %dx
3:	hlt
	jmp 3b
payload_tiny_guest_end:

/* 64-bit: report 1, 2, 3 on the port, then power off through ACPI. Its
 * state can be saved after any report and resumed in another VM. */
	.globl payload_long_count, payload_long_count_end
payload_long_count:
	xor %eax, %eax
	mov $0xe9, %dx
1:	inc %eax
	out %eax, %dx
	cmp $3, %eax
	jne 1b
	mov $0x604, %dx
	mov $((5 << 10) | (1 << 13)), %ax
	out %ax, %dx
	hlt
payload_long_count_end:

/* 64-bit: a counter in guest memory at 0x8000, incremented and reported
 * on the port for ever: it goes on from where it was only if memory and
 * registers both come back. */
	.globl payload_long_memcount, payload_long_memcount_end
payload_long_memcount:
	mov $0xe9, %dx
1:	incq 0x8000
	mov 0x8000, %eax
	out %eax, %dx
	jmp 1b
payload_long_memcount_end:

/* 64-bit: passes over 512 pages from 1 MiB, writing the pass number (kept
 * at 0x8000) into the first quadword of each, and reporting each finished
 * pass on the port: memory dirtied as fast as the guest runs, whose every
 * page must arrive in a migration, as its pass number tells. */
	.globl payload_long_memwalk, payload_long_memwalk_end
payload_long_memwalk:
	mov $0xe9, %dx
1:	incq 0x8000
	mov 0x8000, %rax
	mov $0x100000, %rbx
2:	mov %rax, (%rbx)
	add $4096, %rbx
	cmp $0x300000, %rbx
	jb 2b
	out %eax, %dx
	jmp 1b
payload_long_memwalk_end:

/* 64-bit: a reboot through the FADT reset register (0xcf9 <- 6). */
	.globl payload_long_reset, payload_long_reset_end
payload_long_reset:
	mov $0xcf9, %dx
	mov $6, %al
	out %al, %dx
1:	jmp 1b
payload_long_reset_end:

/* 64-bit: a reboot through the keyboard controller (0x64 <- 0xfe). */
	.globl payload_long_kbd_reset, payload_long_kbd_reset_end
payload_long_kbd_reset:
	mov $0xfe, %al
	out %al, $0x64
1:	jmp 1b
payload_long_kbd_reset_end:

/* 64-bit: report 1, 2, 3, ... on the port for ever. */
	.globl payload_long_forever, payload_long_forever_end
payload_long_forever:
	xor %eax, %eax
	mov $0xe9, %dx
1:	inc %eax
	out %eax, %dx
	jmp 1b
payload_long_forever_end:

	.section .note.GNU-stack,"",@progbits
