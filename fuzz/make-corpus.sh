#!/bin/sh
# make-corpus.sh [DIR] - write the seed corpora for the fuzz harnesses
# into DIR/fuzz_frame/ and DIR/fuzz_amp/ (default: fuzz/corpus). The
# files are committed; run this again after changing a seed here.
#
# A seed is a few frames, valid and broken, behind the harness's own
# prefix: for fuzz_frame one byte choosing the limit and three giving the
# sizes of the pieces the stream is fed in; for fuzz_amp one byte of
# flags (see the top of each harness).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-$top/fuzz/corpus}
tmp=$(mktemp "${TMPDIR:-/tmp}/dmcorpus.XXXXXX")
trap 'rm -f "$tmp"' EXIT

oct() { printf '%03o' "$1"; }

# be32 N: the 4-byte big-endian length N.
be32() {
	printf "\\$(oct $(($1 >> 24 & 255)))\\$(oct $(($1 >> 16 & 255)))"
	printf "\\$(oct $(($1 >> 8 & 255)))\\$(oct $(($1 & 255)))"
}

# frame FMT: one frame whose payload is printf FMT (octal escapes for
# bytes that are not text; write \\ for one backslash; no %).
frame() {
	printf "$1" >"$tmp"
	be32 "$(wc -c <"$tmp")"
	cat "$tmp"
}

# seed HARNESS NAME PREFIX FRAME...: a seed file of PREFIX then frames.
seed() {
	h=$1 name=$2 prefix=$3
	shift 3
	mkdir -p "$dir/$h"
	{
		printf "$prefix"
		for f in "$@"; do
			frame "$f"
		done
	} >"$dir/$h/$name"
}

# raw HARNESS NAME PREFIX BYTES: a seed of exactly these bytes.
raw() {
	mkdir -p "$dir/$1"
	printf "$3$4" >"$dir/$1/$2"
}

deep() {	# deep N: {"a":[[...]]} nested N deep
	s='{"a":' i=1
	while [ $i -lt "$1" ]; do s="$s["; i=$((i + 1)); done
	s="${s}1"
	i=1
	while [ $i -lt "$1" ]; do s="$s]"; i=$((i + 1)); done
	printf '%s}' "$s"
}

rm -rf "$dir/fuzz_frame" "$dir/fuzz_amp"

# ---- fuzz_frame: limit byte (0:16 1:200 2:64K 3:1M) and piece sizes ----
F=fuzz_frame
P1='\003\000\001\007'	# 1 MiB, pieces of 1, 2 and 8 bytes
P2='\002\377\377\377'	# 64 KiB, pieces of 256
P3='\001\003\000\017'	# 200 bytes
P4='\000\001\001\001'	# 16 bytes
seed $F ask "$P1" '{"_command":"run","_ask":"7","suite":0,"tests":[12,13,14]}'
seed $F answer "$P2" '{"_answer":"7","ran":2,"cancelled":false}'
seed $F error "$P1" \
    '{"_error":"8","_error_code":"BAD_ARGUMENT","_error_description":"argument '"'"'tests'"'"' must be an array"}'
seed $F result "$P1" \
    '{"_command":"test_result","suite":0,"test":12,"outcome":"fail","duration":0.0123,"message":"expected 4, got 5","file":"t.c","line":42}'
seed $F unicode "$P2" \
    '{"s":"h\303\251 \342\202\254 \360\237\230\200 \\u00e9\\ud83d\\ude00\\n\\t\\"\\\\"}'
seed $F numbers "$P1" \
    '{"i":-9223372036854775808,"j":9223372036854775807,"r":1.5e300,"z":-0.0,"e":1E-5,"n":null,"t":true}'
seed $F chunk "$P1" \
    '{"_command":"blob","stream":"s","seq":0,"data":"Zm9vYmFy","last":true}'
seed $F three "$P1" '{"a":1}' '{"b":[{},[]]}' '{}'
seed $F small "$P4" '{"a":1}' '{"bb":22}' '{}'
seed $F depth32 "$P1" "$(deep 32)"
seed $F depth33 "$P1" "$(deep 33)"
seed $F not_object "$P3" '[1,2]' '1'
seed $F scalar "$P3" '"text"'
seed $F not_json "$P3" '{"a":'
seed $F trailing "$P3" '{} {}'
seed $F duplicate "$P3" '{"a":1,"a":2}'
seed $F bad_utf8 "$P3" '{"a":"\377"}'
seed $F overlong "$P3" '{"a":"\300\257"}'
seed $F surrogate "$P3" '{"a":"\355\240\200"}'
seed $F escaped_nul "$P3" '{"a":"\\u0000"}'
seed $F raw_nul "$P3" '{"a":"\000"}'
seed $F too_long "$P4" '{"aaaaaaaaaaaaaaaaaaaa":1}'
raw $F empty "$P1" '\000\000\000\000'
raw $F two_gib "$P1" '\200\000\000\000{}'
raw $F truncated "$P1" '\000\000\000\010{"a":'
# Whole inputs that are one flat JSON text, for the flat fast path
# (fuzz_frame also hands the raw input to flat_parse and jansson).
raw $F flat_result '' '{"suite":0,"test":12,"outcome":"pass","duration":1.5e-06,"_command":"test_result"}'
raw $F flat_kinds '' ' { "a" : -0 , "b":-12.5E+3,"c":true,"d":false,"e":null,"f":"","g":0.0 } '
raw $F flat_edges '' '{"a":01,"b":1.,"c":-,"d":1e,"e":"\\n","a":2}'
raw $F flat_big '' '{"i":123456789012345678901,"r":1e999,"s":-9223372036854775808}'

# ---- fuzz_amp: flags (1: raised limit, 2: re-ask from callbacks, 4: sync) ----
A=fuzz_amp
seed $A echo '\000' '{"_command":"echo","_ask":"a1","v":[1,"two",{"3":4}]}'
seed $A typed '\000' \
    '{"_command":"typed","_ask":"t","s":"x","i":1,"n":2.5,"b":true,"a":[],"o":{},"x":null}' \
    '{"_command":"typed","_ask":"u","s":1,"i":1,"x":0}' \
    '{"_command":"typed","_ask":"v","s":"x","i":1}'
seed $A fail '\000' '{"_command":"fail","_ask":"f"}' '{"_command":"fail"}'
seed $A refuse '\000' '{"_command":"refuse","_ask":"r","why":"because"}'
seed $A keep_release '\000' '{"_command":"keep","_ask":"k1"}' \
    '{"_command":"keep","_ask":"k2"}' '{"_command":"release","_ask":"r"}'
seed $A keep_drop '\000' '{"_command":"keep","_ask":"k1"}'
seed $A answers '\002' '{"_answer":"1","x":1}' \
    '{"_error":"2","_error_code":"NOPE","_error_description":"no"}' \
    '{"_answer":"3"}' '{"_answer":"4"}' '{"_answer":"1"}'
seed $A answer_odd_tags '\002' '{"_answer":"01"}' '{"_answer":" 2"}' \
    '{"_answer":2}' '{"_error":"3"}'
seed $A unknown '\000' '{"_command":"nope","_ask":"n"}' \
    '{"_command":"","_ask":"e"}' '{"_command":"nope"}' '{"_command":7}' \
    '{"_command":"echo","_ask":5}' '{"nothing":1}'
seed $A trust '\000' '{"_command":"trust","_ask":"t","limit":1048576}' \
    '{"_command":"echo","_ask":"e","v":"after"}'
seed $A close '\000' '{"_command":"echo","_ask":"1","v":1}' \
    '{"_command":"close","_ask":"c","flush":true}' \
    '{"_command":"echo","_ask":"2","v":2}'
seed $A close_now '\002' '{"_command":"close","flush":false}'
seed $A chunk '\000' \
    '{"_command":"chunk","_ask":"c","stream":"s","seq":0,"data":"Zm9v","last":true,"bin":true}' \
    '{"_command":"chunk","_ask":"d","stream":"s","seq":1,"data":"x"}' \
    '{"_command":"chunk","_ask":"e","stream":"s","seq":0,"data":"Zh==","bin":true}'
seed $A tells '\001' '{"_command":"echo","v":1}' '{"_command":"keep"}' \
    '{"_command":"release"}'
seed $A broken_after '\000' '{"_command":"echo","_ask":"1"}' '[1]'
raw $A empty_frame '\000' '\000\000\000\000'
raw $A too_long '\000' '\000\001\000\001{'
raw $A two_gib '\003' '\200\000\000\000'
raw $A half '\000' '\000\000\000\050{"_command":"echo",'
# amp_ask_sync (flag 4): its own answer is "s4" (three asks went first);
# an echo answered inline, the rest kept for the loop.
seed $A sync_answer '\004' '{"_command":"echo","_ask":"p1","v":1}' \
    '{"_answer":"2"}' '{"_command":"keep","_ask":"k"}' '{"_answer":"s4"}' \
    '{"_command":"release","_ask":"r"}'
seed $A sync_error '\005' \
    '{"_error":"s4","_error_code":"NOT_HELD","_error_description":"no"}'
seed $A sync_broken '\004' '{"_command":"echo","v":1}' '[1]'
