/*
 * Where the detectors match in a string, in C: the twin of Scrubber._detector_spans, _ranges and
 * _alternative, and of the key=value pairs `_compute_python` looks at. The regexes are the engine's
 * own compiled `re` patterns and the validators its functions, called from here only where a match
 * can begin. _compute.c turns what these find into the string's result.
 */
#include "_walker.h"

static PyObject *s_match, *s_search, *s_fullmatch, *s_regs, *s_lastindex, *s_lower;

int
relay_init_span_names(void)
{
    PyObject **slots[] = {&s_match, &s_search, &s_fullmatch, &s_regs, &s_lastindex, &s_lower, NULL};
    static const char *const names[] = {"match", "search", "fullmatch", "regs", "lastindex", "lower", NULL};
    return intern_names(slots, names);
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
        Range *items = relay_grow(r->items, r->local, &r->cap, sizeof(Range));
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
        PyObject *entry = PyTuple_GET_ITEM(alternatives, i), *own_info, *pattern, *validate, *cut;
        Py_ssize_t secret;
        if (!PyTuple_Check(entry) || !PyArg_ParseTuple(entry, "OOOnO", &own_info, &pattern, &validate, &secret, &cut))
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
            Py_ssize_t cut_at;
            if (valid == 0) {
                int may_cut = 1; /* Detector.cut: may this candidate be cut short? */
                if (cut != Py_None) {
                    PyObject *whole = PyUnicode_Substring(text, match_start, match_end);
                    may_cut = whole == NULL ? -1 : is_valid(cut, whole);
                    Py_XDECREF(whole);
                    if (may_cut < 0) {
                        Py_DECREF(regs);
                        return -1;
                    }
                }
                if (may_cut)
                    valid = shorter(text, t, pattern, validate, match_start, match_end, &cut_at);
                if (valid > 0) { /* the prefix: its own match, for the sensitive part's span */
                    Py_DECREF(regs);
                    PyObject *prefix = regex(s_fullmatch, pattern, text, match_start, cut_at);
                    regs = prefix == NULL ? NULL : PyObject_GetAttr(prefix, s_regs);
                    Py_XDECREF(prefix);
                    match_end = cut_at;
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
        if (failed || relay_check_info(own_info) < 0)
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

int
relay_family_spans(Walker *self, PyObject *text, const Text *t, PyObject *family, Spans *out)
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
    Py_ssize_t done_at = 0, tried = 0;
    for (Py_ssize_t r = 0; r < ranges.size; r++) {
        Py_ssize_t high = ranges.items[r].high;
        Py_ssize_t pos = ranges.items[r].low > done_at ? ranges.items[r].low : done_at;
        while (pos < high) {
            Py_ssize_t next;
            if (++tried % 64 == 0) { /* the time bound inside one string, not only between them (and pauses) */
                PyObject *checked = PyObject_CallNoArgs(self->checkpoint);
                if (checked == NULL)
                    goto done;
                Py_DECREF(checked);
            }
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
            if (bad || relay_check_info(info) < 0)
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
            if (finish > begin && relay_spans_add(out, begin, finish, info) < 0)
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
        failed = template == NULL || (template == Py_None && relay_spans_add(out, value_start, value_end, info) < 0);
        Py_XDECREF(template);
    }
    Py_DECREF(info);
    return failed ? -1 : 0;
}

/* engine._key_values, and the spans of the values whose key names a secret */
int
relay_pair_spans(Walker *self, PyObject *text, const Text *t, PyObject *plan, PyObject *known, Spans *out)
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

