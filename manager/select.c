/*
 * select.c - which tests run: -k and --tags expressions, and --shard.
 *
 * The expression language, for -k over a test's id ("suite/name") and
 * for --tags over its comma-separated tags:
 *
 *     expr    := and ("or" and)*
 *     and     := unary ("and" unary)*
 *     unary   := "not" unary | "(" expr ")" | WORD
 *
 * A WORD is a run of characters other than white space and parentheses.
 * With -k, a word holding a glob character (* ? [) is matched with
 * fnmatch(3) against the whole id, and a word without one is a substring
 * of the id, as pytest's -k does; both ignore case, as pytest's does.
 * With --tags, a word is true when one of the test's tags equals it (or,
 * with glob characters, matches it), case and all: tags are names the
 * suite author chose. An empty expression selects every test.
 *
 * --shard I/N keeps the tests whose id hashes to I-1 modulo N. The hash
 * is 64-bit FNV-1a over the id's bytes followed by MurmurHash3's fmix64
 * finalizer (FNV's low bits alone are poorly mixed for short ids): it
 * depends on the id alone, so every machine of a CI matrix agrees.
 * Changing it moves tests between shards: never do so silently.
 *
 * Nothing here may print: errors go back as sentences naming the column.
 */
#include <ctype.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "manager.h"

/* Parentheses and "not" nest at most this deep: evaluation recurses. */
#define KX_MAX_DEPTH	64

enum kx_kind { KX_ALL, KX_WORD, KX_NOT, KX_AND, KX_OR };

struct kx_node {
	enum kx_kind	 kind;
	char		*word;		/* KX_WORD */
	int		 glob;		/* KX_WORD: has * ? or [ */
	size_t		*kids;		/* KX_NOT (one), KX_AND, KX_OR */
	size_t		 nkids;
};

struct kexpr {
	struct kx_node	*n;
	size_t		 nn;
	size_t		 root;
};

enum kx_tok { TK_END, TK_WORD, TK_LPAREN, TK_RPAREN, TK_AND, TK_OR,
    TK_NOT };

struct kx_parser {
	const char	*text;
	const char	*p;		/* after the current token */
	enum kx_tok	 tok;
	const char	*tok_start;
	size_t		 tok_len;
	int		 depth;
	struct kexpr	*k;
	char		*why;
	size_t		 whylen;
	int		 failed;
};

/* ---- tokens ------------------------------------------------------------ */

static int
kx_word_char(char c)
{
	return c != '\0' && c != '(' && c != ')' &&
	    !isspace((unsigned char)c);
}

static void
kx_next(struct kx_parser *ps)
{
	const char *s = ps->p;

	while (isspace((unsigned char)*s))
		s++;
	ps->tok_start = s;
	ps->tok_len = 1;
	if (*s == '\0') {
		ps->tok = TK_END;
		ps->tok_len = 0;
	} else if (*s == '(')
		ps->tok = TK_LPAREN;
	else if (*s == ')')
		ps->tok = TK_RPAREN;
	else {
		while (kx_word_char(s[ps->tok_len]))
			ps->tok_len++;
		ps->tok = TK_WORD;
		if (ps->tok_len == 3 && strncmp(s, "and", 3) == 0)
			ps->tok = TK_AND;
		else if (ps->tok_len == 2 && strncmp(s, "or", 2) == 0)
			ps->tok = TK_OR;
		else if (ps->tok_len == 3 && strncmp(s, "not", 3) == 0)
			ps->tok = TK_NOT;
	}
	ps->p = s + ps->tok_len;
}

static int
kx_column(const struct kx_parser *ps)
{
	return (int)(ps->tok_start - ps->text) + 1;
}

/* "the end of the expression", "')'", "'foo'" */
static void
kx_describe_tok(const struct kx_parser *ps, char *buf, size_t size)
{
	if (ps->tok == TK_END)
		snprintf(buf, size, "the end of the expression");
	else
		snprintf(buf, size, "'%.*s'", ps->tok_len > 40 ? 40 :
		    (int)ps->tok_len, ps->tok_start);
}

static void
kx_error(struct kx_parser *ps, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
kx_error(struct kx_parser *ps, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (ps->failed++)
		return;			/* the first error is the one to show */
	if (ps->why == NULL || ps->whylen == 0)
		return;
	n = snprintf(ps->why, ps->whylen, "column %d: ", kx_column(ps));
	if (n < 0 || (size_t)n >= ps->whylen)
		return;
	va_start(ap, fmt);
	vsnprintf(ps->why + n, ps->whylen - n, fmt, ap);
	va_end(ap);
}

/* ---- nodes ------------------------------------------------------------- */

static size_t
kx_add(struct kexpr *k, enum kx_kind kind)
{
	k->n = xreallocarray(k->n, k->nn + 1, sizeof *k->n);
	memset(&k->n[k->nn], 0, sizeof k->n[k->nn]);
	k->n[k->nn].kind = kind;
	return k->nn++;
}

static void
kx_add_kid(struct kexpr *k, size_t parent, size_t kid)
{
	struct kx_node *n = &k->n[parent];

	n->kids = xreallocarray(n->kids, n->nkids + 1, sizeof *n->kids);
	n->kids[n->nkids++] = kid;
}

/* ---- the parser (recursive descent; depth bounded) --------------------- */

static size_t kx_parse_or(struct kx_parser *);

/* Checks that an operand follows `after` ("'and'", "'not'", "'('"; NULL
 * at the start). */
static int
kx_want_operand(struct kx_parser *ps, const char *after)
{
	char found[64];

	if (ps->tok == TK_WORD || ps->tok == TK_LPAREN || ps->tok == TK_NOT)
		return 0;
	kx_describe_tok(ps, found, sizeof found);
	if (after == NULL)
		kx_error(ps, "expected a pattern, found %s", found);
	else
		kx_error(ps, "expected a pattern after %s, found %s", after,
		    found);
	return -1;
}

static size_t
kx_parse_unary(struct kx_parser *ps)
{
	size_t node, kid;
	int col;

	if (ps->depth >= KX_MAX_DEPTH) {
		kx_error(ps, "nested too deeply (at most %d levels)",
		    KX_MAX_DEPTH);
		return 0;
	}
	if (ps->tok == TK_NOT) {
		kx_next(ps);
		if (kx_want_operand(ps, "'not'") == -1)
			return 0;
		ps->depth++;
		kid = kx_parse_unary(ps);
		ps->depth--;
		node = kx_add(ps->k, KX_NOT);
		kx_add_kid(ps->k, node, kid);
		return node;
	}
	if (ps->tok == TK_LPAREN) {
		col = kx_column(ps);
		kx_next(ps);
		if (kx_want_operand(ps, "'('") == -1)
			return 0;
		ps->depth++;
		node = kx_parse_or(ps);
		ps->depth--;
		if (!ps->failed && ps->tok != TK_RPAREN) {
			ps->tok_start = ps->text + col - 1;
			kx_error(ps, "'(' is never closed");
		}
		if (!ps->failed)
			kx_next(ps);
		return node;
	}
	/* kx_want_operand let only a word through. */
	node = kx_add(ps->k, KX_WORD);
	ps->k->n[node].word = xstrndup(ps->tok_start, ps->tok_len);
	ps->k->n[node].glob = strpbrk(ps->k->n[node].word, "*?[") != NULL;
	kx_next(ps);
	return node;
}

/* One level of "a OP b OP c" as one node with many kids, so that a long
 * chain costs a loop, not recursion. */
static size_t
kx_parse_chain(struct kx_parser *ps, enum kx_tok op, enum kx_kind kind,
    const char *opname, size_t (*operand)(struct kx_parser *))
{
	size_t first, node;

	first = operand(ps);
	if (ps->failed || ps->tok != op)
		return first;
	node = kx_add(ps->k, kind);
	kx_add_kid(ps->k, node, first);
	while (!ps->failed && ps->tok == op) {
		kx_next(ps);
		if (kx_want_operand(ps, opname) == -1)
			break;
		kx_add_kid(ps->k, node, operand(ps));
	}
	return node;
}

static size_t
kx_parse_and(struct kx_parser *ps)
{
	return kx_parse_chain(ps, TK_AND, KX_AND, "'and'", kx_parse_unary);
}

static size_t
kx_parse_or(struct kx_parser *ps)
{
	return kx_parse_chain(ps, TK_OR, KX_OR, "'or'", kx_parse_and);
}

void
kexpr_free(struct kexpr *k)
{
	size_t i;

	if (k == NULL)
		return;
	for (i = 0; i < k->nn; i++) {
		free(k->n[i].word);
		free(k->n[i].kids);
	}
	free(k->n);
	free(k);
}

struct kexpr *
kexpr_parse(const char *text, char *why, size_t whylen)
{
	struct kx_parser ps = { .text = text, .p = text, .why = why,
	    .whylen = whylen };
	char found[64];

	if (why != NULL && whylen > 0)
		why[0] = '\0';
	ps.k = xcalloc(1, sizeof *ps.k);
	kx_next(&ps);
	if (ps.tok == TK_END) {
		ps.k->root = kx_add(ps.k, KX_ALL);
		return ps.k;
	}
	if (kx_want_operand(&ps, NULL) == 0)
		ps.k->root = kx_parse_or(&ps);
	if (!ps.failed && ps.tok != TK_END) {
		kx_describe_tok(&ps, found, sizeof found);
		if (ps.tok == TK_RPAREN)
			kx_error(&ps, "unexpected ')' with no '(' before it");
		else
			kx_error(&ps, "expected 'and', 'or' or the end of "
			    "the expression, found %s", found);
	}
	if (ps.failed) {
		kexpr_free(ps.k);
		return NULL;
	}
	return ps.k;
}

/* ---- matching ---------------------------------------------------------- */

typedef int (*kx_leaf_fn)(const struct kx_node *, const char *subject);

static int
kx_eval(const struct kexpr *k, size_t i, kx_leaf_fn leaf, const char *subj)
{
	const struct kx_node *n = &k->n[i];
	size_t j;

	switch (n->kind) {
	case KX_ALL:
		return 1;
	case KX_WORD:
		return leaf(n, subj);
	case KX_NOT:
		return !kx_eval(k, n->kids[0], leaf, subj);
	case KX_AND:
		for (j = 0; j < n->nkids; j++)
			if (!kx_eval(k, n->kids[j], leaf, subj))
				return 0;
		return 1;
	case KX_OR:
		for (j = 0; j < n->nkids; j++)
			if (kx_eval(k, n->kids[j], leaf, subj))
				return 1;
		return 0;
	}
	return 0;
}

static int
kx_leaf_id(const struct kx_node *n, const char *id)
{
	if (n->glob)
		return fnmatch(n->word, id, FNM_CASEFOLD) == 0;
	return strcasestr(id, n->word) != NULL;
}

static int
kx_tag_is(const struct kx_node *n, const char *tag, size_t len)
{
	char small[128], *t;
	int hit;

	if (!n->glob)
		return strlen(n->word) == len && memcmp(n->word, tag, len) == 0;
	/* fnmatch wants a C string; tags are short. */
	t = len < sizeof small ? small : xmalloc(len + 1);
	memcpy(t, tag, len);
	t[len] = '\0';
	hit = fnmatch(n->word, t, 0) == 0;
	if (t != small)
		free(t);
	return hit;
}

static int
kx_leaf_tags(const struct kx_node *n, const char *tags)
{
	const char *p = tags, *end;
	size_t len;

	while (*p != '\0') {
		while (*p == ',' || isspace((unsigned char)*p))
			p++;
		end = p + strcspn(p, ",");
		len = (size_t)(end - p);
		while (len > 0 && isspace((unsigned char)p[len - 1]))
			len--;
		if (len > 0 && kx_tag_is(n, p, len))
			return 1;
		p = end;
	}
	return 0;
}

int
kexpr_match(const struct kexpr *k, const char *id)
{
	return kx_eval(k, k->root, kx_leaf_id, id != NULL ? id : "");
}

int
kexpr_match_tags(const struct kexpr *k, const char *tags)
{
	return kx_eval(k, k->root, kx_leaf_tags, tags != NULL ? tags : "");
}

/* ---- --shard ----------------------------------------------------------- */

static uint64_t
shard_hash(const char *id)
{
	uint64_t h = 0xcbf29ce484222325ULL;	/* FNV-1a 64 */
	const unsigned char *p;

	for (p = (const unsigned char *)id; *p != '\0'; p++) {
		h ^= *p;
		h *= 0x100000001b3ULL;
	}
	h ^= h >> 33;				/* fmix64 */
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return h;
}

int
shard_has(const char *id, unsigned i, unsigned n)
{
	if (n == 0 || i == 0 || i > n)
		return 0;
	return shard_hash(id) % n == i - 1;
}

/* Digits only, no sign or space, into *v; returns the end or NULL. */
static const char *
shard_number(const char *s, unsigned *v)
{
	unsigned long long x = 0;
	const char *p = s;

	while (*p >= '0' && *p <= '9') {
		x = x * 10 + (unsigned)(*p - '0');
		if (x > 0xffffffffULL)
			return NULL;
		p++;
	}
	if (p == s)
		return NULL;
	*v = (unsigned)x;
	return p;
}

int
shard_parse(const char *text, unsigned *i, unsigned *n)
{
	unsigned a, b;
	const char *p;

	if (text == NULL || (p = shard_number(text, &a)) == NULL ||
	    *p != '/' || (p = shard_number(p + 1, &b)) == NULL || *p != '\0')
		return -1;
	if (a == 0 || b == 0 || a > b)
		return -1;
	*i = a;
	*n = b;
	return 0;
}
