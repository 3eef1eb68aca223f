/*
 * policy.c - the allow-policy object: allocation, patching and the rules
 * that hold between its fields.  Pattern syntax lives in pattern.c.
 */
#include "allowd/policy.h"
#include "allowd/error.h"

#include <stdlib.h>
#include <string.h>

int allowd_policy_new(allowd_policy **out)
{
	allowd_policy *p = calloc(1, sizeof(*p));
	if (!p)
		return allowd_error_set(ALLOWD_ERR, NULL, "out of memory");
	*out = p;
	return 0;
}

void allowd_policy_clear(allowd_policy *p)
{
	if (!p)
		return;
	free(p->pattern);
	free(p->pattern_norm);
	free(p->comments);
	p->pattern = p->pattern_norm = p->comments = NULL;
}

void allowd_policy_free(allowd_policy *p)
{
	allowd_policy_clear(p);
	free(p);
}

int allowd_policy_vec_push(allowd_policy_vec *l, allowd_policy *p)
{
	if (l->n == l->cap) {
		size_t ncap = l->cap ? l->cap * 2 : 64;
		allowd_policy **v = realloc(l->v, ncap * sizeof(*v));
		if (!v) {
			allowd_policy_free(p);
			return allowd_error_set(ALLOWD_ERR, NULL, "out of memory");
		}
		l->v = v;
		l->cap = ncap;
	}
	l->v[l->n++] = p;
	return 0;
}

void allowd_policy_vec_clear(allowd_policy_vec *l)
{
	for (size_t i = 0; i < l->n; i++)
		allowd_policy_free(l->v[i]);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

int allowd_policy_set_string(char **member, const char *s)
{
	char *copy = NULL;
	if (s && !(copy = strdup(s)))
		return allowd_error_set(ALLOWD_ERR, NULL, "out of memory");
	free(*member);
	*member = copy;
	return 0;
}

int allowd_policy_dup(allowd_policy **out, const allowd_policy *p)
{
	allowd_policy *c = NULL;
	int rc;

	if ((rc = allowd_policy_new(&c)))
		return rc;
	*c = *p;
	c->pattern = c->pattern_norm = c->comments = NULL;
	if ((rc = allowd_policy_set_string(&c->pattern, p->pattern)) ||
	    (rc = allowd_policy_set_string(&c->pattern_norm, p->pattern_norm)) ||
	    (rc = allowd_policy_set_string(&c->comments, p->comments))) {
		allowd_policy_free(c);
		return rc;
	}
	*out = c;
	return 0;
}

int allowd_policy_apply_patch(allowd_policy *p, const allowd_policy_patch *patch)
{
	const allowd_policy *v = &patch->v;
	unsigned f = patch->fields;
	int rc;

	if ((f & ALLOWD_FIELD_PATTERN) && (rc = allowd_policy_set_string(&p->pattern, v->pattern)))
		return rc;
	if ((f & ALLOWD_FIELD_COMMENTS) && (rc = allowd_policy_set_string(&p->comments, v->comments)))
		return rc;
	if (f & ALLOWD_FIELD_PATTERN_TYPE)
		p->pattern_type = v->pattern_type;
	if (f & ALLOWD_FIELD_IS_REGEX)
		p->is_regex = v->is_regex;
	if (f & ALLOWD_FIELD_IS_TRUSTED_SENDER)
		p->is_trusted_sender = v->is_trusted_sender;
	if (f & ALLOWD_FIELD_IS_ACCEPTABLE_SENDER)
		p->is_acceptable_sender = v->is_acceptable_sender;
	if (f & ALLOWD_FIELD_IS_EXEMPT_RECIPIENT)
		p->is_exempt_recipient = v->is_exempt_recipient;
	if (f & ALLOWD_FIELD_VERIFY_SENDER)
		p->verify_sender = v->verify_sender;
	return 0;
}

int allowd_pattern_check_run(allowd_pattern_check *out, allowd_pattern_type type, bool is_regex,
			     const char *pattern)
{
	memset(out, 0, sizeof(*out));
	if (!pattern)
		return 0;
	if (!(out->pattern = strdup(pattern)))
		return allowd_error_set(ALLOWD_ERR, NULL, "out of memory");
	out->type = type;
	out->is_regex = is_regex;
	out->rc = allowd_pattern_normalize(&out->norm, type, is_regex, pattern);
	if (out->rc == ALLOWD_ERR) {
		allowd_pattern_check_clear(out);
		return ALLOWD_ERR; /* not a verdict on the pattern */
	}
	if (out->rc) {
		if (!(out->error = malloc(sizeof(*out->error)))) {
			allowd_pattern_check_clear(out);
			return allowd_error_set(ALLOWD_ERR, NULL, "out of memory");
		}
		*out->error = *allowd_error_last();
	}
	return 0;
}

void allowd_pattern_check_clear(allowd_pattern_check *c)
{
	if (!c)
		return;
	free(c->pattern);
	free(c->norm);
	free(c->error);
	memset(c, 0, sizeof(*c));
}

/* When `c` checked p's (type, is_regex, pattern): its verdict in *rc (and *out), true. */
static bool checked_pattern(int *rc, char **out, const allowd_pattern_check *c,
			    const allowd_policy *p)
{
	if (!c || !c->pattern || c->type != p->pattern_type || c->is_regex != p->is_regex ||
	    strcmp(c->pattern, p->pattern) != 0)
		return false;
	if (c->rc)
		*rc = allowd_error_restore(c->error);
	else if (!(*out = strdup(c->norm)))
		*rc = allowd_error_set(ALLOWD_ERR, NULL, "out of memory");
	else
		*rc = 0;
	return true;
}

int allowd_policy_validate(allowd_policy *p)
{
	return allowd_policy_validate_checked(p, NULL);
}

int allowd_policy_validate_checked(allowd_policy *p, const allowd_pattern_check *c)
{
	char *norm = NULL;
	int rc;

	if (!p->pattern)
		return allowd_error_set(ALLOWD_EINVALID, "/pattern", "pattern is required");
	if (p->comments) {
		long n = allowd_utf8_length(p->comments, strlen(p->comments));
		if (n < 0)
			return allowd_error_set(ALLOWD_EINVALID, "/comments",
						"comments is not valid UTF-8");
		if (n > ALLOWD_COMMENTS_MAX)
			return allowd_error_set(ALLOWD_EINVALID, "/comments",
						"comments is %ld characters long; the limit is %d", n,
						ALLOWD_COMMENTS_MAX);
	}
	if (!p->is_trusted_sender && !p->is_acceptable_sender && !p->is_exempt_recipient)
		return allowd_error_set(ALLOWD_EINVALID, "/is_trusted_sender",
					"at least one of is_trusted_sender, is_acceptable_sender and "
					"is_exempt_recipient must be true");
	if (p->is_exempt_recipient && !p->is_regex && p->pattern_type != ALLOWD_PATTERN_EMAIL)
		return allowd_error_set(ALLOWD_EINVALID, "/is_exempt_recipient",
					"is_exempt_recipient applies only to EMAIL patterns and "
					"regular expressions, not to %s patterns",
					allowd_pattern_type_name(p->pattern_type));
	if (!checked_pattern(&rc, &norm, c, p))
		rc = allowd_pattern_normalize(&norm, p->pattern_type, p->is_regex, p->pattern);
	if (rc)
		return rc;
	free(p->pattern_norm);
	p->pattern_norm = norm;
	return 0;
}

static const char *const type_names[] = {"UNKNOWN", "EMAIL", "DOMAIN", "IP"};

const char *allowd_pattern_type_name(allowd_pattern_type t)
{
	if ((unsigned)t < sizeof(type_names) / sizeof(type_names[0]))
		return type_names[t];
	return "UNKNOWN";
}

int allowd_pattern_type_parse(const char *s)
{
	for (int i = 0; i < (int)(sizeof(type_names) / sizeof(type_names[0])); i++)
		if (strcmp(s, type_names[i]) == 0)
			return i;
	return -1;
}
