/*
 * stream.c - payloads larger than a frame (a suite binary, a test's long
 * output) as numbered chunks, each one frame:
 *
 *   {"_command": C, "stream": ID, "seq": N, "data": D, "last": B, ...}
 *
 * The receiver takes chunks strictly in order and refuses to hold more
 * than the cap it was given: the cap is checked before a chunk is
 * decoded or copied. Binary data is base64; text is valid UTF-8, cut
 * only between characters so that no chunk splits one.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "protocol.h"

struct stream_rx {
	size_t		 cap;
	int		 binary;
	int		 done;
	unsigned long long next_seq;
	unsigned char	*buf;
	size_t		 len;
	size_t		 size;
};

struct stream_rx *
stream_rx_new(size_t cap, int binary)
{
	struct stream_rx *rx = xcalloc(1, sizeof *rx);

	rx->cap = cap;
	rx->binary = binary;
	return rx;
}

void
stream_rx_free(struct stream_rx *rx)
{
	if (rx == NULL)
		return;
	free(rx->buf);
	free(rx);
}

static void
stream_rx_reserve(struct stream_rx *rx, size_t more)
{
	size_t want = rx->len + more + 1;

	if (want <= rx->size)
		return;
	if (rx->size * 2 > want)
		want = rx->size * 2;
	if (want > rx->cap + 1)
		want = rx->cap + 1;
	rx->buf = xreallocarray(rx->buf, 1, want);
	rx->size = want;
}

/* The decoded size of canonical base64 text of length n, or -1 when n
 * cannot be canonical (then the size would underflow: "=" is 0 - 1). */
static long
stream_b64_decoded_len(const char *s, size_t n)
{
	size_t len = n / 4 * 3;

	if (n % 4 != 0)
		return -1;
	if (n >= 1 && s[n - 1] == '=')
		len--;
	if (n >= 2 && s[n - 2] == '=')
		len--;
	return (long)len;
}

int
stream_rx_add(struct stream_rx *rx, json_t *chunk, char *why, size_t whylen)
{
	json_t *jseq = json_object_get(chunk, "seq");
	json_t *jdata = json_object_get(chunk, "data");
	const char *data;
	size_t n, add;
	long got, declen = 0;

	if (rx->done) {
		snprintf(why, whylen, "chunk after the last one");
		return -1;
	}
	if (!json_is_integer(jseq) || !json_is_string(jdata)) {
		snprintf(why, whylen, "chunk needs an integer 'seq' and a "
		    "string 'data'");
		return -1;
	}
	if ((unsigned long long)json_integer_value(jseq) != rx->next_seq ||
	    json_integer_value(jseq) < 0) {
		snprintf(why, whylen, "chunk %lld out of order (expected %llu)",
		    (long long)json_integer_value(jseq), rx->next_seq);
		return -1;
	}
	data = json_string_value(jdata);
	n = json_string_length(jdata);
	if (rx->binary && (declen = stream_b64_decoded_len(data, n)) < 0) {
		snprintf(why, whylen, "chunk %llu is not valid base64",
		    rx->next_seq);
		return -1;
	}
	add = rx->binary ? (size_t)declen : n;
	if (add > rx->cap - rx->len) {
		snprintf(why, whylen, "stream is over its cap of %zu bytes",
		    rx->cap);
		return -1;
	}
	stream_rx_reserve(rx, add);
	if (rx->binary) {
		if ((got = base64_decode(data, n, rx->buf + rx->len)) < 0 ||
		    (size_t)got != add) {
			snprintf(why, whylen, "chunk %llu is not valid base64",
			    rx->next_seq);
			return -1;
		}
	} else
		memcpy(rx->buf + rx->len, data, n);
	rx->len += add;
	rx->buf[rx->len] = '\0';
	rx->next_seq++;
	if (json_is_true(json_object_get(chunk, "last"))) {
		rx->done = 1;
		return 1;
	}
	return 0;
}

const unsigned char *
stream_rx_data(const struct stream_rx *rx, size_t *len)
{
	*len = rx->len;
	return rx->buf != NULL ? rx->buf : (const unsigned char *)"";
}

unsigned char *
stream_rx_take(struct stream_rx *rx, size_t *len)
{
	unsigned char *p = rx->buf;

	if (p == NULL)
		p = (unsigned char *)xstrdup("");
	*len = rx->len;
	rx->buf = NULL;
	rx->len = rx->size = 0;
	rx->next_seq = 0;
	rx->done = 0;
	return p;
}

/* ---- sending ---------------------------------------------------------- */

static int
stream_send_chunk(struct amp_conn *c, const char *command, const char *id,
    unsigned long long seq, const void *p, size_t n, int binary, int last,
    json_t *extra)
{
	json_t *box = json_object(), *data;
	char *b64;

	if (extra != NULL)
		json_object_update(box, extra);
	if (binary) {
		b64 = xmalloc(base64_encoded_len(n) + 1);
		base64_encode(p, n, b64);
		data = json_stringn_nocheck(b64, base64_encoded_len(n));
		free(b64);
	} else
		data = json_string_lossy(p, n);
	json_object_set_new(box, "stream", json_string(id));
	json_object_set_new(box, "seq", json_integer((json_int_t)seq));
	json_object_set_new(box, "data", data);
	json_object_set_new(box, "last", json_boolean(last));
	return amp_tell(c, command, box);
}

/*
 * How many bytes of text from p to send as one chunk of at most chunk
 * bytes without splitting a character: a split character would reach
 * the peer as two U+FFFD. A character longer than chunk goes whole, so a
 * chunk may exceed chunk by up to 3 bytes. Stray continuation bytes are
 * no character: they are cut anywhere, as repair replaces each anyway.
 */
static size_t
stream_text_cut(const unsigned char *p, size_t avail, size_t chunk)
{
	size_t n = avail < chunk ? avail : chunk, cut;

	if (n == avail)
		return n;
	/* p[n] starts the next chunk: while it continues a character, move
	 * the cut back towards that character's lead byte (3 at most). */
	for (cut = n; cut > 0 && n - cut < 3 && (p[cut] & 0xc0) == 0x80;)
		cut--;
	if ((p[cut] & 0xc0) == 0x80)
		return n;
	if (cut > 0)
		return cut;
	/* The first character alone is longer than chunk. */
	for (cut = 1; cut < avail && cut < 4 && (p[cut] & 0xc0) == 0x80;)
		cut++;
	return cut;
}

/*
 * The most raw bytes a chunk on c can carry and still fit in a frame
 * under the connection's limit, with the box around it: base64 takes 4
 * bytes for 3, and text at worst 6 for 1 (a control character becomes
 * \u00XX). Without this a 256 KiB chunk of binary could never pass the
 * 64 KiB limit before authentication, nor one of control characters the
 * 1 MiB limit after.
 */
static size_t
stream_chunk_fit(struct amp_conn *c, const char *command, const char *id,
    json_t *extra, int binary, size_t chunk)
{
	json_t *box = json_object();
	size_t over, limit = amp_conn_limit(c), room, fit;

	if (extra != NULL)
		json_object_update(box, extra);
	json_object_set_new(box, "_command", json_string(command));
	json_object_set_new(box, "stream", json_string(id));
	/* The widest a sequence number can print. */
	json_object_set_new(box, "seq", json_integer(LLONG_MIN));
	json_object_set_new(box, "data", json_string(""));
	json_object_set_new(box, "last", json_false());
	over = json_dumpb(box, NULL, 0, JSON_COMPACT);
	json_decref(box);
	room = over < limit ? limit - over : 0;
	fit = binary ? room / 4 * 3 : room / 6;
	if (fit == 0)
		fit = 1;	/* no room at all: amp_tell will refuse it */
	return chunk < fit ? chunk : fit;
}

int
stream_send(struct amp_conn *c, const char *command, const char *id,
    const void *data, size_t len, int binary, size_t chunk, json_t *extra)
{
	/* No arithmetic on a NULL pointer, even adding 0. */
	const unsigned char *p = data != NULL ? data :
	    (const unsigned char *)"";
	unsigned long long seq = 0;
	size_t off = 0, n;

	if (chunk == 0)
		chunk = STREAM_CHUNK_DEFAULT;
	chunk = stream_chunk_fit(c, command, id, extra, binary, chunk);
	do {
		n = binary ? (len - off < chunk ? len - off : chunk) :
		    stream_text_cut(p + off, len - off, chunk);
		if (stream_send_chunk(c, command, id, seq++, p + off, n,
		    binary, off + n == len, extra) == -1)
			return -1;
		off += n;
	} while (off < len);
	return 0;
}

struct stream_tx {
	struct amp_conn	*conn;
	char		*command;
	char		*id;
	const unsigned char *data;
	size_t		 len;
	size_t		 off;
	size_t		 chunk;
	unsigned long long seq;
	json_t		*extra;
	int		 done;
};

struct stream_tx *
stream_tx_new(struct amp_conn *c, const char *command, const char *id,
    const void *data, size_t len, size_t chunk, json_t *extra)
{
	struct stream_tx *tx = xcalloc(1, sizeof *tx);

	tx->conn = c;
	tx->command = xstrdup(command);
	tx->id = xstrdup(id);
	tx->data = data != NULL ? data : (const unsigned char *)"";
	tx->len = len;
	tx->chunk = chunk != 0 ? chunk : STREAM_CHUNK_DEFAULT;
	tx->extra = extra != NULL ? json_incref(extra) : NULL;
	return tx;
}

int
stream_tx_pump(struct stream_tx *tx)
{
	size_t n, chunk;

	/* Again on each pump: the limit is raised once the peer is
	 * trusted. */
	chunk = stream_chunk_fit(tx->conn, tx->command, tx->id, tx->extra, 1,
	    tx->chunk);
	while (!tx->done) {
		if (amp_conn_congested(tx->conn))
			return 0;
		n = tx->len - tx->off < chunk ? tx->len - tx->off : chunk;
		if (stream_send_chunk(tx->conn, tx->command, tx->id, tx->seq,
		    tx->data + tx->off, n, 1, tx->off + n == tx->len,
		    tx->extra) == -1)
			return -1;	/* nothing sent: a retry resends seq */
		tx->seq++;
		tx->off += n;
		tx->done = tx->off == tx->len;
	}
	return 1;
}

void
stream_tx_free(struct stream_tx *tx)
{
	if (tx == NULL)
		return;
	json_decref(tx->extra);
	free(tx->command);
	free(tx->id);
	free(tx);
}
