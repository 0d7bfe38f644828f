/*
 * The built-in detector families' triggers (detectors.TRIGGERS), in one pass over a string, in C.
 *
 * `fired(text)` returns a bit per family whose trigger fires, in the order of FAMILIES below. It is
 * the exact answer of the Python triggers (tests/scrub/test_triggers.py checks them against each
 * other with Hypothesis); those stay the reference and the fallback when this module isn't built.
 * A trigger is only a cheap test that says where a family's detectors cannot match, so most strings
 * an event carries are done with here, without a Python call per family.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

enum { EMAIL = 1, NUMERIC = 2, HEXSEP = 4, PATH = 8, URL = 16, WORDS = 32, TOKEN = 64, ALL = 127 };

typedef struct {
    int kind;
    const void *data;
    Py_ssize_t size;
} Text;

static inline Py_UCS4
at(const Text *t, Py_ssize_t i)
{
    return i < t->size ? PyUnicode_READ(t->kind, t->data, i) : 0;
}

/* text[i:] starts with the ASCII literal `s` */
static int
has(const Text *t, Py_ssize_t i, const char *s)
{
    for (; *s; s++, i++)
        if (i >= t->size || PyUnicode_READ(t->kind, t->data, i) != (Py_UCS4)(unsigned char)*s)
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
        if (i >= t->size || lower(PyUnicode_READ(t->kind, t->data, i)) != (Py_UCS4)(unsigned char)*s)
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

static long
triggers(const Text *t)
{
    long found = 0;
    /* numeric: \d[\d .()/-]{5,}\d, i.e. a run of digits and separators whose first and last digits
     * are at least six apart. */
    Py_ssize_t run_digit = -1; /* first digit of the current run, or -1 */
    /* hexsep: "::", (?:[0-9A-Fa-f]{1,4}:){3} and (?:[0-9A-Fa-f]{2}-){5} */
    Py_ssize_t hex_run = 0;   /* hex characters just before i */
    Py_ssize_t colon_chain = 0, colon_at = -1, dash_chain = 0, dash_at = -1;
    for (Py_ssize_t i = 0; i < t->size && found != ALL; i++) {
        Py_UCS4 ch = PyUnicode_READ(t->kind, t->data, i);
        if (Py_UNICODE_ISDECIMAL(ch)) {
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
    return found;
}

static PyObject *
fired(PyObject *module, PyObject *text)
{
    if (!PyUnicode_Check(text)) {
        PyErr_SetString(PyExc_TypeError, "fired() takes a str");
        return NULL;
    }
    Text t = {PyUnicode_KIND(text), PyUnicode_DATA(text), PyUnicode_GET_LENGTH(text)};
    return PyLong_FromLong(triggers(&t));
}

static PyMethodDef methods[] = {
    {"fired", fired, METH_O, "fired(text): the bits of the families (in FAMILIES' order) whose trigger fires."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef triggers_module = {
    PyModuleDef_HEAD_INIT, "relay.scrub._triggers", "The built-in detector families' triggers, in C.", -1, methods,
};

PyMODINIT_FUNC
PyInit__triggers(void)
{
    PyObject *module = PyModule_Create(&triggers_module);
    if (module == NULL)
        return NULL;
    PyObject *families = Py_BuildValue("(sssssss)", "email", "numeric", "hexsep", "path", "url", "words", "token");
    int failed = families == NULL || PyModule_AddObjectRef(module, "FAMILIES", families) < 0;
    Py_XDECREF(families);
    if (failed) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
