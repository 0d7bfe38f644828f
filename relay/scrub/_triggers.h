/*
 * The built-in detector families' triggers (detectors.TRIGGERS), in one pass over a string, and the
 * engine's "safe shape" test (engine._SAFE_SHAPE), in C. Included by _triggers.c (which gives Python
 * `fired(text)`) and _walker.c (which skips strings nothing can match without calling back).
 *
 * `triggers()` returns a bit per family whose trigger fires, in the order of FAMILIES (see
 * _triggers.c). It is the exact answer of the Python triggers, and `safe_shape()` the exact answer of
 * `_SAFE_SHAPE.fullmatch` (tests/scrub/test_triggers.py checks both with Hypothesis); the Python
 * versions stay the reference and the fallback when the modules aren't built.
 */
#ifndef RELAY_TRIGGERS_H
#define RELAY_TRIGGERS_H
#define PY_SSIZE_T_CLEAN
#include <Python.h>

enum { EMAIL = 1, NUMERIC = 2, HEXSEP = 4, PATH = 8, URL = 16, WORDS = 32, TOKEN = 64, ALNUM = 128, ALL = 255 };
#define FAMILY_NAMES "email", "numeric", "hexsep", "path", "url", "words", "token", "alnum" /* in bit order */

typedef struct {
    int kind;
    const void *data;
    const Py_UCS1 *bytes; /* the data when it is one byte per character (most strings), else NULL */
    Py_ssize_t size;
} Text;

/* text[i], or 0 past the end */
static inline Py_UCS4
at(const Text *t, Py_ssize_t i)
{
    if (i >= t->size)
        return 0;
    return t->bytes ? t->bytes[i] : PyUnicode_READ(t->kind, t->data, i);
}

/* Python's \d and str.isdecimal(): the ASCII digits first, the Unicode table only beyond ASCII */
static inline int
is_decimal(Py_UCS4 ch)
{
    return (ch >= '0' && ch <= '9') || (ch > 127 && Py_UNICODE_ISDECIMAL(ch));
}

/* text[i:] starts with the ASCII literal `s` */
static int
has(const Text *t, Py_ssize_t i, const char *s)
{
    for (; *s; s++, i++)
        if (at(t, i) != (Py_UCS4)(unsigned char)*s)
            return 0;
    return 1;
}

/* What str.lower() makes of one character, as far as the secret words can tell: ASCII letters and
 * the Kelvin sign lower to an ASCII letter. ("İ" lowers to "i" and a combining dot, and no secret
 * word has a letter after an "i" that could follow a combining dot, nor ends in "i".) */
static inline Py_UCS4
lower(Py_UCS4 ch)
{
    if (ch >= 'A' && ch <= 'Z')
        return ch + 32;
    if (ch == 0x212A)
        return 'k';
    return ch;
}

static int
has_lower(const Text *t, Py_ssize_t i, const char *s)
{
    for (; *s; s++, i++)
        if (lower(at(t, i)) != (Py_UCS4)(unsigned char)*s)
            return 0;
    return 1;
}

static inline int
is_hex(Py_UCS4 ch)
{
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F');
}

/* A secret word (detectors._SECRET_WORDS_LOWER) starting at i, in the lowered text. */
static int
secret_word(const Text *t, Py_ssize_t i, Py_UCS4 ch)
{
    switch (ch) {
    case 'p': return has_lower(t, i, "pass") || has_lower(t, i, "pwd");
    case 's': return has_lower(t, i, "secret") || has_lower(t, i, "sess") || has_lower(t, i, "sid") ||
                     has_lower(t, i, "sig");
    case 't': return has_lower(t, i, "token");
    case 'k': return has_lower(t, i, "key");
    case 'a': return has_lower(t, i, "auth") || has_lower(t, i, "aws");
    case 'c': return has_lower(t, i, "csrf") || has_lower(t, i, "cred");
    case 'x': return has_lower(t, i, "xsrf");
    case 'b': return has_lower(t, i, "bearer") || has_lower(t, i, "basic");
    case 'd': return has_lower(t, i, "digest");
    case 'n': return has_lower(t, i, "negotiate");
    default: return 0;
    }
}

/* A token prefix (detectors._TOKEN_PREFIX) starting at i. */
static int
token_prefix(const Text *t, Py_ssize_t i, Py_UCS4 ch)
{
    static const char *aws[] = {"AKIA", "ASIA", "ABIA", "ACCA", "AGPA", "AIDA", "AROA", "ANPA", "ANVA", "AIPA",
                                "AIza", NULL};
    switch (ch) {
    case 'e': return has(t, i, "eyJ");
    case 'P': return has(t, i, "PRIVATE KEY");
    case 'A':
        for (const char **p = aws; *p; p++)
            if (has(t, i, *p))
                return 1;
        return 0;
    case 'g':
        if (at(t, i + 1) == 'h') {
            Py_UCS4 kind = at(t, i + 2);
            return (kind == 'p' || kind == 'o' || kind == 'u' || kind == 's' || kind == 'r') && at(t, i + 3) == '_';
        }
        if (at(t, i + 1) == 'l') { /* gl[a-z]{2,5}- */
            Py_ssize_t n = 0;
            while (n < 5 && at(t, i + 2 + n) >= 'a' && at(t, i + 2 + n) <= 'z')
                n++;
            /* a shorter run of letters can't end in "-": only the full run's end can */
            return n >= 2 && at(t, i + 2 + n) == '-';
        }
        return has(t, i, "github_pat_");
    case 'x': return has(t, i, "xox");
    case 'h': return has(t, i, "hooks.slack");
    case '_': return has(t, i, "_live_") || has(t, i, "_test_");
    case 'w': return has(t, i, "whsec_");
    case 'y': return has(t, i, "ya29.");
    case 'G': return has(t, i, "GOCSPX-");
    case 's': return has(t, i, "sk-");
    default: return 0;
    }
}

/* Families woken by keywords (detectors.KEYWORD_FAMILIES), set from Python by `set_keywords`: each keyword
 * its family's bit, its characters (lowered when `fold`), and whether the text is lowered to compare.
 * Keywords are bucketed by their first two (lowered) characters, so a position costs one table look-up. */
typedef struct {
    long bit;
    int fold;
    Py_ssize_t size;
    Py_UCS4 *chars;
} Keyword;

typedef struct {
    Keyword *words;
    Py_ssize_t count;
    long bits;                 /* every keyword family's bit */
    Py_ssize_t *bucket_start;  /* KEYWORD_BUCKETS + 1 offsets into `order` */
    Py_ssize_t *order;         /* keyword indexes, by bucket */
    unsigned char pairs[128 * 128 / 8];  /* the ASCII first-two-character pairs of keywords, as a bitmap */
    unsigned char shorts[128 * 128 / 8]; /* the same, of two-character keywords */
    unsigned char trigrams[65536 / 8];   /* hashes of the first three characters of longer keywords */
    int wide;       /* some keyword has a character beyond ASCII in its first two */
    int wide_short; /* some two-character keyword does */
    Py_UCS4 latin_fold[256]; /* fold_char of each one-byte character */
} Keywords;

/* A hash of three characters, 16 bits: the trigram filter's index. */
static inline unsigned
trigram(Py_UCS4 a, Py_UCS4 b, Py_UCS4 c)
{
    return ((a * 0x9E3779B1u) ^ (b * 0x85EBCA77u) ^ (c * 0xC2B2AE3Du)) >> 16;
}

static inline int
has_bit(const unsigned char *bits, unsigned index)
{
    return bits[index >> 3] & (1u << (index & 7));
}

#define KEYWORD_BUCKETS 4096
extern Keywords relay_keywords;

static inline Py_UCS4
fold_char(Py_UCS4 ch)
{
    if (ch < 128)
        return (ch >= 'A' && ch <= 'Z') ? ch + 32 : ch;
    return ch == 0x130 ? 'i' : Py_UNICODE_TOLOWER(ch);
}

static inline Py_ssize_t
keyword_bucket(Py_UCS4 first, Py_UCS4 second)
{
    return (Py_ssize_t)((first * 31u + second) % KEYWORD_BUCKETS);
}

/* Whether a keyword may begin at a position whose first three characters are (raw, raw2, raw3), lowered (low,
 * low2, low3); has3 says a third character exists. The pair bitmaps, then the trigram filter: most positions
 * stop here. */
static inline int
keyword_may_begin(const Keywords *k, Py_UCS4 raw, Py_UCS4 low, Py_UCS4 raw2, Py_UCS4 low2, int has3, Py_UCS4 raw3,
                  Py_UCS4 low3)
{
    int lowered_ascii = low < 128 && low2 < 128, raw_ascii = raw < 128 && raw2 < 128, ascii = lowered_ascii && raw_ascii;
    unsigned lowered = lowered_ascii ? (unsigned)(low << 7 | low2) : 0;
    unsigned exact = raw_ascii ? (unsigned)(raw << 7 | raw2) : 0;
    int hit = (lowered_ascii && has_bit(k->pairs, lowered)) || (raw_ascii && has_bit(k->pairs, exact));
    /* (keywords beyond ASCII in their first two characters can only begin where the pair is not ASCII) */
    if (!hit && (!k->wide || ascii))
        return 0;
    if ((lowered_ascii && has_bit(k->shorts, lowered)) || (raw_ascii && has_bit(k->shorts, exact)) ||
        (k->wide_short && !ascii))
        return 1; /* a two-character keyword may be here */
    return has3 && (has_bit(k->trigrams, trigram(low, low2, low3)) || has_bit(k->trigrams, trigram(raw, raw2, raw3)));
}

/* The bits of the keywords (of families not yet found) that begin at i. */
static long
keywords_at(const Keywords *k, const Text *t, Py_ssize_t i, Py_UCS4 raw, Py_UCS4 low, Py_UCS4 raw2, Py_UCS4 low2,
            long found)
{
    /* a folded keyword is looked up by the lowered pair, an exact one by the raw pair (both buckets) */
    Py_ssize_t buckets[2] = {keyword_bucket(low, low2), keyword_bucket(raw, raw2)};
    int nb = (raw == low && raw2 == low2) ? 1 : 2;
    for (int b = 0; b < nb; b++) {
        for (Py_ssize_t o = k->bucket_start[buckets[b]]; o < k->bucket_start[buckets[b] + 1]; o++) {
            const Keyword *w = &k->words[k->order[o]];
            if ((found & w->bit) || i + w->size > t->size)
                continue;
            Py_ssize_t j = 0;
            if (w->fold)
                while (j < w->size && fold_char(at(t, i + j)) == w->chars[j])
                    j++;
            else
                while (j < w->size && at(t, i + j) == w->chars[j])
                    j++;
            if (j == w->size)
                found |= w->bit;
        }
    }
    return found;
}

/* The bits of the keyword families one of whose keywords occurs in the text. */
static inline long
keyword_triggers(const Text *t)
{
    const Keywords *k = &relay_keywords;
    long found = 0;
    Py_ssize_t n = t->size;
    if (k->count == 0 || n < 2)
        return 0;
    if (t->bytes) { /* one byte per character (most strings): lowered by a table */
        const Py_UCS1 *b = t->bytes;
        for (Py_ssize_t i = 0; i + 1 < n && found != k->bits; i++) {
            Py_UCS4 raw = b[i], raw2 = b[i + 1], raw3 = i + 2 < n ? b[i + 2] : 0;
            Py_UCS4 low = k->latin_fold[raw], low2 = k->latin_fold[raw2], low3 = k->latin_fold[raw3];
            if (keyword_may_begin(k, raw, low, raw2, low2, i + 2 < n, raw3, low3))
                found = keywords_at(k, t, i, raw, low, raw2, low2, found);
        }
        return found;
    }
    for (Py_ssize_t i = 0; i + 1 < n && found != k->bits; i++) {
        Py_UCS4 raw = at(t, i), raw2 = at(t, i + 1), raw3 = at(t, i + 2);
        Py_UCS4 low = fold_char(raw), low2 = fold_char(raw2), low3 = fold_char(raw3);
        if (keyword_may_begin(k, raw, low, raw2, low2, i + 2 < n, raw3, low3))
            found = keywords_at(k, t, i, raw, low, raw2, low2, found);
    }
    return found;
}

/* A percent-escape ("%40", "%2B") in the text: detectors then look at the decoded text (engine._compute_encoded). */
static inline int
has_percent_escape(const Text *t)
{
    for (Py_ssize_t i = 0; i + 2 < t->size; i++)
        if (at(t, i) == '%' && is_hex(at(t, i + 1)) && is_hex(at(t, i + 2)))
            return 1;
    return 0;
}

static inline long
triggers(const Text *t)
{
    long found = 0;
    /* numeric: \d[\d .()/-]{5,}\d, i.e. a run of digits and separators whose first and last digits
     * are at least six apart. */
    Py_ssize_t run_digit = -1; /* first digit of the current run, or -1 */
    /* hexsep: "::", (?:[0-9A-Fa-f]{1,4}:){3} and (?:[0-9A-Fa-f]{2}-){5} */
    Py_ssize_t hex_run = 0;   /* hex characters just before i */
    Py_ssize_t colon_chain = 0, colon_at = -1, dash_chain = 0, dash_at = -1;
    Py_ssize_t dot_at = -1; /* the last ".", and whether 4+ hex came before it (Cisco's a446.15f0.a6cc) */
    /* alnum: [A-Z]{2}[0-9] or [0-9]{7}[A-Z] (codice fiscale, CURP, PAN, NINO, NIE, DNI, NRIC) */
    Py_ssize_t upper_run = 0, ascii_digit_run = 0;
    int dot_after_hex = 0;
    for (Py_ssize_t i = 0; i < t->size && found != ALL; i++) {
        Py_UCS4 ch = at(t, i);
        if (is_decimal(ch)) {
            if (run_digit < 0)
                run_digit = i;
            else if (i - run_digit >= 6)
                found |= NUMERIC;
        }
        else if (!(ch == ' ' || ch == '.' || ch == '(' || ch == ')' || ch == '/' || ch == '-')) {
            run_digit = -1;
        }
        if (ch == ':') {
            if (hex_run >= 1) {
                /* a group of 1-4 hex right after the colon that ended the last group extends the chain */
                colon_chain = (hex_run <= 4 && colon_at == i - hex_run - 1 && colon_chain) ? colon_chain + 1 : 1;
                if (colon_chain >= 3)
                    found |= HEXSEP;
            }
            else {
                colon_chain = 0;
            }
            colon_at = i;
            if (at(t, i + 1) == ':')
                found |= HEXSEP;
            else if (at(t, i + 1) == '/' && at(t, i + 2) == '/')
                found |= URL;
        }
        else if (ch == '.') {
            /* 4+ hex "." exactly 4 hex "." 4 hex: the second dot completes it if 4 hex follow */
            if (hex_run == 4 && dot_at == i - 5 && dot_after_hex && is_hex(at(t, i + 1)) && is_hex(at(t, i + 2)) &&
                is_hex(at(t, i + 3)) && is_hex(at(t, i + 4)))
                found |= HEXSEP;
            dot_after_hex = hex_run >= 4;
            dot_at = i;
        }
        else if (ch == '-') {
            if (hex_run >= 2) {
                dash_chain = (hex_run == 2 && dash_at == i - 3 && dash_chain) ? dash_chain + 1 : 1;
                if (dash_chain >= 5)
                    found |= HEXSEP;
            }
            else {
                dash_chain = 0;
            }
            dash_at = i;
        }
        hex_run = is_hex(ch) ? hex_run + 1 : 0;
        if (ch >= '0' && ch <= '9') {
            if (upper_run >= 2)
                found |= ALNUM;
            ascii_digit_run++;
            upper_run = 0;
        }
        else if (ch >= 'A' && ch <= 'Z') {
            if (ascii_digit_run >= 7)
                found |= ALNUM;
            upper_run++;
            ascii_digit_run = 0;
        }
        else {
            upper_run = ascii_digit_run = 0;
        }
        switch (ch) {
        case '@': found |= EMAIL; break;
        case '/': if (has(t, i, "/home/")) found |= PATH; break;
        case 'U': if (has(t, i, "Users")) found |= PATH; break;
        case 'S': if (has(t, i, "Settings")) found |= PATH; break;
        default: break;
        }
        if (!(found & WORDS) && secret_word(t, i, lower(ch)))
            found |= WORDS;
        if (!(found & TOKEN) && token_prefix(t, i, ch))
            found |= TOKEN;
    }
    return found | keyword_triggers(t);
}

/* -- engine._SAFE_SHAPE.fullmatch --------------------------------------------------------------
 * \d{4}-\d\d-\d\d(?:[T ]\d\d:\d\d(?::\d\d(?:[.,]\d{1,9})?)?)?(?:Z|[+-]\d\d(?::?\d\d)?)?   (a timestamp)
 * | a UUID | -?\d{1,6}(?:\.\d+)?   (a short number). Each optional part starts with a character that
 * nothing after it can start with, so a greedy parse decides the full match without backtracking. */

static inline int
digit_at(const Text *t, Py_ssize_t i)
{
    return i < t->size && is_decimal(at(t, i));
}

/* `count` digits from *i on (advancing *i past them) */
static int
digits(const Text *t, Py_ssize_t *i, Py_ssize_t count)
{
    for (Py_ssize_t n = 0; n < count; n++, (*i)++)
        if (!digit_at(t, *i))
            return 0;
    return 1;
}

static int
timestamp_shape(const Text *t)
{
    Py_ssize_t i = 0;
    if (!digits(t, &i, 4) || at(t, i++) != '-' || !digits(t, &i, 2) || at(t, i++) != '-' || !digits(t, &i, 2))
        return 0;
    if (i < t->size && (at(t, i) == 'T' || at(t, i) == ' ')) {
        i++;
        if (!digits(t, &i, 2) || at(t, i++) != ':' || !digits(t, &i, 2))
            return 0;
        if (i < t->size && at(t, i) == ':') {
            i++;
            if (!digits(t, &i, 2))
                return 0;
            if (i < t->size && (at(t, i) == '.' || at(t, i) == ',')) {
                i++;
                Py_ssize_t n = 0;
                while (n < 9 && digit_at(t, i))
                    n++, i++;
                if (n == 0)
                    return 0;
            }
        }
    }
    if (i < t->size && at(t, i) == 'Z') {
        i++;
    }
    else if (i < t->size && (at(t, i) == '+' || at(t, i) == '-')) {
        i++;
        if (!digits(t, &i, 2))
            return 0;
        if (i < t->size) {
            if (at(t, i) == ':')
                i++;
            if (!digits(t, &i, 2))
                return 0;
        }
    }
    return i == t->size;
}

static int
uuid_shape(const Text *t)
{
    if (t->size != 36)
        return 0;
    for (Py_ssize_t i = 0; i < 36; i++) {
        Py_UCS4 ch = at(t, i);
        if ((i == 8 || i == 13 || i == 18 || i == 23) ? ch != '-' : !is_hex(ch))
            return 0;
    }
    return 1;
}

static int
number_shape(const Text *t)
{
    Py_ssize_t i = at(t, 0) == '-' ? 1 : 0, n = 0;
    while (digit_at(t, i))
        n++, i++;
    if (n < 1 || n > 6)
        return 0;
    if (i < t->size) {
        if (at(t, i++) != '.' || !digit_at(t, i))
            return 0;
        while (digit_at(t, i))
            i++;
    }
    return i == t->size;
}

static inline int
safe_shape(const Text *t)
{
    return timestamp_shape(t) || uuid_shape(t) || number_shape(t);
}

static inline Text
text_of(PyObject *text)
{
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    Text t = {kind, data, kind == PyUnicode_1BYTE_KIND ? (const Py_UCS1 *)data : NULL, PyUnicode_GET_LENGTH(text)};
    return t;
}

#endif
