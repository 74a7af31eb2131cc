/*
 * test_common.c - the small utilities the wire depends on: base64 (RFC
 * 4648 vectors, and the strictness that gives one payload one encoding),
 * UTF-8 validation and repair, sha256 against published vectors, and
 * json_string_lossy.
 */
#include <check.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

/* ---- base64 ------------------------------------------------------------ */

static const struct {
	const char *plain;
	const char *b64;
} b64_vectors[] = {		/* RFC 4648, section 10 */
	{ "", "" },
	{ "f", "Zg==" },
	{ "fo", "Zm8=" },
	{ "foo", "Zm9v" },
	{ "foob", "Zm9vYg==" },
	{ "fooba", "Zm9vYmE=" },
	{ "foobar", "Zm9vYmFy" },
};

START_TEST(test_base64_rfc4648_encode)
{
	const char *plain = b64_vectors[_i].plain, *want = b64_vectors[_i].b64;
	char out[16];

	ck_assert_uint_eq(base64_encoded_len(strlen(plain)), strlen(want));
	memset(out, 'X', sizeof out);
	base64_encode(plain, strlen(plain), out);
	ck_assert_str_eq(out, want);
}
END_TEST

START_TEST(test_base64_rfc4648_decode)
{
	const char *plain = b64_vectors[_i].plain, *b64 = b64_vectors[_i].b64;
	unsigned char out[16];
	long n;

	n = base64_decode(b64, strlen(b64), out);
	ck_assert_int_eq(n, (long)strlen(plain));
	ck_assert_mem_eq(out, plain, (size_t)n);
}
END_TEST

START_TEST(test_base64_all_bytes_round_trip)
{
	unsigned char in[300], back[300];
	char enc[401];
	size_t len, i;
	long n;

	for (i = 0; i < sizeof in; i++)
		in[i] = (unsigned char)(i * 7 + 3);
	for (len = 0; len <= sizeof in; len++) {
		base64_encode(in, len, enc);
		ck_assert_uint_eq(strlen(enc), base64_encoded_len(len));
		n = base64_decode(enc, strlen(enc), back);
		ck_assert_int_eq(n, (long)len);
		ck_assert_mem_eq(back, in, len);
	}
}
END_TEST

/* Every one of these is refused: one payload has exactly one encoding. */
static const char *b64_refused[] = {
	"Zg",		/* padding left out */
	"Zg=",		/* half the padding */
	"Zm8",		/* length not a multiple of 4 */
	"Zh==",		/* bits under "==" not zero: not canonical */
	"Zm9=",		/* bits under "=" not zero: not canonical */
	"Zg=a",		/* padding before data */
	"Z===",		/* three pads */
	"====",		/* nothing but padding */
	"Zg==Zg==",	/* padding in the middle */
	"Zm9v\n",	/* line break */
	"Zm 9v",	/* space */
	"Zm9-",		/* URL-safe alphabet */
	"Zm9_",
	"Zm9\x80",	/* high byte */
};

START_TEST(test_base64_refuses_non_canonical)
{
	const char *in = b64_refused[_i];
	unsigned char out[16];

	ck_assert_msg(base64_decode(in, strlen(in), out) == -1,
	    "'%s' should be refused", in);
}
END_TEST

/* ---- UTF-8 ------------------------------------------------------------- */

static const struct {
	const char *bytes;
	size_t len;
	size_t valid;		/* utf8_valid_prefix */
} utf8_vectors[] = {
	{ "abc", 3, 3 },
	{ "", 0, 0 },
	{ "a\0b", 3, 1 },			/* NUL is refused */
	{ "\xc3\xa9", 2, 2 },			/* U+00E9 */
	{ "\xc3", 1, 0 },			/* truncated */
	{ "a\xc3", 2, 1 },
	{ "\xc0\xaf", 2, 0 },			/* overlong '/' */
	{ "\xc1\xbf", 2, 0 },			/* overlong */
	{ "\xe0\x80\xaf", 3, 0 },		/* overlong, 3 bytes */
	{ "\xe0\xa0\x80", 3, 3 },		/* U+0800, the first 3-byte */
	{ "\xe2\x82\xac", 3, 3 },		/* euro sign */
	{ "\xed\x9f\xbf", 3, 3 },		/* U+D7FF, below surrogates */
	{ "\xed\xa0\x80", 3, 0 },		/* U+D800, a surrogate */
	{ "\xed\xbf\xbf", 3, 0 },		/* U+DFFF, a surrogate */
	{ "\xee\x80\x80", 3, 3 },		/* U+E000 */
	{ "\xf0\x8f\xbf\xbf", 4, 0 },		/* overlong, 4 bytes */
	{ "\xf0\x90\x80\x80", 4, 4 },		/* U+10000 */
	{ "\xf0\x9f\x98\x80", 4, 4 },		/* emoji */
	{ "\xf4\x8f\xbf\xbf", 4, 4 },		/* U+10FFFF, the last */
	{ "\xf4\x90\x80\x80", 4, 0 },		/* above U+10FFFF */
	{ "\xf5\x80\x80\x80", 4, 0 },
	{ "\x80", 1, 0 },			/* lone continuation */
	{ "\xff", 1, 0 },
	{ "\xfe", 1, 0 },
	{ "ok\xe2\x82", 4, 2 },			/* truncated at the end */
	{ "\xe2\x82" "A", 3, 0 },		/* continuation missing */
};

START_TEST(test_utf8_valid_prefix)
{
	ck_assert_msg(utf8_valid_prefix(utf8_vectors[_i].bytes,
	    utf8_vectors[_i].len) == utf8_vectors[_i].valid,
	    "vector %d: got %zu, want %zu", _i,
	    utf8_valid_prefix(utf8_vectors[_i].bytes, utf8_vectors[_i].len),
	    utf8_vectors[_i].valid);
}
END_TEST

static const struct {
	const char *in;
	size_t inlen;
	const char *out;
} repair_vectors[] = {
	{ "plain", 5, "plain" },
	{ "", 0, "" },
	{ "a\xff" "b", 3, "a\xef\xbf\xbd" "b" },
	{ "a\0b", 3, "a\xef\xbf\xbd" "b" },
	{ "\xc3", 1, "\xef\xbf\xbd" },
	/* Each byte of a bad sequence is replaced on its own. */
	{ "\xe2\x82" "A", 3, "\xef\xbf\xbd\xef\xbf\xbd" "A" },
	{ "\xc0\xaf", 2, "\xef\xbf\xbd\xef\xbf\xbd" },
	{ "\xed\xa0\x80", 3, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" },
	{ "\xc3\xa9\xff\xe2\x82\xac", 6,
	  "\xc3\xa9\xef\xbf\xbd\xe2\x82\xac" },
};

START_TEST(test_utf8_repair)
{
	size_t outlen = 12345;
	char *out;

	out = utf8_repair(repair_vectors[_i].in, repair_vectors[_i].inlen,
	    &outlen);
	ck_assert_str_eq(out, repair_vectors[_i].out);
	ck_assert_uint_eq(outlen, strlen(repair_vectors[_i].out));
	ck_assert_uint_eq(utf8_valid_prefix(out, outlen), outlen);
	free(out);
}
END_TEST

START_TEST(test_utf8_repair_all_bytes_is_valid)
{
	unsigned char in[256 * 4];
	size_t i, outlen;
	char *out;

	/* Every byte value in every position of a 4-byte group. */
	for (i = 0; i < sizeof in; i++)
		in[i] = (unsigned char)(i % 4 == 0 ? i / 4 : i * 37);
	out = utf8_repair((const char *)in, sizeof in, &outlen);
	ck_assert_uint_eq(utf8_valid_prefix(out, outlen), outlen);
	ck_assert_ptr_null(memchr(out, '\0', outlen));
	ck_assert_int_eq(out[outlen], '\0');
	free(out);
	out = utf8_repair("x", 1, NULL);	/* outlen may be NULL */
	ck_assert_str_eq(out, "x");
	free(out);
}
END_TEST

/* ---- sha256 ------------------------------------------------------------ */

START_TEST(test_sha256_vectors)
{
	/* FIPS 180-2 examples and the empty string. */
	static const struct {
		const char *in;
		const char *hex;
	} v[] = {
		{ "", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" },
		{ "abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" },
		{ "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
		  "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1" },
	};
	char out[SHA256_HEX_LEN + 1];
	size_t i;

	for (i = 0; i < DM_NELEM(v); i++) {
		sha256_hex(v[i].in, strlen(v[i].in), out);
		ck_assert_str_eq(out, v[i].hex);
	}
}
END_TEST

/* Every length across the padding edges (55, 56, 64, 119, 120 ...) and
 * every way of splitting it, against OpenSSL's digest. */
START_TEST(test_sha256_against_openssl)
{
	unsigned char msg[300], md[32];
	char ours[SHA256_HEX_LEN + 1], theirs[SHA256_HEX_LEN + 1];
	struct sha256_ctx *c;
	unsigned int mdlen, i;
	size_t len, cut;

	for (i = 0; i < sizeof msg; i++)
		msg[i] = (unsigned char)(i * 7 + 3);
	for (len = 0; len <= sizeof msg; len++) {
		EVP_Digest(msg, len, md, &mdlen, EVP_sha256(), NULL);
		for (i = 0; i < 32; i++)
			snprintf(theirs + 2 * i, 3, "%02x", md[i]);
		for (cut = 0; cut <= len; cut += len < 130 ? 1 : 37) {
			c = sha256_new();
			sha256_update(c, msg, cut);
			sha256_update(c, msg + cut, len - cut);
			sha256_finish_hex(c, ours);
			ck_assert_msg(strcmp(ours, theirs) == 0,
			    "length %zu cut at %zu", len, cut);
		}
	}
}
END_TEST

START_TEST(test_sha256_incremental_million_a)
{
	struct sha256_ctx *c = sha256_new();
	char chunk[1000], out[SHA256_HEX_LEN + 1];
	int i;

	memset(chunk, 'a', sizeof chunk);
	for (i = 0; i < 1000; i++)
		sha256_update(c, chunk, sizeof chunk);
	sha256_finish_hex(c, out);
	ck_assert_str_eq(out,
	    "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");

	/* Pieces of odd sizes give the same digest as one update. */
	c = sha256_new();
	sha256_update(c, "abcdbcdecdefdefgefgh", 20);
	sha256_update(c, "", 0);
	sha256_update(c, "fghighijhijkijkljklmklmnlmnomnopnopq", 36);
	sha256_finish_hex(c, out);
	ck_assert_str_eq(out,
	    "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}
END_TEST

/* ---- json_string_lossy and the lookups --------------------------------- */

START_TEST(test_json_string_lossy)
{
	json_t *s;

	s = json_string_lossy("h\xc3\xa9llo", 6);
	ck_assert_str_eq(json_string_value(s), "h\xc3\xa9llo");
	ck_assert_uint_eq(json_string_length(s), 6);
	json_decref(s);

	s = json_string_lossy("a\xff" "b\0c", 5);
	ck_assert_uint_eq(json_string_length(s), 9);
	ck_assert_mem_eq(json_string_value(s),
	    "a\xef\xbf\xbd" "b\xef\xbf\xbd" "c", 9);
	json_decref(s);

	s = json_string_lossy("", 0);
	ck_assert_str_eq(json_string_value(s), "");
	json_decref(s);

	/* An empty capture may have no buffer at all. */
	s = json_string_lossy(NULL, 0);
	ck_assert_ptr_nonnull(s);
	ck_assert_str_eq(json_string_value(s), "");
	json_decref(s);

	/* Only len bytes are read, even with no NUL after them. */
	s = json_string_lossy("abcdef", 3);
	ck_assert_str_eq(json_string_value(s), "abc");
	json_decref(s);
}
END_TEST

START_TEST(test_json_get_defaults)
{
	json_t *o = json_pack("{s:s, s:i, s:f, s:b, s:n}", "s", "x", "i", 42,
	    "f", 1.5, "b", 1, "n");

	ck_assert_str_eq(json_get_str(o, "s", "d"), "x");
	ck_assert_str_eq(json_get_str(o, "i", "d"), "d");	/* mistyped */
	ck_assert_str_eq(json_get_str(o, "zz", "d"), "d");	/* missing */
	ck_assert_int_eq(json_get_int(o, "i", -1), 42);
	ck_assert_int_eq(json_get_int(o, "f", -1), -1);		/* real */
	ck_assert_double_eq(json_get_num(o, "f", -1), 1.5);
	ck_assert_double_eq(json_get_num(o, "i", -1), 42);	/* a number */
	ck_assert_double_eq(json_get_num(o, "s", -1), -1);
	ck_assert_int_eq(json_get_bool(o, "b", 0), 1);
	ck_assert_int_eq(json_get_bool(o, "n", 7), 7);		/* null */
	ck_assert_int_eq(json_get_bool(NULL, "b", 7), 7);
	json_decref(o);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("common");
	TCase *tc;
	SRunner *sr;
	int failed;

	tc = tcase_create("base64");
	tcase_add_loop_test(tc, test_base64_rfc4648_encode, 0,
	    DM_NELEM(b64_vectors));
	tcase_add_loop_test(tc, test_base64_rfc4648_decode, 0,
	    DM_NELEM(b64_vectors));
	tcase_add_test(tc, test_base64_all_bytes_round_trip);
	tcase_add_loop_test(tc, test_base64_refuses_non_canonical, 0,
	    DM_NELEM(b64_refused));
	suite_add_tcase(s, tc);

	tc = tcase_create("utf8");
	tcase_add_loop_test(tc, test_utf8_valid_prefix, 0,
	    DM_NELEM(utf8_vectors));
	tcase_add_loop_test(tc, test_utf8_repair, 0, DM_NELEM(repair_vectors));
	tcase_add_test(tc, test_utf8_repair_all_bytes_is_valid);
	suite_add_tcase(s, tc);

	tc = tcase_create("sha256");
	tcase_add_test(tc, test_sha256_vectors);
	tcase_add_test(tc, test_sha256_against_openssl);
	tcase_add_test(tc, test_sha256_incremental_million_a);
	suite_add_tcase(s, tc);

	tc = tcase_create("json");
	tcase_add_test(tc, test_json_string_lossy);
	tcase_add_test(tc, test_json_get_defaults);
	suite_add_tcase(s, tc);

	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
