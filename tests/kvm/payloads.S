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
 * that a VMM needs only its own devices to run it. A command line that
 * starts with "r" resets the machine through 0xcf9 instead (the restart
 * stress case); one that starts with "x" runs an exit loop (below). */
	.globl payload_tiny_guest, payload_tiny_guest_end
payload_tiny_guest:
	mov 0x228(%rsi), %ebx          /* cmd_line_ptr */
	mov %ebx, %edi
	cmpb $'x', (%rdi)              /* "xoN", "xcN": an exit loop, below */
	je 10f
	mov $0x3f8, %dx
1:	movzbl (%rbx), %eax
	test %al, %al
	jz 2f
	out %al, %dx
	inc %rbx
	jmp 1b
2:	mov $0x0a, %al
	out %al, %dx
	cmpb $'r', (%rdi)              /* a command line "reboot...": reset instead */
	jne 4f
	mov $0xcf9, %dx
	mov $6, %al
	out %al, %dx
5:	hlt
	jmp 5b
4:	mov $0x604, %dx
	mov $((5 << 10) | (1 << 13)), %ax
	out %ax, %dx
3:	hlt
	jmp 3b
	/* The exit loop, for bench/nested: N (decimal) writes to port 0x80
	 * ("xoN") or CPUID leaf 0 ("xcN"), nothing else, then power off: the
	 * payload bench/kvmloop.c times under a bare KVM_RUN loop, here under
	 * the whole VMM. */
10:	movzbl 1(%rdi), %r8d
	lea 2(%rdi), %rbx
	xor %r9d, %r9d
11:	movzbl (%rbx), %eax
	sub $'0', %eax
	cmp $9, %eax
	ja 12f
	imul $10, %r9, %r9
	add %rax, %r9
	inc %rbx
	jmp 11b
12:	cmp $'c', %r8b
	je 14f
	mov $0x80, %dx
13:	test %r9, %r9
	jz 4b
	out %al, %dx
	dec %r9
	jmp 13b
14:	test %r9, %r9
	jz 4b
	xor %eax, %eax
	cpuid
	dec %r9
	jmp 14b
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

/* 64-bit: a guest that attacks its VMM, as in tests/kvm/test_hostile.c.
 * The CMOS clock: month 0 (a year back) and year and century 0xff (a
 * century and more on), a thousand times each, then the century and year
 * it shows, reported as one word. The serial port: 4 KiB in string I/O.
 * The virtio-rng in the first virtio-mmio window, four times: set up with
 * INDIRECT_DESC and a queue of 8, a chain whose one descriptor names an
 * indirect table of HOSTILE_TABLE bytes whose first entry is empty and
 * links to itself, a kick, and the device status reported. Then a reset,
 * a good 64-byte request, and the used entry's length and the used index
 * reported. Powers off. Guest memory: rings at 2 MiB, the table at 4 MiB. */
#define HOSTILE_TABLE   0x3c000000
#define VQ_DESC         0x200000
#define VQ_AVAIL        0x201000
#define VQ_USED         0x202000
#define VQ_BUF          0x203000
#define VQ_TABLE        0x400000

.macro vq_setup
	movl $0, 0x70(%rbx)            /* status 0: reset */
	mov $VQ_DESC, %rdi
	xor %eax, %eax
	mov $(0x3000 / 8), %ecx
	rep stosq                      /* zeroed rings */
	movl $1, 0x70(%rbx)            /* ACKNOWLEDGE */
	movl $3, 0x70(%rbx)            /* DRIVER */
	movl $0, 0x24(%rbx)
	movl $(1 << 28), 0x20(%rbx)    /* INDIRECT_DESC */
	movl $1, 0x24(%rbx)
	movl $1, 0x20(%rbx)            /* VERSION_1 */
	movl $0xb, 0x70(%rbx)          /* FEATURES_OK */
	movl $0, 0x30(%rbx)            /* queue 0 */
	movl $8, 0x38(%rbx)
	movl $VQ_DESC, 0x80(%rbx)
	movl $0, 0x84(%rbx)
	movl $VQ_AVAIL, 0x90(%rbx)
	movl $0, 0x94(%rbx)
	movl $VQ_USED, 0xa0(%rbx)
	movl $0, 0xa4(%rbx)
	movl $1, 0x44(%rbx)            /* ready */
	movl $0xf, 0x70(%rbx)          /* DRIVER_OK */
.endm

	.globl payload_long_hostile, payload_long_hostile_end
payload_long_hostile:
	mov $1000, %ecx
1:	mov $0x08, %al
	out %al, $0x70
	xor %al, %al
	out %al, $0x71                 /* month 0 */
	mov $0x09, %al
	out %al, $0x70
	mov $0xff, %al
	out %al, $0x71                 /* year 0xff */
	mov $0x32, %al
	out %al, $0x70
	mov $0xff, %al
	out %al, $0x71                 /* century 0xff */
	dec %ecx
	jnz 1b
	mov $0x32, %al
	out %al, $0x70
	in $0x71, %al
	movzbl %al, %ebx
	shl $8, %ebx
	mov $0x09, %al
	out %al, $0x70
	in $0x71, %al
	mov %al, %bl
	mov %ebx, %eax
	mov $0xe9, %dx
	out %eax, %dx                  /* century << 8 | year */

	mov $0x3f8, %dx
	mov $VQ_TABLE, %rsi
	mov $0x1000, %ecx
	rep outsb                      /* 4 KiB on COM1 */

	movabs $0xd0000000, %rbx
	mov $4, %r12d
2:	vq_setup
	movq $VQ_TABLE, VQ_DESC
	movl $HOSTILE_TABLE, VQ_DESC + 8
	movw $4, VQ_DESC + 12          /* INDIRECT */
	movq $0, VQ_TABLE
	movl $0, VQ_TABLE + 8          /* empty ... */
	movw $1, VQ_TABLE + 12         /* NEXT ... */
	movw $0, VQ_TABLE + 14         /* ... to itself */
	movw $0, VQ_AVAIL + 4
	movw $1, VQ_AVAIL + 2
	movl $0, 0x50(%rbx)            /* kick */
	mov 0x70(%rbx), %eax
	mov $0xe9, %dx
	out %eax, %dx                  /* the status: DEVICE_NEEDS_RESET */
	dec %r12d
	jnz 2b

	vq_setup
	movq $VQ_BUF, VQ_DESC
	movl $64, VQ_DESC + 8
	movw $2, VQ_DESC + 12          /* WRITE */
	movw $0, VQ_AVAIL + 4
	movw $1, VQ_AVAIL + 2
	movl $0, 0x50(%rbx)
	mov $0xe9, %dx
	mov VQ_USED + 8, %eax
	out %eax, %dx                  /* the used entry's length */
	movzwl VQ_USED + 2, %eax
	out %eax, %dx                  /* the used index */
	mov $0x604, %dx
	mov $((5 << 10) | (1 << 13)), %ax
	out %ax, %dx
3:	hlt
	jmp 3b
payload_long_hostile_end:

	.section .note.GNU-stack,"",@progbits
