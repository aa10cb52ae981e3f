/* Tier 1: the JSON writer. Exact output bytes, compact and indented, string
 * escaping (quotes, control characters, broken UTF-8), numbers, misuse
 * caught as errors rather than written, and the FILE * sink. */
#include "harness.h"
#include "json.h"
#include "util.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>

HARNESS_DEFINE;

/* Writes one string value compactly and returns the document. */
static const char *json_of_string(struct json *j, const char *s)
{
	json_init(j, NULL, false);
	json_str(j, s);
	CHECK_EQ(json_finish(j), 0);
	return json_buf(j);
}

static void test_compact_document(void)
{
	struct json j;

	json_init(&j, NULL, false);
	json_object_begin(&j);
	json_kv_string(&j, "name", "vm1");
	json_kv_bool(&j, "on", true);
	json_kv_bool(&j, "off", false);
	json_kv_null(&j, "none");
	json_kv_int(&j, "neg", -42);
	json_kv_uint(&j, "big", UINT64_MAX);
	json_kv_double(&j, "mips", 3.9);
	json_key(&j, "list");
	json_array_begin(&j);
	json_int(&j, 1);
	json_str(&j, "two");
	json_array_begin(&j);
	json_array_end(&j);
	json_object_begin(&j);
	json_object_end(&j);
	json_nil(&j);
	json_array_end(&j);
	json_key(&j, "inner");
	json_object_begin(&j);
	json_kv_string(&j, "k", "v");
	json_object_end(&j);
	json_object_end(&j);
	CHECK_EQ(json_finish(&j), 0);
	CHECK_STR(json_buf(&j),
		  "{\"name\":\"vm1\",\"on\":true,\"off\":false,\"none\":null,\"neg\":-42,"
		  "\"big\":18446744073709551615,\"mips\":3.9,\"list\":[1,\"two\",[],{},null],"
		  "\"inner\":{\"k\":\"v\"}}");
	json_free(&j);
}

static void test_pretty_document(void)
{
	struct json j;

	json_init(&j, NULL, true);
	json_object_begin(&j);
	json_kv_string(&j, "a", "x");
	json_key(&j, "empty");
	json_array_begin(&j);
	json_array_end(&j);
	json_key(&j, "reasons");
	json_array_begin(&j);
	json_str(&j, "one");
	json_str(&j, "two");
	json_array_end(&j);
	json_key(&j, "vms");
	json_array_begin(&j);
	json_object_begin(&j);
	json_kv_uint(&j, "cpus", 2);
	json_object_end(&j);
	json_array_end(&j);
	json_key(&j, "o");
	json_object_begin(&j);
	json_object_end(&j);
	json_object_end(&j);
	CHECK_EQ(json_finish(&j), 0);
	CHECK_STR(json_buf(&j),
		  "{\n"
		  "  \"a\": \"x\",\n"
		  "  \"empty\": [],\n"
		  "  \"reasons\": [\n"
		  "    \"one\",\n"
		  "    \"two\"\n"
		  "  ],\n"
		  "  \"vms\": [\n"
		  "    {\n"
		  "      \"cpus\": 2\n"
		  "    }\n"
		  "  ],\n"
		  "  \"o\": {}\n"
		  "}\n");
	json_free(&j);
}

static void test_top_level_scalars(void)
{
	struct json j;

	json_init(&j, NULL, false);
	json_bool(&j, true);
	CHECK_EQ(json_finish(&j), 0);
	CHECK_STR(json_buf(&j), "true");
	json_free(&j);

	CHECK_STR(json_of_string(&j, NULL), "null");
	json_free(&j);
	CHECK_STR(json_of_string(&j, ""), "\"\"");
	json_free(&j);
}

static void test_escape_quotes_and_controls(void)
{
	struct json j;

	CHECK_STR(json_of_string(&j, "say \"hi\" \\ back/slash"),
		  "\"say \\\"hi\\\" \\\\ back/slash\"");
	json_free(&j);
	CHECK_STR(json_of_string(&j, "\b\f\n\r\t"), "\"\\b\\f\\n\\r\\t\"");
	json_free(&j);
	/* The other controls get \u escapes; DEL is legal JSON and stays. */
	CHECK_STR(json_of_string(&j, "\x01-\x1f-\x0b-\x7f"), "\"\\u0001-\\u001f-\\u000b-\x7f\"");
	json_free(&j);
	CHECK_STR(json_of_string(&j, "\x1b[31mred"), "\"\\u001b[31mred\"");
	json_free(&j);
}

static void test_escape_keys(void)
{
	struct json j;

	json_init(&j, NULL, false);
	json_object_begin(&j);
	json_kv_int(&j, "a\"b\n", 1);
	json_object_end(&j);
	CHECK_EQ(json_finish(&j), 0);
	CHECK_STR(json_buf(&j), "{\"a\\\"b\\n\":1}");
	json_free(&j);
}

static void test_utf8(void)
{
	struct json j;

	/* Well-formed UTF-8 of every length passes through as it is. */
	CHECK_STR(json_of_string(&j, "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf"),
		  "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf\"");
	json_free(&j);
	/* Each byte that starts no well-formed sequence becomes U+FFFD. */
	CHECK_STR(json_of_string(&j, "a\xff" "b"), "\"a\\ufffdb\"");
	json_free(&j);
	CHECK_STR(json_of_string(&j, "\x80"), "\"\\ufffd\"");              /* lone continuation */
	json_free(&j);
	CHECK_STR(json_of_string(&j, "\xc0\xaf"), "\"\\ufffd\\ufffd\"");   /* overlong '/' */
	json_free(&j);
	CHECK_STR(json_of_string(&j, "\xe0\x80\xaf"), "\"\\ufffd\\ufffd\\ufffd\"");   /* overlong */
	json_free(&j);
	CHECK_STR(json_of_string(&j, "\xed\xa0\x80"), "\"\\ufffd\\ufffd\\ufffd\"");   /* surrogate */
	json_free(&j);
	CHECK_STR(json_of_string(&j, "\xf4\x90\x80\x80"),                      /* > U+10FFFF */
		  "\"\\ufffd\\ufffd\\ufffd\\ufffd\"");
	json_free(&j);
	CHECK_STR(json_of_string(&j, "x\xe2\x82"), "\"x\\ufffd\\ufffd\"");  /* cut short */
	json_free(&j);
	CHECK_STR(json_of_string(&j, "\xe2\x82\xac\xe2"), "\"\xe2\x82\xac\\ufffd\"");
	json_free(&j);
}

static void test_numbers(void)
{
	static const struct { double v; const char *want; } d[] = {
		{ 3.9, "3.9" }, { 4.0, "4" }, { 0.1 + 0.2, "0.3" }, { -2.5, "-2.5" },
		{ 1e300, "1e+300" }, { 1234.5, "1234.5" }, { NAN, "null" }, { INFINITY, "null" },
		{ -INFINITY, "null" },
	};
	struct json j;

	for (size_t i = 0; i < ARRAY_SIZE(d); i++) {
		json_init(&j, NULL, false);
		json_double(&j, d[i].v);
		CHECK_EQ(json_finish(&j), 0);
		if (strcmp(json_buf(&j), d[i].want))
			FAILF("json_double(%g) wrote '%s', want '%s'", d[i].v, json_buf(&j), d[i].want);
		json_free(&j);
	}
	json_init(&j, NULL, false);
	json_array_begin(&j);
	json_int(&j, INT64_MIN);
	json_int(&j, INT64_MAX);
	json_uint(&j, 0);
	json_array_end(&j);
	CHECK_EQ(json_finish(&j), 0);
	CHECK_STR(json_buf(&j), "[-9223372036854775808,9223372036854775807,0]");
	json_free(&j);
}

/* Builds a document with one mistake; the writer must refuse it. */
static int json_misuse(int which)
{
	struct json j;
	int r;

	json_init(&j, NULL, false);
	switch (which) {
	case 0:         /* a value in an object without its key */
		json_object_begin(&j);
		json_int(&j, 1);
		json_object_end(&j);
		break;
	case 1:         /* a key in an array */
		json_array_begin(&j);
		json_key(&j, "k");
		json_array_end(&j);
		break;
	case 2:         /* closing what is not open */
		json_array_begin(&j);
		json_object_end(&j);
		break;
	case 3:         /* an end with nothing open */
		json_object_end(&j);
		break;
	case 4:         /* left open */
		json_object_begin(&j);
		break;
	case 5:         /* nothing at all */
		break;
	case 6:         /* two top-level values */
		json_int(&j, 1);
		json_int(&j, 2);
		break;
	case 7:         /* a key without its value */
		json_object_begin(&j);
		json_key(&j, "k");
		json_object_end(&j);
		break;
	case 8:         /* two keys in a row */
		json_object_begin(&j);
		json_key(&j, "a");
		json_key(&j, "b");
		json_int(&j, 1);
		json_object_end(&j);
		break;
	case 9:         /* deeper than JSON_MAX_DEPTH */
		for (int i = 0; i <= JSON_MAX_DEPTH; i++)
			json_array_begin(&j);
		for (int i = 0; i <= JSON_MAX_DEPTH; i++)
			json_array_end(&j);
		break;
	}
	r = json_finish(&j);
	/* After an error the buffer shows nothing half-written. */
	if (r < 0 && strcmp(json_buf(&j), ""))
		r = -1000;
	json_free(&j);
	return r;
}

static void test_misuse(void)
{
	for (int i = 0; i <= 9; i++) {
		int r = json_misuse(i);

		if (r != -EINVAL)
			FAILF("misuse case %d: json_finish returned %d, want -EINVAL", i, r);
	}
}

static void test_max_depth_fits(void)
{
	struct json j;
	char want[2 * JSON_MAX_DEPTH + 1];

	json_init(&j, NULL, false);
	for (int i = 0; i < JSON_MAX_DEPTH; i++)
		json_array_begin(&j);
	for (int i = 0; i < JSON_MAX_DEPTH; i++)
		json_array_end(&j);
	CHECK_EQ(json_finish(&j), 0);
	memset(want, '[', JSON_MAX_DEPTH);
	memset(want + JSON_MAX_DEPTH, ']', JSON_MAX_DEPTH);
	want[2 * JSON_MAX_DEPTH] = '\0';
	CHECK_STR(json_buf(&j), want);
	json_free(&j);
}

static void test_buffer_grows(void)
{
	enum { N = 100000 };
	char *big = malloc(N + 1);
	struct json j;
	const char *out;

	CHECK(big);
	memset(big, 'a', N);
	big[N] = '\0';
	big[N / 2] = '"';               /* one escape in the middle */
	json_init(&j, NULL, false);
	json_array_begin(&j);
	for (int i = 0; i < 3; i++)
		json_str(&j, big);
	json_array_end(&j);
	free(big);
	CHECK_EQ(json_finish(&j), 0);
	out = json_buf(&j);
	CHECK_EQ(strlen(out), 2 + 3 * (N + 3) + 2);
	CHECK_EQ(out[1 + 1 + N / 2], '\\');
	CHECK_EQ(out[1 + 1 + N / 2 + 1], '"');
	CHECK_EQ(out[strlen(out) - 1], ']');
	json_free(&j);
	CHECK_STR(json_buf(&j), "");
}

static void test_file_sink(void)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	struct json j;

	CHECK(f);
	json_init(&j, f, true);
	json_object_begin(&j);
	json_kv_string(&j, "k", "tab\there");
	json_object_end(&j);
	CHECK_EQ(json_finish(&j), 0);
	json_free(&j);
	fclose(f);
	CHECK_STR(text, "{\n  \"k\": \"tab\\there\"\n}\n");
	free(text);
}

static void test_file_write_error(void)
{
	FILE *f = fopen("/dev/full", "we");
	struct json j;

	if (!f)
		SKIP("no /dev/full here to make writes fail");
	json_init(&j, f, false);
	json_array_begin(&j);
	json_str(&j, "no room");
	json_array_end(&j);
	CHECK_EQ(json_finish(&j), -EIO);
	fclose(f);
}

int main(void)
{
	RUN(test_compact_document);
	RUN(test_pretty_document);
	RUN(test_top_level_scalars);
	RUN(test_escape_quotes_and_controls);
	RUN(test_escape_keys);
	RUN(test_utf8);
	RUN(test_numbers);
	RUN(test_misuse);
	RUN(test_max_depth_fits);
	RUN(test_buffer_grows);
	RUN(test_file_sink);
	RUN(test_file_write_error);
	return HARNESS_END();
}
