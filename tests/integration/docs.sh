#!/bin/sh
# docs.sh - every long option that distmgr --help and distworker --help
# show is documented in the man page and in the README, and every farm
# spec and modifier of --tx is in all three: a user who reads any one of
# them learns the same options.
. "$(dirname "$0")/lib.sh"

# longs TEXT : the --options a help text names, one a line
longs() {
	printf '%s\n' "$1" | grep -oE -- '--[a-z][a-z-]*' | sort -u
}

# in_man OPT PAGE : mdoc writes --opt as "Fl -opt" or "Fl \-opt", or
# after a "|" in a synopsis
in_man() {
	_o=${1#--}
	grep -qE "(Fl|\|) (\\\\)?-$_o( |$)" "$2"
}

# in_readme OPT : the README names options with a short form by it
# (-j, -v, -q, -x), and the universal ones not at all
in_readme() {
	case "$1" in
	--help|--version|--jobs|--verbose|--quiet|--exitfirst) return 0 ;;
	esac
	grep -qE -- "(^|[ \`(])$1([][ =\`]|$)" "$DM_TOP/README.md"
}

check() {	# check PROGRAM PAGE
	_help=$("$BIN/$1" --help)
	_miss_man=""
	_miss_readme=""
	for o in $(longs "$_help"); do
		in_man "$o" "$DM_TOP/man/$2" || _miss_man="$_miss_man $o"
		in_readme "$o" || _miss_readme="$_miss_readme $o"
	done
	is "$_miss_man" "" "$1 --help: every long option is in $2"
	is "$_miss_readme" "" "$1 --help: every long option is in the README"
}

check distmgr distmgr.1
check distworker distworker.8

HELP=$("$BIN/distmgr" --help)
miss=""
for s in popen ssh= tcp= exec= //chdir= //env: //id= //nice= //worker=; do
	case "$HELP" in *"$s"*) ;; *) miss="$miss help:$s" ;; esac
	grep -qF -- "$s" "$DM_TOP/README.md" || miss="$miss README:$s"
	m=$(printf '%s' "$s" | sed 's|^//||; s|[=:]$||')
	grep -qE "^\.It Cm $m( |$)" "$DM_TOP/man/distmgr.1" ||
	    miss="$miss distmgr.1:$s"
done
is "$miss" "" "every --tx kind and modifier is in --help, the README and distmgr(1)"

# The settings file takes the long options: its page names the farm's.
miss=""
for k in tx ship ship-ignore tls-cert tls-key tls-ca; do
	grep -qE "^$k = " "$DM_TOP/man/distmgr.conf.5" || miss="$miss $k"
done
is "$miss" "" "distmgr.conf(5)'s example sets the farm's options"

done_testing
