/* The MC146818 CMOS clock and NVRAM at ports 0x70/0x71. Time comes from the
 * host's UTC clock plus whatever offset the guest set, in BCD 24-hour form
 * unless the guest switches register B to binary or 12-hour. */
#include "devices/devices.h"

#include <errno.h>
#include <string.h>
#include <time.h>

enum {
	RTC_SEC = 0x00, RTC_MIN = 0x02, RTC_HOUR = 0x04, RTC_WDAY = 0x06,
	RTC_MDAY = 0x07, RTC_MON = 0x08, RTC_YEAR = 0x09,
	RTC_REG_A = 0x0a, RTC_REG_B = 0x0b, RTC_REG_C = 0x0c, RTC_REG_D = 0x0d,
	RTC_CENTURY = 0x32,
};
#define REG_B_24H  0x02
#define REG_B_BIN  0x04
#define REG_B_SET  0x80
/* The years the year and century registers can show. A guest's write that
 * would carry its clock outside them is ignored: the clock stays where the
 * registers make sense, every sum below stays far from overflow whatever
 * the guest writes, and the offset stays one a snapshot can carry. */
#define RTC_YEAR_MIN 0
#define RTC_YEAR_MAX 9999
/* Further than this from the host clock is no offset a guest set. */
#define RTC_MAX_OFFSET_S (1LL << 40)

/* v is 0..99 (a register's two digits). */
static uint8_t to_bcd(int v)
{
	return (uint8_t)(((v / 10) << 4) | (v % 10));
}

static int from_bcd(uint8_t v)
{
	return (v >> 4) * 10 + (v & 0x0f);
}

void rtc_init(struct rtc *rtc, uint64_t mem_below_4g, uint64_t mem_above_4g)
{
	uint64_t ext;

	memset(rtc, 0, sizeof(*rtc));
	pthread_mutex_init(&rtc->lock, NULL);
	rtc->nvram[RTC_REG_A] = 0x26;          /* 32.768 kHz base, 1024 Hz rate */
	rtc->nvram[RTC_REG_B] = REG_B_24H;
	rtc->nvram[RTC_REG_D] = 0x80;          /* battery good */
	/* Memory sizes where firmware-era code looks for them. */
	ext = mem_below_4g > (16 << 20) ? (mem_below_4g - (16 << 20)) >> 16 : 0;
	if (ext > 0xffff)
		ext = 0xffff;
	rtc->nvram[0x34] = (uint8_t)ext;
	rtc->nvram[0x35] = (uint8_t)(ext >> 8);
	ext = mem_above_4g >> 16;
	rtc->nvram[0x5b] = (uint8_t)ext;
	rtc->nvram[0x5c] = (uint8_t)(ext >> 8);
	rtc->nvram[0x5d] = (uint8_t)(ext >> 16);
}

static uint8_t rtc_encode(const struct rtc *rtc, int v)
{
	return (rtc->nvram[RTC_REG_B] & REG_B_BIN) ? (uint8_t)v : to_bcd(v);
}

static int rtc_decode(const struct rtc *rtc, uint8_t v)
{
	return (rtc->nvram[RTC_REG_B] & REG_B_BIN) ? v : from_bcd(v);
}

/* The guest's time now; false if it is none a struct tm can hold (an offset
 * from a snapshot taken under a very different host clock). */
static bool rtc_now(const struct rtc *rtc, time_t *now, struct tm *tm)
{
	int64_t t;

	if (__builtin_add_overflow((int64_t)time(NULL), rtc->offset_s, &t))
		return false;
	*now = (time_t)t;
	return gmtime_r(now, tm) != NULL;
}

/* Two decimal digits of a year that may lie outside the registers' range. */
static int rtc_digits(long long v)
{
	return (int)(((v % 100) + 100) % 100);
}

static uint8_t rtc_read_time(struct rtc *rtc, uint8_t idx)
{
	long long year;
	time_t now;
	struct tm tm;
	int hour;

	if (!rtc_now(rtc, &now, &tm))
		return 0xff;
	year = (long long)tm.tm_year + 1900;
	switch (idx) {
	case RTC_SEC: return rtc_encode(rtc, tm.tm_sec);
	case RTC_MIN: return rtc_encode(rtc, tm.tm_min);
	case RTC_HOUR:
		if (rtc->nvram[RTC_REG_B] & REG_B_24H)
			return rtc_encode(rtc, tm.tm_hour);
		hour = tm.tm_hour % 12 ? tm.tm_hour % 12 : 12;
		return (uint8_t)(rtc_encode(rtc, hour) | (tm.tm_hour >= 12 ? 0x80 : 0));
	case RTC_WDAY: return rtc_encode(rtc, tm.tm_wday + 1);
	case RTC_MDAY: return rtc_encode(rtc, tm.tm_mday);
	case RTC_MON: return rtc_encode(rtc, tm.tm_mon + 1);
	case RTC_YEAR: return rtc_encode(rtc, rtc_digits(year));
	default: return rtc_encode(rtc, rtc_digits(year / 100 - (year < 0 && year % 100)));
	}
}

/* A guest that sets the clock moves its offset, never the host's clock. */
static void rtc_write_time(struct rtc *rtc, uint8_t idx, uint8_t v)
{
	time_t now, t;
	struct tm tm;
	int val, year;

	if (!rtc_now(rtc, &now, &tm))
		return;
	/* The offset is bounded (by the year range here, by RTC_MAX_OFFSET_S
	 * at a load), so the year is within some 40000 of today's and no sum
	 * below overflows: each field gains at most 255. A clock a snapshot
	 * left outside the range can still be set back into it. */
	year = tm.tm_year + 1900;
	val = rtc_decode(rtc, idx == RTC_HOUR ? (uint8_t)(v & 0x7f) : v);
	switch (idx) {
	case RTC_SEC: tm.tm_sec = val; break;
	case RTC_MIN: tm.tm_min = val; break;
	case RTC_HOUR:
		if (!(rtc->nvram[RTC_REG_B] & REG_B_24H))
			val = val % 12 + ((v & 0x80) ? 12 : 0);
		tm.tm_hour = val;
		break;
	case RTC_MDAY: tm.tm_mday = val; break;
	case RTC_MON: tm.tm_mon = val - 1; break;
	case RTC_YEAR: tm.tm_year = year - year % 100 + val - 1900; break;
	default: return;
	}
	errno = 0;
	t = timegm(&tm);                        /* normalises tm: months past 12, day 0 */
	if (t == (time_t)-1 && errno)
		return;
	if (tm.tm_year + 1900 < RTC_YEAR_MIN || tm.tm_year + 1900 > RTC_YEAR_MAX)
		return;
	rtc->offset_s += (int64_t)(t - now);
}

static bool rtc_is_time_reg(uint8_t idx)
{
	switch (idx) {
	case RTC_SEC: case RTC_MIN: case RTC_HOUR: case RTC_WDAY:
	case RTC_MDAY: case RTC_MON: case RTC_YEAR: case RTC_CENTURY:
		return true;
	default:
		return false;
	}
}

void rtc_io(void *opaque, uint64_t offset, void *data, uint32_t len, bool is_write)
{
	struct rtc *rtc = opaque;
	uint8_t *v = data;
	uint8_t idx;

	if (len != 1) {
		if (!is_write)
			memset(data, 0xff, len);
		return;
	}
	pthread_mutex_lock(&rtc->lock);
	idx = rtc->index;
	if (offset == 0) {
		if (is_write)
			rtc->index = *v & 0x7f;    /* bit 7 is the NMI mask */
		else
			*v = 0xff;
	} else if (is_write) {
		if (rtc_is_time_reg(idx))
			rtc_write_time(rtc, idx, *v);   /* weekday and century follow the date */
		else if (idx == RTC_REG_A)
			rtc->nvram[idx] = *v & 0x7f;    /* UIP is read-only */
		else if (idx != RTC_REG_C && idx != RTC_REG_D)
			rtc->nvram[idx] = *v;
	} else if (rtc_is_time_reg(idx)) {
		*v = rtc_read_time(rtc, idx);
	} else {
		*v = rtc->nvram[idx];
		if (idx == RTC_REG_C)
			rtc->nvram[idx] = 0;            /* reading C acknowledges */
	}
	pthread_mutex_unlock(&rtc->lock);
}

void rtc_save(struct rtc *rtc, struct snap_buf *b)
{
	pthread_mutex_lock(&rtc->lock);
	snap_put_u8(b, rtc->index);
	snap_put_bytes(b, rtc->nvram, sizeof(rtc->nvram));
	snap_put_u64(b, (uint64_t)rtc->offset_s);
	pthread_mutex_unlock(&rtc->lock);
}

int rtc_load(struct rtc *rtc, struct snap_cur *c)
{
	uint8_t index = snap_get_u8(c), nvram[sizeof(rtc->nvram)];
	int64_t offset;

	snap_get_bytes(c, nvram, sizeof(nvram));
	offset = (int64_t)snap_get_u64(c);
	if (!c->bad && (index >= sizeof(rtc->nvram) || offset > RTC_MAX_OFFSET_S || offset < -RTC_MAX_OFFSET_S))
		snap_cur_fail(c, "CMOS index %u or clock offset %lld s out of range", index, (long long)offset);
	if (c->bad)
		return -EINVAL;
	pthread_mutex_lock(&rtc->lock);
	rtc->index = index;
	memcpy(rtc->nvram, nvram, sizeof(nvram));
	rtc->offset_s = offset;
	pthread_mutex_unlock(&rtc->lock);
	return 0;
}
