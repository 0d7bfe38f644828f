/*
 * A new string's result, in C: the twin of Scrubber._compute_python, _detector_spans and _ranges for
 * plans of built-in detectors and key rules (engine.py keeps the Python versions as the reference,
 * and for plans with user patterns or allowlists). The regexes are the engine's own compiled `re`
 * patterns and the validators its Python functions: what this saves is the interpreter's work around
 * them. tests/scrub/test_compute.py checks, with Hypothesis, that both give the same results.
 */
#include "_walker.h"

static PyObject *s_match, *s_search, *s_fullmatch, *s_regs, *s_lastindex, *s_lower, *s_rem, *s_len, *s_blank,
    *s_kind_s, *s_kind_x;

int
relay_init_names(void)
{
    s_match = PyUnicode_InternFromString("match");
    s_search = PyUnicode_InternFromString("search");
    s_fullmatch = PyUnicode_InternFromString("fullmatch");
    s_regs = PyUnicode_InternFromString("regs");
    s_lastindex = PyUnicode_InternFromString("lastindex");
    s_lower = PyUnicode_InternFromString("lower");
    s_rem = PyUnicode_InternFromString("rem");
    s_len = PyUnicode_InternFromString("len");
    s_blank = PyUnicode_InternFromString("");
    s_kind_s = PyUnicode_InternFromString("s");
    s_kind_x = PyUnicode_InternFromString("x");
    return s_match && s_search && s_fullmatch && s_regs && s_lastindex && s_lower && s_rem && s_len && s_blank &&
                   s_kind_s && s_kind_x
               ? 0
               : -1;
}

/* A family's spec (engine._Family.spec). */
/* S_SCAN: the family's bit when _scans.c finds where its matches can be (its STARTS and WINDOWS), else 0. */
/* S_ALTERNATIVES: each detector's own (rule info, pattern, validator, secret group), in rule order. */
enum { S_BIT, S_PATTERN, S_MEMBERS, S_WINDOWS, S_STARTS, S_LOWER, S_ALTERNATIVES, S_SCAN, S_SIZE };

static int
check_info(PyObject *info)
{
    if (PyTuple_CheckExact(info) && PyTuple_GET_SIZE(info) == I_SIZE && PyLong_CheckExact(PyTuple_GET_ITEM(info, I_CODE)) &&
        PyLong_CheckExact(PyTuple_GET_ITEM(info, I_ORDER)) && PyUnicode_Check(PyTuple_GET_ITEM(info, I_PLACEHOLDER)))
        return 0;
    PyErr_SetString(PyExc_TypeError, "a rule info must be (rule, id, code, placeholder, order)");
    return -1;
}

long
relay_code_of(PyObject *info)
{
    return check_info(info) < 0 ? -1 : PyLong_AsLong(PyTuple_GET_ITEM(info, I_CODE));
}

static long
code_of(PyObject *info) /* of an info already checked */
{
    return PyLong_AsLong(PyTuple_GET_ITEM(info, I_CODE));
}

/* -- spans --------------------------------------------------------------------------------------- */

/* Double an array that starts out in a fixed local buffer: the grown array (the items copied over), or
 * NULL with MemoryError (the old array is then still the caller's to free). */
static void *
grow(void *items, void *local, Py_ssize_t *cap, size_t item)
{
    Py_ssize_t bigger = *cap * 2;
    void *grown = items == local ? PyMem_Malloc(bigger * item) : PyMem_Realloc(items, bigger * item);
    if (grown == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    if (items == local)
        memcpy(grown, local, *cap * item);
    *cap = bigger;
    return grown;
}

typedef struct {
    Py_ssize_t start, end, order, index;
    PyObject *info; /* owned */
} Span;

typedef struct {
    Span *items;
    Py_ssize_t size, cap;
    Span local[8];
} Spans;

static void
spans_init(Spans *s)
{
    s->items = s->local;
    s->size = 0;
    s->cap = 8;
}

static int
spans_add(Spans *s, Py_ssize_t start, Py_ssize_t end, PyObject *info)
{
    if (check_info(info) < 0)
        return -1;
    if (s->size == s->cap) {
        Span *items = grow(s->items, s->local, &s->cap, sizeof(Span));
        if (items == NULL)
            return -1;
        s->items = items;
    }
    Py_ssize_t order = PyLong_AsSsize_t(PyTuple_GET_ITEM(info, I_ORDER));
    if (order == -1 && PyErr_Occurred())
        return -1;
    Span *span = &s->items[s->size];
    span->start = start;
    span->end = end;
    span->order = order;
    span->index = s->size;
    span->info = Py_NewRef(info);
    s->size++;
    return 0;
}

static void
spans_free(Spans *s)
{
    for (Py_ssize_t i = 0; i < s->size; i++)
        Py_DECREF(s->items[i].info);
    if (s->items != s->local)
        PyMem_Free(s->items);
    spans_init(s);
}

/* Keep the spans for which keep[i] is set, in order. */
static void
spans_filter(Spans *s, const char *keep)
{
    Py_ssize_t out = 0;
    for (Py_ssize_t i = 0; i < s->size; i++) {
        if (keep[i])
            s->items[out++] = s->items[i];
        else
            Py_DECREF(s->items[i].info);
    }
    s->size = out;
}

/* -- small helpers ------------------------------------------------------------------------------- */

/* pattern.<name>(text, pos[, endpos]) (endpos < 0: none) */
static PyObject *
regex(PyObject *name, PyObject *pattern, PyObject *text, Py_ssize_t pos, Py_ssize_t endpos)
{
    PyObject *start = PyLong_FromSsize_t(pos);
    PyObject *end = endpos >= 0 ? PyLong_FromSsize_t(endpos) : NULL;
    PyObject *result = NULL;
    if (start != NULL && (endpos < 0 || end != NULL)) {
        PyObject *args[4] = {pattern, text, start, end};
        result = PyObject_VectorcallMethod(name, args, endpos >= 0 ? 4 : 3, NULL);
    }
    Py_XDECREF(start);
    Py_XDECREF(end);
    return result;
}

/* (start, end) of a match's group, from its `regs` tuple. */
static int
group_span(PyObject *regs, Py_ssize_t group, Py_ssize_t *start, Py_ssize_t *end)
{
    if (!PyTuple_Check(regs) || group < 0 || group >= PyTuple_GET_SIZE(regs)) {
        PyErr_SetString(PyExc_IndexError, "no such group in the match");
        return -1;
    }
    PyObject *pair = PyTuple_GET_ITEM(regs, group);
    if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2) {
        PyErr_SetString(PyExc_TypeError, "a match's regs must be pairs");
        return -1;
    }
    *start = PyLong_AsSsize_t(PyTuple_GET_ITEM(pair, 0));
    *end = PyLong_AsSsize_t(PyTuple_GET_ITEM(pair, 1));
    return (*start == -1 || *end == -1) && PyErr_Occurred() ? -1 : 0;
}

/* The span of group `group` of a match (a new reference to its regs is not kept). */
static int
match_span(PyObject *match, Py_ssize_t group, Py_ssize_t *start, Py_ssize_t *end)
{
    PyObject *regs = PyObject_GetAttr(match, s_regs);
    if (regs == NULL)
        return -1;
    int failed = group_span(regs, group, start, end);
    Py_DECREF(regs);
    return failed;
}

/* Where a placeholder (meta.PLACEHOLDER: `\[(?:[a-z_]+|Filtered|hash:[0-9a-f]{32})\]`) that starts at i
 * ends, or -1. At most one can start anywhere: the first character after "[" picks the form. */
static Py_ssize_t
placeholder_at(const Text *t, Py_ssize_t i)
{
    if (at(t, i) != '[')
        return -1;
    Py_ssize_t j = i + 1;
    while (j < t->size && ((at(t, j) >= 'a' && at(t, j) <= 'z') || at(t, j) == '_'))
        j++;
    if (j > i + 1 && at(t, j) == ']')
        return j + 1;
    if (has(t, i + 1, "Filtered]"))
        return i + 10;
    if (has(t, i + 1, "hash:")) {
        for (j = i + 6; j < i + 38; j++) {
            Py_UCS4 ch = at(t, j);
            if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f')))
                return -1;
        }
        return at(t, j) == ']' ? j + 1 : -1;
    }
    return -1;
}

int
relay_is_placeholder(const Text *t, Py_ssize_t start, Py_ssize_t end)
{
    return end > start && placeholder_at(t, start) == end;
}

static int
is_quote(Py_UCS4 ch)
{
    return ch == '\'' || ch == '"';
}

PyObject *
relay_propagating(PyObject *text, const Text *t, Py_ssize_t start, Py_ssize_t end)
{
    while (start < end && is_quote(at(t, start)))
        start++;
    while (end > start && is_quote(at(t, end - 1)))
        end--;
    if (end - start < 6 || relay_is_placeholder(t, start, end))
        Py_RETURN_NONE;
    /* not (value.isalpha() and (value.islower() or value.isupper())) */
    int alpha = 1, lower_ok = 1, upper_ok = 1, has_lower = 0, has_upper = 0;
    for (Py_ssize_t i = start; i < end && alpha; i++) {
        Py_UCS4 ch = at(t, i);
        alpha = Py_UNICODE_ISALPHA(ch);
        int up = Py_UNICODE_ISUPPER(ch), low = Py_UNICODE_ISLOWER(ch), title = Py_UNICODE_ISTITLE(ch);
        if (up || title)
            lower_ok = 0;
        if (low || title)
            upper_ok = 0;
        has_lower |= low;
        has_upper |= up;
    }
    if (alpha && ((lower_ok && has_lower) || (upper_ok && has_upper)))
        Py_RETURN_NONE;
    return PyUnicode_Substring(text, start, end);
}

/* -- where a family's matches can be --------------------------------------------------------------- */

typedef struct {
    Py_ssize_t low, high;
} Range;

typedef struct {
    Range *items;
    Py_ssize_t size, cap;
    Range local[8];
} Ranges;

static int
ranges_add(Ranges *r, Py_ssize_t low, Py_ssize_t high)
{
    if (r->size && low <= r->items[r->size - 1].high) { /* overlapping or touching: merged */
        if (high > r->items[r->size - 1].high)
            r->items[r->size - 1].high = high;
        return 0;
    }
    if (r->size == r->cap) {
        Range *items = grow(r->items, r->local, &r->cap, sizeof(Range));
        if (items == NULL)
            return -1;
        r->items = items;
    }
    r->items[r->size].low = low;
    r->items[r->size].high = high;
    r->size++;
    return 0;
}

/* Scrubber._ranges: windows around the runs that the family's filter finds worth scanning (the numeric
 * family's found by _scans.c when `scan` says so). */
static int
windows_of(PyObject *text, const Text *t, PyObject *windows, long scan, Ranges *out)
{
    PyObject *runs, *worth;
    Py_ssize_t before, after, size = t->size;
    if (!PyTuple_Check(windows) || !PyArg_ParseTuple(windows, "OnnO", &runs, &before, &after, &worth))
        return -1;
    Py_ssize_t pos = 0;
    if (scan == NUMERIC) {
        Py_ssize_t start, end;
        while (relay_next_run(t, pos, &start, &end)) {
            pos = end;
            if (relay_worth_scanning(t, start, end) &&
                ranges_add(out, start > before ? start - before : 0, end + after < size ? end + after : size) < 0)
                return -1;
        }
        return 0;
    }
    while (pos <= size) {
        PyObject *run = regex(s_search, runs, text, pos, -1);
        if (run == NULL)
            return -1;
        if (run == Py_None) {
            Py_DECREF(run);
            break;
        }
        Py_ssize_t start, end;
        int failed = match_span(run, 0, &start, &end);
        Py_DECREF(run);
        if (failed)
            return -1;
        pos = end > start ? end : end + 1;
        PyObject *ok = PyObject_CallFunction(worth, "Onn", text, start, end);
        int keep = ok == NULL ? -1 : PyObject_IsTrue(ok);
        Py_XDECREF(ok);
        if (keep < 0)
            return -1;
        if (keep && ranges_add(out, start > before ? start - before : 0, end + after < size ? end + after : size) < 0)
            return -1;
    }
    return 0;
}

/* -- a family's spans (Scrubber._detector_spans) ----------------------------------------------------- */

/* validate(value): 1, 0, or -1 on error */
static int
is_valid(PyObject *validate, PyObject *value)
{
    PyObject *verdict = PyObject_CallOneArg(validate, value);
    int valid = verdict == NULL ? -1 : PyObject_IsTrue(verdict);
    Py_XDECREF(verdict);
    return valid;
}

/* Detector.shorter: the longest valid prefix of a rejected match [start, end) that ends before a
 * separator (" ./-"), tried last cut first: 1 (and *cut, where it ends), 0, or -1 on error. */
static int
shorter(PyObject *text, const Text *t, PyObject *pattern, PyObject *validate, Py_ssize_t start, Py_ssize_t end,
        Py_ssize_t *cut)
{
    for (Py_ssize_t at_ = end - 1; at_ > start; at_--) {
        Py_UCS4 ch = at(t, at_);
        if (ch != ' ' && ch != '.' && ch != '/' && ch != '-')
            continue;
        PyObject *match = regex(s_fullmatch, pattern, text, start, at_);
        if (match == NULL)
            return -1;
        int found = match != Py_None;
        Py_DECREF(match);
        if (found) {
            PyObject *value = PyUnicode_Substring(text, start, at_);
            found = value == NULL ? -1 : is_valid(validate, value);
            Py_XDECREF(value);
            if (found) {
                *cut = at_;
                return found;
            }
        }
    }
    return 0;
}

/* engine._alternative: the first detector (in rule order) with a valid match at `start`, or a valid
 * shorter prefix of one. The rejected rule isn't asked again about the same candidate. 1 (with the
 * sensitive part's span, where the match ends and the rule's info), 0, or -1 on error. */
static int
alternative(PyObject *text, const Text *t, PyObject *alternatives, Py_ssize_t start, PyObject *rejected,
            PyObject *candidate, Py_ssize_t *begin, Py_ssize_t *finish, Py_ssize_t *end, PyObject **info)
{
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(alternatives); i++) {
        PyObject *entry = PyTuple_GET_ITEM(alternatives, i), *own_info, *pattern, *validate;
        Py_ssize_t secret;
        if (!PyTuple_Check(entry) || !PyArg_ParseTuple(entry, "OOOn", &own_info, &pattern, &validate, &secret))
            return -1;
        PyObject *match = regex(s_match, pattern, text, start, -1);
        if (match == NULL)
            return -1;
        if (match == Py_None) {
            Py_DECREF(match);
            continue;
        }
        PyObject *regs = PyObject_GetAttr(match, s_regs);
        Py_DECREF(match);
        Py_ssize_t match_start, match_end;
        if (regs == NULL || group_span(regs, 0, &match_start, &match_end) < 0) {
            Py_XDECREF(regs);
            return -1;
        }
        if (validate != Py_None) {
            PyObject *value = PyUnicode_Substring(text, match_start, match_end);
            int valid = value == NULL ? -1 : 0;
            if (value != NULL) {
                int same = own_info == rejected ? PyUnicode_Compare(value, candidate) : 1;
                valid = same == -1 && PyErr_Occurred() ? -1 : same == 0 ? 0 : is_valid(validate, value);
            }
            Py_XDECREF(value);
            Py_ssize_t cut;
            if (valid == 0) {
                valid = shorter(text, t, pattern, validate, match_start, match_end, &cut);
                if (valid > 0) { /* the prefix: its own match, for the sensitive part's span */
                    Py_DECREF(regs);
                    PyObject *prefix = regex(s_fullmatch, pattern, text, match_start, cut);
                    regs = prefix == NULL ? NULL : PyObject_GetAttr(prefix, s_regs);
                    Py_XDECREF(prefix);
                    match_end = cut;
                    if (regs == NULL)
                        return -1;
                }
            }
            if (valid <= 0) {
                Py_DECREF(regs);
                if (valid < 0)
                    return -1;
                continue;
            }
        }
        int failed = group_span(regs, secret, begin, finish);
        Py_DECREF(regs);
        if (failed || check_info(own_info) < 0)
            return -1;
        *end = match_end;
        *info = own_info;
        return 1;
    }
    return 0;
}

/* The match at the next candidate position in [pos, high): a new reference, Py_None when there is none
 * left (then *next is high), or NULL on error; *next is where to look on if it is None at a candidate. */
static PyObject *
next_match(PyObject *pattern, PyObject *starts, long scan, PyObject *haystack, PyObject *text, const Text *t,
           Py_ssize_t pos, Py_ssize_t high, Py_ssize_t *next)
{
    if (starts == Py_None) {
        *next = high;
        return regex(s_search, pattern, text, pos, high);
    }
    Py_ssize_t start, end;
    if (scan) {
        do
            start = relay_next_start(scan, t, pos, high);
        while (start >= 0 && !relay_may_begin(scan, t, start) && (pos = start + 1));
        if (start < 0) {
            *next = high;
            Py_RETURN_NONE;
        }
    }
    else {
        PyObject *candidate = regex(s_search, starts, haystack, pos, high);
        if (candidate == NULL || candidate == Py_None) {
            *next = high;
            return candidate;
        }
        int failed = match_span(candidate, 0, &start, &end);
        Py_DECREF(candidate);
        if (failed)
            return NULL;
    }
    *next = start + 1;
    return regex(s_match, pattern, text, start, high);
}

static int
family_spans(Walker *self, PyObject *text, const Text *t, PyObject *family, Spans *out)
{
    Py_ssize_t size = t->size;
    if (!PyTuple_CheckExact(family) || PyTuple_GET_SIZE(family) != S_SIZE) {
        PyErr_SetString(PyExc_TypeError, "a family spec has the layout of engine._Family.spec");
        return -1;
    }
    PyObject *pattern = PyTuple_GET_ITEM(family, S_PATTERN), *members = PyTuple_GET_ITEM(family, S_MEMBERS);
    PyObject *windows = PyTuple_GET_ITEM(family, S_WINDOWS), *starts = PyTuple_GET_ITEM(family, S_STARTS);
    PyObject *alternatives = PyTuple_GET_ITEM(family, S_ALTERNATIVES);
    long scan = PyLong_AsLong(PyTuple_GET_ITEM(family, S_SCAN));
    if (scan == -1 && PyErr_Occurred())
        return -1;
    if (!PyTuple_Check(members) || !PyTuple_Check(alternatives)) {
        PyErr_SetString(PyExc_TypeError, "a family's members and alternatives must be tuples");
        return -1;
    }
    Ranges ranges = {NULL, 0, 8, {{0, 0}}};
    ranges.items = ranges.local;
    PyObject *haystack = NULL;
    int failed = -1;
    if (windows == Py_None) {
        ranges_add(&ranges, 0, size);
    }
    else if (windows_of(text, t, windows, scan, &ranges) < 0) {
        goto done;
    }
    if (ranges.size == 0) {
        failed = 0;
        goto done;
    }
    haystack = Py_NewRef(text);
    if (starts != Py_None && PyTuple_GET_ITEM(family, S_LOWER) == Py_True) {
        if (PyUnicode_IS_ASCII(text)) { /* ASCII only: positions don't move (the C scan lowers as it goes) */
            if (!scan) {
                Py_SETREF(haystack, PyObject_CallMethodNoArgs(text, s_lower));
                if (haystack == NULL)
                    goto done;
            }
        }
        else {
            starts = Py_None;
        }
    }
    Py_ssize_t done_at = 0;
    for (Py_ssize_t r = 0; r < ranges.size; r++) {
        Py_ssize_t high = ranges.items[r].high;
        Py_ssize_t pos = ranges.items[r].low > done_at ? ranges.items[r].low : done_at;
        while (pos < high) {
            Py_ssize_t next;
            PyObject *match = next_match(pattern, starts, scan, haystack, text, t, pos, high, &next);
            if (match == NULL)
                goto done;
            if (match == Py_None) {
                Py_DECREF(match);
                if (next >= high)
                    break;
                pos = next;
                continue;
            }
            PyObject *last = PyObject_GetAttr(match, s_lastindex);
            PyObject *regs = last ? PyObject_GetAttr(match, s_regs) : NULL;
            Py_DECREF(match);
            Py_ssize_t group = last == NULL || last == Py_None ? 0 : PyLong_AsSsize_t(last);
            Py_XDECREF(last);
            if (regs == NULL || (group == -1 && PyErr_Occurred())) {
                Py_XDECREF(regs);
                goto done;
            }
            PyObject *member = group >= 0 && group < PyTuple_GET_SIZE(members) ? PyTuple_GET_ITEM(members, group) : NULL;
            Py_ssize_t start, end, begin, finish, secret;
            if (member == NULL || !PyTuple_Check(member) || PyTuple_GET_SIZE(member) != 3) {
                PyErr_SetString(PyExc_TypeError, "a family member is (rule info, validator, secret group)");
                Py_DECREF(regs);
                goto done;
            }
            PyObject *info = PyTuple_GET_ITEM(member, 0), *validate = PyTuple_GET_ITEM(member, 1);
            secret = PyLong_AsSsize_t(PyTuple_GET_ITEM(member, 2));
            int bad = (secret == -1 && PyErr_Occurred()) || group_span(regs, 0, &start, &end) < 0 ||
                      group_span(regs, secret, &begin, &finish) < 0;
            Py_DECREF(regs);
            if (bad || check_info(info) < 0)
                goto done;
            int valid = 1;
            if (validate != Py_None) {
                PyObject *candidate = PyUnicode_Substring(text, start, end);
                valid = candidate == NULL ? -1 : is_valid(validate, candidate);
                if (valid == 0) /* a look-alike: another detector, or a valid prefix, may be here */
                    valid = alternative(text, t, alternatives, start, info, candidate, &begin, &finish, &end, &info);
                Py_XDECREF(candidate);
                if (valid < 0)
                    goto done;
                if (valid == 0) {
                    pos = start + 1;
                    continue;
                }
            }
            if (finish > begin && spans_add(out, begin, finish, info) < 0)
                goto done;
            pos = done_at = end > start + 1 ? end : start + 1;
        }
    }
    failed = 0;
done:
    Py_XDECREF(haystack);
    if (ranges.items != ranges.local)
        PyMem_Free(ranges.items);
    return failed;
}

/* -- key=value pairs inside the string -------------------------------------------------------------- */

#define MAX_KNOWN_KEYS 1024

static int
pair_span(Walker *self, PyObject *text, const Text *t, PyObject *plan, PyObject *known, PyObject *match, Spans *out,
          Py_ssize_t *end)
{
    PyObject *regs = PyObject_GetAttr(match, s_regs);
    if (regs == NULL)
        return -1;
    Py_ssize_t start, key_start, key_end, value_start, value_end;
    int failed = group_span(regs, 0, &start, end) < 0 || group_span(regs, 1, &key_start, &key_end) < 0 ||
                 group_span(regs, 2, &value_start, &value_end) < 0;
    Py_DECREF(regs);
    if (failed)
        return -1;
    /* The key's rule: asked of the scrubber once per name and plan (the plan keeps the answers, a bounded few). */
    PyObject *name = PyUnicode_Substring(text, key_start, key_end);
    if (name == NULL)
        return -1;
    PyObject *info = PyDict_GetItemWithError(known, name);
    if (info != NULL) {
        Py_INCREF(info);
    }
    else if (!PyErr_Occurred()) {
        info = PyObject_CallFunctionObjArgs(self->key_rule, name, plan, NULL);
        if (info != NULL && PyDict_GET_SIZE(known) >= MAX_KNOWN_KEYS)
            PyDict_Clear(known);
        if (info != NULL && PyDict_SetItem(known, name, info) < 0)
            Py_CLEAR(info);
    }
    Py_DECREF(name);
    if (info == NULL)
        return -1;
    if (info != Py_None && !relay_is_placeholder(t, value_start, value_end)) {
        PyObject *value = PyUnicode_Substring(text, value_start, value_end);
        PyObject *template = value ? PyObject_CallMethodOneArg(self->template, s_fullmatch, value) : NULL;
        Py_XDECREF(value);
        failed = template == NULL || (template == Py_None && spans_add(out, value_start, value_end, info) < 0);
        Py_XDECREF(template);
    }
    Py_DECREF(info);
    return failed ? -1 : 0;
}

/* engine._key_values, and the spans of the values whose key names a secret */
static int
pair_spans(Walker *self, PyObject *text, const Text *t, PyObject *plan, PyObject *known, Spans *out)
{
    Py_ssize_t pos = 0;
    PyObject *match = regex(s_match, self->first_key_value, text, 0, -1);
    if (match == Py_None) {
        Py_DECREF(match);
        match = regex(s_search, self->key_value, text, 0, -1);
    }
    while (match != NULL && match != Py_None) {
        int failed = pair_span(self, text, t, plan, known, match, out, &pos);
        Py_DECREF(match);
        if (failed)
            return -1;
        match = regex(s_search, self->key_value, text, pos, -1);
    }
    if (match == NULL)
        return -1;
    Py_DECREF(match);
    return 0;
}

/* -- the result ----------------------------------------------------------------------------------- */

static int
by_order_then_start(const void *a, const void *b)
{
    const Span *x = a, *y = b;
    if (x->order != y->order)
        return x->order < y->order ? -1 : 1;
    if (x->start != y->start)
        return x->start < y->start ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

static int
by_start(const void *a, const void *b)
{
    const Span *x = a, *y = b;
    return x->start < y->start ? -1 : x->start > y->start;
}

/* Where two spans overlap the earlier rule wins; spans on a placeholder go. Leaves them sorted by start. */
static int
accept(Spans *spans, const Text *t)
{
    char *keep = PyMem_Malloc(spans->size);
    if (keep == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    if (spans->size > 1)
        qsort(spans->items, spans->size, sizeof(Span), by_order_then_start);
    for (Py_ssize_t i = 0; i < spans->size; i++) {
        Span *s = &spans->items[i];
        keep[i] = !relay_is_placeholder(t, s->start, s->end);
        for (Py_ssize_t j = 0; j < i && keep[i]; j++)
            if (keep[j] && s->start < spans->items[j].end && spans->items[j].start < s->end)
                keep[i] = 0;
    }
    spans_filter(spans, keep);
    PyMem_Free(keep);
    qsort(spans->items, spans->size, sizeof(Span), by_start);
    return 0;
}

/* The replacement and remark type for a span (Scrubber._apply): two new references. */
static int
replacement_of(Walker *self, PyObject *info, PyObject *original, PyObject **replacement, PyObject **kind)
{
    long code = code_of(info);
    if (code == CODE_REMOVE_VALUE || code == CODE_REMOVE_WHOLE) {
        *replacement = Py_NewRef(s_blank);
        *kind = Py_NewRef(s_kind_x);
        return 0;
    }
    if (code != CODE_APPLY) {
        *replacement = Py_NewRef(PyTuple_GET_ITEM(info, I_PLACEHOLDER));
        *kind = Py_NewRef(s_kind_s);
        return 0;
    }
    PyObject *applied = PyObject_CallFunctionObjArgs(self->apply, original, PyTuple_GET_ITEM(info, I_RULE), NULL);
    if (applied == NULL)
        return -1;
    if (!PyTuple_Check(applied) || PyTuple_GET_SIZE(applied) != 2 || !PyUnicode_Check(PyTuple_GET_ITEM(applied, 0))) {
        Py_DECREF(applied);
        PyErr_SetString(PyExc_TypeError, "_apply must give (replacement, remark type)");
        return -1;
    }
    *replacement = Py_NewRef(PyTuple_GET_ITEM(applied, 0));
    *kind = Py_NewRef(PyTuple_GET_ITEM(applied, 1));
    Py_DECREF(applied);
    return 0;
}

/* One accepted span: its piece of the output, its remark, and what it found if that propagates. */
static int
write_span(Walker *self, PyObject *text, const Text *t, Span *span, Py_ssize_t *length, PyObject *pieces,
           PyObject *remarks, PyObject *found)
{
    PyObject *original = PyUnicode_Substring(text, span->start, span->end);
    PyObject *replacement = NULL, *kind = NULL, *remark = NULL, *value = NULL, *entry = NULL;
    int failed = -1;
    if (original == NULL || replacement_of(self, span->info, original, &replacement, &kind) < 0)
        goto done;
    Py_ssize_t size = PyUnicode_GET_LENGTH(replacement);
    remark = Py_BuildValue("[OOnn]", PyTuple_GET_ITEM(span->info, I_ID), kind, *length, *length + size);
    if (remark == NULL || PyList_Append(pieces, replacement) < 0 || PyList_Append(remarks, remark) < 0)
        goto done;
    value = relay_propagating(text, t, span->start, span->end);
    if (value == NULL)
        goto done;
    if (value != Py_None) {
        entry = Py_BuildValue("(O(OOO))", value, replacement, PyTuple_GET_ITEM(span->info, I_ID), kind);
        if (entry == NULL || PyList_Append(found, entry) < 0)
            goto done;
    }
    *length += size;
    failed = 0;
done:
    Py_XDECREF(original);
    Py_XDECREF(replacement);
    Py_XDECREF(kind);
    Py_XDECREF(remark);
    Py_XDECREF(value);
    Py_XDECREF(entry);
    return failed;
}

static PyObject *
build_result(Walker *self, PyObject *text, const Text *t, Spans *spans)
{
    PyObject *pieces = PyList_New(0), *remarks = PyList_New(0), *found = PyList_New(0);
    PyObject *result = NULL;
    if (pieces == NULL || remarks == NULL || found == NULL)
        goto done;
    Py_ssize_t cursor = 0, length = 0;
    for (Py_ssize_t i = 0; i < spans->size; i++) {
        Span *span = &spans->items[i];
        PyObject *before = PyUnicode_Substring(text, cursor, span->start);
        int failed = before == NULL || PyList_Append(pieces, before) < 0;
        Py_XDECREF(before);
        length += span->start - cursor;
        if (failed || write_span(self, text, t, span, &length, pieces, remarks, found) < 0)
            goto done;
        cursor = span->end;
    }
    PyObject *rest = PyUnicode_Substring(text, cursor, t->size);
    int failed = rest == NULL || PyList_Append(pieces, rest) < 0;
    Py_XDECREF(rest);
    if (failed)
        goto done;
    PyObject *value = PyUnicode_Join(s_blank, pieces);
    if (value != NULL) {
        result = PyObject_CallFunctionObjArgs(self->result, value, remarks, found, NULL);
        Py_DECREF(value);
    }
done:
    Py_XDECREF(pieces);
    Py_XDECREF(remarks);
    Py_XDECREF(found);
    return result;
}

/* Drop spans that touch a placeholder an earlier pass wrote (scrubbing stays idempotent). */
static int
drop_written(Spans *spans, const Text *t)
{
    char *keep = PyMem_Malloc(spans->size);
    if (keep == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    memset(keep, 1, spans->size);
    for (Py_ssize_t i = 0; i < t->size; i++) {
        if (at(t, i) != '[')
            continue;
        Py_ssize_t end = placeholder_at(t, i);
        if (end < 0)
            continue;
        for (Py_ssize_t j = 0; j < spans->size; j++)
            if (spans->items[j].start < end && i < spans->items[j].end)
                keep[j] = 0;
        i = end - 1;
    }
    spans_filter(spans, keep);
    PyMem_Free(keep);
    return 0;
}

PyObject *
relay_compute(Walker *self, PyObject *text, PyObject *spec, PyObject *plan, long bits)
{
    if (!PyUnicode_Check(text) || !PyTuple_CheckExact(spec) || PyTuple_GET_SIZE(spec) != 3 ||
        !PyTuple_Check(PyTuple_GET_ITEM(spec, 0)) || !PyDict_Check(PyTuple_GET_ITEM(spec, 2))) {
        PyErr_SetString(PyExc_TypeError, "compute needs a str and a plan spec (families, pairs, known keys)");
        return NULL;
    }
    if (self->pause) {
        PyObject *paused = PyObject_CallNoArgs(self->yield_gil);
        if (paused == NULL)
            return NULL;
        Py_DECREF(paused);
    }
    Text t = text_of(text);
    if (bits < 0 && safe_shape(&t))
        return Py_NewRef(self->unchanged);
    PyObject *families = PyTuple_GET_ITEM(spec, 0);
    PyObject *result = NULL;
    Spans spans;
    spans_init(&spans);
    if (bits < 0)
        bits = PyTuple_GET_SIZE(families) ? triggers(&t) : 0;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(families); i++) {
        PyObject *family = PyTuple_GET_ITEM(families, i);
        long bit = PyTuple_Check(family) && PyTuple_GET_SIZE(family) ? PyLong_AsLong(PyTuple_GET_ITEM(family, S_BIT)) : 0;
        if (bit == -1 && PyErr_Occurred())
            goto done;
        if ((bit & bits) && family_spans(self, text, &t, family, &spans) < 0)
            goto done;
    }
    if (PyTuple_GET_ITEM(spec, 1) == Py_True && PyUnicode_FindChar(text, '=', 0, t.size, 1) >= 0 &&
        pair_spans(self, text, &t, plan, PyTuple_GET_ITEM(spec, 2), &spans) < 0)
        goto done;
    if (spans.size && PyUnicode_FindChar(text, '[', 0, t.size, 1) >= 0 && drop_written(&spans, &t) < 0)
        goto done;
    if (spans.size == 0) {
        result = Py_NewRef(self->unchanged);
        goto done;
    }
    for (Py_ssize_t i = 0; i < spans.size; i++) {
        if (code_of(spans.items[i].info) == CODE_REMOVE_WHOLE) { /* detectors remove the whole value */
            PyObject *remarks = Py_BuildValue("[[OO]]", PyTuple_GET_ITEM(spans.items[i].info, I_ID), s_kind_x);
            if (remarks != NULL) {
                result = PyObject_CallFunctionObjArgs(self->result, Py_None, remarks, NULL);
                Py_DECREF(remarks);
            }
            goto done;
        }
    }
    if (accept(&spans, &t) < 0)
        goto done;
    result = spans.size ? build_result(self, text, &t, &spans) : Py_NewRef(self->unchanged);
done:
    spans_free(&spans);
    return result;
}

/* -- _meta ---------------------------------------------------------------------------------------- */

/* node.setdefault(key, {}) for a dict node (borrowed reference), or NULL on error */
static PyObject *
child_node(PyObject *node, PyObject *key)
{
    if (!PyDict_Check(node)) {
        PyErr_SetString(PyExc_TypeError, "a _meta node must be a dict");
        return NULL;
    }
    PyObject *child = PyDict_GetItemWithError(node, key);
    if (child != NULL || PyErr_Occurred())
        return child;
    PyObject *fresh = PyDict_New();
    if (fresh == NULL)
        return NULL;
    int failed = PyDict_SetItem(node, key, fresh);
    Py_DECREF(fresh);
    return failed ? NULL : fresh;
}

int
relay_record(PyObject *meta, PyObject *path, PyObject *key, PyObject *remarks, Py_ssize_t length)
{
    if (meta == Py_None)
        return 0;
    PyObject *node = meta;
    for (Py_ssize_t i = 0; node != NULL && i < PyList_GET_SIZE(path); i++)
        node = child_node(node, PyList_GET_ITEM(path, i));
    if (node != NULL && key != Py_None)
        node = child_node(node, key);
    PyObject *entry = node ? child_node(node, s_blank) : NULL;
    if (entry == NULL)
        return -1;
    PyObject *rem = PyDict_GetItemWithError(entry, s_rem);
    if (rem == NULL) {
        if (PyErr_Occurred())
            return -1;
        PyObject *fresh = PyList_New(0);
        if (fresh == NULL || PyDict_SetItem(entry, s_rem, fresh) < 0) {
            Py_XDECREF(fresh);
            return -1;
        }
        rem = fresh;
        Py_DECREF(fresh);
    }
    if (!PyList_Check(rem) || !PyList_Check(remarks)) {
        PyErr_SetString(PyExc_TypeError, "_meta remarks must be lists");
        return -1;
    }
    if (PyList_SetSlice(rem, PY_SSIZE_T_MAX, PY_SSIZE_T_MAX, remarks) < 0) /* rem.extend(remarks) */
        return -1;
    if (PyDict_GetItemWithError(entry, s_len) != NULL)
        return 0;
    if (PyErr_Occurred())
        return -1;
    PyObject *size = PyLong_FromSsize_t(length);
    int failed = size == NULL || PyDict_SetItem(entry, s_len, size) < 0;
    Py_XDECREF(size);
    return failed ? -1 : 0;
}
