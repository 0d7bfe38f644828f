/*
 * The scrub engine's tree walk, in C.
 *
 * This is a line-for-line twin of Scrubber._value, _walk_dict and _walk_list in engine.py (the
 * pure-Python fallback, used when this module could not be built or RELAY_PURE_PYTHON is set).
 * It decides nothing on its own: every decision it makes comes from a plan's `fast` tuple, and
 * everything beyond skipping (scanning a string, redacting a value, making a plan) is a call back
 * into the scrubber. What it saves is the interpreter's per-node overhead: an event has a few
 * hundred nodes, and most of them are strings whose result is already memoized as unchanged.
 */
#include "_walker.h"
#include <structmember.h>

static PyObject *str_fast, *str_hash, *str_one, *str_found, *str_value, *str_remarks, *str_collected, *str_rename_keys;

/* The walk passes plans' `fast` tuples, not the plans: a plan's children map to their tuples, so a node
 * costs one lookup, and the plan (fast[F_PLAN]) is read only for a call back into the scrubber. */
static int walk_dict(Walker *self, PyObject *obj, PyObject *fast, PyObject *path, PyObject *meta, Py_ssize_t depth);
static int walk_list(Walker *self, PyObject *items, PyObject *fast, PyObject *path, PyObject *meta, Py_ssize_t depth);

/* Where a plan's `fast` slot is: _Plan has __slots__, so after the first plan the tuple is read straight
 * from the instance instead of through attribute lookup (once per node, it was a tenth of the walk). */
static PyTypeObject *plan_type;
static Py_ssize_t fast_offset = -1;

static PyObject *
fast_of(PyObject *plan)
{
    PyObject *fast;
    if (Py_TYPE(plan) == plan_type && fast_offset >= 0) {
        fast = *(PyObject **)((char *)plan + fast_offset);
        if (fast == NULL)
            return PyObject_GetAttr(plan, str_fast); /* unset: raises AttributeError */
        Py_INCREF(fast);
    }
    else {
        PyObject *slot = _PyType_Lookup(Py_TYPE(plan), str_fast); /* borrowed */
        if (slot != NULL && Py_IS_TYPE(slot, &PyMemberDescr_Type) &&
            ((PyMemberDescrObject *)slot)->d_member->type == T_OBJECT_EX) {
            Py_XSETREF(plan_type, (PyTypeObject *)Py_NewRef(Py_TYPE(plan)));
            fast_offset = ((PyMemberDescrObject *)slot)->d_member->offset;
        }
        fast = PyObject_GetAttr(plan, str_fast);
    }
    if (fast != NULL && (!PyTuple_CheckExact(fast) || PyTuple_GET_SIZE(fast) != F_SIZE)) {
        Py_DECREF(fast);
        PyErr_SetString(PyExc_TypeError, "plan.fast must be a tuple of the walker's layout");
        return NULL;
    }
    return fast;
}

/* The `fast` tuple of the plan for `key` under the plan of `fast`: from its children, else made by the
 * scrubber (new reference). */
static PyObject *
child_of(Walker *self, PyObject *fast, PyObject *key)
{
    PyObject *child = PyDict_GetItemWithError(PyTuple_GET_ITEM(fast, F_CHILDREN), key);
    if (child != NULL) {
        if (PyTuple_CheckExact(child) && PyTuple_GET_SIZE(child) == F_SIZE)
            return Py_NewRef(child);
        PyErr_SetString(PyExc_TypeError, "a plan's fast children must be fast tuples");
        return NULL;
    }
    if (PyErr_Occurred())
        return NULL;
    PyObject *plan = PyObject_CallFunctionObjArgs(self->child, PyTuple_GET_ITEM(fast, F_PLAN), key, NULL);
    if (plan == NULL)
        return NULL;
    child = fast_of(plan);
    Py_DECREF(plan);
    return child;
}

/* A list index as a path segment (new reference): the first few made once. */
#define LABELS 256
static PyObject *labels[LABELS];

static PyObject *
label_of(Py_ssize_t index)
{
    if (index < LABELS) {
        if (labels[index] == NULL && (labels[index] = PyUnicode_FromFormat("%zd", index)) == NULL)
            return NULL;
        return Py_NewRef(labels[index]);
    }
    return PyUnicode_FromFormat("%zd", index);
}

/* Values found sensitive are this long or longer (meta.propagates): shorter strings can't hold one. */
#define MIN_FOUND 6

/* While gathering: note a string the Propagator would look at, as the walk leaves it. */
static int
saw(Walker *self, PyObject *text)
{
    if (!self->gathering || text == NULL || !PyUnicode_CheckExact(text) || PyUnicode_GET_LENGTH(text) < MIN_FOUND)
        return 0;
    return relay_haystack_add(&self->seen, text);
}

/* A value the walk passes over as neither JSON string, object nor array: if the Propagator would look
 * into it (a str, dict or list subclass), the gathering can't answer for this payload. */
static void
passed_over(Walker *self, PyObject *value)
{
    if (PyUnicode_Check(value) || PyDict_Check(value) || PyList_Check(value))
        self->incomplete = 1;
}

static int
enter(Walker *self, Py_ssize_t depth)
{
    PyObject *result = NULL;
    if (depth > self->max_depth) {
        PyObject *level = PyLong_FromSsize_t(depth);
        if (level == NULL)
            return -1;
        result = PyObject_CallOneArg(self->enter, level);
        Py_DECREF(level);
    }
    else if ((++self->containers & 31) == 0 || self->pause) {
        result = PyObject_CallNoArgs(self->checkpoint);
    }
    else {
        return 0;
    }
    if (result == NULL)
        return -1;
    Py_DECREF(result);
    return 0;
}

static int
pop(PyObject *path)
{
    Py_ssize_t size = PyList_GET_SIZE(path);
    return size ? PyList_SetSlice(path, size - 1, size, NULL) : 0;
}

/* abs(value) >= 10**12: long enough to be a card or IMEI number. */
static int
is_big(PyObject *value)
{
    int overflow = 0;
    long long number = PyLong_AsLongLongAndOverflow(value, &overflow);
    if (overflow)
        return 1;
    if (number == -1 && PyErr_Occurred())
        return -1;
    return number >= 1000000000000LL || number <= -1000000000000LL;
}

/* A string no rule of the plan can match, decided as engine._compute would begin: a safe shape
 * (timestamp, UUID, short number), or no trigger of the plan's families and no key=value pair.
 * When the triggers ran on a string that isn't a safe shape, their bits go to *bits. */
static int
nothing_to_find(PyObject *text, PyObject *fast, long *bits)
{
    long quick = PyLong_AsLong(PyTuple_GET_ITEM(fast, F_QUICK));
    if (quick < 0)
        return 0; /* (-1 with an error set can't happen: the engine writes a small int) */
    Text t = text_of(text);
    if (safe_shape(&t))
        return 1;
    *bits = triggers(&t);
    if ((*bits & quick) || has_percent_escape(&t))
        return 0;
    return PyTuple_GET_ITEM(fast, F_PAIRS) != Py_True ||
           PyUnicode_FindChar(text, '=', 0, t.size, 1) == -1;
}

/* A string the plan scans, whose memoized result (in *memo, borrowed, or NULL) isn't "unchanged" and
 * that something may match: 1 if it needs the scrubber (and *bits its trigger bits when they were worked
 * out, else -1). The memo comes first: a repeated string costs a lookup, which measured cheaper than the
 * test on the string even when the memo is out of the CPU caches. */
static int
needs_scan(Walker *self, PyObject *text, PyObject *fast, long *bits, PyObject **memo)
{
    *bits = -1;
    *memo = NULL;
    if (PyTuple_GET_ITEM(fast, F_SCAN) != Py_True)
        return 0;
    Py_ssize_t min_len = PyLong_AsSsize_t(PyTuple_GET_ITEM(fast, F_MIN_LEN));
    if (min_len == -1 && PyErr_Occurred())
        return -1;
    if (PyUnicode_GET_LENGTH(text) < min_len)
        return 0;
    *memo = PyDict_GetItemWithError(PyTuple_GET_ITEM(fast, F_STRINGS), text);
    if (*memo != NULL)
        return *memo != self->unchanged;
    if (PyErr_Occurred())
        return -1;
    if (!nothing_to_find(text, fast, bits))
        return 1;
    /* Memoized as the scrubber would (and bounded the same way): a repeat costs a lookup. */
    if (PyUnicode_GET_LENGTH(text) <= self->max_cached) {
        if (PyDict_SetItem(PyTuple_GET_ITEM(fast, F_STRINGS), text, self->unchanged) < 0)
            return -1;
        if (++self->cached > self->cache_limit) {
            self->cached = 0;
            PyObject *done = PyObject_CallNoArgs(self->reset);
            if (done == NULL)
                return -1;
            Py_DECREF(done);
        }
    }
    return 0;
}

/* Add a value found sensitive, (original, (replacement, rule id, remark type)), to the scrubber's `_found`
 * (when it collects them: scrub_event does, for replacing other occurrences). */
static int
collect(Walker *self, PyObject *original, PyObject *entry)
{
    PyObject *collected = PyObject_GetAttr(self->owner, str_collected);
    if (collected == NULL)
        return -1;
    int failed = PyDict_Check(collected) && PyDict_SetDefault(collected, original, entry) == NULL;
    Py_DECREF(collected);
    return failed ? -1 : 0;
}

/* Scrubber._scrub_string: a string's memoized or new result, recorded in `_meta` (new reference to the
 * value to keep). Where the plan has no spec (user patterns, allowlists) the scrubber does it all. */
static PyObject *
scrub_text(Walker *self, PyObject *text, PyObject *plan, PyObject *fast, PyObject *path, PyObject *key,
           PyObject *meta, long bits, PyObject *memo)
{
    PyObject *spec = PyTuple_GET_ITEM(fast, F_SPEC);
    if (spec == Py_None)
        return PyObject_CallFunctionObjArgs(self->scrub_string, text, plan, path, key, meta, NULL);
    PyObject *result;
    Py_ssize_t size = PyUnicode_GET_LENGTH(text);
    if (size <= self->max_cached) {
        PyObject *strings = PyTuple_GET_ITEM(fast, F_STRINGS);
        result = memo != NULL ? memo : bits < 0 ? PyDict_GetItemWithError(strings, text) : NULL;
        if (result != NULL) {
            Py_INCREF(result);
        }
        else if (PyErr_Occurred()) {
            return NULL;
        }
        else {
            result = relay_compute(self, text, spec, plan, bits);
            if (result == NULL || PyDict_SetItem(strings, text, result) < 0) {
                Py_XDECREF(result);
                return NULL;
            }
            if (++self->cached > self->cache_limit) {
                self->cached = 0;
                PyObject *done = PyObject_CallNoArgs(self->reset);
                if (done == NULL) {
                    Py_DECREF(result);
                    return NULL;
                }
                Py_DECREF(done);
            }
        }
    }
    else {
        result = relay_compute(self, text, spec, plan, bits);
        if (result == NULL)
            return NULL;
    }
    if (result == self->unchanged) {
        Py_DECREF(result);
        return Py_NewRef(text);
    }
    PyObject *value = NULL, *found = NULL;
    PyObject *remarks = PyObject_GetAttr(result, str_remarks);
    if (remarks == NULL || relay_record(meta, path, key, remarks, size) < 0)
        goto done;
    /* The values found that propagate, into the scrubber's `_found` for this payload (if collecting). */
    found = PyObject_GetAttr(result, str_found);
    if (found == NULL)
        goto done;
    for (Py_ssize_t i = 0; PyList_Check(found) && i < PyList_GET_SIZE(found); i++) {
        PyObject *pair = PyList_GET_ITEM(found, i);
        if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2) {
            PyErr_SetString(PyExc_TypeError, "a found value is (original, replacement)");
            goto done;
        }
        if (collect(self, PyTuple_GET_ITEM(pair, 0), PyTuple_GET_ITEM(pair, 1)) < 0)
            goto done;
    }
    value = PyObject_GetAttr(result, str_value);
done:
    Py_XDECREF(remarks);
    Py_XDECREF(found);
    Py_DECREF(result);
    return value;
}

/* Scrubber._redact_whole for a value under a key rule that replaces or removes it: a string, or a number
 * by its str(); an empty string stays (nothing to hide); containers, typed attributes ({"type": ..., "value":
 * ...}), mask and hash are the scrubber's. */
static PyObject *
redact(Walker *self, PyObject *value, PyObject *fast, PyObject *path, PyObject *key, PyObject *meta)
{
    PyObject *info = PyTuple_GET_ITEM(fast, F_KEY_INFO);
    int is_str = PyUnicode_CheckExact(value);
    if (is_str && PyUnicode_GET_LENGTH(value) == 0)
        return Py_NewRef(value);
    /* Containers go to the scrubber's _redact_whole: each value in them is redacted, their shape kept. */
    int plain = is_str || PyLong_CheckExact(value) || PyFloat_CheckExact(value);
    long code = plain && PyTuple_Check(info) ? relay_code_of(info) : CODE_APPLY;
    if (code == -1 && PyErr_Occurred())
        return NULL;
    if (code == CODE_APPLY)
        return PyObject_CallFunctionObjArgs(self->redact_whole, value, PyTuple_GET_ITEM(fast, F_KEY_RULE), path, key,
                                            meta, NULL);
    PyObject *original = is_str ? Py_NewRef(value) : PyObject_Str(value);
    if (original == NULL || !PyUnicode_Check(original)) {
        Py_XDECREF(original);
        return NULL;
    }
    PyObject *id = PyTuple_GET_ITEM(info, I_ID), *replacement = PyTuple_GET_ITEM(info, I_PLACEHOLDER);
    PyObject *result = NULL, *remarks = NULL, *found = NULL, *entry = NULL;
    Py_ssize_t size = PyUnicode_GET_LENGTH(original);
    Text t = text_of(original);
    if (code != CODE_REPLACE) { /* remove: the value goes */
        remarks = Py_BuildValue("[[Os]]", id, "x");
        if (remarks != NULL && relay_record(meta, path, key, remarks, size) == 0)
            result = Py_NewRef(Py_None);
        goto done;
    }
    if (is_str && relay_is_placeholder(&t, 0, t.size)) { /* already scrubbed: scrubbing stays idempotent */
        result = Py_NewRef(value);
        goto done;
    }
    int same = PyUnicode_Compare(replacement, original);
    if (same == -1 && PyErr_Occurred())
        goto done;
    if (same == 0) {
        result = Py_NewRef(value);
        goto done;
    }
    remarks = Py_BuildValue("[[Osnn]]", id, "s", (Py_ssize_t)0, PyUnicode_GET_LENGTH(replacement));
    if (remarks == NULL || relay_record(meta, path, key, remarks, size) < 0 ||
        (found = relay_propagating(original, &t, 0, t.size)) == NULL)
        goto done;
    if (found != Py_None) {
        entry = Py_BuildValue("(OOs)", replacement, id, "s");
        if (entry == NULL || collect(self, found, entry) < 0)
            goto done;
    }
    result = Py_NewRef(replacement);
done:
    Py_DECREF(original);
    Py_XDECREF(remarks);
    Py_XDECREF(found);
    Py_XDECREF(entry);
    return result;
}

/* Scrubber._value: scrub one value whose plan is known (new reference to the value to keep). */
static PyObject *
walk_value(Walker *self, PyObject *value, PyObject *fast, PyObject *path, PyObject *meta, Py_ssize_t depth,
           PyObject *key)
{
    PyObject *plan = PyTuple_GET_ITEM(fast, F_PLAN);
    PyObject *result = NULL;
    PyObject *key_rule = PyTuple_GET_ITEM(fast, F_KEY_RULE);
    if (key_rule != Py_None && value != Py_None && !PyBool_Check(value)) {
        result = redact(self, value, fast, path, key, meta);
    }
    else if (PyUnicode_CheckExact(value)) {
        Py_ssize_t min_len = PyLong_AsSsize_t(PyTuple_GET_ITEM(fast, F_MIN_LEN));
        if (min_len == -1 && PyErr_Occurred())
            goto done;
        if (PyTuple_GET_ITEM(fast, F_SCAN) == Py_True && PyUnicode_GET_LENGTH(value) >= min_len)
            result = scrub_text(self, value, plan, fast, path, key, meta, -1, NULL);
        else
            result = Py_NewRef(value);
    }
    else if (PyDict_CheckExact(value) || PyList_CheckExact(value)) {
        if (key != Py_None && PyList_Append(path, key) < 0)
            goto done;
        int failed = PyDict_CheckExact(value) ? walk_dict(self, value, fast, path, meta, depth + 1)
                                              : walk_list(self, value, fast, path, meta, depth + 1);
        if (key != Py_None && pop(path) < 0)
            failed = -1;
        if (!failed)
            result = Py_NewRef(value);
    }
    else if (PyLong_CheckExact(value) && PyTuple_GET_ITEM(fast, F_NUMBERS) == Py_True) {
        int big = is_big(value);
        if (big > 0)
            result = PyObject_CallFunctionObjArgs(self->scrub_number, value, plan, path, key, meta, NULL);
        else if (big == 0)
            result = Py_NewRef(value);
    }
    else {
        passed_over(self, value);
        result = Py_NewRef(value);
    }
done:
    if (saw(self, result) < 0)
        Py_CLEAR(result);
    return result;
}

/* Whether a key could hold personal data itself: its plan says so (when it has one), or, without a plan yet, a
 * trigger fires on it (a plan, and the scrubber's verdict, are then made for it). 1, 0, or -1 on error. */
static int
key_may_hold_data(PyObject *fast, PyObject *key)
{
    PyObject *child = PyDict_GetItemWithError(PyTuple_GET_ITEM(fast, F_CHILDREN), key);
    if (child != NULL)
        return PyTuple_CheckExact(child) && PyTuple_GET_SIZE(child) == F_SIZE &&
               PyTuple_GET_ITEM(child, F_RENAME) != Py_None;
    if (PyErr_Occurred())
        return -1;
    if (!PyUnicode_CheckExact(key))
        return 0;
    Text t = text_of(key);
    return !safe_shape(&t) && (triggers(&t) != 0 || has_percent_escape(&t));
}

/* One dict entry (Scrubber._walk_dict's loop body). Returns the new value (new reference), or
 * the old one when nothing changed, or NULL on error. */
static PyObject *
dict_entry(Walker *self, PyObject *fast, PyObject *key, PyObject *value, PyObject *path, PyObject *meta,
           Py_ssize_t depth, PyObject **renamed)
{
    int is_str = PyUnicode_CheckExact(value);
    int is_container = !is_str && (PyDict_CheckExact(value) || PyList_CheckExact(value));
    int is_int = !is_str && !is_container && PyLong_CheckExact(value);
    int is_float = PyFloat_CheckExact(value);
    if (!is_str && !is_container && !is_int && !is_float) {
        /* None and booleans carry nothing to scrub; only their key might (a plan is made for it only then) */
        int may = key_may_hold_data(fast, key);
        if (may <= 0) {
            if (may == 0)
                passed_over(self, value);
            return may < 0 ? NULL : Py_NewRef(value);
        }
    }
    PyObject *child_fast = child_of(self, fast, key);
    if (child_fast == NULL)
        return NULL;
    /* a key that holds personal data itself: renamed once the dict was walked (the list, made on the first) */
    if (PyTuple_GET_ITEM(child_fast, F_RENAME) != Py_None &&
        ((*renamed == NULL && (*renamed = PyList_New(0)) == NULL) || PyList_Append(*renamed, key) < 0)) {
        Py_DECREF(child_fast);
        return NULL;
    }
    if (!is_str && !is_container && !is_int && !is_float) {
        Py_DECREF(child_fast);
        passed_over(self, value);
        return Py_NewRef(value); /* None and booleans carry nothing to scrub */
    }
    PyObject *child = PyTuple_GET_ITEM(child_fast, F_PLAN);
    PyObject *result = NULL;
    if (PyTuple_GET_ITEM(child_fast, F_SKIP) == Py_True) {
        result = Py_NewRef(value);
        goto done;
    }
    PyObject *key_rule = PyTuple_GET_ITEM(child_fast, F_KEY_RULE);
    if (is_str) {
        if (key_rule != Py_None) {
            result = redact(self, value, child_fast, path, key, meta);
        }
        else {
            long bits;
            PyObject *memo;
            int scan = needs_scan(self, value, child_fast, &bits, &memo);
            if (scan > 0)
                result = scrub_text(self, value, child, child_fast, path, key, meta, bits, memo);
            else if (scan == 0)
                result = Py_NewRef(value);
        }
        if (saw(self, result) < 0)
            Py_CLEAR(result);
    }
    else if (is_container) {
        if (key_rule != Py_None) {
            result = redact(self, value, child_fast, path, key, meta);
            if (saw(self, result) < 0)
                Py_CLEAR(result);
        }
        else if (PyList_Append(path, key) == 0) {
            int failed = PyDict_CheckExact(value) ? walk_dict(self, value, child_fast, path, meta, depth + 1)
                                                  : walk_list(self, value, child_fast, path, meta, depth + 1);
            if (pop(path) < 0)
                failed = -1;
            if (!failed)
                result = Py_NewRef(value);
        }
    }
    else if (is_int) {
        result = walk_value(self, value, child_fast, path, meta, depth, key);
    }
    else if (key_rule != Py_None) { /* only a key rule applies to a float ({"password": 1.5}) */
        result = redact(self, value, child_fast, path, key, meta);
        if (saw(self, result) < 0)
            Py_CLEAR(result);
    }
    else {
        result = Py_NewRef(value);
    }
done:
    Py_DECREF(child_fast);
    return result;
}

static int
walk_dict(Walker *self, PyObject *obj, PyObject *fast, PyObject *path, PyObject *meta, Py_ssize_t depth)
{
    if (enter(self, depth) < 0)
        return -1;
    int failed = 0;
    Py_ssize_t pos = 0;
    PyObject *key, *value, *renamed = NULL;
    while (!failed && PyDict_Next(obj, &pos, &key, &value)) {
        /* Replacing a value keeps the set of keys, so iteration stays valid (as in Python). */
        Py_INCREF(key);
        Py_INCREF(value);
        PyObject *new = dict_entry(self, fast, key, value, path, meta, depth, &renamed);
        if (new == NULL)
            failed = -1;
        else if (new != value && PyDict_SetItem(obj, key, new) < 0)
            failed = -1;
        Py_XDECREF(new);
        Py_DECREF(value);
        Py_DECREF(key);
    }
    if (!failed && renamed != NULL) { /* rare: keys that hold personal data, renamed by the scrubber */
        PyObject *args[6] = {self->owner, obj, renamed, PyTuple_GET_ITEM(fast, F_PLAN), path, meta};
        PyObject *done = PyObject_VectorcallMethod(str_rename_keys, args, 6, NULL);
        if (done == NULL)
            failed = -1;
        Py_XDECREF(done);
    }
    Py_XDECREF(renamed);
    return failed;
}

/* [["Header", "value"], ...]: a list of two-item lists, each starting with a string. */
static int
is_pair_list(PyObject *items)
{
    Py_ssize_t size = PyList_GET_SIZE(items);
    for (Py_ssize_t i = 0; i < size; i++) {
        PyObject *pair = PyList_GET_ITEM(items, i);
        if (!PyList_Check(pair) || PyList_GET_SIZE(pair) != 2 || !PyUnicode_Check(PyList_GET_ITEM(pair, 0)))
            return 0;
    }
    return 1;
}

/* Each pair, its name and its value are held across every call back into Python (a str subclass's __hash__,
 * __eq__ or __format__, the scrubber's callbacks), which may change the pair or the list: what is read after
 * one is read again, and an entry that stopped being a [name, value] pair is left as it is. */
static int
walk_pairs(Walker *self, PyObject *items, PyObject *fast, PyObject *path, PyObject *meta, Py_ssize_t depth)
{
    for (Py_ssize_t index = 0; index < PyList_GET_SIZE(items); index++) {
        PyObject *pair = PyList_GET_ITEM(items, index);
        if (!PyList_Check(pair) || PyList_GET_SIZE(pair) != 2 || !PyUnicode_Check(PyList_GET_ITEM(pair, 0)))
            continue; /* a callback changed the list: nothing sensible left to do with this entry */
        Py_INCREF(pair);
        PyObject *name = Py_NewRef(PyList_GET_ITEM(pair, 0));
        PyObject *value = NULL;
        PyObject *child_fast = child_of(self, fast, name);
        /* The Propagator sees these as plain lists (under "#", not the header's plan): the name, and a
         * string value whatever the header's plan did; a container it may see differently. */
        int failed = child_fast == NULL || saw(self, name) < 0;
        if (failed || PyList_GET_SIZE(pair) != 2)
            goto next; /* (the plan's lookup or making may have run the name's own methods) */
        value = Py_NewRef(PyList_GET_ITEM(pair, 1));
        if (PyDict_Check(value) || PyList_Check(value))
            self->incomplete = 1;
        if (PyTuple_GET_ITEM(child_fast, F_SKIP) == Py_True || value == Py_None) {
            failed = saw(self, value) < 0;
            goto next;
        }
        PyObject *label = label_of(index);
        failed = label == NULL || PyList_Append(path, label) < 0;
        Py_XDECREF(label);
        if (failed)
            goto next;
        PyObject *new = walk_value(self, value, child_fast, path, meta, depth, str_one);
        failed = new == NULL || pop(path) < 0;
        if (new != NULL && new != value && PyList_GET_SIZE(pair) == 2)
            failed = PyList_SetItem(pair, 1, Py_NewRef(new)) < 0 || failed;
        Py_XDECREF(new);
    next:
        Py_XDECREF(value);
        Py_XDECREF(child_fast);
        Py_DECREF(name);
        Py_DECREF(pair);
        if (failed)
            return -1;
    }
    return 0;
}

static int
walk_list(Walker *self, PyObject *items, PyObject *fast, PyObject *path, PyObject *meta, Py_ssize_t depth)
{
    if (enter(self, depth) < 0)
        return -1;
    if (PyList_GET_SIZE(items) && PyList_CheckExact(PyList_GET_ITEM(items, 0)) && is_pair_list(items))
        return walk_pairs(self, items, fast, path, meta, depth);
    PyObject *child_fast = child_of(self, fast, str_hash);
    if (child_fast == NULL)
        return -1;
    PyObject *child = PyTuple_GET_ITEM(child_fast, F_PLAN);
    int failed = 0;
    if (PyTuple_GET_ITEM(child_fast, F_SKIP) == Py_True)
        goto done;
    PyObject *key_rule = PyTuple_GET_ITEM(child_fast, F_KEY_RULE);
    int numbers = PyTuple_GET_ITEM(child_fast, F_NUMBERS) == Py_True;
    for (Py_ssize_t index = 0; !failed && index < PyList_GET_SIZE(items); index++) {
        PyObject *value = PyList_GET_ITEM(items, index);
        long bits = -1;
        PyObject *memo = NULL;
        if (key_rule == Py_None) {
            /* The cheap cases first: strings with nothing to do, and numbers no rule looks at. */
            if (PyUnicode_CheckExact(value)) {
                int scan = needs_scan(self, value, child_fast, &bits, &memo);
                if (scan <= 0) {
                    failed = scan < 0 || saw(self, value) < 0;
                    continue;
                }
            }
            else if (PyFloat_CheckExact(value)) {
                continue;
            }
            else if (PyLong_CheckExact(value)) {
                int big = numbers ? is_big(value) : 0;
                if (big <= 0) {
                    failed = big < 0;
                    continue;
                }
            }
            else if (!PyDict_CheckExact(value) && !PyList_CheckExact(value)) {
                passed_over(self, value);
                continue;
            }
        }
        else if (!PyUnicode_CheckExact(value) && !PyDict_CheckExact(value) && !PyList_CheckExact(value) &&
                 !PyLong_CheckExact(value) && !PyFloat_CheckExact(value)) {
            passed_over(self, value);
            continue;
        }
        PyObject *label = label_of(index);
        if (label == NULL) {
            failed = 1;
            break;
        }
        Py_INCREF(value);
        PyObject *new;
        if (PyUnicode_CheckExact(value) && key_rule == Py_None) {
            new = scrub_text(self, value, child, child_fast, path, label, meta, bits, memo);
            if (saw(self, new) < 0)
                Py_CLEAR(new);
        }
        else
            new = walk_value(self, value, child_fast, path, meta, depth, label);
        Py_DECREF(label);
        if (new == NULL)
            failed = 1;
        else if (new != value && index < PyList_GET_SIZE(items))
            failed = PyList_SetItem(items, index, Py_NewRef(new)) < 0;
        Py_XDECREF(new);
        Py_DECREF(value);
    }
done:
    Py_DECREF(child_fast);
    return failed ? -1 : 0;
}

/* -- the Walker type -------------------------------------------------------------------------- */

static PyObject *
Walker_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *names[] = {"owner", "child", "scrub_string", "redact_whole", "scrub_number", "enter", "checkpoint",
                            "reset", "unchanged", "max_cached", "cache_limit", "max_depth", "pause", "yield_gil",
                            "result", "key_rule", "apply", "template", "key_value",
                            "first_key_value", NULL};
    PyObject *owner, *child, *scrub_string, *redact_whole, *scrub_number, *enter_, *checkpoint, *reset, *unchanged;
    PyObject *yield_gil, *result, *key_rule, *apply, *template, *key_value, *first_key_value;
    Py_ssize_t max_cached, cache_limit, max_depth;
    int pause;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "$OOOOOOOOOnnnpOOOOOOO:Walker", names, &owner, &child,
                                     &scrub_string, &redact_whole, &scrub_number, &enter_, &checkpoint, &reset,
                                     &unchanged, &max_cached, &cache_limit, &max_depth, &pause, &yield_gil, &result,
                                     &key_rule, &apply, &template, &key_value, &first_key_value))
        return NULL;
    Walker *self = (Walker *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    self->owner = Py_NewRef(owner);
    self->yield_gil = Py_NewRef(yield_gil);
    self->result = Py_NewRef(result);
    self->key_rule = Py_NewRef(key_rule);
    self->apply = Py_NewRef(apply);
    self->template = Py_NewRef(template);
    self->key_value = Py_NewRef(key_value);
    self->first_key_value = Py_NewRef(first_key_value);
    self->child = Py_NewRef(child);
    self->scrub_string = Py_NewRef(scrub_string);
    self->redact_whole = Py_NewRef(redact_whole);
    self->scrub_number = Py_NewRef(scrub_number);
    self->enter = Py_NewRef(enter_);
    self->checkpoint = Py_NewRef(checkpoint);
    self->reset = Py_NewRef(reset);
    self->unchanged = Py_NewRef(unchanged);
    self->max_cached = max_cached;
    self->cache_limit = cache_limit;
    self->cached = 0;
    self->max_depth = max_depth;
    self->pause = pause;
    self->containers = 0;
    return (PyObject *)self;
}

static int
Walker_traverse(Walker *self, visitproc visit, void *arg)
{
    Py_VISIT(self->child);
    Py_VISIT(self->scrub_string);
    Py_VISIT(self->redact_whole);
    Py_VISIT(self->scrub_number);
    Py_VISIT(self->enter);
    Py_VISIT(self->checkpoint);
    Py_VISIT(self->reset);
    Py_VISIT(self->unchanged);
    Py_VISIT(self->owner);
    Py_VISIT(self->yield_gil);
    Py_VISIT(self->result);
    Py_VISIT(self->key_rule);
    Py_VISIT(self->apply);
    Py_VISIT(self->template);
    Py_VISIT(self->key_value);
    Py_VISIT(self->first_key_value);
    Py_VISIT(self->seen.wide);
    return 0;
}

static int
Walker_clear(Walker *self)
{
    Py_CLEAR(self->child);
    Py_CLEAR(self->scrub_string);
    Py_CLEAR(self->redact_whole);
    Py_CLEAR(self->scrub_number);
    Py_CLEAR(self->enter);
    Py_CLEAR(self->checkpoint);
    Py_CLEAR(self->reset);
    Py_CLEAR(self->unchanged);
    Py_CLEAR(self->owner);
    Py_CLEAR(self->yield_gil);
    Py_CLEAR(self->result);
    Py_CLEAR(self->key_rule);
    Py_CLEAR(self->apply);
    Py_CLEAR(self->template);
    Py_CLEAR(self->key_value);
    Py_CLEAR(self->first_key_value);
    relay_haystack_free(&self->seen);
    return 0;
}

static void
Walker_dealloc(Walker *self)
{
    PyObject_GC_UnTrack(self);
    Walker_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
Walker_walk(Walker *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 6) {
        PyErr_SetString(PyExc_TypeError, "walk(value, plan, path, meta, depth, key) takes 6 arguments");
        return NULL;
    }
    if (self->child == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "walker was cleared");
        return NULL;
    }
    if (!PyList_CheckExact(args[2])) {
        PyErr_SetString(PyExc_TypeError, "path must be a list");
        return NULL;
    }
    Py_ssize_t depth = PyLong_AsSsize_t(args[4]);
    if (depth == -1 && PyErr_Occurred())
        return NULL;
    PyObject *fast = fast_of(args[1]);
    if (fast == NULL)
        return NULL;
    PyObject *result = walk_value(self, args[0], fast, args[2], args[3], depth, args[5]);
    Py_DECREF(fast);
    return result;
}

static PyObject *
Walker_compute(Walker *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "compute(text, plan) takes 2 arguments");
        return NULL;
    }
    if (self->child == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "walker was cleared");
        return NULL;
    }
    PyObject *fast = fast_of(args[1]);
    if (fast == NULL)
        return NULL;
    PyObject *result = NULL;
    if (PyTuple_GET_ITEM(fast, F_SPEC) == Py_None)
        PyErr_SetString(PyExc_ValueError, "this plan's strings need the scrubber's Python compute");
    else
        result = relay_compute(self, args[0], PyTuple_GET_ITEM(fast, F_SPEC), args[1], -1);
    Py_DECREF(fast);
    return result;
}

static PyObject *
Walker_gather(Walker *self, PyObject *on)
{
    int gathering = PyObject_IsTrue(on);
    if (gathering < 0)
        return NULL;
    self->gathering = gathering;
    self->incomplete = 0;
    relay_haystack_clear(&self->seen);
    Py_RETURN_NONE;
}

static PyObject *
Walker_seen(Walker *self, PyObject *found)
{
    int was = self->gathering;
    self->gathering = 0;
    PyObject *result = NULL;
    if (!was || self->incomplete) {
        result = Py_NewRef(Py_None);
        goto done;
    }
    PyObject *key;
    Py_ssize_t pos = 0;
    while (PyDict_Check(found) && PyDict_Next(found, &pos, &key, NULL)) {
        if (!PyUnicode_Check(key) || PyUnicode_GET_LENGTH(key) < MIN_FOUND) { /* not what the walk gathered for */
            result = Py_NewRef(Py_None);
            goto done;
        }
    }
    int occurs = relay_haystack_find(&self->seen, found);
    result = occurs < 0 ? NULL : PyBool_FromLong(occurs);
done:
    if (self->seen.cap > (1 << 20)) /* after a big payload: not kept for the next */
        relay_haystack_free(&self->seen);
    else
        relay_haystack_clear(&self->seen);
    return result;
}

static PyMethodDef Walker_methods[] = {
    {"gather", (PyCFunction)Walker_gather, METH_O,
     "gather(on): note, while walking, the strings as the walk leaves them (for seen())."},
    {"seen", (PyCFunction)Walker_seen, METH_O,
     "seen(found): whether a value of found is in a string the walk left (None: can't tell, look the slow way)."},
    {"compute", (PyCFunction)(void (*)(void))Walker_compute, METH_FASTCALL,
     "compute(text, plan): Scrubber._compute_python, in C, for a plan with a spec; the _Result."},
    {"walk", (PyCFunction)(void (*)(void))Walker_walk, METH_FASTCALL,
     "walk(value, plan, path, meta, depth, key): Scrubber._value, in C; returns the value to keep."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject WalkerType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "relay.scrub._walker.Walker",
    .tp_basicsize = sizeof(Walker),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "The scrub engine's tree walk over one scrubber's plans.",
    .tp_new = Walker_new,
    .tp_traverse = (traverseproc)Walker_traverse,
    .tp_clear = (inquiry)Walker_clear,
    .tp_dealloc = (destructor)Walker_dealloc,
    .tp_methods = Walker_methods,
};

/* -- _scans.c: for the engine, and its tests ---------------------------------------------------------------------- */

static PyObject *
py_next_start(PyObject *module, PyObject *args)
{
    long family;
    PyObject *text;
    Py_ssize_t pos, high;
    if (!PyArg_ParseTuple(args, "lUnn:next_start", &family, &text, &pos, &high))
        return NULL;
    Text t = text_of(text);
    return PyLong_FromSsize_t(relay_next_start(family, &t, pos, high));
}

/* The scans trust their positions (_spans.c passes them per candidate); what comes from Python is checked
 * here: a negative one would read before the text, and a huge end would loop on past it. */
static int
check_position(const char *function, const char *name, Py_ssize_t pos, Py_ssize_t size)
{
    if (0 <= pos && pos <= size)
        return 0;
    PyErr_Format(PyExc_ValueError, "%s: %s=%zd is not a position in the text (0 <= %s <= %zd)", function, name, pos,
                 name, size);
    return -1;
}

static PyObject *
py_may_begin(PyObject *module, PyObject *args)
{
    long family;
    PyObject *text;
    Py_ssize_t at_;
    if (!PyArg_ParseTuple(args, "lUn:may_begin", &family, &text, &at_))
        return NULL;
    Text t = text_of(text);
    if (check_position("may_begin", "at", at_, t.size) < 0)
        return NULL;
    return PyBool_FromLong(relay_may_begin(family, &t, at_));
}

static PyObject *
py_next_run(PyObject *module, PyObject *args)
{
    PyObject *text;
    Py_ssize_t pos, start, end;
    if (!PyArg_ParseTuple(args, "Un:next_run", &text, &pos))
        return NULL;
    Text t = text_of(text);
    if (check_position("next_run", "pos", pos, t.size) < 0)
        return NULL;
    if (!relay_next_run(&t, pos, &start, &end))
        Py_RETURN_NONE;
    return Py_BuildValue("(nn)", start, end);
}

static PyObject *
py_worth_scanning(PyObject *module, PyObject *args)
{
    PyObject *text;
    Py_ssize_t start, end;
    if (!PyArg_ParseTuple(args, "Unn:worth_scanning", &text, &start, &end))
        return NULL;
    Text t = text_of(text);
    if (!(0 <= start && start <= end && end <= t.size)) {
        PyErr_Format(PyExc_ValueError,
                     "worth_scanning: start=%zd, end=%zd is not a span of the text (0 <= start <= end <= %zd)", start,
                     end, t.size);
        return NULL;
    }
    return PyBool_FromLong(relay_worth_scanning(&t, start, end));
}

static PyMethodDef module_methods[] = {
    {"next_start", py_next_start, METH_VARARGS, "next_start(family_bit, text, pos, high): where a match can begin, or -1."},
    {"may_begin", py_may_begin, METH_VARARGS,
     "may_begin(family_bit, text, at): 0 where the family can't match; ValueError unless 0 <= at <= len(text)."},
    {"next_run", py_next_run, METH_VARARGS,
     "next_run(text, pos): the next numeric run's (start, end), or None; ValueError unless 0 <= pos <= len(text)."},
    {"worth_scanning", py_worth_scanning, METH_VARARGS,
     "worth_scanning(text, start, end): the numeric run filter; ValueError unless 0 <= start <= end <= len(text)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef walker_module = {
    PyModuleDef_HEAD_INIT, "relay.scrub._walker", "The scrub engine's tree walk, in C.", -1, module_methods,
};

PyMODINIT_FUNC
PyInit__walker(void)
{
    if (PyType_Ready(&WalkerType) < 0)
        return NULL;
    PyObject **slots[] = {&str_fast, &str_hash, &str_one, &str_found, &str_value, &str_remarks, &str_collected,
                          &str_rename_keys, NULL};
    static const char *const names[] = {"fast", "#", "1", "found", "value", "remarks", "_found", "_rename_keys", NULL};
    if (intern_names(slots, names) < 0 || relay_init_names() < 0)
        return NULL;
    PyObject *module = PyModule_Create(&walker_module);
    if (module == NULL)
        return NULL;
    PyObject *families = Py_BuildValue("(ssssssss)", FAMILY_NAMES);
    int failed = families == NULL || PyModule_AddObjectRef(module, "FAMILIES", families) < 0 ||
                 PyModule_AddFunctions(module, relay_validator_methods) < 0 ||
                 PyModule_AddFunctions(module, relay_trigger_methods) < 0 ||
                 PyModule_AddObjectRef(module, "Walker", (PyObject *)&WalkerType) < 0;
    Py_XDECREF(families);
    if (failed) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
