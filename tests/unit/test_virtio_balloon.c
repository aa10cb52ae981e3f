/* Tier 1: virtio-balloon behind the virtio-mmio transport, driven through the
 * registers as a guest driver does, over a fake guest memory that is private
 * anonymous memory like the VMM's, so a released page reads back as zeroes.
 * Also the dynamic memory policy on made-up figures, and a robustness run of
 * random PFNs and config writes. */
#include "virtio_fixture.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

HARNESS_DEFINE;

#define BUF_GPA   (MEM_GPA + 0x10000)   /* PFN arrays and the stats buffer */
#define PAGE_GPA  (MEM_GPA + 0x40000)   /* pages to give away */
#define PFN(gpa)  ((uint32_t)((gpa) >> 12))

#define MIB (1ULL << 20)
#define BMAX (256 * MIB)
#define BMIN (64 * MIB)
#define BSTART (128 * MIB)

#define F_STATS_VQ 1
#define F_DEFLATE_ON_OOM 2
#define Q_INFLATE 0
#define Q_DEFLATE 1
#define Q_STATS 2

/* A balloon of [BMIN, BMAX] starting at BSTART, its driver up with every
 * queue it negotiated ready. */
static void fx_setup(uint64_t want)
{
	struct virtio_balloon_opts o = { .policy = { .min = BMIN, .max = BMAX }, .startup = BSTART };
	struct virtio_dev *dev;
	uint64_t accept;

	fx_release();
	fx_map();
	CHECK_EQ(virtio_balloon_create(&dev, &o), 0);
	fx_attach(dev, 22);
	accept = fx_features(want);
	for (unsigned int q = 0; q < 3; q++) {
		if (q == Q_STATS && !(accept & VIRTIO_BIT(F_STATS_VQ)))
			break;
		fx_queue(q);
	}
	fx_driver_ok();
}

/* Puts one buffer on queue q and kicks it. */
static void put(unsigned int q, uint64_t gpa, uint32_t len, uint16_t flags)
{
	uint16_t head = fx.avail_idx[q] % QSZ;

	fx_desc(q, head, gpa, len, flags, 0);
	fx_post(q, head);
}

static void inflate(const uint32_t *pfns, unsigned int n)
{
	memcpy(host(BUF_GPA), pfns, n * 4);
	put(Q_INFLATE, BUF_GPA, n * 4, 0);
	if (!fx_wait_used(Q_INFLATE, 5000, NULL))
		FAILF("inflate request not returned within 5 s");
}

static struct virtio_balloon_info info(void)
{
	struct virtio_balloon_info i;

	virtio_balloon_get_info(fx.dev, &i);
	return i;
}

static void test_probe_and_config(void)
{
	uint32_t v;
	uint16_t h;

	fx_setup(~0ULL);
	CHECK_EQ(rd(R_DEVICE_ID), 5);
	CHECK(fx.features & VIRTIO_BIT(VIRTIO_F_VERSION_1));
	CHECK(fx.features & VIRTIO_BIT(F_STATS_VQ));
	CHECK(fx.features & VIRTIO_BIT(F_DEFLATE_ON_OOM));
	CHECK(!(fx.features & VIRTIO_BIT(0)));                  /* no MUST_TELL_HOST */
	/* The target leaves the guest its startup memory. */
	CHECK_EQ(rd(R_CONFIG), (BMAX - BSTART) / 4096);
	CHECK_EQ(rd(R_CONFIG + 4), 0);
	CHECK_EQ(info().target, BSTART);
	CHECK_EQ(info().assigned, BMAX);

	/* num_pages is the device's: a guest's write changes nothing. */
	wr(R_CONFIG, 5);
	CHECK_EQ(rd(R_CONFIG), (BMAX - BSTART) / 4096);
	v = 0;
	virtio_mmio_io(fx.m, R_CONFIG, &v, 4, true);
	CHECK_EQ(rd(R_CONFIG), (BMAX - BSTART) / 4096);
	/* An 8-byte write over both fields: refused whole. */
	{
		uint64_t both = 0x0000000100000001ULL;

		virtio_mmio_io(fx.m, R_CONFIG, &both, 8, true);
		CHECK_EQ(rd(R_CONFIG), (BMAX - BSTART) / 4096);
		CHECK_EQ(rd(R_CONFIG + 4), 0);
	}
	/* actual is the driver's, written whole. */
	wr(R_CONFIG + 4, 1000);
	CHECK_EQ(rd(R_CONFIG + 4), 1000);
	CHECK_EQ(info().assigned, BMAX - 1000 * 4096ULL);
	h = 7;
	virtio_mmio_io(fx.m, R_CONFIG + 4, &h, 2, true);        /* half of it: ignored */
	CHECK_EQ(rd(R_CONFIG + 4), 1000);
	/* Past the end of the config space: zero, writes ignored. */
	wr(R_CONFIG + 8, 1);
	CHECK_EQ(rd(R_CONFIG + 8), 0);
	virtio_mmio_io(fx.m, R_CONFIG + 6, &v, 4, false);
	CHECK_EQ(v, 0);
	/* A balloon larger than the guest's RAM reads as nothing assigned. */
	wr(R_CONFIG + 4, 0xffffffff);
	CHECK_EQ(info().assigned, 0);
	CHECK(!virtio_dev_is_broken(fx.dev));
	fx_release();
}

static void test_inflate_releases_pages(void)
{
	uint32_t pfns[] = { PFN(PAGE_GPA), PFN(PAGE_GPA) + 1, PFN(PAGE_GPA) + 3 };
	uint8_t *p;

	fx_setup(~0ULL);
	p = host(PAGE_GPA);
	memset(p, 0xa5, 5 * 4096);
	inflate(pfns, 3);
	CHECK_EQ(fx_used(Q_INFLATE)->ring[0].id, 0);
	CHECK_EQ(info().released_pages, 3);
	CHECK_EQ(info().refused_pages, 0);
	/* Given back: zeroes on the next touch. The page between stays. */
	CHECK_EQ(p[0], 0);
	CHECK_EQ(p[4095], 0);
	CHECK_EQ(p[4096 + 100], 0);
	CHECK_EQ(p[2 * 4096], 0xa5);
	CHECK_EQ(p[3 * 4096 + 7], 0);
	CHECK_EQ(p[4 * 4096], 0xa5);
	/* Deflate: counted, memory left alone. */
	p[0] = 0x11;
	memcpy(host(BUF_GPA), pfns, 8);
	put(Q_DEFLATE, BUF_GPA, 8, 0);
	CHECK(fx_wait_used(Q_DEFLATE, 5000, NULL));
	CHECK_EQ(info().returned_pages, 2);
	CHECK_EQ(p[0], 0x11);
	fx_release();
}

static void test_inflate_bad_pfns(void)
{
	/* Below guest RAM, above it, the very last, and a run that leaves RAM
	 * after its first page. */
	uint32_t pfns[] = { 0, 0x50, PFN(MEM_GPA + MEM_SIZE), 0xffffffff,
			    PFN(MEM_GPA + MEM_SIZE) - 1, PFN(MEM_GPA + MEM_SIZE), PFN(MEM_GPA + MEM_SIZE) + 1 };
	uint8_t *last;

	fx_setup(~0ULL);
	last = host(MEM_GPA + MEM_SIZE - 4096);
	memset(last, 0x5a, 4096);
	inflate(pfns, ARRAY_SIZE(pfns));
	CHECK_EQ(info().refused_pages, 6);
	CHECK_EQ(info().released_pages, 1);
	CHECK_EQ(last[0], 0);
	CHECK(!virtio_dev_is_broken(fx.dev));
	/* A request that is not a whole number of PFNs: the tail is dropped. */
	memset(last, 0x5a, 4096);
	pfns[0] = PFN(MEM_GPA + MEM_SIZE) - 1;
	memcpy(host(BUF_GPA), pfns, 4);
	put(Q_INFLATE, BUF_GPA, 7, 0);
	CHECK(fx_wait_used(Q_INFLATE, 5000, NULL));
	CHECK_EQ(info().released_pages, 2);
	CHECK_EQ(last[0], 0);
	/* A writable buffer carries no PFNs. */
	put(Q_INFLATE, BUF_GPA, 8, VIRTQ_DESC_F_WRITE);
	CHECK(fx_wait_used(Q_INFLATE, 5000, NULL));
	CHECK_EQ(info().released_pages, 2);
	CHECK(!virtio_dev_is_broken(fx.dev));
	fx_release();
}

/* One stats record: le16 tag, le64 value, packed. */
static void stat_rec(uint8_t *p, uint16_t tag, uint64_t val)
{
	memcpy(p, &tag, 2);
	memcpy(p + 2, &val, 8);
}

static void test_stats_drive_target(void)
{
	uint8_t *s;
	uint32_t gen;

	fx_setup(~0ULL);
	s = host(BUF_GPA + 0x800);
	/* The guest reports that it has settled at the startup target... */
	wr(R_CONFIG + 4, (BMAX - BSTART) / 4096);
	/* ...and that almost nothing of it is available. */
	stat_rec(s, 4, 2 * MIB);        /* MEMFREE */
	stat_rec(s + 10, 5, BSTART);    /* MEMTOT */
	stat_rec(s + 20, 6, 4 * MIB);   /* AVAIL */
	stat_rec(s + 30, 99, 12345);    /* unknown: skipped */
	gen = rd(R_CONFIG_GEN);
	wr(R_ACK, rd(R_ISR));
	put(Q_STATS, BUF_GPA + 0x800, 40, 0);
	/* The next tick (within a second) uses them and asks for fresh ones. */
	if (!fx_wait_used(Q_STATS, 3000, NULL))
		FAILF("the stats buffer did not come back within 3 s");
	CHECK(info().stats.has_avail);
	CHECK_EQ(info().stats.avail, 4 * MIB);
	CHECK_EQ(info().stats.memtot, BSTART);
	CHECK(info().target > BSTART);
	CHECK(info().target <= BMAX);
	CHECK(rd(R_CONFIG) < (BMAX - BSTART) / 4096);
	CHECK(rd(R_CONFIG_GEN) != gen);
	CHECK(rd(R_ISR) & VIRTIO_ISR_CONFIG);

	/* An explicit target holds against the policy, clamped to the bounds. */
	CHECK_EQ(virtio_balloon_set_target(fx.dev, 1), BMIN);
	CHECK_EQ(rd(R_CONFIG), (BMAX - BMIN) / 4096);
	CHECK_EQ(virtio_balloon_set_target(fx.dev, 1ULL << 40), BMAX);
	CHECK_EQ(rd(R_CONFIG), 0);
	CHECK_EQ(virtio_balloon_set_target(fx.dev, 100 * MIB), 100 * MIB);
	CHECK_EQ(info().target, 100 * MIB);
	put(Q_STATS, BUF_GPA + 0x800, 40, 0);
	CHECK(fx_wait_used(Q_STATS, 3000, NULL));
	CHECK_EQ(info().target, 100 * MIB);

	/* A reset forgets the driver's balloon and its buffer. */
	wr(R_STATUS, 0);
	CHECK_EQ(rd(R_CONFIG + 4), 0);
	CHECK_EQ(info().stats.valid, false);
	fx_release();
}

static void test_policy(void)
{
	struct virtio_balloon_policy p = { .min = BMIN, .max = BMAX, .step = 16 * MIB,
					   .low_pct = 20, .high_pct = 50 };
	struct virtio_balloon_stats low = { .valid = true, .has_avail = true, .avail = 10 * MIB, .memtot = 128 * MIB };
	struct virtio_balloon_stats mid = { .valid = true, .has_avail = true, .avail = 40 * MIB, .memtot = 128 * MIB };
	struct virtio_balloon_stats high = { .valid = true, .has_avail = true, .avail = 100 * MIB, .memtot = 128 * MIB };
	struct virtio_balloon_stats none = { 0 };
	uint64_t t;

	/* Short of memory: two steps up, from the target or what it has. */
	CHECK_EQ(virtio_balloon_policy_next(&p, 128 * MIB, 128 * MIB, &low), 160 * MIB);
	CHECK_EQ(virtio_balloon_policy_next(&p, 120 * MIB, 128 * MIB, &low), 160 * MIB);
	CHECK_EQ(virtio_balloon_policy_next(&p, 250 * MIB, 250 * MIB, &low), BMAX);
	CHECK_EQ(virtio_balloon_policy_next(&p, BMAX, BMAX, &low), BMAX);
	/* In the band: unchanged. */
	CHECK_EQ(virtio_balloon_policy_next(&p, 128 * MIB, 128 * MIB, &mid), 128 * MIB);
	/* Plenty: a step down once the balloon has caught up, never below min. */
	CHECK_EQ(virtio_balloon_policy_next(&p, 128 * MIB, 128 * MIB, &high), 112 * MIB);
	CHECK_EQ(virtio_balloon_policy_next(&p, 128 * MIB, 140 * MIB, &high), 128 * MIB);
	CHECK_EQ(virtio_balloon_policy_next(&p, 70 * MIB, 70 * MIB, &(struct virtio_balloon_stats){
		.valid = true, .has_avail = true, .avail = 60 * MIB }), BMIN);
	CHECK_EQ(virtio_balloon_policy_next(&p, BMIN, BMIN, &high), BMIN);
	/* No figures, or no memory: nothing to go on. */
	CHECK_EQ(virtio_balloon_policy_next(&p, 128 * MIB, 128 * MIB, &none), 128 * MIB);
	CHECK_EQ(virtio_balloon_policy_next(&p, 128 * MIB, 0, &high), 128 * MIB);
	/* MEMFREE stands in for AVAIL in an older guest. */
	CHECK_EQ(virtio_balloon_policy_next(&p, 128 * MIB, 128 * MIB, &(struct virtio_balloon_stats){
		.valid = true, .memfree = 5 * MIB }), 160 * MIB);
	/* A step down stops short of the band's middle: 60 of 100 available
	 * keeps 35, so only 25 MiB (under the 32 MiB step) go. */
	p.step = 32 * MIB;
	CHECK_EQ(virtio_balloon_policy_next(&p, 100 * MIB, 100 * MIB, &(struct virtio_balloon_stats){
		.valid = true, .has_avail = true, .avail = 60 * MIB, .memtot = 100 * MIB }), 75 * MIB);
	/* Any figures at all, however wild, keep it within the bounds. */
	srand(7);
	t = BSTART;
	for (int i = 0; i < 10000; i++) {
		struct virtio_balloon_stats s = {
			.valid = rand() % 8 != 0, .has_avail = rand() & 1,
			.avail = (uint64_t)rand() * 4096 * (uint64_t)(rand() % 3),
			.memfree = (uint64_t)rand() * 4096, .memtot = (uint64_t)(rand() % 2) * rand() * 4096,
		};
		uint64_t assigned = rand() % 4 ? t : (uint64_t)(rand() % 300) * MIB;

		t = virtio_balloon_policy_next(&p, t, assigned, &s);
		if (t < BMIN || t > BMAX)
			FAILF("step %d: target %llu left [%llu, %llu]", i, (unsigned long long)t,
			      (unsigned long long)BMIN, (unsigned long long)BMAX);
	}
}

static void test_create_errors(void)
{
	struct virtio_balloon_opts o = { .policy = { .min = BMIN, .max = BMAX }, .startup = BSTART };
	struct virtio_dev *d;

	o.startup = BMIN - MIB;
	CHECK_EQ(virtio_balloon_create(&d, &o), -EINVAL);
	CHECK(!d);
	o.startup = BMAX + MIB;
	CHECK_EQ(virtio_balloon_create(&d, &o), -EINVAL);
	o.startup = BSTART;
	o.policy.max = BMAX + 100;
	CHECK_EQ(virtio_balloon_create(&d, &o), -EINVAL);
	o.policy.max = 1ULL << 46;                              /* PFNs beyond 32 bits */
	CHECK_EQ(virtio_balloon_create(&d, &o), -EINVAL);
	o.policy = (struct virtio_balloon_policy){ .min = BMIN, .max = BMAX, .low_pct = 60, .high_pct = 50 };
	CHECK_EQ(virtio_balloon_create(&d, &o), -EINVAL);
	o.policy.low_pct = 0;
	o.policy.high_pct = 0;
	CHECK_EQ(virtio_balloon_create(&d, &o), 0);
	virtio_dev_destroy(d);
}

/* Random PFNs, request sizes and config accesses: the device answers every
 * request, never breaks, and touches only guest RAM (ASan watches the rest). */
static void test_random_requests(void)
{
	uint32_t pfns[64];

	fx_setup(~0ULL);
	srand(1234);
	for (int round = 0; round < 200; round++) {
		unsigned int n = (unsigned int)(rand() % 64) + 1;
		unsigned int q = (unsigned int)(rand() % 2);
		uint64_t cfg = (uint64_t)(rand() % 16);
		uint64_t v = ((uint64_t)rand() << 32) | (uint64_t)rand();
		uint32_t lens[] = { 1, 2, 4, 8 };

		for (unsigned int i = 0; i < n; i++) {
			switch (rand() % 4) {
			case 0: pfns[i] = (uint32_t)rand(); break;
			case 1: pfns[i] = PFN(MEM_GPA) + (uint32_t)(rand() % 0x100); break;
			case 2: pfns[i] = PFN(MEM_GPA + MEM_SIZE) + (uint32_t)(rand() % 4); break;
			default: pfns[i] = 0xffffffffu - (uint32_t)(rand() % 4); break;
			}
			/* Never the rings or the PFN buffer themselves. */
			if (pfns[i] >= PFN(MEM_GPA) && pfns[i] < PFN(PAGE_GPA))
				pfns[i] = PFN(PAGE_GPA) + (pfns[i] & 0x3f);
		}
		memcpy(host(BUF_GPA), pfns, n * 4);
		put(q, BUF_GPA, n * 4 - (uint32_t)(rand() % 4), 0);
		if (!fx_wait_used(q, 5000, NULL))
			FAILF("round %d: request not returned", round);
		virtio_mmio_io(fx.m, R_CONFIG + cfg, &v, lens[rand() % 4], rand() & 1);
	}
	CHECK(!virtio_dev_is_broken(fx.dev));
	CHECK_EQ(rd(R_CONFIG), (BMAX - BSTART) / 4096);
	CHECK(info().released_pages > 0);
	CHECK(info().refused_pages > 0);
	fx_release();
}

/* A driver without the stats queue: the balloon still works, target fixed. */
static void test_no_stats_queue(void)
{
	uint32_t pfn = PFN(PAGE_GPA);

	fx_setup(0);
	wr(R_QUEUE_SEL, Q_STATS);
	CHECK_EQ(rd(R_QUEUE_READY), 0);
	*(uint8_t *)host(PAGE_GPA) = 1;
	inflate(&pfn, 1);
	CHECK_EQ(*(uint8_t *)host(PAGE_GPA), 0);
	CHECK_EQ(info().target, BSTART);
	fx_release();
}

int main(void)
{
	RUN(test_probe_and_config);
	RUN(test_inflate_releases_pages);
	RUN(test_inflate_bad_pfns);
	RUN(test_stats_drive_target);
	RUN(test_policy);
	RUN(test_create_errors);
	RUN(test_random_requests);
	RUN(test_no_stats_queue);
	fx_release();
	return HARNESS_END();
}
