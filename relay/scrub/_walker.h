/*
 * What _walker.c (the tree walk) and _compute.c (a new string's result) share: the layout of a plan's
 * `fast` tuple and the Walker object, which holds the scrubber's callbacks.
 */
#ifndef RELAY_WALKER_H
#define RELAY_WALKER_H
#include "_triggers.h"

/* The layout of _Plan.fast (see engine.py): keep the two in step. F_QUICK is the plan's detector
 * families as trigger bits, or -1 when its strings always go to the scrubber (user patterns);
 * F_PAIRS says whether key=value pairs inside strings are looked at; F_SPEC is what compute() reads,
 * or None where a new string's result comes from the scrubber's Python twin. F_CHILDREN maps keys to the
 * children's fast tuples, and F_PLAN is the plan itself. F_RENAME is None, or says that the key naming this
 * plan holds personal data itself (the scrubber's _rename_keys renames it once its dict was walked). */
enum {
    F_SKIP, F_KEY_RULE, F_SCAN, F_MIN_LEN, F_STRINGS, F_CHILDREN, F_NUMBERS, F_QUICK, F_PAIRS, F_SPEC, F_KEY_INFO,
    F_PLAN, F_RENAME, F_SIZE
};
/* A rule's info tuple (engine._info), and what its code says to do with what it matches. */
enum { I_RULE, I_ID, I_CODE, I_PLACEHOLDER, I_ORDER, I_SIZE };
enum { CODE_REPLACE, CODE_REMOVE_WHOLE, CODE_REMOVE_VALUE, CODE_APPLY, CODE_KEEP };

/* Strings to look for values in: the one-byte ones joined by NUL bytes (a value without one can't match
 * across two of them), the others kept in a list. */
typedef struct {
    char *joined;
    Py_ssize_t size, cap;
    PyObject *wide; /* a list, or NULL */
} Haystack;

typedef struct {
    PyObject_HEAD
    PyObject *owner;        /* the scrubber: its `_found` collects this payload's sensitive values */
    PyObject *child;        /* scrubber._child(plan, key) -> plan */
    PyObject *scrub_string; /* scrubber._scrub_string(text, plan, path, key, meta) -> value */
    PyObject *redact_whole; /* scrubber._redact_whole(value, rule, path, key, meta) -> value */
    PyObject *scrub_number; /* scrubber._scrub_number(value, plan, path, key, meta) -> value */
    PyObject *enter;        /* scrubber._enter(depth): raises past the depth limit */
    PyObject *checkpoint;   /* scrubber._checkpoint(): the time bound, and pauses on a worker */
    PyObject *reset;        /* scrubber._reset(): drop every plan and memoized string */
    PyObject *unchanged;    /* the memoized "nothing to do" result */
    PyObject *yield_gil;    /* scrubber._yield_gil(): a pause on a worker thread */
    PyObject *result;       /* engine._Result(value, remarks, found) */
    PyObject *key_rule;     /* scrubber._key_info_for(name, plan) -> rule info or None */
    PyObject *apply;        /* scrubber._apply(original, rule) -> (replacement, remark type) */
    PyObject *template;     /* engine._TEMPLATE, _KEY_VALUE and _FIRST_KEY_VALUE */
    PyObject *key_value;
    PyObject *first_key_value;
    Py_ssize_t max_cached;  /* strings up to this length are memoized */
    Py_ssize_t cache_limit; /* memoized here since the last reset, before the next one */
    Py_ssize_t cached;
    Py_ssize_t max_depth;
    int pause;
    unsigned long containers;
    /* While scrub_event walks: every string the Propagator would look at, as the walk leaves it (or
     * `incomplete` when some couldn't be followed), so that "does a value found still occur" needs no
     * second walk. */
    int gathering, incomplete;
    Haystack seen;
} Walker;

/* A family's spec (engine._Family.spec). S_ALTERNATIVES: each detector's own (rule info, pattern,
 * validator, secret group), in rule order; S_SCAN: the family's bit when _scans.c finds where its matches
 * can be (its STARTS and WINDOWS), else 0. */
enum { S_BIT, S_PATTERN, S_MEMBERS, S_WINDOWS, S_STARTS, S_LOWER, S_ALTERNATIVES, S_SCAN, S_SIZE };

/* What a rule matched: _spans.c finds them, _compute.c keeps the ones that win. */
typedef struct {
    Py_ssize_t start, end, order, index;
    PyObject *info; /* owned */
} Span;

typedef struct {
    Span *items;
    Py_ssize_t size, cap;
    Span local[8];
} Spans;

/* _compute.c: add a span of the rule with this info (0, or -1 on error); check a rule info (0, or -1 with
 * TypeError); double an array that starts out in a fixed local buffer (the grown array, the items copied
 * over, or NULL with MemoryError: the old array is then still the caller's to free). */
int relay_spans_add(Spans *s, Py_ssize_t start, Py_ssize_t end, PyObject *info);
int relay_check_info(PyObject *info);
void *relay_grow(void *items, void *local, Py_ssize_t *cap, size_t item);

/* _spans.c: the spans of a family's detectors, and of the values of key=value pairs whose key names a
 * secret (`known`: the plan's memo of key name -> rule info); 0, or -1 on error. */
int relay_family_spans(Walker *self, PyObject *text, const Text *t, PyObject *family, Spans *out);
int relay_pair_spans(Walker *self, PyObject *text, const Text *t, PyObject *plan, PyObject *known, Spans *out);
int relay_init_span_names(void);

/* Scrubber._compute_python for a plan whose `spec` is set: the _Result, or `unchanged` (new reference).
 * `bits`: the string's trigger bits when the caller has them (it is then not a safe shape), else -1. */
PyObject *relay_compute(Walker *self, PyObject *text, PyObject *spec, PyObject *plan, long bits);

/* meta.record: add remarks for the value at path + [key] (key may be Py_None). */
int relay_record(PyObject *meta, PyObject *path, PyObject *key, PyObject *remarks, Py_ssize_t length);

/* The code of a rule info (-1 with an error set if it isn't one). */
long relay_code_of(PyObject *info);

/* meta.PLACEHOLDER.fullmatch(text, start, end) */
int relay_is_placeholder(const Text *t, Py_ssize_t start, Py_ssize_t end);

/* meta.propagates(text[start:end]): that value with quotes stripped (new reference), Py_None if it doesn't
 * propagate, or NULL on error. */
PyObject *relay_propagating(PyObject *text, const Text *t, Py_ssize_t start, Py_ssize_t end);

/* _scans.c: where the next match of a family (NUMERIC, WORDS or TOKEN) can begin in [pos, high), or -1;
 * the next numeric run at or after pos (1, and its span, or 0); and whether a run is worth scanning. */
Py_ssize_t relay_next_start(long family, const Text *t, Py_ssize_t pos, Py_ssize_t high);
int relay_next_run(const Text *t, Py_ssize_t pos, Py_ssize_t *start, Py_ssize_t *end);
int relay_worth_scanning(const Text *t, Py_ssize_t start, Py_ssize_t end);
/* Whether a match of the family (WORDS or TOKEN) may begin at a candidate `i` given what precedes it: 0 only
 * where the family's regex can't match (checked against it by tests/scrub/test_scans.py). */
int relay_may_begin(long family, const Text *t, Py_ssize_t i);

int relay_haystack_add(Haystack *h, PyObject *text);
/* Whether any of the strings in `found` (an iterable) is in one of the haystack's: 1, 0, or -1 on error. */
int relay_haystack_find(Haystack *h, PyObject *found);
void relay_haystack_clear(Haystack *h); /* empty, keeping its memory */
void relay_haystack_free(Haystack *h);


/* _validators.c: the digit validators, as module functions. */
extern PyMethodDef relay_validator_methods[];

/* _triggers.c: `fired` and `safe_shape`, as module functions. */
extern PyMethodDef relay_trigger_methods[];

/* Intern each name into its slot (the lists end with NULL): 0, or -1 on error. */
static inline int
intern_names(PyObject **slots[], const char *const names[])
{
    for (; *slots; slots++, names++)
        if ((**slots = PyUnicode_InternFromString(*names)) == NULL)
            return -1;
    return 0;
}

/* Names used by both files, interned once by the module (relay_init_names). */
int relay_init_names(void);

#endif
