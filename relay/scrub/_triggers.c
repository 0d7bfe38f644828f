/*
 * `fired(text)`: the built-in detector families' triggers in one C pass (see _triggers.h), the bits
 * in the order of FAMILIES; and `safe_shape(text)`, engine._SAFE_SHAPE.fullmatch as a bool. Functions of
 * the relay.scrub._walker module, which uses the same two tests on the strings it walks.
 */
#include "_walker.h"

static int
is_text(PyObject *text)
{
    if (PyUnicode_Check(text))
        return 1;
    PyErr_SetString(PyExc_TypeError, "expected a str");
    return 0;
}

static PyObject *
fired(PyObject *module, PyObject *text)
{
    Text t;
    if (!is_text(text))
        return NULL;
    t = text_of(text);
    return PyLong_FromLong(triggers(&t));
}

static PyObject *
py_safe_shape(PyObject *module, PyObject *text)
{
    Text t;
    if (!is_text(text))
        return NULL;
    t = text_of(text);
    return PyBool_FromLong(safe_shape(&t));
}

Keywords relay_keywords;

static void
free_keywords(Keywords *k)
{
    for (Py_ssize_t i = 0; i < k->count; i++)
        PyMem_Free(k->words[i].chars);
    PyMem_Free(k->words);
    PyMem_Free(k->bucket_start);
    PyMem_Free(k->order);
    memset(k, 0, sizeof(*k));
}

/* One (bit, keywords, fold) family into `k` (its words already counted into `k->words`' room). */
static int
add_family(Keywords *k, PyObject *family)
{
    long bit;
    PyObject *words;
    int fold;
    if (!PyTuple_Check(family) || !PyArg_ParseTuple(family, "lO!p", &bit, &PyTuple_Type, &words, &fold))
        return -1;
    if (bit <= ALL || (bit & (bit - 1)) != 0) {
        PyErr_SetString(PyExc_ValueError, "a keyword family's bit must be a single bit above the built-in ones");
        return -1;
    }
    k->bits |= bit;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(words); i++) {
        PyObject *word = PyTuple_GET_ITEM(words, i);
        if (!PyUnicode_Check(word) || PyUnicode_GET_LENGTH(word) < 2) {
            PyErr_SetString(PyExc_ValueError, "keywords must be str of two characters or more");
            return -1;
        }
        Keyword *w = &k->words[k->count];
        Text t = text_of(word);
        w->chars = PyMem_New(Py_UCS4, t.size);
        if (w->chars == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        w->bit = bit;
        w->fold = fold;
        w->size = t.size;
        for (Py_ssize_t j = 0; j < t.size; j++)
            w->chars[j] = fold ? fold_char(at(&t, j)) : at(&t, j);
        k->count++;
    }
    return 0;
}

/* set_keywords(((bit, (keyword, ...), fold), ...)): the keyword families `fired` adds to the built-in ones. */
static PyObject *
set_keywords(PyObject *module, PyObject *families)
{
    Keywords k;
    memset(&k, 0, sizeof(k));
    if (!PyTuple_Check(families)) {
        PyErr_SetString(PyExc_TypeError, "set_keywords needs a tuple of (bit, keywords, fold) tuples");
        return NULL;
    }
    Py_ssize_t total = 0;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(families); i++) {
        PyObject *family = PyTuple_GET_ITEM(families, i);
        if (!PyTuple_Check(family) || PyTuple_GET_SIZE(family) != 3 || !PyTuple_Check(PyTuple_GET_ITEM(family, 1))) {
            PyErr_SetString(PyExc_TypeError, "set_keywords needs a tuple of (bit, keywords, fold) tuples");
            return NULL;
        }
        total += PyTuple_GET_SIZE(PyTuple_GET_ITEM(family, 1));
    }
    k.words = PyMem_New(Keyword, total ? total : 1);
    k.bucket_start = PyMem_New(Py_ssize_t, KEYWORD_BUCKETS + 1);
    k.order = PyMem_New(Py_ssize_t, total ? total : 1);
    if (k.words == NULL || k.bucket_start == NULL || k.order == NULL) {
        free_keywords(&k);
        return PyErr_NoMemory();
    }
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(families); i++) {
        if (add_family(&k, PyTuple_GET_ITEM(families, i)) < 0) {
            free_keywords(&k);
            return NULL;
        }
    }
    for (Py_UCS4 ch = 0; ch < 256; ch++)
        k.latin_fold[ch] = fold_char(ch);
    for (Py_ssize_t i = 0; i < k.count; i++) {
        const Keyword *w = &k.words[i];
        Py_UCS4 first = w->chars[0], second = w->chars[1];
        int ascii = first < 128 && second < 128;
        unsigned pair = ascii ? (unsigned)(first << 7 | second) : 0;
        if (ascii)
            k.pairs[pair >> 3] |= (unsigned char)(1u << (pair & 7));
        else
            k.wide = 1;
        if (w->size >= 3) {
            unsigned hash = trigram(first, second, w->chars[2]);
            k.trigrams[hash >> 3] |= (unsigned char)(1u << (hash & 7));
        }
        else if (ascii) {
            k.shorts[pair >> 3] |= (unsigned char)(1u << (pair & 7));
        }
        else {
            k.wide_short = 1;
        }
    }
        /* counting sort of the keywords by bucket */
    memset(k.bucket_start, 0, sizeof(Py_ssize_t) * (KEYWORD_BUCKETS + 1));
    for (Py_ssize_t i = 0; i < k.count; i++)
        k.bucket_start[keyword_bucket(k.words[i].chars[0], k.words[i].chars[1]) + 1]++;
    for (Py_ssize_t b = 0; b < KEYWORD_BUCKETS; b++)
        k.bucket_start[b + 1] += k.bucket_start[b];
    Py_ssize_t *fill = PyMem_New(Py_ssize_t, KEYWORD_BUCKETS);
    if (fill == NULL) {
        free_keywords(&k);
        return PyErr_NoMemory();
    }
    memcpy(fill, k.bucket_start, sizeof(Py_ssize_t) * KEYWORD_BUCKETS);
    for (Py_ssize_t i = 0; i < k.count; i++)
        k.order[fill[keyword_bucket(k.words[i].chars[0], k.words[i].chars[1])]++] = i;
    PyMem_Free(fill);
    free_keywords(&relay_keywords);
    relay_keywords = k;
    Py_RETURN_NONE;
}

PyMethodDef relay_trigger_methods[] = {
    {"set_keywords", set_keywords, METH_O,
     "set_keywords(((bit, keywords, fold), ...)): the keyword families fired() reports after the built-in ones."},
    {"fired", fired, METH_O, "fired(text): the bits of the families (in FAMILIES' order) whose trigger fires."},
    {"safe_shape", py_safe_shape, METH_O, "safe_shape(text): whether engine._SAFE_SHAPE fullmatches text."},
    {NULL, NULL, 0, NULL},
};
