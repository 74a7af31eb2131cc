/*
 * many.c - 2500 tests, generated: enough for a test list in three
 * suite_tests pieces (1000, 1000, 500).
 */
#include <distmgr.h>

#define T1(n)	DM_TEST(many, t##n) { DM_ASSERT(1); }
#define T10(n)	T1(n##0) T1(n##1) T1(n##2) T1(n##3) T1(n##4) \
		T1(n##5) T1(n##6) T1(n##7) T1(n##8) T1(n##9)
#define T100(n)	T10(n##0) T10(n##1) T10(n##2) T10(n##3) T10(n##4) \
		T10(n##5) T10(n##6) T10(n##7) T10(n##8) T10(n##9)

T100(00) T100(01) T100(02) T100(03) T100(04)
T100(05) T100(06) T100(07) T100(08) T100(09)
T100(10) T100(11) T100(12) T100(13) T100(14)
T100(15) T100(16) T100(17) T100(18) T100(19)
T100(20) T100(21) T100(22) T100(23) T100(24)
