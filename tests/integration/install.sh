#!/bin/sh
# install.sh - make install and make uninstall into a DESTDIR, as a
# packager would: the programs, the header, the pkg-config file and the
# manuals land under PREFIX; a suite builds against the installed header
# with pkg-config; the installed distmgr finds the installed distworker;
# uninstall leaves no file behind.
. "$(dirname "$0")/lib.sh"

dest="$T_TMP/dest"
prefix=/opt/dm
set -- make -s -C "$DM_TOP" BUILD="$DM_BUILD" PREFIX="$prefix" \
    DESTDIR="$dest"

run 300 "$@" install
is "$RC" 0 "make install succeeds"
for f in bin/distmgr bin/distworker include/distmgr.h \
    share/pkgconfig/distmgr.pc share/man/man1/distmgr.1 \
    share/man/man3/distmgr.3 share/man/man7/distmgr-protocol.7 \
    share/man/man8/distworker.8; do
	if [ -f "$dest$prefix/$f" ]; then
		ok "installed $f"
	else
		not_ok "installed $f"
	fi
done

pc="$dest$prefix/share/pkgconfig"
run 10 env PKG_CONFIG_PATH="$pc" pkg-config --cflags distmgr
is "$(echo $OUT)" "-I$prefix/include" "pkg-config gives the installed include dir"

cat >"$T_TMP/s.c" <<'SUITE'
#include <distmgr.h>
DM_TEST(inst, works) { DM_ASSERT_EQ(1 + 1, 2); }
SUITE
run 60 cc -shared -fPIC -I"$dest$prefix/include" -o "$T_TMP/s.so" "$T_TMP/s.c"
is "$RC" 0 "a suite builds against the installed header"
run 60 "$dest$prefix/bin/distmgr" --no-cache -j 1 "$T_TMP/s.so"
is "$RC" 0 "the installed distmgr runs it with the installed distworker"
like "$OUT" "distmgr: 1 passed" "and reports the pass"

run 300 "$@" uninstall
is "$RC" 0 "make uninstall succeeds"
left=$(find "$dest" -type f | wc -l)
is "$left" 0 "uninstall leaves no file"
done_testing
