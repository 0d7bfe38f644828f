/*
 * A new string's result, in C: the twin of Scrubber._compute_python for plans of built-in detectors and
 * key rules (engine.py keeps the Python version as the reference, and for plans with user patterns or
 * allowlists). _spans.c finds where the rules match; this keeps the spans that win and writes the new
 * string, its remarks and the values found, and records `_meta`. tests/scrub/test_compute.py checks,
 * with Hypothesis, that both give the same results.
 */
#include "_walker.h"

static PyObject *s_rem, *s_len, *s_blank, *s_kind_s, *s_kind_x, *str_compute_encoded;

int
relay_init_names(void)
{
    PyObject **slots[] = {&s_rem, &s_len, &s_blank, &s_kind_s, &s_kind_x, &str_compute_encoded, NULL};
    static const char *const names[] = {"rem", "len", "", "s", "x", "_compute_encoded", NULL};
    return intern_names(slots, names) < 0 ? -1 : relay_init_span_names();
}

int
relay_check_info(PyObject *info)
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
    return relay_check_info(info) < 0 ? -1 : PyLong_AsLong(PyTuple_GET_ITEM(info, I_CODE));
}

static long
code_of(PyObject *info) /* of an info already checked */
{
    return PyLong_AsLong(PyTuple_GET_ITEM(info, I_CODE));
}

/* -- spans --------------------------------------------------------------------------------------- */

void *
relay_grow(void *items, void *local, Py_ssize_t *cap, size_t item)
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

static void
spans_init(Spans *s)
{
    s->items = s->local;
    s->size = 0;
    s->cap = 8;
}

/* plans.MAX_SPANS: the matches one string may have. A string of tens of thousands of e-mail addresses is an attack
 * (each span is compared with the kept ones), not an event: it fails closed, the item dropped as scrub_failed. */
#define RELAY_MAX_SPANS 4096
#define RELAY_MAX_SPANS_TEXT "4096"

/* Raise plans.ScrubError(message) (imported once). */
static void
relay_scrub_error(const char *message)
{
    static PyObject *scrub_error = NULL;
    if (scrub_error == NULL) {
        PyObject *plans = PyImport_ImportModule("relay.scrub.plans");
        scrub_error = plans == NULL ? NULL : PyObject_GetAttrString(plans, "ScrubError");
        Py_XDECREF(plans);
        if (scrub_error == NULL)
            return; /* (the import's error stands) */
    }
    PyErr_SetString(scrub_error, message);
}


int
relay_spans_add(Spans *s, Py_ssize_t start, Py_ssize_t end, PyObject *info)
{
    if (relay_check_info(info) < 0)
        return -1;
    if (s->size >= RELAY_MAX_SPANS) { /* plans.MAX_SPANS: a hostile string of matches fails closed, quickly */
        relay_scrub_error("more than " RELAY_MAX_SPANS_TEXT " matches in one string");
        return -1;
    }
    if (s->size == s->cap) {
        Span *items = relay_grow(s->items, s->local, &s->cap, sizeof(Span));
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

/* Drop spans that touch a placeholder an earlier pass wrote (scrubbing stays idempotent). The placeholders are
 * found in one pass and don't overlap, so their ends rise with their starts: each span looks for the first one
 * that ends after it starts (a binary search), O((placeholders + spans) log placeholders). */
static int
drop_written(Spans *spans, const Text *t)
{
    Py_ssize_t count = 0, cap = 0;
    Py_ssize_t *bounds = NULL; /* start, end pairs */
    int failed = -1;
    char *keep = NULL;
    for (Py_ssize_t i = 0; i < t->size; i++) {
        if (at(t, i) != '[')
            continue;
        Py_ssize_t end = placeholder_at(t, i);
        if (end < 0)
            continue;
        if (count == cap) {
            cap = cap ? cap * 2 : 16;
            Py_ssize_t *grown = PyMem_Realloc(bounds, sizeof(Py_ssize_t) * 2 * (size_t)cap);
            if (grown == NULL) {
                PyErr_NoMemory();
                goto done;
            }
            bounds = grown;
        }
        bounds[2 * count] = i;
        bounds[2 * count + 1] = end;
        count++;
        i = end - 1;
    }
    if (count == 0) {
        failed = 0;
        goto done;
    }
    keep = PyMem_Malloc(spans->size);
    if (keep == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t j = 0; j < spans->size; j++) {
        Py_ssize_t low = 0, high = count; /* the first placeholder whose end > the span's start */
        while (low < high) {
            Py_ssize_t mid = low + (high - low) / 2;
            if (bounds[2 * mid + 1] > spans->items[j].start)
                high = mid;
            else
                low = mid + 1;
        }
        keep[j] = !(low < count && bounds[2 * low] < spans->items[j].end);
    }
    spans_filter(spans, keep);
    failed = 0;
done:
    PyMem_Free(bounds);
    PyMem_Free(keep);
    return failed;
}

/* Drop the spans of keep rules once they have won their overlaps: what they cover is written as it was. */
static int
drop_kept(Spans *spans)
{
    if (spans->size == 0)
        return 0;
    char *keep = PyMem_Malloc(spans->size);
    if (keep == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < spans->size; i++)
        keep[i] = code_of(spans->items[i].info) != CODE_KEEP;
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
    {
        /* Percent-encoded text (a query string, a form body): the scrubber decodes it, and the redactions
         * cover the encoded spans (rare, so done in Python). */
        Text t = text_of(text);
        if (has_percent_escape(&t))
            return PyObject_CallMethodObjArgs(self->owner, str_compute_encoded, text, plan, NULL);
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
        if ((bit & bits) && relay_family_spans(self, text, &t, family, &spans) < 0)
            goto done;
    }
    if (PyTuple_GET_ITEM(spec, 1) == Py_True && PyUnicode_FindChar(text, '=', 0, t.size, 1) >= 0 &&
        relay_pair_spans(self, text, &t, plan, PyTuple_GET_ITEM(spec, 2), &spans) < 0)
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
    if (accept(&spans, &t) < 0 || drop_kept(&spans) < 0)
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
