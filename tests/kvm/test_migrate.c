/* Tier 2: a machine that dirties 512 pages over and over, migrated live
 * over a socket to a second machine in this process: every page arrives
 * (each holds its pass number, one pass at most behind the next), the
 * second machine goes on counting passes from where the first stopped, and
 * the first is left paused. A destination that refuses makes the source
 * hear why. */
#include "harness.h"
#include "migrate.h"
#include "vm.h"
#include "vmstate.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

HARNESS_DEFINE;

extern const uint8_t payload_long_memwalk[], payload_long_memwalk_end[];

struct ticker {
	_Atomic uint64_t last, first, n;
};

static void ticker_io(void *opaque, uint64_t offset, void *data, uint32_t len, bool is_write)
{
	struct ticker *t = opaque;
	uint64_t v = 0, zero = 0;

	(void)offset;
	if (!is_write)
		return;
	memcpy(&v, data, len > 8 ? 8 : len);
	atomic_compare_exchange_strong(&t->first, &zero, v);
	atomic_store(&t->last, v);
	atomic_fetch_add(&t->n, 1);
}

static void *run_thread(void *arg)
{
	return (void *)(uintptr_t)vm_run(arg);
}

static struct vm *make_vm(bool restore, struct ticker *t)
{
	static struct vm_payload pl;
	struct vm_config cfg = {
		.mem_size = 32 << 20, .ncpus = 1, .console_out = -1, .rng = true,
		.payload = restore ? NULL : &pl, .restore = restore,
	};
	struct vm *vm = calloc(1, sizeof(*vm));

	pl = (struct vm_payload){ payload_long_memwalk,
		(size_t)(payload_long_memwalk_end - payload_long_memwalk), 0x1000, 0x1000, false };
	CHECK(vm);
	if (vm_create(vm, &cfg) < 0)
		FAILF("vm_create: %s", vm->err);
	CHECK_EQ(bus_register(&vm->pio, 0xe9, 4, "tick", ticker_io, t), 0);
	return vm;
}

struct receiver {
	int fd;
	struct vm *vm;
	struct ticker *t;
	bool refuse;
	int r;
	char err[512];
};

static void *receive_thread(void *arg)
{
	struct receiver *rc = arg;
	struct vmstate_load l;

	rc->r = vmstate_load_head(&l, rc->fd, rc->err, sizeof(rc->err));
	if (rc->r == 0) {
		rc->vm = make_vm(true, rc->t);
		rc->r = rc->refuse ? -EINVAL : vmstate_load_rest(&l, rc->vm, rc->err, sizeof(rc->err));
		if (rc->refuse)
			snprintf(rc->err, sizeof(rc->err), "no room here for this VM");
		vmstate_load_free(&l);
	}
	migrate_send_ack(rc->fd, rc->r < 0 ? rc->err : NULL);
	/* A destination that gives up reads no further. */
	if (rc->r < 0)
		shutdown(rc->fd, SHUT_RDWR);
	return NULL;
}

static void need_kvm(void)
{
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);

	if (fd < 0)
		SKIP("/dev/kvm unavailable here: %s", strerror(errno));
	close(fd);
}

static uint64_t wait_for(struct ticker *t, uint64_t at_least)
{
	for (int i = 0; i < 10000 && atomic_load(&t->last) < at_least; i++)
		usleep(1000);
	return atomic_load(&t->last);
}

/* Migrates a running source; refuse: the destination says no. */
static void migrate_once(bool refuse)
{
	struct ticker ts = { 0 }, td = { 0 };
	struct migrate_progress prog = { 0 };
	struct receiver rc = { .refuse = refuse, .t = &td };
	struct snap_writer w;
	struct migrate *m;
	_Atomic bool stop = false;
	pthread_t src, dst;
	int sv[2], r;
	char err[512];
	uint64_t pass;

	need_kvm();
	CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	rc.fd = sv[1];
	struct vm *vm = make_vm(false, &ts);

	CHECK_EQ(pthread_create(&src, NULL, run_thread, vm), 0);
	CHECK(wait_for(&ts, 20) >= 20);
	CHECK_EQ(pthread_create(&dst, NULL, receive_thread, &rc), 0);
	snap_writer_init(&w, sv[0]);
	if (migrate_begin(&m, vm, &w, &prog, err, sizeof(err)) < 0)
		FAILF("begin: %.400s", err);
	r = migrate_precopy(m, "memory = 32M\n", &stop, err, sizeof(err));
	if (r < 0 && refuse) {
		/* The destination hung up: what it said before is the reason. */
		CHECK(strstr(err, "sending to the destination"));
		migrate_end(m);
		CHECK_EQ(migrate_wait_ack(sv[0], 5000, err, sizeof(err)), -EPROTO);
		CHECK(strstr(err, "refused it: no room here for this VM"));
		CHECK_EQ(pthread_join(dst, NULL), 0);
		CHECK(wait_for(&ts, atomic_load(&ts.last) + 10) > 0);
		goto out;
	}
	if (r < 0)
		FAILF("precopy: %.400s", err);
	printf("note: %u rounds while running, %llu bytes sent, %llu dirty at the end\n", atomic_load(&prog.round) + 1,
	       (unsigned long long)atomic_load(&prog.sent), (unsigned long long)atomic_load(&prog.dirty));
	/* The guest dirties faster than any round: the rounds end unconverged. */
	CHECK(atomic_load(&prog.round) >= 1);
	vm_pause(vm);
	pass = atomic_load(&ts.last);
	if (migrate_finish(m, err, sizeof(err)) < 0)
		FAILF("finish: %.400s", err);
	migrate_end(m);
	r = migrate_wait_ack(sv[0], 60000, err, sizeof(err));
	CHECK_EQ(pthread_join(dst, NULL), 0);
	if (refuse) {
		CHECK_EQ(r, -EPROTO);
		CHECK(strstr(err, "refused it: no room here for this VM"));
		/* The source can run on: nothing was lost. */
		vm_resume(vm);
		CHECK(wait_for(&ts, pass + 10) >= pass + 10);
	} else {
		if (r < 0)
			FAILF("ack: %.200s (destination: %.200s)", err, rc.err);
		CHECK_EQ(rc.r, 0);
		/* Every page came: each holds this pass or the one before, the
		 * ones already written this pass first. */
		uint64_t p = *(uint64_t *)guestmem_ptr(&rc.vm->mem, 0x8000, 8);
		unsigned int ahead = 0;
		bool behind = false;

		CHECK(p >= pass && p <= pass + 1);
		for (uint64_t a = 0x100000; a < 0x300000; a += 4096) {
			uint64_t v = *(uint64_t *)guestmem_ptr(&rc.vm->mem, a, 8);

			if (v == p && !behind)
				ahead++;
			else if (v == p - 1)
				behind = true;
			else
				FAILF("page 0x%llx holds pass %llu where %llu or %llu belong: it was not migrated",
				      (unsigned long long)a, (unsigned long long)v, (unsigned long long)p,
				      (unsigned long long)p - 1);
		}
		printf("note: migrated in pass %llu, %u of 512 pages written in it\n", (unsigned long long)p, ahead);
		CHECK_EQ(pthread_create(&dst, NULL, run_thread, rc.vm), 0);
		CHECK(wait_for(&td, p + 10) >= p + 10);
		CHECK(atomic_load(&td.first) == p || atomic_load(&td.first) == p + 1);
		vm_request_stop(rc.vm, VM_STOP_REQUEST, NULL);
		CHECK_EQ(pthread_join(dst, NULL), 0);
	}
out:
	vm_request_stop(vm, VM_STOP_REQUEST, NULL);
	vm_resume(vm);
	CHECK_EQ(pthread_join(src, NULL), 0);
	vm_destroy(vm);
	free(vm);
	if (rc.vm) {
		vm_destroy(rc.vm);
		free(rc.vm);
	}
	close(sv[0]);
	close(sv[1]);
}

static void test_migrate_dirtying_guest(void)
{
	migrate_once(false);
}

static void test_destination_refuses(void)
{
	migrate_once(true);
}

static void test_addresses(void)
{
	struct migrate_addr a;
	char err[256];

	CHECK_EQ(migrate_parse_addr("unix:/tmp/m.sock", &a, err, sizeof(err)), 0);
	CHECK(!a.tcp && !strcmp(a.path, "/tmp/m.sock"));
	CHECK_EQ(migrate_parse_addr("tcp:127.0.0.1:4444", &a, err, sizeof(err)), 0);
	CHECK(a.tcp && !strcmp(a.host, "127.0.0.1") && !strcmp(a.port, "4444"));
	CHECK_EQ(migrate_parse_addr("tcp:[::1]:80", &a, err, sizeof(err)), 0);
	CHECK(!strcmp(a.host, "::1"));
	CHECK_EQ(migrate_parse_addr("tcp:host:0", &a, err, sizeof(err)), -EINVAL);
	CHECK_EQ(migrate_parse_addr("tcp::80", &a, err, sizeof(err)), -EINVAL);
	CHECK_EQ(migrate_parse_addr("tcp:host", &a, err, sizeof(err)), -EINVAL);
	CHECK_EQ(migrate_parse_addr("unix:", &a, err, sizeof(err)), -EINVAL);
	CHECK_EQ(migrate_parse_addr("/tmp/x", &a, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "unix:PATH or tcp:HOST:PORT"));
}

int main(void)
{
	RUN(test_addresses);
	RUN(test_migrate_dirtying_guest);
	RUN(test_destination_refuses);
	return HARNESS_END();
}
