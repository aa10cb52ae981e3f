/* Live migration: a running machine's memory and disks sent while it runs,
 * round after round of what it wrote meanwhile (KVM's dirty log and the
 * pages nestvm's own devices write), then, paused, the last of them with the
 * devices and vCPUs; the destination answers whether it took it all. The
 * stream is the saved-state format (snap.h), over a unix socket or TCP. */
#ifndef NESTVM_MIGRATE_H
#define NESTVM_MIGRATE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "snap.h"
#include "vm.h"

/* unix:PATH or tcp:HOST:PORT */
struct migrate_addr {
	bool tcp;
	char path[256];
	char host[256];
	char port[16];
};
MUST_CHECK int migrate_parse_addr(const char *s, struct migrate_addr *a, char *err, size_t errlen);
/* The connected, or listening, socket's fd; -errno with err. */
MUST_CHECK int migrate_connect(const struct migrate_addr *a, char *err, size_t errlen);
MUST_CHECK int migrate_listen(const struct migrate_addr *a, char *err, size_t errlen);
/* One connection on lfd, waiting up to timeout_ms (-1: for ever). */
MUST_CHECK int migrate_accept(int lfd, int timeout_ms, char *err, size_t errlen);

/* How it goes, for whoever watches (any thread). */
struct migrate_progress {
	_Atomic unsigned int round;     /* 0: everything once; then the dirty rounds; the last is paused */
	_Atomic uint64_t sent;          /* bytes on the wire so far */
	_Atomic uint64_t memory, disk;  /* of which guest memory and disk data */
	_Atomic uint64_t dirty;         /* bytes left dirty after the last round */
	_Atomic uint64_t rate;          /* bytes/s of the last round */
	_Atomic uint64_t dirty_rate;    /* bytes/s the guest dirtied during it */
	_Atomic uint64_t downtime_ms;   /* from the pause to the destination's answer */
};

/* One migration's sending side. begin turns on the logging of what the
 * machine writes (memory through KVM and its own devices, disks by chunk);
 * precopy sends the head and everything once, then round after round of
 * what was written meanwhile while the machine runs, until that is small,
 * stops shrinking, rounds run out, or *stop is set; finish, with the
 * machine paused, sends the last of it, the devices (held meanwhile) and
 * vCPUs, and the end record; end turns logging off and frees. */
struct migrate;
MUST_CHECK int migrate_begin(struct migrate **out, struct vm *vm, struct snap_writer *w,
			     struct migrate_progress *p, char *err, size_t errlen);
MUST_CHECK int migrate_precopy(struct migrate *m, const char *config_text, _Atomic bool *stop,
			       char *err, size_t errlen);
MUST_CHECK int migrate_finish(struct migrate *m, char *err, size_t errlen);
void migrate_end(struct migrate *m);

/* The destination's answer on fd: "OK", or "ERR" and why. 0, -ETIMEDOUT,
 * or -EPROTO with err holding the destination's reason. */
MUST_CHECK int migrate_wait_ack(int fd, int timeout_ms, char *err, size_t errlen);
void migrate_send_ack(int fd, const char *error);

#endif
