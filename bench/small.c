/* bench/small.c — a typical ~200-line C file for bench/overhead.sh: a small
 * string table with a hash map, a tokenizer and a report printer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TABLE_SIZE 257
#define MAX_WORD 64

struct entry {
	char *key;
	long count;
	struct entry *next;
};

struct table {
	struct entry *buckets[TABLE_SIZE];
	size_t size;
	long total;
};

static unsigned long hash(const char *s)
{
	unsigned long h = 5381;
	int c;
	while ((c = (unsigned char)*s++) != 0)
		h = ((h << 5) + h) ^ (unsigned long)c;
	return h;
}

static char *xstrdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *p = malloc(n);
	if (p == NULL) {
		perror("malloc");
		exit(1);
	}
	memcpy(p, s, n);
	return p;
}

struct table *table_new(void)
{
	struct table *t = calloc(1, sizeof *t);
	if (t == NULL) {
		perror("calloc");
		exit(1);
	}
	return t;
}

void table_free(struct table *t)
{
	for (size_t i = 0; i < TABLE_SIZE; i++) {
		struct entry *e = t->buckets[i];
		while (e != NULL) {
			struct entry *next = e->next;
			free(e->key);
			free(e);
			e = next;
		}
	}
	free(t);
}

long table_add(struct table *t, const char *key, long n)
{
	unsigned long h = hash(key) % TABLE_SIZE;
	struct entry *e;
	for (e = t->buckets[h]; e != NULL; e = e->next) {
		if (strcmp(e->key, key) == 0) {
			e->count += n;
			t->total += n;
			return e->count;
		}
	}
	e = malloc(sizeof *e);
	if (e == NULL) {
		perror("malloc");
		exit(1);
	}
	e->key = xstrdup(key);
	e->count = n;
	e->next = t->buckets[h];
	t->buckets[h] = e;
	t->size++;
	t->total += n;
	return n;
}

long table_get(const struct table *t, const char *key)
{
	unsigned long h = hash(key) % TABLE_SIZE;
	for (const struct entry *e = t->buckets[h]; e != NULL; e = e->next)
		if (strcmp(e->key, key) == 0)
			return e->count;
	return 0;
}

static int is_word_char(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '\'';
}

static void lower(char *s)
{
	for (; *s; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s - 'A' + 'a');
}

size_t tokenize(struct table *t, const char *text)
{
	char word[MAX_WORD];
	size_t len = 0, words = 0;
	for (const char *p = text;; p++) {
		if (*p != '\0' && is_word_char((unsigned char)*p)) {
			if (len < sizeof word - 1)
				word[len++] = *p;
			continue;
		}
		if (len > 0) {
			word[len] = '\0';
			lower(word);
			table_add(t, word, 1);
			words++;
			len = 0;
		}
		if (*p == '\0')
			break;
	}
	return words;
}

static int by_count(const void *a, const void *b)
{
	const struct entry *x = *(const struct entry *const *)a;
	const struct entry *y = *(const struct entry *const *)b;
	if (x->count != y->count)
		return x->count < y->count ? 1 : -1;
	return strcmp(x->key, y->key);
}

struct entry **table_sorted(const struct table *t)
{
	struct entry **v = malloc((t->size + 1) * sizeof *v);
	size_t n = 0;
	if (v == NULL) {
		perror("malloc");
		exit(1);
	}
	for (size_t i = 0; i < TABLE_SIZE; i++)
		for (struct entry *e = t->buckets[i]; e != NULL; e = e->next)
			v[n++] = e;
	qsort(v, n, sizeof *v, by_count);
	v[n] = NULL;
	return v;
}

void report(FILE *out, const struct table *t, size_t top)
{
	struct entry **v = table_sorted(t);
	fprintf(out, "%zu distinct words, %ld in all\n", t->size, t->total);
	for (size_t i = 0; v[i] != NULL && i < top; i++) {
		double pct = t->total ? 100.0 * (double)v[i]->count / (double)t->total : 0.0;
		fprintf(out, "%4zu. %-20s %6ld  %5.2f%%\n", i + 1, v[i]->key, v[i]->count, pct);
	}
	free(v);
}

static char *read_all(FILE *in)
{
	size_t cap = 4096, len = 0;
	char *buf = malloc(cap);
	size_t n;
	if (buf == NULL)
		return NULL;
	while ((n = fread(buf + len, 1, cap - len - 1, in)) > 0) {
		len += n;
		if (cap - len < 2) {
			char *nb = realloc(buf, cap *= 2);
			if (nb == NULL) {
				free(buf);
				return NULL;
			}
			buf = nb;
		}
	}
	buf[len] = '\0';
	return buf;
}

int main(int argc, char **argv)
{
	size_t top = argc > 1 ? (size_t)strtoul(argv[1], NULL, 10) : 10;
	char *text = read_all(stdin);
	if (text == NULL) {
		fprintf(stderr, "out of memory\n");
		return 1;
	}
	struct table *t = table_new();
	size_t words = tokenize(t, text);
	report(stdout, t, top);
	fprintf(stderr, "%zu words read\n", words);
	table_free(t);
	free(text);
	return words > 0 ? 0 : 1;
}
