/*
 * common.h - what both daemons use and nothing else: logging, allocation
 * that cannot fail, clocks, file-descriptor flags, sha256, base64 and
 * UTF-8 repair.
 *
 * Nothing here knows about frames, commands, tests or scheduling; it must
 * stay usable from any part of the tree without pulling others in.
 */
#ifndef DM_COMMON_H
#define DM_COMMON_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#define DM_VERSION "0.1.0"

#define DM_NORETURN __attribute__((noreturn))
#define DM_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define DM_NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* log.c */
enum log_level { LOG_LVL_ERROR, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };
void	log_init(const char *progname, enum log_level level);
void	log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* Send log lines to fd (default: 2). The caller keeps fd open. */
void	log_set_fd(int fd);
/* Send log lines to syslog(3), facility daemon, instead (or no longer). */
void	log_set_syslog(int on);
/* Start each line written to the fd with the local time (for a file). */
void	log_set_timestamps(int on);
const char *log_progname(void);
void	log_error(const char *fmt, ...) DM_PRINTF(1, 2);
void	log_warn(const char *fmt, ...) DM_PRINTF(1, 2);
void	log_info(const char *fmt, ...) DM_PRINTF(1, 2);
void	log_debug(const char *fmt, ...) DM_PRINTF(1, 2);
/* For invariants and start-up errors only; never for a peer's input. */
void	fatal(const char *fmt, ...) DM_PRINTF(1, 2) DM_NORETURN;	/* + errno */
void	fatalx(const char *fmt, ...) DM_PRINTF(1, 2) DM_NORETURN;

/* xmalloc.c: out of memory is fatal; callers never check for NULL. */
void	*xmalloc(size_t size);
void	*xcalloc(size_t nmemb, size_t size);
void	*xreallocarray(void *ptr, size_t nmemb, size_t size);
char	*xstrdup(const char *s);
char	*xstrndup(const char *s, size_t n);
int	 xasprintf(char **ret, const char *fmt, ...) DM_PRINTF(2, 3);
int	 xvasprintf(char **ret, const char *fmt, va_list ap) DM_PRINTF(2, 0);

/* clock.c */
double	 clock_mono(void);	/* seconds on the monotonic clock */
uint64_t clock_mono_ns(void);
double	 clock_wall(void);	/* seconds since the epoch */

/* fdutil.c: 0 on success, -1 with errno. */
int	fd_set_nonblock(int fd, int on);
int	fd_set_cloexec(int fd, int on);
/* Move fd to a number >= minfd, close-on-exec; returns the new fd or -1. */
int	fd_move_above(int fd, int minfd);

/* sha256.c */
#define SHA256_HEX_LEN 64
struct sha256_ctx;
struct sha256_ctx *sha256_new(void);
void	sha256_update(struct sha256_ctx *, const void *data, size_t len);
/* Writes 64 hex digits and a NUL into out, and frees the context. */
void	sha256_finish_hex(struct sha256_ctx *, char out[SHA256_HEX_LEN + 1]);
void	sha256_hex(const void *data, size_t len, char out[SHA256_HEX_LEN + 1]);

/* base64.c (standard alphabet, padded) */
size_t	base64_encoded_len(size_t len);	/* without the NUL */
/* Writes base64_encoded_len(len) characters and a NUL into out. */
void	base64_encode(const void *data, size_t len, char *out);
/* Decodes into out (room for len * 3 / 4 bytes); returns the decoded
 * length, or -1 when in is not canonical padded base64. */
long	base64_decode(const char *in, size_t len, void *out);

/* utf8.c */
/* Length of the longest prefix of p[0..len) that is valid UTF-8. */
size_t	utf8_valid_prefix(const char *p, size_t len);
/* A NUL-terminated copy of p[0..len) with every invalid sequence and NUL
 * byte replaced by U+FFFD; the result is valid UTF-8. Caller frees. */
char	*utf8_repair(const char *p, size_t len, size_t *outlen);

#endif /* DM_COMMON_H */
