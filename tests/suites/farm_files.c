/*
 * farm_files.c - tests that read what --ship sent: run with the shipped
 * tree as their directory (//chdir=data), they find its files, with the
 * content and the permission bits they had on the manager's machine.
 */
#include <sys/stat.h>

#include <distmgr.h>
#include <stdio.h>
#include <string.h>

/* The first line of path, without its newline ("" when unreadable). */
static const char *
first_line(const char *path)
{
	static char buf[256];
	FILE *fp = fopen(path, "r");

	buf[0] = '\0';
	if (fp == NULL)
		return buf;
	if (fgets(buf, sizeof buf, fp) == NULL)
		buf[0] = '\0';
	fclose(fp);
	buf[strcspn(buf, "\n")] = '\0';
	return buf;
}

DM_TEST(files, reads_a_shipped_file)
{
	DM_ASSERT_STR_EQ(first_line("a.txt"), "shipped content");
}

DM_TEST(files, reads_a_subdirectory)
{
	DM_ASSERT_STR_EQ(first_line("sub/b.txt"), "in a subdirectory");
}

DM_TEST(files, keeps_the_mode)
{
	struct stat sb;

	DM_ASSERT_EQ(stat("tool.sh", &sb), 0);
	DM_ASSERT(sb.st_mode & S_IXUSR, "tool.sh lost its execute bit");
}

DM_TEST(files, ignored_files_stay_home)
{
	struct stat sb;

	DM_ASSERT_NE(stat("junk.o", &sb), 0);
}
