/* A minimal bzImage for tests: a boot sector and setup header that parse
 * (protocol 2.15, 64-bit entry) around the given protected-mode bytes. */
#ifndef NESTVM_TESTS_FAKE_BZIMAGE_H
#define NESTVM_TESTS_FAKE_BZIMAGE_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define FAKE_BZIMAGE_SETUP (8 * 512)

/* Returns a malloc'd image: setup, then 0x200 bytes of padding and code at
 * the 64-bit entry (startup_64), or kernel_size bytes of 0x90 if code is
 * NULL, padded to 16 bytes as syssize counts them. init_size leaves room
 * for the kernel and 64 KiB more. */
static inline uint8_t *fake_bzimage(const uint8_t *code, size_t code_len, size_t kernel_size,
				    size_t *len)
{
	size_t kernel = ((code ? 0x200 + code_len : kernel_size) + 15) & ~(size_t)15;
	uint8_t *img = calloc(1, FAKE_BZIMAGE_SETUP + kernel);
	uint32_t v;

	if (!img)
		return NULL;
	img[0x1f1] = 7;                                  /* setup_sects */
	v = (uint32_t)(kernel / 16);
	memcpy(img + 0x1f4, &v, 4);                      /* syssize */
	img[0x1fe] = 0x55;
	img[0x1ff] = 0xaa;
	img[0x201] = 0x6a;                               /* header ends at 0x26c */
	memcpy(img + 0x202, "HdrS", 4);
	img[0x206] = 0x0f;
	img[0x207] = 0x02;                               /* protocol 2.15 */
	img[0x211] = 0x01;                               /* LOADED_HIGH */
	img[0x236] = 0x01;                               /* XLF_KERNEL_64 */
	v = 0x37ffffff;
	memcpy(img + 0x22c, &v, 4);                      /* initrd_addr_max */
	v = 255;
	memcpy(img + 0x238, &v, 4);                      /* cmdline_size */
	v = (uint32_t)kernel + 0x10000;
	memcpy(img + 0x260, &v, 4);                      /* init_size */
	if (code)
		memcpy(img + FAKE_BZIMAGE_SETUP + 0x200, code, code_len);
	else
		memset(img + FAKE_BZIMAGE_SETUP, 0x90, kernel);
	*len = FAKE_BZIMAGE_SETUP + kernel;
	return img;
}

#endif
