/*
 * ch04_wordcount.c — chapter 4: data split across shards, and work moved to
 * the data with messages.
 *
 *   make && build/bin/ch04_wordcount [--backend sim|real] [--smp N]
 *
 * A word count, the shared-nothing way:
 *   1. every shard answers a question (sc_smp_submit_to, sc_smp_map_reduce);
 *   2. a sharded service holds one word table per shard; a word lives on the
 *      shard its hash names, so no table is ever touched by two shards;
 *   3. shard 0 owns the text. It hands each shard a piece through a foreign
 *      pointer; each shard splits its piece into words and sends every word
 *      to the shard that owns it; then the piece goes home to be freed;
 *   4. questions go to the owner of the word; a word that is not there comes
 *      back as an error made on another shard;
 *   5. the totals, gathered with map_reduce, must match a count done the
 *      plain way on one shard.
 * Only shard 0 prints. Exit status 0 if every check holds, 1 otherwise.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/seacore.h"

static int failures;

static void expect(bool ok, const char *what)
{
    printf("  [%s] %s\n", ok ? "ok" : "FAILED", what);
    if (!ok)
        failures++;
}

/* ---- the text: shard 0 owns it ------------------------------------------ */

static const char *const paragraph =
    "A shard owns its data and its connections and nobody else may touch them. "
    "When a shard needs something that another shard owns it does not take a lock "
    "and it does not reach into the other shard's memory. It sends a message and "
    "the owner does the work and sends the answer back. The messages travel through "
    "queues that have one writer and one reader each, so the queues need no lock "
    "either. A core that does not share does not wait, and a core that does not wait "
    "keeps its caches warm. That is the whole idea, and the rest of the book is about "
    "making it fast, making it safe, and making it testable. ";
#define COPIES 12 /* the text is the paragraph this many times */

/* ---- one word table per shard ------------------------------------------- */

#define WORD_MAX    24
#define TABLE_SLOTS 512 /* more than the distinct words of the text */

struct word_slot {
    char w[WORD_MAX];
    uint32_t count;
};

struct word_table {
    struct word_slot slot[TABLE_SLOTS];
    uint32_t distinct;
    uint64_t total;
};

static uint64_t word_hash(const char *w)
{
    uint64_t h = 14695981039346656037ull; /* FNV-1a */
    for (; *w; w++)
        h = (h ^ (unsigned char)*w) * 1099511628211ull;
    return h;
}

/* The one shard that holds a word. */
static unsigned owner_of(const char *w)
{
    return (unsigned)(word_hash(w) % sc_shard_count());
}

/* Find w (and add it if `add`); NULL if absent, or if the table is full. */
static struct word_slot *table_find(struct word_table *t, const char *w, bool add)
{
    for (uint64_t i = word_hash(w) / 7, k = 0; k < TABLE_SLOTS; i++, k++) {
        struct word_slot *s = &t->slot[i % TABLE_SLOTS];
        if (s->w[0] == 0) {
            if (!add)
                return NULL;
            snprintf(s->w, sizeof s->w, "%s", w);
            t->distinct++;
            return s;
        }
        if (strcmp(s->w, w) == 0)
            return s;
    }
    return NULL;
}

/* Split text into lower-case words; calls fn for each one. */
static size_t for_each_word(const char *text, size_t len, void (*fn)(const char *w, void *arg),
                            void *arg)
{
    size_t n = 0;
    char w[WORD_MAX];
    size_t k = 0;
    for (size_t i = 0; i <= len; i++) {
        char c = i < len ? text[i] : ' ';
        if (isalpha((unsigned char)c)) {
            if (k < WORD_MAX - 1)
                w[k++] = (char)tolower((unsigned char)c);
            continue;
        }
        if (k) {
            w[k] = 0;
            fn(w, arg);
            n++;
            k = 0;
        }
    }
    return n;
}

/* ---- 1. who is there ----------------------------------------------------- */

static struct sc_future my_id_times(void *cap)
{
    intptr_t factor = *(intptr_t *)cap;
    return sc_make_ready(factor * (intptr_t)sc_this_shard());
}

static intptr_t add(intptr_t acc, intptr_t v)
{
    return acc + v;
}

static struct sc_future show_sum(void *cap, intptr_t sum)
{
    (void)cap;
    intptr_t n = (intptr_t)sc_shard_count();
    printf("  map_reduce of 10 x (shard id) over every shard: %ld\n", (long)sum);
    expect(sum == 10 * n * (n - 1) / 2, "the sum is 10 x (0 + 1 + ... + n-1)");
    return sc_make_ready(0);
}

static struct sc_future last_answered(void *cap, intptr_t v)
{
    (void)cap;
    unsigned last = sc_shard_count() - 1;
    printf("  submit_to(shard %u, 10 x my id) came back with %ld, on shard %u\n", last, (long)v,
           sc_this_shard());
    expect(v == 10 * (intptr_t)last && sc_this_shard() == 0,
           "the work ran there; the answer came back here");
    intptr_t ten = 10;
    return sc_then(sc_smp_map_reduce(my_id_times, add, 0, &ten, sizeof ten), show_sum, NULL, 0);
}

static struct sc_future who_is_there(void)
{
    printf("1. who is there: %u shards\n", sc_shard_count());
    intptr_t ten = 10;
    return sc_then(SC_SUBMIT_TO(sc_shard_count() - 1, my_id_times, ten), last_answered, NULL, 0);
}

/* ---- 2. the sharded word table --------------------------------------------- */

static struct sc_sharded words; /* the container lives as long as the app */

static const struct sc_sharded_ops word_table_ops = {
    .size = sizeof(struct word_table), /* zeroed: an empty table */
    .start = NULL,
    .stop = NULL,
};

struct word_cap {
    char w[WORD_MAX]; /* the word travels by value, inside the message */
};

/* Runs on the owner of the word, on its own table. */
static struct sc_future table_add(void *inst, void *cap)
{
    struct word_table *t = inst;
    struct word_slot *s = table_find(t, ((struct word_cap *)cap)->w, true);
    if (!s)
        return sc_make_error(-ENOSPC);
    s->count++;
    t->total++;
    return sc_make_ready(0);
}

static struct sc_future table_lookup(void *inst, void *cap)
{
    struct word_slot *s = table_find(inst, ((struct word_cap *)cap)->w, false);
    return s ? sc_make_ready(s->count) : sc_make_error(-ENOENT);
}

/* ---- 3. counting: the text goes out in pieces, the words go to their owners */

struct piece {
    unsigned index;
    size_t len;
    char text[];
};

static unsigned freed_on[256];   /* where each piece was freed; written by shard 0 only */
static unsigned pieces_freed;    /* shard 0 only */
static uint64_t counted_by[256]; /* words of each piece; shard 0 only */

static void free_piece(void *p)
{
    struct piece *pc = p;
    freed_on[pc->index] = sc_this_shard();
    pieces_freed++;
    free(pc);
}

struct job {
    struct sc_foreign_ptr fp; /* the piece: owned by shard 0, read here */
};

/* Shard-local while one piece is counted: the word list of the piece. */
struct piece_words {
    size_t n;
    struct word_cap *w;
};

static void collect(const char *w, void *arg)
{
    struct piece_words *pw = arg;
    snprintf(pw->w[pw->n++].w, WORD_MAX, "%s", w);
}

static struct sc_future send_word(void *cap, size_t i)
{
    struct piece_words *pw = *(struct piece_words **)cap;
    const struct word_cap *w = &pw->w[i];
    return sc_sharded_invoke_on(&words, owner_of(w->w), table_add, w, sizeof *w);
}

struct counted {
    struct piece_words *pw;
    struct sc_foreign_ptr fp;
};

static struct sc_future piece_done(void *cap, intptr_t v)
{
    struct counted *c = cap;
    (void)v;
    intptr_t n = (intptr_t)c->pw->n;
    free(c->pw->w);
    free(c->pw);
    /* done with the piece: release it here, it is freed on its owner */
    sc_future_discard(sc_foreign_ptr_release(&c->fp));
    return sc_make_ready(n);
}

/* Runs on shard i: split the piece (read-only: shard 0 owns it), send each
 * word to its owner, answer with the number of words. */
static struct sc_future count_piece(void *cap)
{
    struct job *j = cap;
    const struct piece *pc = j->fp.ptr;
    struct piece_words *pw = malloc(sizeof *pw);
    if (!pw)
        return sc_make_error(-ENOMEM);
    pw->n = 0;
    pw->w = malloc((pc->len / 2 + 1) * sizeof *pw->w); /* a word takes 2 bytes at least */
    if (!pw->w) {
        free(pw);
        return sc_make_error(-ENOMEM);
    }
    for_each_word(pc->text, pc->len, collect, pw);
    struct counted c = {pw, j->fp};
    return SC_THEN(sc_parallel_for_each(pw->n, send_word, &pw, sizeof pw), piece_done, c);
}

struct handed {
    unsigned piece;
};

static struct sc_future piece_counted(void *cap, intptr_t n)
{
    counted_by[((struct handed *)cap)->piece] = (uint64_t)n;
    return sc_make_ready(n);
}

static const char *text;
static size_t text_len;

/* Piece i of n: cut at spaces, so that no word is split. */
static struct sc_future hand_out(void *cap, size_t i)
{
    (void)cap;
    size_t n = sc_shard_count();
    size_t from = text_len * i / n, to = text_len * (i + 1) / n;
    while (from > 0 && from < text_len && text[from - 1] != ' ')
        from++;
    while (to < text_len && text[to - 1] != ' ')
        to++;
    struct piece *pc = malloc(sizeof *pc + (to - from));
    if (!pc)
        return sc_make_error(-ENOMEM);
    pc->index = (unsigned)i;
    pc->len = to - from;
    memcpy(pc->text, text + from, pc->len);
    struct job j = {sc_foreign_ptr_make(pc, free_piece)};
    struct handed h = {(unsigned)i};
    return SC_THEN(SC_SUBMIT_TO((unsigned)i, count_piece, j), piece_counted, h);
}

/* ---- 4 and 5: questions and totals --------------------------------------- */

/* The plain count, on shard 0 alone, to check the sharded one against. */
static struct word_table *plain;
static uint64_t plain_total;

static void plain_add(const char *w, void *arg)
{
    (void)arg;
    table_find(plain, w, true)->count++;
    plain_total++;
}

static const char *const questions[4] = {"shard", "the", "lock", "zebra"};
static struct sc_future answers[4];

static struct sc_future local_total(void *cap)
{
    (void)cap;
    struct word_table *t = sc_sharded_local(&words);
    return sc_make_ready(t ? (intptr_t)t->total : 0);
}

static struct sc_future local_distinct(void *cap)
{
    (void)cap;
    struct word_table *t = sc_sharded_local(&words);
    return sc_make_ready(t ? (intptr_t)t->distinct : 0);
}

static struct sc_future stopped(void *cap, intptr_t v)
{
    (void)cap, (void)v;
    printf("6. the word tables are stopped and freed, each on its own shard\n");
    free(plain);
    return sc_make_ready(failures ? 1 : 0);
}

static struct sc_future check_distinct(void *cap, intptr_t distinct)
{
    (void)cap;
    printf("  distinct words over all shards: %ld (counted on one shard: %u)\n", (long)distinct,
           plain->distinct);
    expect((uint32_t)distinct == plain->distinct,
           "every word lives on exactly one shard: the distinct counts add up");
    return sc_then(sc_sharded_stop(&words), stopped, NULL, 0);
}

static struct sc_future check_total(void *cap, intptr_t total)
{
    (void)cap;
    printf("5. totals, gathered with map_reduce\n");
    printf("  words over all shards: %ld (counted on one shard: %llu)\n", (long)total,
           (unsigned long long)plain_total);
    expect((uint64_t)total == plain_total, "no word was lost or counted twice");
    return sc_then(sc_smp_map_reduce(local_distinct, add, 0, NULL, 0), check_distinct, NULL, 0);
}

static struct sc_future show_answers(void *cap, intptr_t v)
{
    (void)cap, (void)v;
    bool all_right = true;
    for (int i = 0; i < 4; i++) {
        intptr_t count = 0;
        int err = sc_future_get(answers[i], &count);
        struct word_slot *s = table_find(plain, questions[i], false);
        if (err)
            printf("  \"%s\" (owner: shard %u): error %s\n", questions[i], owner_of(questions[i]),
                   sc_strerror(err));
        else
            printf("  \"%s\" (owner: shard %u): %ld\n", questions[i], owner_of(questions[i]),
                   (long)count);
        if (s)
            all_right &= err == 0 && (uint32_t)count == s->count;
        else
            all_right &= err == -ENOENT;
    }
    expect(all_right, "each answer matches the plain count; the absent word is -ENOENT");
    return sc_then(sc_smp_map_reduce(local_total, add, 0, NULL, 0), check_total, NULL, 0);
}

/* Each shard copies its own message counters into its own slot. */
static struct sc_smp_stats traffic[256];

static struct sc_future save_traffic(void *cap)
{
    (void)cap;
    sc_smp_stats(&traffic[sc_this_shard()]);
    return sc_make_ready(0);
}

static struct sc_future show_traffic(void *cap, intptr_t v)
{
    (void)cap, (void)v;
    for (unsigned i = 0; i < sc_shard_count(); i++)
        printf("  shard %u sent %llu messages in %llu publications (%.1f per batch)\n", i,
               traffic[i].sent, traffic[i].batches,
               traffic[i].batches ? (double)traffic[i].sent / (double)traffic[i].batches : 0.0);
    printf("4. questions, each asked of the word's owner\n");
    for (int i = 0; i < 4; i++) {
        struct word_cap w;
        snprintf(w.w, sizeof w.w, "%s", questions[i]);
        answers[i] = sc_sharded_invoke_on(&words, owner_of(w.w), table_lookup, &w, sizeof w);
    }
    return sc_then(sc_when_all(answers, 4), show_answers, NULL, 0);
}

static struct sc_future ask(void *cap, intptr_t words_sent)
{
    (void)cap;
    unsigned n = sc_shard_count();
    for (unsigned i = 0; i < n; i++)
        printf("  shard %u split piece %u into %llu words and sent each to its owner\n", i, i,
               (unsigned long long)counted_by[i]);
    bool home = pieces_freed == n;
    for (unsigned i = 0; i < n; i++)
        home &= freed_on[i] == 0;
    printf("  %u of %u pieces freed, all on shard 0: %s\n", pieces_freed, n, home ? "yes" : "no");
    expect((uint64_t)words_sent == plain_total, "the pieces hold every word of the text");
    expect(home, "each piece went home to shard 0, its owner, to be freed");
    return sc_then(sc_smp_invoke_on_all(save_traffic, NULL, 0), show_traffic, NULL, 0);
}

static intptr_t sum_words(void *cap, intptr_t acc, intptr_t v)
{
    (void)cap;
    return acc + v;
}

static struct sc_future count_all(void *cap, intptr_t v)
{
    (void)cap, (void)v;
    printf("3. counting: shard 0 hands one piece of the text to each shard\n");
    return sc_then(sc_map_reduce(sc_shard_count(), hand_out, sum_words, 0, NULL, 0), ask, NULL, 0);
}

static struct sc_future start_tables(void *cap, intptr_t v)
{
    (void)cap, (void)v;
    printf("2. a sharded service: one word table per shard\n");
    return sc_then(sc_sharded_start(&words, &word_table_ops, NULL), count_all, NULL, 0);
}

static struct sc_future wordcount_main(void *arg, int argc, char **argv)
{
    (void)arg, (void)argc, (void)argv;
    if (sc_shard_count() > 256)
        return sc_make_error(-EINVAL);
    /* the text, and its plain count */
    size_t plen = strlen(paragraph);
    char *t = malloc(plen * COPIES + 1);
    plain = calloc(1, sizeof *plain);
    if (!t || !plain)
        return sc_make_error(-ENOMEM);
    for (int i = 0; i < COPIES; i++)
        memcpy(t + plen * (size_t)i, paragraph, plen);
    t[plen * COPIES] = 0;
    text = t;
    text_len = plen * COPIES;
    for_each_word(text, text_len, plain_add, NULL);
    return sc_then(who_is_there(), start_tables, NULL, 0);
}

int main(int argc, char **argv)
{
    int rc = sc_app_run(argc, argv, wordcount_main);
    free((void *)text);
    return rc;
}
