/*
 * eml.c - reads what `allowctl eval --eml` needs from an RFC 5322 message.
 * GMime parses the message, its header fields and its address lists; the
 * one piece of syntax read here by hand is the `from` clause of a Received
 * header, which no library parses (cli_received_parse).  The file is
 * untrusted: its size is bounded, every value copied is bounded, and
 * anything GMime cannot make sense of leaves a fact unknown, never guessed.
 */
#include "cli/cli_int.h"
#include "allowd/error.h"
#include "allowd/netaddr.h"

#include <errno.h>
#include <fcntl.h>
#include <gmime/gmime.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- the Received tokenizer ------------------------------------------ */

#define RECEIVED_SCAN_MAX 4096 /* bytes of a Received value looked at */
#define COMMENT_DEPTH_MAX 16
#define LITERAL_MAX 72 /* "IPv6:" + the longest IPv6 text + slack */

static int is_ws(int ch)
{
	return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n';
}

/* A word runs to white space, a parenthesis, a bracket, or a ';' outside comments. */
static size_t word_end(const char *v, size_t len, size_t i, size_t depth)
{
	while (i < len) {
		char ch = v[i];
		if (is_ws(ch) || ch == '(' || ch == ')' || ch == '[' || ch == ']' ||
		    (ch == ';' && depth == 0))
			break;
		i += ch == '\\' && depth > 0 && i + 1 < len ? 2 : 1; /* quoted pair */
	}
	return i;
}

static int word_is(const char *w, size_t n, const char *lit)
{
	return strlen(lit) == n && strncasecmp(w, lit, n) == 0;
}

/* The words that end the from clause (RFC 5321 section 4.4: By-domain, Opt-info). */
static int clause_keyword(const char *w, size_t n)
{
	return word_is(w, n, "by") || word_is(w, n, "via") || word_is(w, n, "with") ||
	       word_is(w, n, "id") || word_is(w, n, "for");
}

/* Stores s[0..n) in out when it is an IP address (an "IPv6:" prefix dropped). */
static void take_ip(char out[64], const char *s, size_t n)
{
	uint8_t addr[16];
	char buf[64];

	if (out[0])
		return; /* the first one wins */
	if (n >= 5 && strncasecmp(s, "IPv6:", 5) == 0) {
		s += 5;
		n -= 5;
	}
	if (n == 0 || n >= sizeof(buf))
		return;
	memcpy(buf, s, n);
	buf[n] = '\0';
	if (allowd_ip_parse(addr, buf) == 0)
		memcpy(out, buf, n + 1);
}

/*
 * One pass over at most RECEIVED_SCAN_MAX bytes, no recursion, no
 * allocation.  State: `depth` counts open comments; `helo_claim` is set by
 * a HELO/EHLO word or a "helo=" prefix inside a comment and makes the next
 * token of that comment a client's claim, which is never taken as its IP.
 * Three candidates are collected and the most trustworthy one wins.
 */
int cli_received_parse(char ip[64], char helo[256], const char *v, size_t len)
{
	char lit_comment[64] = "", bare_comment[64] = "", lit_top[64] = "";
	size_t i = 0, w, depth = 0;
	int helo_claim = 0;

	ip[0] = helo[0] = '\0';
	if (!v)
		return -1;
	if (len > RECEIVED_SCAN_MAX)
		len = RECEIVED_SCAN_MAX;
	while (i < len && is_ws(v[i]))
		i++;
	w = word_end(v, len, i, 0);
	if (!word_is(v + i, w - i, "from"))
		return -1;
	i = w;
	while (i < len && is_ws(v[i]))
		i++;
	/* the HELO/EHLO name comes right after "from" */
	if (i < len && v[i] != '[' && v[i] != '(' && v[i] != ';') {
		w = word_end(v, len, i, 0);
		if (clause_keyword(v + i, w - i))
			goto done;
		if (w - i < 256) {
			memcpy(helo, v + i, w - i);
			helo[w - i] = '\0';
		}
		i = w;
	}
	while (i < len) {
		char ch = v[i];
		if (is_ws(ch) || ch == ']') {
			i++;
		} else if (ch == '(') {
			if (++depth > COMMENT_DEPTH_MAX)
				break;
			helo_claim = 0;
			i++;
		} else if (ch == ')') {
			if (depth == 0)
				break;
			depth--;
			helo_claim = 0;
			i++;
		} else if (ch == ';') {
			if (depth == 0)
				break;
			i++;
		} else if (ch == '[') {
			size_t room = len - i - 1 < LITERAL_MAX ? len - i - 1 : LITERAL_MAX;
			const char *end = memchr(v + i + 1, ']', room);
			if (!end) /* a literal cut short: what follows is not trusted */
				break;
			if (depth == 0)
				take_ip(lit_top, v + i + 1, (size_t)(end - v) - i - 1);
			else if (!helo_claim)
				take_ip(lit_comment, v + i + 1, (size_t)(end - v) - i - 1);
			helo_claim = 0;
			i = (size_t)(end - v) + 1;
		} else {
			w = word_end(v, len, i, depth);
			if (w == i)
				w = i + 1;
			if (depth == 0) {
				if (clause_keyword(v + i, w - i))
					break;
			} else if (word_is(v + i, w - i, "helo") || word_is(v + i, w - i, "ehlo") ||
				   (w - i >= 5 && strncasecmp(v + w - 5, "helo=", 5) == 0)) {
				helo_claim = 1;
			} else {
				if (!helo_claim)
					take_ip(bare_comment, v + i, w - i);
				helo_claim = 0;
			}
			i = w;
		}
	}
done:
	if (lit_comment[0])
		memcpy(ip, lit_comment, sizeof(lit_comment));
	else if (bare_comment[0])
		memcpy(ip, bare_comment, sizeof(bare_comment));
	else
		memcpy(ip, lit_top, sizeof(lit_top));
	return 0;
}

/* ---- reading the message --------------------------------------------- */

typedef struct reader {
	eml_facts *f;
	FILE *warn;
	int oom;
} reader;

static void warn(reader *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void warn(reader *r, const char *fmt, ...)
{
	va_list ap;
	fprintf(r->warn, "allowctl: warning: ");
	va_start(ap, fmt);
	vfprintf(r->warn, fmt, ap);
	va_end(ap);
	fputc('\n', r->warn);
}

/* A copy of an address or name, or NULL (with a warning) when it is too long. */
static char *copy_value(reader *r, const char *s, const char *what)
{
	char *c;
	if (strlen(s) > EML_VALUE_MAX) {
		warn(r, "%s is longer than %d bytes; ignored", what, EML_VALUE_MAX);
		return NULL;
	}
	if (!(c = strdup(s)))
		r->oom = 1;
	return c;
}

/* Reads the whole file (or standard input for "-") into a byte array, bounded. */
static int read_file(GByteArray **out, const char *path)
{
	char chunk[16384];
	GByteArray *buf = NULL;
	struct stat st;
	int fd, rc = 0;

	*out = NULL;
	fd = strcmp(path, "-") == 0 ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return allowd_error_set(ALLOWD_ERR, NULL, "cannot open %s: %s", path, strerror(errno));
	if (fstat(fd, &st) == 0) {
		if (S_ISDIR(st.st_mode)) {
			rc = allowd_error_set(ALLOWD_ERR, NULL, "%s is a directory", path);
			goto out;
		}
		if (S_ISREG(st.st_mode) && (uintmax_t)st.st_size > EML_FILE_MAX) {
			rc = allowd_error_set(ALLOWD_ERR, NULL,
					      "%s is %jd bytes; messages over %u MiB are refused", path,
					      (intmax_t)st.st_size, EML_FILE_MAX >> 20);
			goto out;
		}
	}
	buf = g_byte_array_new();
	for (;;) {
		ssize_t n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = allowd_error_set(ALLOWD_ERR, NULL, "cannot read %s: %s", path,
					      strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		if (buf->len + (size_t)n > EML_FILE_MAX) {
			rc = allowd_error_set(ALLOWD_ERR, NULL, "%s: messages over %u MiB are refused",
					      path, EML_FILE_MAX >> 20);
			goto out;
		}
		g_byte_array_append(buf, (const guint8 *)chunk, (guint)n);
	}
	*out = buf;
	buf = NULL;
out:
	if (buf)
		g_byte_array_free(buf, TRUE);
	if (fd != STDIN_FILENO)
		close(fd);
	return rc;
}

/* The first mailbox with an address, looking one level into groups; borrowed. */
static const char *first_mailbox(InternetAddressList *list, int depth)
{
	int n = list ? internet_address_list_length(list) : 0;
	for (int i = 0; i < n; i++) {
		InternetAddress *ia = internet_address_list_get_address(list, i);
		const char *a;
		if (INTERNET_ADDRESS_IS_MAILBOX(ia)) {
			a = internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(ia));
			if (a && *a)
				return a;
		} else if (INTERNET_ADDRESS_IS_GROUP(ia) && depth == 0) {
			a = first_mailbox(internet_address_group_get_members(INTERNET_ADDRESS_GROUP(ia)),
					  1);
			if (a)
				return a;
		}
	}
	return NULL;
}

static size_t count_mailboxes(InternetAddressList *list, int depth)
{
	int n = list ? internet_address_list_length(list) : 0;
	size_t k = 0;
	for (int i = 0; i < n; i++) {
		InternetAddress *ia = internet_address_list_get_address(list, i);
		if (INTERNET_ADDRESS_IS_MAILBOX(ia))
			k++;
		else if (INTERNET_ADDRESS_IS_GROUP(ia) && depth == 0)
			k += count_mailboxes(
				internet_address_group_get_members(INTERNET_ADDRESS_GROUP(ia)), 1);
	}
	return k;
}

/*
 * Appends every mailbox address of `list` (groups flattened) to out[],
 * skipping case-insensitive duplicates; *dropped counts those beyond
 * EML_LIST_MAX.
 */
static void append_mailboxes(reader *r, char **out, size_t *n, size_t *dropped,
			     InternetAddressList *list, int depth, const char *what)
{
	int len = list ? internet_address_list_length(list) : 0;
	for (int i = 0; i < len; i++) {
		InternetAddress *ia = internet_address_list_get_address(list, i);
		const char *a;
		int dup = 0;
		if (INTERNET_ADDRESS_IS_GROUP(ia) && depth == 0) {
			append_mailboxes(r, out, n, dropped,
					 internet_address_group_get_members(INTERNET_ADDRESS_GROUP(ia)),
					 1, what);
			continue;
		}
		if (!INTERNET_ADDRESS_IS_MAILBOX(ia))
			continue;
		a = internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(ia));
		if (!a || !*a)
			continue;
		for (size_t k = 0; k < *n && !dup; k++)
			dup = strcasecmp(out[k], a) == 0;
		if (dup)
			continue;
		if (*n == EML_LIST_MAX) {
			(*dropped)++;
			continue;
		}
		if ((out[*n] = copy_value(r, a, what)))
			(*n)++;
	}
}

/* The address in a header holding one (Delivered-To, X-Original-To, Return-Path). */
static char *single_address(reader *r, const char *value, const char *what)
{
	InternetAddressList *l = internet_address_list_parse(NULL, value);
	const char *a = first_mailbox(l, 0);
	char *c = NULL;

	if (a)
		c = copy_value(r, a, what);
	else
		warn(r, "%s holds no address GMime can read; ignored", what);
	if (l)
		g_object_unref(l);
	return c;
}

/* Return-Path: "<>" is a bounce (""); otherwise the address inside. */
static void return_path(reader *r, const char *value)
{
	const char *p = value;

	while (*p && is_ws(*p))
		p++;
	if (*p == '<') {
		const char *q = p + 1;
		while (*q && is_ws(*q))
			q++;
		if (*q == '>') {
			for (q++; *q && is_ws(*q); q++)
				;
			if (!*q) {
				if (!(r->f->envelope_from = strdup("")))
					r->oom = 1;
				return;
			}
		}
	}
	r->f->envelope_from = single_address(r, value, "Return-Path");
}

static void received(reader *r, const char *raw)
{
	char ip[64], helo[256];

	if (cli_received_parse(ip, helo, raw, strlen(raw))) {
		warn(r, "the topmost Received header has no 'from' clause; client_ip and "
			"server_name are unknown (give --client-ip, --server-name)");
		return;
	}
	if (ip[0] && !(r->f->client_ip = strdup(ip)))
		r->oom = 1;
	if (!ip[0])
		warn(r, "the topmost Received header names no client IP address");
	if (helo[0] && !(r->f->server_name = strdup(helo)))
		r->oom = 1;
}

static int is(const char *name, const char *want)
{
	return name && g_ascii_strcasecmp(name, want) == 0;
}

/* Walks the top-level header fields once, in order, top first. */
static void read_headers(reader *r, GMimeMessage *msg)
{
	GMimeHeaderList *hl = g_mime_object_get_header_list(GMIME_OBJECT(msg));
	int n = g_mime_header_list_get_count(hl), seen_received = 0, seen_rp = 0;
	const char *delivered_to = NULL, *original_to = NULL;
	size_t dropped_ar = 0, dropped = 0;
	InternetAddressList *l;
	eml_facts *f = r->f;

	for (int i = 0; i < n && !r->oom; i++) {
		GMimeHeader *h = g_mime_header_list_get_header_at(hl, i);
		const char *name = g_mime_header_get_name(h);
		const char *raw = g_mime_header_get_raw_value(h), *value;

		if (!raw)
			continue;
		/* raw values where allowd parses the syntax; GMime's unfolded, decoded value where
		   GMime does (decoding only the headers used: there may be a million others) */
		if (is(name, "Authentication-Results")) {
			if (f->n_authres == EML_LIST_MAX)
				dropped_ar++;
			else if ((f->authres[f->n_authres] = strdup(raw)))
				f->n_authres++;
			else
				r->oom = 1;
		} else if (is(name, "Received") && !seen_received) {
			seen_received = 1;
			received(r, raw);
		} else if (is(name, "Return-Path") && !seen_rp) {
			seen_rp = 1;
			if ((value = g_mime_header_get_value(h)))
				return_path(r, value);
		} else if (is(name, "Delivered-To") && !delivered_to) {
			delivered_to = g_mime_header_get_value(h);
		} else if (is(name, "X-Original-To") && !original_to) {
			original_to = g_mime_header_get_value(h);
		}
	}
	if (dropped_ar)
		warn(r, "only the first %d Authentication-Results headers are read", EML_LIST_MAX);

	l = g_mime_message_get_from(msg);
	if (count_mailboxes(l, 0) > 1)
		warn(r, "From holds %zu mailboxes; header_from is the first", count_mailboxes(l, 0));
	if (first_mailbox(l, 0))
		f->header_from = copy_value(r, first_mailbox(l, 0), "From");
	else if (g_mime_object_get_header(GMIME_OBJECT(msg), "From"))
		warn(r, "From holds no address GMime can read; header_from is unknown");
	append_mailboxes(r, f->reply_to, &f->n_reply_to, &dropped, g_mime_message_get_reply_to(msg),
			 0, "a Reply-To address");
	if (dropped)
		warn(r, "only the first %d Reply-To addresses are read", EML_LIST_MAX);

	if (delivered_to && (f->recipients[0] = single_address(r, delivered_to, "Delivered-To"))) {
		f->n_recipients = 1;
		f->recipients_from = "Delivered-To";
		return;
	}
	if (original_to && (f->recipients[0] = single_address(r, original_to, "X-Original-To"))) {
		f->n_recipients = 1;
		f->recipients_from = "X-Original-To";
		return;
	}
	dropped = 0;
	append_mailboxes(r, f->recipients, &f->n_recipients, &dropped,
			 g_mime_message_get_addresses(msg, GMIME_ADDRESS_TYPE_TO), 0, "a To address");
	append_mailboxes(r, f->recipients, &f->n_recipients, &dropped,
			 g_mime_message_get_addresses(msg, GMIME_ADDRESS_TYPE_CC), 0, "a Cc address");
	if (dropped)
		warn(r, "only the first %d To and Cc addresses are evaluated", EML_LIST_MAX);
	if (f->n_recipients)
		f->recipients_from = "To/Cc";
}

/*
 * The length of the header section: up to and including the line break
 * before the first empty line (RFC 5322 section 2.1), or everything when
 * there is none.  Only the header section is handed to GMime: the facts
 * are all top-level header fields, and a hostile MIME body (200,000 nested
 * multiparts cost GMime 13 s) then costs nothing.  The header section itself
 * is bounded by EML_HEADER_MAX: GMime keeps about 500 bytes per field, and
 * 50 MiB of "X:y" lines took 6 GB and 100 s.
 */
static size_t header_section(const guint8 *p, size_t len)
{
	if (len && p[0] == '\n')
		return 0;
	if (len > 1 && p[0] == '\r' && p[1] == '\n')
		return 0;
	for (size_t i = 0; i + 1 < len; i++) {
		const guint8 *nl = memchr(p + i, '\n', len - i - 1);
		if (!nl)
			break;
		i = (size_t)(nl - p);
		if (p[i + 1] == '\n' || (p[i + 1] == '\r' && i + 2 < len && p[i + 2] == '\n'))
			return i + 1;
	}
	return len;
}

/*
 * GMime is initialised once per process and never shut down: its
 * g_mime_shutdown() destroys a table that a second g_mime_init() does not
 * recreate (GMime 3.2: GLib-CRITICAL on every later parse), and the CLI
 * may run many times in one process (the tests).  What it keeps stays
 * reachable, so leak checkers do not count it.
 */
static pthread_once_t gmime_once = PTHREAD_ONCE_INIT;

static void gmime_init(void)
{
	g_mime_init();
}

int cli_eml_read(eml_facts *out, const char *path, FILE *warn_to)
{
	GByteArray *buf = NULL;
	GMimeStream *stream = NULL;
	GMimeParser *parser = NULL;
	GMimeMessage *msg = NULL;
	reader r = {out, warn_to, 0};
	size_t hlen;
	int rc;

	memset(out, 0, sizeof(*out));
	if ((rc = read_file(&buf, path)))
		return rc;
	hlen = header_section(buf->data, buf->len);
	if (hlen > EML_HEADER_MAX) {
		rc = allowd_error_set(ALLOWD_ERR, NULL,
				      "%s: the header section is %zu bytes; over %u KiB is refused", path,
				      hlen, EML_HEADER_MAX >> 10);
		g_byte_array_free(buf, TRUE);
		return rc;
	}
	g_byte_array_set_size(buf, (guint)hlen);
	pthread_once(&gmime_once, gmime_init);
	/* the stream reads the array in place; the array is freed below, after the message */
	stream = g_mime_stream_mem_new_with_byte_array(buf);
	g_mime_stream_mem_set_owner(GMIME_STREAM_MEM(stream), FALSE);
	parser = g_mime_parser_new_with_stream(stream);
	msg = g_mime_parser_construct_message(parser, NULL);
	if (!msg || g_mime_header_list_get_count(g_mime_object_get_header_list(GMIME_OBJECT(msg))) ==
			    0) {
		rc = allowd_error_set(ALLOWD_ERR, NULL,
				      "%s is not an RFC 5322 message (no header field found)", path);
		goto out;
	}
	read_headers(&r, msg);
	if (r.oom)
		rc = allowd_error_set(ALLOWD_ERR, NULL, "out of memory");
out:
	if (msg)
		g_object_unref(msg);
	g_object_unref(parser);
	g_object_unref(stream);
	g_byte_array_free(buf, TRUE);
	if (rc)
		cli_eml_clear(out);
	return rc;
}

void cli_eml_clear(eml_facts *f)
{
	if (!f)
		return;
	free(f->envelope_from);
	free(f->header_from);
	for (size_t i = 0; i < f->n_reply_to; i++)
		free(f->reply_to[i]);
	for (size_t i = 0; i < f->n_recipients; i++)
		free(f->recipients[i]);
	free(f->client_ip);
	free(f->server_name);
	for (size_t i = 0; i < f->n_authres; i++)
		free(f->authres[i]);
	memset(f, 0, sizeof(*f));
}
