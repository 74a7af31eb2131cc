/*
 * protocol.h - the wire both daemons speak: frames (a 4-byte big-endian
 * length and one JSON object), the AMP-style ask/answer/error layer over a
 * libevent bufferevent, command tables with argument checks, and streams
 * of chunks for payloads larger than a frame.
 *
 * Knows nothing of tests, suites or scheduling. The format is documented
 * for humans in man/distmgr-protocol.7; keep the two in step.
 */
#ifndef DM_PROTOCOL_H
#define DM_PROTOCOL_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct evbuffer;
struct bufferevent;
struct event_base;

#define DM_PROTOCOL_VERSION 1

/* ---- frame.c ---------------------------------------------------------- */

#define FRAME_HEADER_SIZE	4
#define FRAME_LIMIT_PREAUTH	(64u * 1024)	/* until the peer is trusted */
#define FRAME_LIMIT_DEFAULT	(1024u * 1024)	/* after */
#define FRAME_LIMIT_MAX		(64u * 1024 * 1024) /* the most a limit may be */
#define FRAME_MAX_DEPTH		32	/* nesting of objects and arrays */

enum frame_error {
	FRAME_E_NONE = 0,
	FRAME_E_EMPTY,		/* length 0 */
	FRAME_E_TOO_LONG,	/* length over the connection's limit */
	FRAME_E_NOT_JSON,	/* not one JSON text */
	FRAME_E_NOT_OBJECT,	/* JSON, but not an object */
	FRAME_E_BAD_UTF8,	/* invalid UTF-8 or a NUL character */
	FRAME_E_TOO_DEEP,	/* nested deeper than FRAME_MAX_DEPTH */
	FRAME_E_DUPLICATE_KEY,	/* an object with a key twice */
	FRAME_E_ENCODE,		/* sender side: cannot encode the object */
};

struct frame_err {
	enum frame_error code;
	char		 text[200];	/* a sentence for humans */
};

/* Takes one frame off the front of in. Returns 1 with *out set (caller
 * owns it), 0 when in does not yet hold a whole frame (nothing consumed),
 * -1 with err filled when the bytes are not a valid frame (the caller must
 * close the connection; what was consumed is unspecified). The length is
 * checked against limit before any byte of the payload is looked at. */
int	frame_decode(struct evbuffer *in, size_t limit, json_t **out,
	    struct frame_err *err);
/* Same, over a plain buffer: returns the bytes one frame used (and sets
 * *out), 0 if more are needed, -1 on error. For the fuzzer and tests. */
long	frame_decode_mem(const void *data, size_t len, size_t limit,
	    json_t **out, struct frame_err *err);
/* Appends obj as one frame. -1 (and nothing appended) when it would be
 * longer than limit (FRAME_E_TOO_LONG), or is a frame the peer would
 * refuse (FRAME_E_NOT_OBJECT, FRAME_E_TOO_DEEP, FRAME_E_BAD_UTF8 for a
 * string holding U+0000), or cannot be encoded at all (FRAME_E_ENCODE). */
int	frame_encode(struct evbuffer *out, const json_t *obj, size_t limit,
	    struct frame_err *err);
/* flat.c: a flat object of short printable-ASCII strings, numbers,
 * booleans and nulls, parsed fast; NULL when the text is anything else,
 * for the general parser to decide. Never accepts what jansson would
 * refuse, never differs from what it would build. */
json_t	*flat_parse(const unsigned char *p, size_t len);
/* "FRAME_TOO_LONG" and the like, for logs and tests. */
const char *frame_error_name(enum frame_error);

/* ---- amp.c ------------------------------------------------------------ */

/* Error codes every peer understands; commands add their own. */
#define AMP_E_UNHANDLED		"UNHANDLED"	/* no such command */
#define AMP_E_BAD_ARGUMENT	"BAD_ARGUMENT"	/* missing or mistyped */
#define AMP_E_CONNECTION_LOST	"CONNECTION_LOST" /* asked, peer gone */
#define AMP_E_FAILED		"FAILED"	/* handler failed, no reason */

/* Output buffered beyond this counts as congested: producers wait for the
 * drain callback instead of buffering without bound. */
#define AMP_OUTPUT_HIGH		(4u * 1024 * 1024)
#define AMP_OUTPUT_LOW		(1u * 1024 * 1024)

enum amp_type {
	AMP_T_STRING = 1,
	AMP_T_INT,
	AMP_T_NUMBER,		/* integer or real */
	AMP_T_BOOL,
	AMP_T_ARRAY,
	AMP_T_OBJECT,
	AMP_T_ANY,
};

struct amp_arg {
	const char	*name;
	enum amp_type	 type;
	int		 optional;
};

struct amp_conn;
struct amp_request;

/* Runs for a received command whose arguments passed the table's checks.
 * box is the whole received box, borrowed for the call. For an ask the
 * handler answers with amp_answer() or amp_fail(), now or later (it then
 * keeps req); returning -1 without answering makes the layer answer
 * FAILED. For a tell (no _ask) req is still valid during the call, and
 * answering it does nothing. */
typedef int (*amp_handler_fn)(struct amp_request *req, json_t *box);

struct amp_command {
	const char		*name;
	amp_handler_fn		 handler;
	const struct amp_arg	*args;	/* ends with { NULL }; may be NULL */
};

struct amp_error {
	const char	*code;
	const char	*description;
};

/* Called exactly once per ask: with the answer box (borrowed; its fields
 * other than _answer are the result) and err NULL, or with answer NULL
 * and err set (the peer's error, or CONNECTION_LOST). */
typedef void (*amp_answer_fn)(struct amp_conn *conn, json_t *answer,
	    const struct amp_error *err, void *arg);

struct amp_conn_cbs {
	/* The connection is gone (peer closed, I/O error, broken frame, or
	 * amp_conn_close). reason is a sentence. Called once, from the
	 * event loop, after every outstanding ask has been failed (an ask
	 * made inside on_close is failed as soon as it returns); the
	 * connection is freed when it returns. */
	void	(*on_close)(struct amp_conn *, const char *reason, void *ctx);
	/* Output fell to AMP_OUTPUT_LOW after amp_conn_congested() said
	 * yes: producers may resume. Optional. */
	void	(*on_drain)(struct amp_conn *, void *ctx);
};

/* Wraps bev (taken: freed with the connection). Reading starts at once
 * with the pre-authentication frame limit; raise it with
 * amp_conn_set_limit() when the peer is trusted. table, cbs and ctx are
 * borrowed and must outlive the connection. */
struct amp_conn *amp_conn_new(struct bufferevent *bev,
	    const struct amp_command *table, const struct amp_conn_cbs *cbs,
	    void *ctx);
/* The same over two one-way bufferevents (a worker's stdin and stdout
 * when they are separate pipes); both are taken. */
struct amp_conn *amp_conn_new_split(struct bufferevent *in,
	    struct bufferevent *out, const struct amp_command *table,
	    const struct amp_conn_cbs *cbs, void *ctx);
void	 amp_conn_set_limit(struct amp_conn *, size_t limit);
size_t	 amp_conn_limit(const struct amp_conn *);
void	 amp_conn_set_table(struct amp_conn *, const struct amp_command *);
void	*amp_conn_ctx(const struct amp_conn *);
void	 amp_conn_set_ctx(struct amp_conn *, void *ctx);
/* A name for log lines ("w3", "10.0.0.2:7700"); copied. */
void	 amp_conn_set_name(struct amp_conn *, const char *name);
const char *amp_conn_name(const struct amp_conn *);
struct bufferevent *amp_conn_bev(const struct amp_conn *);
/* Closes the connection from the event loop, never inside the caller:
 * safe to call from any callback, more than once. With flush, what was
 * already sent is written first (bounded by AMP_FLUSH_TIMEOUT). */
#define AMP_FLUSH_TIMEOUT 5.0
void	 amp_conn_close(struct amp_conn *, const char *reason, int flush);
int	 amp_conn_closing(const struct amp_conn *);
/* Stop and resume reading (backpressure toward the peer). */
void	 amp_conn_pause(struct amp_conn *);
void	 amp_conn_resume(struct amp_conn *);
int	 amp_conn_congested(const struct amp_conn *);
size_t	 amp_conn_output_len(const struct amp_conn *);
/* Write what is buffered now, without waiting for the event loop (the
 * in-process runner does this before each test so that a crash cannot
 * lose a result already produced). Returns 0 when everything was
 * written, 1 when some is left (the loop will finish it), -1 on error
 * or when closing. Over TLS or a filtering bufferevent nothing can be
 * written behind its back: it returns 1 if anything is pending. If this
 * ends congestion, on_drain runs from the loop. */
int	 amp_conn_flush_now(struct amp_conn *);
/*
 * Sends an ask and waits for its reply without the event loop, for a
 * caller that holds the loop: an in-process test blocked in dm_lock.
 * Frames that arrive meanwhile are kept, in order, and dispatched from
 * the loop once it runs again - except a command named inline_cmd (may
 * be NULL), handled at once, so that a peer waiting on its own ask
 * (a ping) cannot deadlock with us. Only over plain sockets or pipes.
 * args (may be NULL) is stolen. Returns 0 with *reply the answer box, 1
 * with *reply the error box (both the caller's to decref), or -1 when
 * there is no reply: the connection is closing, broken or not plain.
 */
int	 amp_ask_sync(struct amp_conn *, const char *command, json_t *args,
	    const char *inline_cmd, json_t **reply);
/* Frames received and sent, for benchmarks and stats. */
void	 amp_conn_counters(const struct amp_conn *, uint64_t *frames_in,
	    uint64_t *frames_out, uint64_t *bytes_in, uint64_t *bytes_out);

/* Sends a command that wants an answer; cb runs exactly once, from the
 * event loop, never inside this call. args (may be NULL) is stolen.
 * Returns 0 when sent, -1 when not: on a closing connection cb then gets
 * CONNECTION_LOST; for a box that cannot be framed (over the limit, too
 * deep) it gets FAILED with a description saying why. */
int	amp_ask(struct amp_conn *, const char *command, json_t *args,
	    amp_answer_fn cb, void *arg);
/* Sends a command that wants no answer. args (may be NULL) is stolen.
 * Returns -1 if it could not be queued (closing, or too large). */
int	amp_tell(struct amp_conn *, const char *command, json_t *args);
/* The same for a box the caller has encoded itself, for the hottest
 * tells (a worker's per-test ones), where building and dumping a json_t
 * costs more than the work reported. text is len bytes of one JSON
 * object holding "_command", in UTF-8, without NUL, nested no deeper than
 * FRAME_MAX_DEPTH: the caller answers for that, only the braces, NUL and
 * the limit are checked here. Framed, counted and flow-controlled like
 * amp_tell. Returns -1 when closing or not sendable. */
int	amp_tell_encoded(struct amp_conn *, const void *text, size_t len);

/* Answering a received ask. result (may be NULL) is stolen and must not
 * hold keys starting with '_'. Either call frees req; on a request whose
 * connection has gone they only free. An answer that cannot be framed
 * (over the limit) reaches the asker as FAILED saying so; a description
 * longer than 2048 bytes is cut there. */
void	amp_answer(struct amp_request *req, json_t *result);
void	amp_fail(struct amp_request *req, const char *code,
	    const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Frees a kept request without answering (its connection is gone). */
void	amp_request_drop(struct amp_request *req);
/* The connection the request came on, or NULL once it has closed. */
struct amp_conn *amp_request_conn(const struct amp_request *req);
const char *amp_request_command(const struct amp_request *req);
int	amp_request_wants_answer(const struct amp_request *req);

/* Checks box against args; 0, or -1 with a sentence in why. Exposed for
 * tests and for checking nested objects with the same rules. */
int	amp_check_args(json_t *box, const struct amp_arg *args, char *why,
	    size_t whylen);
const char *amp_type_name(enum amp_type);

/* ---- stream.c --------------------------------------------------------- */

/* A stream carries one payload larger than a frame as numbered chunks:
 *   {"_command": C, "stream": ID, "seq": N, "data": ..., "last": B, ...}
 * data is base64 for binary streams and text (valid UTF-8) for text ones.
 * The receiver reassembles in order under a total cap. */
#define STREAM_CHUNK_DEFAULT	(256u * 1024)	/* raw bytes per chunk */

struct stream_rx;

/* A reassembler that holds at most cap bytes; binary says whether data
 * is base64. */
struct stream_rx *stream_rx_new(size_t cap, int binary);
void	stream_rx_free(struct stream_rx *);
/* Adds one chunk box. Returns 1 when it was the last chunk, 0 when more
 * are expected, -1 with a sentence in why (out of order, bad base64,
 * over the cap: the sentence names the cap). */
int	stream_rx_add(struct stream_rx *, json_t *chunk, char *why,
	    size_t whylen);
const unsigned char *stream_rx_data(const struct stream_rx *, size_t *len);
/* Takes the reassembled bytes (NUL-terminated; caller frees) and resets
 * the reassembler. */
unsigned char *stream_rx_take(struct stream_rx *, size_t *len);

/* Sends data as chunks of at most chunk bytes (0: the default) with
 * amp_tell; fewer when the connection's frame limit needs it, so that
 * every chunk fits in a frame. extra (may be NULL, borrowed) is merged
 * into every chunk. Binary data is base64-encoded; text is repaired to
 * valid UTF-8 and cut only between characters (one character longer
 * than chunk goes whole). Returns 0, or -1 if a chunk could not be
 * queued. Sends everything at once: for big payloads drive stream_tx
 * instead. */
int	stream_send(struct amp_conn *, const char *command, const char *id,
	    const void *data, size_t len, int binary, size_t chunk,
	    json_t *extra);

/* A paced sender for big binary payloads: sends chunks while the
 * connection is not congested; call stream_tx_pump() again from
 * on_drain. Chunks are sized as stream_send's. data is borrowed until
 * stream_tx_free(). */
struct stream_tx;
struct stream_tx *stream_tx_new(struct amp_conn *, const char *command,
	    const char *id, const void *data, size_t len, size_t chunk,
	    json_t *extra);
/* Returns 1 when all chunks are queued, 0 when it stopped for
 * congestion, -1 on error. */
int	stream_tx_pump(struct stream_tx *);
void	stream_tx_free(struct stream_tx *);

/* ---- tls.c ------------------------------------------------------------ */

/*
 * TLS with both sides authenticated by one farm CA: the daemon demands a
 * client certificate signed by it, the manager verifies the daemon's
 * certificate (and its name or address). TLS 1.2 is the oldest accepted.
 */
struct ssl_ctx_st;
struct tls_files {
	const char	*ca;		/* PEM: the CA that signs the peers */
	const char	*cert;		/* PEM: our certificate (chain) */
	const char	*key;		/* PEM: its private key */
};

/* NULL with a sentence in why when a file is missing or does not fit. */
struct ssl_ctx_st *tls_server_ctx(const struct tls_files *, char *why,
	    size_t whylen);
struct ssl_ctx_st *tls_client_ctx(const struct tls_files *, char *why,
	    size_t whylen);
void	 tls_ctx_free(struct ssl_ctx_st *);
/* A bufferevent doing the server or client side of the handshake on fd
 * (taken). peer is the name or address the client expects in the
 * server's certificate. BEV_EVENT_CONNECTED reports success,
 * BEV_EVENT_ERROR failure (tls_error() says why). NULL on failure. */
struct bufferevent *tls_accept(struct event_base *, struct ssl_ctx_st *,
	    int fd);
struct bufferevent *tls_connect(struct event_base *, struct ssl_ctx_st *,
	    int fd, const char *peer);
/* Why the handshake or the connection failed, for humans. */
void	 tls_error(struct bufferevent *, char *buf, size_t size);
/* The peer certificate's subject CN (or "?"), for logs. */
void	 tls_peer_name(struct bufferevent *, char *buf, size_t size);
/* After a BEV_EVENT_ERROR on an established connection: a sentence in
 * buf and 1 when TLS saw the error (a peer gone without close_notify is
 * "closed by peer"), 0 when it was not TLS's (errno tells). */
int	 tls_conn_error(struct bufferevent *, char *buf, size_t size);
/* Whether bev is a TLS one. Such a connection, once an error is
 * reported on it, reads nothing more either. */
int	 tls_is_tls(struct bufferevent *);

/* ---- jsonutil.c ------------------------------------------------------- */

/* A JSON string from arbitrary bytes, repaired to valid UTF-8. Never
 * NULL. */
json_t	*json_string_lossy(const char *p, size_t len);
/* Lookups that give a default when the key is missing or mistyped. */
const char *json_get_str(const json_t *obj, const char *key,
	    const char *dflt);
long long json_get_int(const json_t *obj, const char *key, long long dflt);
double	json_get_num(const json_t *obj, const char *key, double dflt);
int	json_get_bool(const json_t *obj, const char *key, int dflt);

#endif /* DM_PROTOCOL_H */
