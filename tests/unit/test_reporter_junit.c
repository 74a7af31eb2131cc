/*
 * test_reporter_junit.c - the JUnit XML reporter fed through the vtable:
 * the exact document, validation against tests/junit.xsd with xmllint,
 * escaping of every byte XML forbids, bounded output, and the atomic
 * replacement of the report.
 */
#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common.h"
#include "manager.h"
#include "reporter_fixture.h"

static char tmpdir[256];
static char report[300];

static void
setup(void)
{
	snprintf(tmpdir, sizeof tmpdir, "%s/junit.XXXXXX",
	    getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	snprintf(report, sizeof report, "%s/report.xml", tmpdir);
	/* The timestamp is local time: make it the same everywhere. */
	setenv("TZ", "UTC", 1);
	tzset();
}

static void
teardown(void)
{
	char cmd[600];

	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
	ck_assert_int_eq(system(cmd), 0);
}

static int
xmllint_valid(const char *path)
{
	char cmd[1024];

	snprintf(cmd, sizeof cmd, "xmllint --noout --schema '%s/tests/junit.xsd'"
	    " '%s' 2>&1", fx_top(), path);
	return system(cmd);
}

/* Names in the report's directory, other than the report. */
static int
count_litter(void)
{
	DIR *d = opendir(tmpdir);
	struct dirent *e;
	int n = 0;

	ck_assert_ptr_nonnull(d);
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0
		    && strcmp(e->d_name, "report.xml") != 0)
			n++;
	closedir(d);
	return n;
}

static struct reporter *
new_junit(void)
{
	char why[256] = "";
	struct reporter *r = reporter_junit_new(report, why, sizeof why);

	ck_assert_msg(r != NULL, "reporter_junit_new: %s", why);
	return r;
}

START_TEST(test_full_run_validates)
{
	struct reporter *r = new_junit();

	fx_run_all(r);
	r->ops->free(r);
	ck_assert_int_eq(xmllint_valid(report), 0);
	ck_assert_int_eq(count_litter(), 0);
}
END_TEST

/* --looponfail: the report after a second run is that run's alone. */
START_TEST(test_second_run_replaces)
{
	struct reporter *r = new_junit();
	struct run_summary s = fx_summary(fx_reports, 1);
	char *got;

	fx_run_all(r);
	fx_start(r, &fx_run_info);
	fx_result(r, &fx_reports[0]);
	r->ops->run_end(r, &s);
	got = fx_slurp(report, NULL);
	ck_assert_ptr_nonnull(strstr(got, "<testsuites name=\"distmgr\" "
	    "tests=\"1\" failures=\"0\" errors=\"0\" skipped=\"0\""));
	ck_assert_ptr_nonnull(strstr(got, "name=\"adds\""));
	ck_assert_ptr_null(strstr(got, "name=\"fails\""));
	free(got);
	r->ops->free(r);
	ck_assert_int_eq(xmllint_valid(report), 0);
	ck_assert_int_eq(count_litter(), 0);
}
END_TEST

static const char expected_two[] =
"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
"<testsuites name=\"distmgr\" tests=\"2\" failures=\"1\" errors=\"0\" "
    "skipped=\"0\" time=\"5.500\" timestamp=\"2023-11-14T22:13:20\">\n"
"  <testsuite name=\"build/suites/basic.so\" tests=\"2\" failures=\"1\" "
    "errors=\"0\" skipped=\"0\" time=\"0.003\" "
    "timestamp=\"2023-11-14T22:13:20\" hostname=\"@HOST@\" id=\"0\">\n"
"    <properties>\n"
"      <property name=\"run_id\" value=\"r-42\"/>\n"
"      <property name=\"dist\" value=\"load\"/>\n"
"      <property name=\"boxed\" value=\"true\"/>\n"
"      <property name=\"workers\" value=\"2\"/>\n"
"      <property name=\"distmgr_version\" value=\"" DM_VERSION "\"/>\n"
"    </properties>\n"
"    <testcase classname=\"math\" name=\"adds\" time=\"0.001\" "
    "file=\"tests/suites/basic.c\" line=\"10\">\n"
"      <properties>\n"
"        <property name=\"worker\" value=\"w0\"/>\n"
"        <property name=\"host\" value=\"hostA\"/>\n"
"        <property name=\"outcome\" value=\"pass\"/>\n"
"      </properties>\n"
"      <system-out>hello\n</system-out>\n"
"    </testcase>\n"
"    <testcase classname=\"math\" name=\"fails\" time=\"0.002\" "
    "file=\"tests/suites/basic.c\" line=\"10\">\n"
"      <properties>\n"
"        <property name=\"worker\" value=\"w0\"/>\n"
"        <property name=\"host\" value=\"hostA\"/>\n"
"        <property name=\"outcome\" value=\"fail\"/>\n"
"      </properties>\n"
"      <failure message=\"expected 4 == 5\" type=\"fail\">"
    "tests/suites/basic.c:17: expected 4 == 5</failure>\n"
"      <system-out>a&lt;b&gt;&amp;\"c\" ]]&gt; \\x01\\x1B[31mred\\x1B[0m "
    "\xef\xbf\xbd\xef\xbf\xbd bad \\uFFFE nul:\\x00:end\n</system-out>\n"
"      <system-err>to stderr\n</system-err>\n"
"    </testcase>\n"
"  </testsuite>\n"
"</testsuites>\n";

START_TEST(test_exact_document)
{
	struct reporter *r = new_junit();
	struct run_summary s = fx_summary(fx_reports, 2);
	char host[256], *want, *got, *at;

	fx_start(r, &fx_run_info);
	fx_result(r, &fx_reports[0]);
	fx_result(r, &fx_reports[1]);
	r->ops->run_end(r, &s);
	r->ops->free(r);

	ck_assert_int_eq(gethostname(host, sizeof host), 0);
	want = xmalloc(sizeof expected_two + strlen(host));
	at = strstr(expected_two, "@HOST@");
	ck_assert_ptr_nonnull(at);
	sprintf(want, "%.*s%s%s", (int)(at - expected_two), expected_two, host,
	    at + 6);
	got = fx_slurp(report, NULL);
	ck_assert_ptr_nonnull(got);
	ck_assert_str_eq(got, want);
	free(got);
	free(want);
	ck_assert_int_eq(xmllint_valid(report), 0);
}
END_TEST

/* Each outcome becomes the element a CI server counts it by. */
START_TEST(test_verdict_elements)
{
	struct reporter *r = new_junit();
	char *got;

	fx_run_all(r);
	r->ops->free(r);
	got = fx_slurp(report, NULL);
	ck_assert_ptr_nonnull(got);
	ck_assert_ptr_nonnull(strstr(got, "<testsuites name=\"distmgr\" "
	    "tests=\"10\" failures=\"2\" errors=\"3\" skipped=\"3\""));
	ck_assert_ptr_nonnull(strstr(got, "<error message=\"fixture init "
	    "failed\" type=\"error\">"));
	ck_assert_ptr_nonnull(strstr(got, "<error message=\"crashed: SIGSEGV "
	    "(signal 11)\" type=\"crash\">"));
	ck_assert_ptr_nonnull(strstr(got, "<error message=\"timed out after "
	    "5 s\" type=\"timeout\">"));
	ck_assert_ptr_nonnull(strstr(got, "<skipped message=\"no network&#10;"
	    "here\"/>"));
	ck_assert_ptr_nonnull(strstr(got, "<skipped message=\"expected "
	    "failure: bug #12\"/>"));
	ck_assert_ptr_nonnull(strstr(got, "<failure message=\"passed, but is "
	    "marked todo: bug 7\" type=\"xpass\">"));
	ck_assert_ptr_nonnull(strstr(got, "<skipped message=\"not run: "
	    "stopped after 1 failure (-x)\"/>"));
	ck_assert_ptr_nonnull(strstr(got, "<property name=\"attempts\" "
	    "value=\"2\"/>"));
	ck_assert_ptr_nonnull(strstr(got, "<property name=\"host\" "
	    "value=\"farm1\"/>"));
	free(got);
}
END_TEST

/* A crash in the middle of a run must leave the previous report. */
START_TEST(test_atomic_replacement)
{
	struct reporter *r;
	FILE *fp = fopen(report, "w");
	char *got;

	ck_assert_ptr_nonnull(fp);
	fputs("OLD", fp);
	fclose(fp);

	r = new_junit();
	fx_start(r, &fx_run_info);
	for (size_t i = 0; i < FX_NREPORTS; i++)
		fx_result(r, &fx_reports[i]);
	got = fx_slurp(report, NULL);
	ck_assert_str_eq(got, "OLD");
	free(got);
	/* The parts are unlinked at once: a crash leaves no litter. */
	ck_assert_int_eq(count_litter(), 0);
	/* Freed without run_end (distmgr died or gave up): still OLD. */
	r->ops->free(r);
	got = fx_slurp(report, NULL);
	ck_assert_str_eq(got, "OLD");
	free(got);

	r = new_junit();
	fx_run_all(r);
	r->ops->free(r);
	got = fx_slurp(report, NULL);
	ck_assert_ptr_nonnull(strstr(got, "</testsuites>\n"));
	free(got);
	ck_assert_int_eq(count_litter(), 0);
}
END_TEST

START_TEST(test_huge_output_is_bounded)
{
	struct reporter *r = new_junit();
	struct test_report t = fx_reports[0];
	struct run_summary s;
	size_t big = 8u * 1024 * 1024, len;
	char *out = xmalloc(big + 1), *got;
	struct stat st;

	memset(out, 'x', big);
	memcpy(out, "FIRST", 5);
	memcpy(out + big - 5, "LAST\n", 5);
	out[big] = '\0';
	t.out = out;
	t.out_len = big;
	s = fx_summary(&t, 1);
	fx_start(r, &fx_run_info);
	fx_result(r, &t);
	r->ops->run_end(r, &s);
	r->ops->free(r);
	free(out);

	ck_assert_int_eq(stat(report, &st), 0);
	ck_assert_int_lt(st.st_size, 512 * 1024);
	got = fx_slurp(report, &len);
	ck_assert_ptr_nonnull(strstr(got, "<system-out>FIRST"));
	ck_assert_ptr_nonnull(strstr(got, "\n[... 8126464 bytes omitted ...]\n"));
	ck_assert_ptr_nonnull(strstr(got, "LAST\n</system-out>"));
	free(got);
	ck_assert_int_eq(xmllint_valid(report), 0);
}
END_TEST

/* Every byte value, in every place text goes: still valid XML. */
START_TEST(test_every_byte_is_escaped)
{
	struct reporter *r = new_junit();
	struct test_report t = fx_reports[1];
	struct run_summary s;
	char all[256], msg[256];

	for (int i = 0; i < 256; i++)
		all[i] = (char)i;
	for (int i = 0; i < 255; i++)
		msg[i] = (char)(i + 1);
	msg[255] = '\0';
	t.out = all;
	t.out_len = sizeof all;
	t.err = all;
	t.err_len = sizeof all;
	t.message = msg;
	t.id = "we\"ird/na<me>&\x01";
	t.file = "a\"b<c>.c";
	t.worker = "w\t0\n";
	s = fx_summary(&t, 1);
	fx_start(r, &fx_run_info);
	fx_result(r, &t);
	t.outcome = OUT_SKIP;
	fx_result(r, &t);
	r->ops->run_end(r, &s);
	r->ops->free(r);
	ck_assert_int_eq(xmllint_valid(report), 0);
}
END_TEST

START_TEST(test_xml_escape_rules)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *fp = open_memstream(&buf, &len);

	const char *markup = "<a\tb\nc\r\"'&>";

	xml_escape(fp, markup, strlen(markup), 0);
	fputc('|', fp);
	xml_escape(fp, markup, strlen(markup), 1);
	fputc('|', fp);
	xml_escape(fp, "\x7f\xc3\xa9\xe2\x82", 5, 0);	/* cut é€ */
	fputc('|', fp);
	xml_escape(fp, "\xf0\x9f\x98\x80\xef\xbf\xbf", 7, 0);
	fclose(fp);
	ck_assert_str_eq(buf, "&lt;a\tb\nc&#13;\"'&amp;&gt;|"
	    "&lt;a&#9;b&#10;c&#13;&quot;'&amp;&gt;|"
	    "\\x7F\xc3\xa9\xef\xbf\xbd\xef\xbf\xbd|"
	    "\xf0\x9f\x98\x80\\uFFFF");
	free(buf);
}
END_TEST

START_TEST(test_unwritable_places)
{
	char why[256] = "", path[300];

	ck_assert_ptr_null(reporter_junit_new(tmpdir, why, sizeof why));
	ck_assert_msg(strstr(why, "is a directory") != NULL, "%s", why);
	snprintf(path, sizeof path, "%s/no/such/dir/r.xml", tmpdir);
	ck_assert_ptr_null(reporter_junit_new(path, why, sizeof why));
	ck_assert_msg(strstr(why, "cannot write in") != NULL, "%s", why);
	ck_assert_ptr_null(reporter_junit_new("", why, sizeof why));
}
END_TEST

START_TEST(test_clip_keeps_characters_whole)
{
	struct rpt_clip c;
	/* "é" is two bytes: no cut may fall between them. */
	const char *s = "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9";

	rpt_clip(s, 12, 6, &c);
	ck_assert_uint_eq(c.head_len % 2, 0);
	ck_assert_uint_eq(c.tail_len % 2, 0);
	ck_assert_uint_eq(c.head_len + c.omitted + c.tail_len, 12);
	ck_assert_uint_le(c.head_len + c.tail_len, 6);
	rpt_clip(s, 12, 100, &c);
	ck_assert_uint_eq(c.head_len, 12);
	ck_assert_uint_eq(c.omitted, 0);
	ck_assert_ptr_null(c.tail);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("reporter-junit");
	TCase *tc = tcase_create("junit");
	SRunner *sr;
	int nf;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_full_run_validates);
	tcase_add_test(tc, test_second_run_replaces);
	tcase_add_test(tc, test_exact_document);
	tcase_add_test(tc, test_verdict_elements);
	tcase_add_test(tc, test_atomic_replacement);
	tcase_add_test(tc, test_huge_output_is_bounded);
	tcase_add_test(tc, test_every_byte_is_escaped);
	tcase_add_test(tc, test_xml_escape_rules);
	tcase_add_test(tc, test_unwritable_places);
	tcase_add_test(tc, test_clip_keeps_characters_whole);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	nf = srunner_ntests_failed(sr);
	srunner_free(sr);
	return nf == 0 ? 0 : 1;
}
