/*
 * Where the numeric, words and token families' matches can begin, and the numeric family's windows, in
 * C: the exact answers of detectors.STARTS["numeric" | "words" | "token"].search, of _NUMERIC_RUN's
 * runs and of _numeric_run_worth_scanning, which stay the reference (and what plans without the C parts
 * use). tests/scrub/test_scans.py checks each against its regex with Hypothesis.
 *
 * Positions are trusted, not checked (these run per candidate): relay_may_begin, relay_next_run and
 * relay_worth_scanning need 0 <= pos (start <= end) <= t->size, or they read before the text or loop
 * far past it. _spans.c passes only such; the Python wrappers in _walker.c check what they are given.
 */
#include "_walker.h"

/* text[i:] starts with the ASCII literal `s`, ending at or before `high` (lowercased when `fold`) */
static int
literal(const Text *t, Py_ssize_t i, Py_ssize_t high, const char *s, int fold)
{
    for (; *s; s++, i++) {
        if (i >= high)
            return 0;
        Py_UCS4 ch = at(t, i);
        if (fold && ch >= 'A' && ch <= 'Z')
            ch += 32;
        if (ch != (Py_UCS4)(unsigned char)*s)
            return 0;
    }
    return 1;
}

static int
any_literal(const Text *t, Py_ssize_t i, Py_ssize_t high, const char *const *words, int fold)
{
    for (; *words; words++)
        if (literal(t, i, high, *words, fold))
            return 1;
    return 0;
}

/* STARTS["numeric"]: [\d+(A-Z](?<![\d\]-][\d+(])(?<![A-Za-z0-9][A-Z]) */
static int
numeric_start(const Text *t, Py_ssize_t i)
{
    Py_UCS4 ch = at(t, i), before = i ? at(t, i - 1) : 0;
    if (is_decimal(ch) || ch == '+' || ch == '(')
        return !(i && (is_decimal(before) || before == ']' || before == '-'));
    if (ch >= 'A' && ch <= 'Z')
        return !(i && ((before >= 'A' && before <= 'Z') || (before >= 'a' && before <= 'z') ||
                       (before >= '0' && before <= '9')));
    return 0;
}

/* STARTS["words"], in the lowercased text (ASCII text only: the engine scans the rest in full) */
static int
words_start(const Text *t, Py_ssize_t i, Py_ssize_t high)
{
    static const char *const p[] = {"pass", "pwd", "private", NULL}, *const s[] = {"secret", "sess", "sid", "sig", NULL},
                             *const c[] = {"client", "csrf", "cred", NULL}, *const a[] = {"access", "auth", "api", "aws", NULL},
                             *const x[] = {"xsrf", "x-amz", NULL}, *const b[] = {"bearer", "basic", NULL};
    Py_UCS4 ch = at(t, i);
    if (ch >= 'A' && ch <= 'Z')
        ch += 32;
    switch (ch) {
    case 'p': return any_literal(t, i, high, p, 1);
    case 's': return any_literal(t, i, high, s, 1);
    case 'c': return any_literal(t, i, high, c, 1);
    case 't': return literal(t, i, high, "token", 1);
    case 'a': return any_literal(t, i, high, a, 1);
    case 'r': return literal(t, i, high, "refresh", 1);
    case 'i': return literal(t, i, high, "id", 1);
    case 'x': return any_literal(t, i, high, x, 1);
    case 'k': return literal(t, i, high, "key", 1);
    case 'b': return any_literal(t, i, high, b, 1);
    case 'd': return literal(t, i, high, "digest", 1);
    case 'n': return literal(t, i, high, "negotiate", 1);
    default: return 0;
    }
}

/* STARTS["token"] */
static int
token_start(const Text *t, Py_ssize_t i, Py_ssize_t high)
{
    static const char *const aws[] = {"AKIA", "ASIA", "ABIA", "ACCA", "AGPA", "AIDA", "AROA", "ANPA", "ANVA", "AIPA",
                                      "AIza", NULL};
    switch (at(t, i)) {
    case '-': return literal(t, i, high, "-----BEGIN", 0);
    case 'e': return literal(t, i, high, "eyJ", 0);
    case 'A': return any_literal(t, i, high, aws, 0);
    case 'g':
        if (literal(t, i, high, "gh", 0)) {
            Py_UCS4 kind = at(t, i + 2);
            return i + 3 < high && (kind == 'p' || kind == 'o' || kind == 'u' || kind == 's' || kind == 'r') &&
                   at(t, i + 3) == '_';
        }
        if (literal(t, i, high, "gl", 0)) { /* gl[a-z]{2,5}-: only the whole run of letters can end in "-" */
            Py_ssize_t n = 0;
            while (n < 5 && i + 2 + n < high && at(t, i + 2 + n) >= 'a' && at(t, i + 2 + n) <= 'z')
                n++;
            return n >= 2 && i + 2 + n < high && at(t, i + 2 + n) == '-';
        }
        return literal(t, i, high, "github_pat_", 0);
    case 'x': return literal(t, i, high, "xox", 0);
    case 'h': return literal(t, i, high, "https://hooks", 0);
    case 's': return literal(t, i, high, "sk_", 0) || literal(t, i, high, "sk-", 0);
    case 'r': return literal(t, i, high, "rk_", 0);
    case 'w': return literal(t, i, high, "whsec_", 0);
    case 'y': return literal(t, i, high, "ya29.", 0);
    case 'G': return literal(t, i, high, "GOCSPX-", 0);
    default: return 0;
    }
}

Py_ssize_t
relay_next_start(long family, const Text *t, Py_ssize_t pos, Py_ssize_t high)
{
    if (high > t->size)
        high = t->size;
    for (Py_ssize_t i = pos < 0 ? 0 : pos; i < high; i++) {
        int found = family == NUMERIC ? numeric_start(t, i) : family == WORDS ? words_start(t, i, high)
                                                            : family == TOKEN && token_start(t, i, high);
        if (found)
            return i;
    }
    return -1;
}

static inline int
ascii_alnum(Py_UCS4 ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
}

int
relay_may_begin(long family, const Text *t, Py_ssize_t i)
{
    /* Right after a letter or digit (all of them word characters, and none allowed by the lookbehinds),
     * only the detectors without a leading \b or (?<![A-Za-z0-9]) can match: aws_secret_key ("aws"),
     * pem_private_key ("-----BEGIN") and the Slack webhook URL. */
    Py_UCS4 before = i ? at(t, i - 1) : 0;
    if (family == WORDS)
        return !ascii_alnum(before) || literal(t, i, t->size, "aws", 1);
    if (family == TOKEN)
        return !(ascii_alnum(before) || before == '_') || at(t, i) == '-' || literal(t, i, t->size, "https://", 0);
    return 1;
}

static inline int
run_separator(Py_UCS4 ch)
{
    return ch == ' ' || ch == '.' || ch == '(' || ch == ')' || ch == '/' || ch == '-';
}

int
relay_next_run(const Text *t, Py_ssize_t pos, Py_ssize_t *start, Py_ssize_t *end)
{
    /* \d[\d .()/-]{5,}\d: from a digit, the greedy run of digits and separators, back to its last digit,
     * which must be six or more characters on. A later digit of the same run can't do better. */
    Py_ssize_t i = pos;
    while (i < t->size) {
        if (!is_decimal(at(t, i))) {
            i++;
            continue;
        }
        Py_ssize_t last = -1, j = i + 1;
        for (; j < t->size; j++) {
            Py_UCS4 ch = at(t, j);
            if (is_decimal(ch))
                last = j;
            else if (!run_separator(ch))
                break;
        }
        if (last - i >= 6) {
            *start = i;
            *end = last + 1;
            return 1;
        }
        i = j;
    }
    return 0;
}

int
relay_worth_scanning(const Text *t, Py_ssize_t start, Py_ssize_t end)
{
    if (end - start >= 9) { /* 9 digits or more: cards, IMEIs, IBANs, phones, SSNs */
        int digits = 0;
        for (Py_ssize_t i = start; i < end && digits < 9; i++)
            digits += is_decimal(at(t, i));
        if (digits >= 9)
            return 1;
    }
    if ((start && (at(t, start - 1) == '+' || at(t, start - 1) == '(')) || at(t, start) == '0') /* phones */
        return 1;
    int dots = 0;
    for (Py_ssize_t i = start; i < end; i++)
        dots += at(t, i) == '.';
    if (dots == 3) /* IPv4 */
        return 1;
    if (start < 2) /* IBAN country code and check digits: text[start - 2:start].isupper() */
        return 0;
    int cased = 0;
    for (Py_ssize_t i = start - 2; i < start; i++) {
        Py_UCS4 ch = at(t, i);
        if (Py_UNICODE_ISLOWER(ch) || Py_UNICODE_ISTITLE(ch))
            return 0;
        cased |= Py_UNICODE_ISUPPER(ch);
    }
    return cased;
}

/* -- does a sensitive value still occur: the strings the walk left (Walker.seen) -------------------- */

int
relay_haystack_add(Haystack *h, PyObject *text)
{
    if (PyUnicode_KIND(text) != PyUnicode_1BYTE_KIND) {
        if (h->wide == NULL && (h->wide = PyList_New(0)) == NULL)
            return -1;
        return PyList_Append(h->wide, text);
    }
    Py_ssize_t size = PyUnicode_GET_LENGTH(text);
    if (h->size + size + 1 > h->cap) {
        Py_ssize_t cap = (h->size + size + 1) * 2;
        char *joined = PyMem_Realloc(h->joined, cap);
        if (joined == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        h->joined = joined;
        h->cap = cap;
    }
    memcpy(h->joined + h->size, PyUnicode_1BYTE_DATA(text), size);
    h->size += size;
    h->joined[h->size++] = '\0';
    return 0;
}

int
relay_haystack_find(Haystack *h, PyObject *found)
{
    PyObject *needles = PySequence_List(found);
    if (needles == NULL)
        return -1;
    int result = 0;
    for (Py_ssize_t j = 0; result == 0 && j < PyList_GET_SIZE(needles); j++) {
        PyObject *needle = PyList_GET_ITEM(needles, j);
        if (!PyUnicode_Check(needle)) {
            PyErr_SetString(PyExc_TypeError, "the values looked for must be str");
            result = -1;
            break;
        }
        Py_ssize_t length = PyUnicode_GET_LENGTH(needle);
        if (length == 0 || PyUnicode_FindChar(needle, 0, 0, length, 1) >= 0) {
            result = 1; /* "" is everywhere, and a NUL could match across strings: say yes, the Propagator decides */
            break;
        }
        if (PyUnicode_KIND(needle) == PyUnicode_1BYTE_KIND && h->size &&
            memmem(h->joined, h->size, PyUnicode_1BYTE_DATA(needle), length) != NULL) {
            result = 1;
            break;
        }
        for (Py_ssize_t i = 0; h->wide != NULL && i < PyList_GET_SIZE(h->wide); i++) {
            PyObject *text = PyList_GET_ITEM(h->wide, i);
            Py_ssize_t at_ = PyUnicode_Find(text, needle, 0, PyUnicode_GET_LENGTH(text), 1);
            if (at_ != -1) {
                result = at_ == -2 ? -1 : 1;
                break;
            }
        }
    }
    Py_DECREF(needles);
    return result;
}

void
relay_haystack_clear(Haystack *h)
{
    h->size = 0;
    Py_CLEAR(h->wide);
}

void
relay_haystack_free(Haystack *h)
{
    relay_haystack_clear(h);
    PyMem_Free(h->joined);
    h->joined = NULL;
    h->cap = 0;
}
