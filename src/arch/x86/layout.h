/* Guest physical memory layout of an x86 nestvm machine: every fixed address
 * the boot code, ACPI tables and devices agree on lives here and nowhere else. */
#ifndef NESTVM_ARCH_X86_LAYOUT_H
#define NESTVM_ARCH_X86_LAYOUT_H

/* Below 1 MiB: boot structures the kernel reads once. */
#define LAYOUT_GDT_ADDR        0x00000500ULL
#define LAYOUT_ZERO_PAGE_ADDR  0x00007000ULL  /* struct boot_params */
#define LAYOUT_BOOT_STACK_TOP  0x00008ff0ULL
#define LAYOUT_PML4_ADDR       0x00009000ULL
#define LAYOUT_PDPT_ADDR       0x0000a000ULL
#define LAYOUT_PD_ADDR         0x0000b000ULL  /* 4 pages: identity map of 4 GiB */
#define LAYOUT_PD_PAGES        4
#define LAYOUT_CMDLINE_ADDR    0x00020000ULL
#define LAYOUT_CMDLINE_MAX     0x00010000ULL
#define LAYOUT_EBDA_ADDR       0x0009fc00ULL  /* end of conventional RAM */
#define LAYOUT_MPTABLE_ADDR    LAYOUT_EBDA_ADDR /* the last KiB of base memory, which Linux scans */
#define LAYOUT_MPTABLE_SIZE    (LAYOUT_ACPI_ADDR - LAYOUT_MPTABLE_ADDR)
#define LAYOUT_ACPI_ADDR       0x000e0000ULL  /* RSDP first: the BIOS area Linux scans */
#define LAYOUT_ACPI_SIZE       0x00020000ULL
#define LAYOUT_HIGH_MEM_ADDR   0x00100000ULL  /* the protected-mode kernel loads here */

/* 32-bit hole: RAM stops at 3 GiB and resumes at 4 GiB. */
#define LAYOUT_MMIO_HOLE_ADDR  0xc0000000ULL
#define LAYOUT_MMIO_HOLE_END   0x100000000ULL
#define LAYOUT_VIRTIO_MMIO_ADDR 0xd0000000ULL /* virtio-mmio windows, 4 KiB apart */
#define LAYOUT_VIRTIO_MMIO_SIZE 0x1000ULL
#define LAYOUT_IOAPIC_ADDR     0xfec00000ULL
#define LAYOUT_LAPIC_ADDR      0xfee00000ULL
#define LAYOUT_KVM_IDMAP_ADDR  0xfffbc000ULL  /* KVM_SET_IDENTITY_MAP_ADDR: one page */
#define LAYOUT_KVM_TSS_ADDR    0xfffbd000ULL  /* KVM_SET_TSS_ADDR: three pages */

/* Port I/O. */
#define LAYOUT_COM1_PORT       0x3f8
#define LAYOUT_COM1_IRQ        4
#define LAYOUT_I8042_PORT      0x60           /* data 0x60, command/status 0x64 */
#define LAYOUT_I8042_IRQ       1
#define LAYOUT_RTC_PORT        0x70
#define LAYOUT_RTC_IRQ         8
#define LAYOUT_PM1A_EVT_PORT   0x600          /* PM1 status (2) + enable (2) */
#define LAYOUT_PM1A_EVT_LEN    4
#define LAYOUT_PM1A_CNT_PORT   0x604
#define LAYOUT_PM1A_CNT_LEN    2
#define LAYOUT_RESET_PORT      0xcf9          /* FADT reset register */
#define LAYOUT_RESET_VALUE     0x06
#define LAYOUT_SCI_IRQ         9
#define LAYOUT_ACPI_SLP_TYP_S5 5              /* \_S5 value the DSDT gives */

/* Legacy interrupts: GSIs 0-15 are ISA IRQs; 16-23 are free for devices. */
#define LAYOUT_IOAPIC_PINS     24
#define LAYOUT_FIRST_DEVICE_GSI 16

#endif
