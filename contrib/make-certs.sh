#!/bin/sh
# make-certs.sh - a farm CA and certificates for distworker --listen and
# distmgr --tx tcp=..., with the openssl command (see distworker(8)).
#
#   make-certs.sh DIR ca                    the CA: DIR/ca.pem, DIR/ca.key
#   make-certs.sh DIR server NAME [SAN...]  DIR/NAME.pem, DIR/NAME.key for a
#                                           daemon; SANs as IP:10.0.0.2 or
#                                           DNS:farm1.example.org
#   make-certs.sh DIR client NAME           DIR/NAME.pem, DIR/NAME.key for a
#                                           manager
#
# Keys are EC P-256; certificates last 825 days. Keep ca.key offline: it
# signs every key the farm trusts.
set -eu
dir=$1
what=$2
umask 077
mkdir -p "$dir"
cd "$dir"

case "$what" in
ca)
	openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
	    -keyout ca.key -out ca.pem -days 825 -subj "/CN=distmgr farm CA" \
	    -addext "basicConstraints=critical,CA:TRUE" \
	    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
	;;
server|client)
	name=$3
	shift 3
	if [ "$what" = server ]; then
		san="DNS:localhost,IP:127.0.0.1"
		for s in "$@"; do san="$san,$s"; done
		ext="extendedKeyUsage=serverAuth
subjectAltName=$san"
	else
		ext="extendedKeyUsage=clientAuth"
	fi
	openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
	    -keyout "$name.key" -out "$name.csr" -subj "/CN=$name" 2>/dev/null
	printf '%s\n' "basicConstraints=CA:FALSE" "keyUsage=digitalSignature" \
	    "$ext" >"$name.ext"
	openssl x509 -req -in "$name.csr" -CA ca.pem -CAkey ca.key \
	    -CAcreateserial -out "$name.pem" -days 825 \
	    -extfile "$name.ext" 2>/dev/null
	rm -f "$name.csr" "$name.ext"
	;;
*)
	echo "usage: make-certs.sh DIR ca | server NAME [SAN...] | client NAME" >&2
	exit 4
	;;
esac
