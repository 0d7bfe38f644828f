/*
 * The digit-checking validators (validators.credit_card_valid, iban_valid, ssn_valid, imei_valid,
 * phone_valid and ipv4_public_or_private) in C, for ASCII text: the numeric family calls one for
 * nearly every candidate. Text with other characters goes to the Python function, which stays the
 * reference (tests/scrub/test_validators_c.py checks the two agree). The tables (country codes, IBAN
 * lengths, IMEI reporting bodies, card groupings) are validators.py's own, handed over by configure().
 */
#include "_walker.h"

static PyObject *fallbacks;      /* name -> the Python validator */
static PyObject *iban_lengths;   /* dict: country -> length */
static PyObject *country_codes;  /* frozenset of str */
static PyObject *imei_bodies;    /* frozenset of str */
static PyObject *card_groupings; /* set of tuples of int */

#define MAX_DIGITS 64

/* The ASCII digits of ASCII text (validators.digits_of), up to MAX_DIGITS; their count, or -1 if more. */
static Py_ssize_t
ascii_digits(const Py_UCS1 *text, Py_ssize_t size, char *out)
{
    Py_ssize_t n = 0;
    for (Py_ssize_t i = 0; i < size; i++) {
        if (text[i] >= '0' && text[i] <= '9') {
            if (n == MAX_DIGITS)
                return -1;
            out[n++] = (char)text[i];
        }
    }
    return n;
}

static int
distinct_digits(const char *number, Py_ssize_t n)
{
    int seen = 0, count = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        int bit = 1 << (number[i] - '0');
        if (!(seen & bit))
            count++;
        seen |= bit;
    }
    return count;
}

static int
luhn(const char *number, Py_ssize_t n)
{
    int total = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        int digit = number[n - 1 - i] - '0';
        if (i % 2 == 1) {
            digit *= 2;
            if (digit > 9)
                digit -= 9;
        }
        total += digit;
    }
    return total % 10 == 0;
}

static int
prefix(const char *number, Py_ssize_t n, Py_ssize_t length)
{
    int value = 0;
    for (Py_ssize_t i = 0; i < length && i < n; i++)
        value = value * 10 + (number[i] - '0');
    return value;
}

static int
starts(const char *number, Py_ssize_t n, const char *with)
{
    size_t length = strlen(with);
    return (size_t)n >= length && memcmp(number, with, length) == 0;
}

/* str.isspace() of an ASCII character */
static inline int
ascii_space(Py_UCS1 ch)
{
    return ch == ' ' || (ch >= '\t' && ch <= '\r') || (ch >= 0x1c && ch <= 0x1f);
}

/* A small str's membership in a set (or key in a dict): 1, 0, or -1 on error. */
static int
has_key(PyObject *table, const char *key, Py_ssize_t length, PyObject **value)
{
    PyObject *text = PyUnicode_FromStringAndSize(key, length);
    if (text == NULL)
        return -1;
    int found;
    if (PyDict_Check(table)) {
        *value = PyDict_GetItemWithError(table, text);
        found = *value != NULL ? 1 : PyErr_Occurred() ? -1 : 0;
    }
    else {
        found = PySet_Contains(table, text);
    }
    Py_DECREF(text);
    return found;
}

/* -- the validators (1 valid, 0 not, -1 on error) ---------------------------------------------------- */

static int
card(const Py_UCS1 *text, Py_ssize_t size)
{
    char number[MAX_DIGITS];
    Py_ssize_t n = ascii_digits(text, size, number);
    if (n < 12 || n > 19 || distinct_digits(number, n) == 1)
        return 0;
    if (n != size) { /* written with separators (a bare run of digits is one group) */
        Py_ssize_t groups[MAX_DIGITS], count = 0, length = 0;
        for (Py_ssize_t i = 0; i <= size; i++) {
            if (i == size || text[i] == '-' || ascii_space(text[i])) {
                if (length) {
                    if (count == MAX_DIGITS)
                        return 0; /* (more groups than any card has) */
                    groups[count++] = length;
                }
                length = 0;
            }
            else {
                length++;
            }
        }
        if (count > 1) {
            PyObject *key = PyTuple_New(count);
            if (key == NULL)
                return -1;
            for (Py_ssize_t g = 0; g < count; g++) {
                PyObject *item = PyLong_FromSsize_t(groups[g]);
                if (item == NULL) {
                    Py_DECREF(key);
                    return -1;
                }
                PyTuple_SET_ITEM(key, g, item);
            }
            int known = PySet_Contains(card_groupings, key);
            Py_DECREF(key);
            if (known <= 0)
                return known;
        }
    }
    if (!luhn(number, n))
        return 0;
    int two = prefix(number, n, 2), three = prefix(number, n, 3), four = prefix(number, n, 4);
    int maestro = starts(number, n, "50") || starts(number, n, "56") || starts(number, n, "57") ||
                  starts(number, n, "58") || starts(number, n, "6");
    int issuer = number[0] == '4' || (51 <= two && two <= 55) || (2221 <= four && four <= 2720) || two == 34 ||
                 two == 37 || two == 36 || two == 38 || two == 39 || (300 <= three && three <= 305) ||
                 starts(number, n, "6011") || starts(number, n, "65") || (644 <= three && three <= 649) ||
                 two == 35 /* JCB: 3528-3589 issued, all of 35 in test generators */ || starts(number, n, "62") ||
                 starts(number, n, "81") || maestro ||
                 (2200 <= four && four <= 2205) || starts(number, n, "82") || starts(number, n, "3841") ||
                 starts(number, n, "8600") || starts(number, n, "9792") || starts(number, n, "9860") ||
                 (n == 15 && (starts(number, n, "1800") || starts(number, n, "2131")));
    if (n == 15 && !(two == 34 || two == 37 || maestro || starts(number, n, "1800") || starts(number, n, "2131")))
        return 0; /* only Amex and Maestro issue 15 digits */
    if (n == 13 && number[0] != '4')
        return 0; /* only Visa issued 13 digits: the rest is an EAN-13's length */
    if (n == 12) { /* only Maestro issues 12 digits, from these ranges */
        static const char *const twelve[] = {"5018", "5020", "5038", "5893", "6304", "6390", "6759", "6761",
                                             "6762", "6763"};
        for (size_t i = 0; i < sizeof(twelve) / sizeof(twelve[0]); i++)
            if (starts(number, n, twelve[i]))
                return 1;
        return 0;
    }
    return issuer;
}

static int
iban(const Py_UCS1 *text, Py_ssize_t size)
{
    char compact[64];
    Py_ssize_t n = 0;
    for (Py_ssize_t i = 0; i < size; i++) {
        if (ascii_space(text[i]))
            continue;
        if (n == (Py_ssize_t)sizeof(compact))
            return 0; /* longer than any IBAN */
        Py_UCS1 ch = text[i];
        compact[n++] = (char)(ch >= 'a' && ch <= 'z' ? ch - 32 : ch);
    }
    PyObject *length = NULL;
    int known = has_key(iban_lengths, compact, n < 2 ? n : 2, &length);
    if (known <= 0)
        return known;
    Py_ssize_t expected = PyLong_AsSsize_t(length);
    if (expected == -1 && PyErr_Occurred())
        return -1;
    if (expected != n)
        return 0;
    int remainder = 0;
    for (Py_ssize_t k = 0; k < n; k++) { /* iban[4:] + iban[:4], letters as 10..35 */
        char ch = compact[(k + 4) % n];
        if (ch >= '0' && ch <= '9')
            remainder = (remainder * 10 + (ch - '0')) % 97;
        else if (ch >= 'A' && ch <= 'Z')
            remainder = (remainder * 100 + (ch - 'A' + 10)) % 97;
        else
            return 0;
    }
    return remainder == 1;
}

static int
ssn(const Py_UCS1 *text, Py_ssize_t size)
{
    char number[MAX_DIGITS];
    if (ascii_digits(text, size, number) != 9)
        return 0;
    return !starts(number, 3, "000") && !starts(number, 3, "666") && number[0] != '9' &&
           !(number[3] == '0' && number[4] == '0') && memcmp(number + 5, "0000", 4) != 0;
}

static int
imei(const Py_UCS1 *text, Py_ssize_t size)
{
    char number[MAX_DIGITS];
    if (ascii_digits(text, size, number) != 15)
        return 0;
    PyObject *unused;
    int known = has_key(imei_bodies, number, 2, &unused);
    if (known <= 0)
        return known;
    return distinct_digits(number, 15) > 2 && luhn(number, 15);
}

static int
nanp(const char *number, Py_ssize_t n)
{
    return n == 10 && number[0] >= '2' && number[3] >= '2' && !(number[1] == '1' && number[2] == '1');
}

static int
phone(const Py_UCS1 *text, Py_ssize_t size)
{
    char number[MAX_DIGITS];
    Py_ssize_t n = ascii_digits(text, size, number);
    if (n < 0 || distinct_digits(number, n) <= 2)
        return 0;
    Py_ssize_t first = 0;
    while (first < size && ascii_space(text[first])) /* text.strip() */
        first++;
    if (first < size && text[first] == '+') {
        if (n < 8 || n > 15)
            return 0;
        int known = 0;
        PyObject *unused;
        for (Py_ssize_t length = 1; length <= 3 && !known; length++) {
            known = has_key(country_codes, number, length, &unused);
            if (known < 0)
                return -1;
        }
        if (!known)
            return 0;
        return number[0] == '1' ? n == 11 && nanp(number + 1, 10) : 1;
    }
    if (first < size && text[first] == '(')
        return nanp(number, n);
    if (n && number[0] == '0')
        return 9 <= n && n <= 12 && number[1] != '0';
    return nanp(number, n);
}

static int
ipv4(const Py_UCS1 *text, Py_ssize_t size)
{
    /* ipaddress.IPv4Address: four dot-separated decimal octets of 1-3 digits, no leading zeros, <= 255;
     * then not N.0.0.0 (0.0.0.0, a /8 network, a browser's version: Chrome/120.0.0.0) and not 255.255.255.255. */
    int octets = 0, rest_zero = 1, all_ones = 1;
    Py_ssize_t i = 0;
    while (1) {
        Py_ssize_t start = i;
        int value = 0;
        while (i < size && text[i] >= '0' && text[i] <= '9' && i - start < 4)
            value = value * 10 + (text[i++] - '0');
        Py_ssize_t length = i - start;
        if (length == 0 || length > 3 || (length > 1 && text[start] == '0') || value > 255)
            return 0;
        octets++;
        if (octets > 1)
            rest_zero &= value == 0;
        all_ones &= value == 255;
        if (i == size)
            break;
        if (text[i] != '.' || octets == 4)
            return 0;
        i++;
    }
    return octets == 4 && !rest_zero && !all_ones;
}

/* -- as Python functions ---------------------------------------------------------------------------- */

static PyObject *
validate(PyObject *text, const char *name, int (*check)(const Py_UCS1 *, Py_ssize_t))
{
    if (fallbacks == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "the C validators are not configured");
        return NULL;
    }
    if (!PyUnicode_Check(text)) {
        PyErr_SetString(PyExc_TypeError, "a validator takes a str");
        return NULL;
    }
    if (!PyUnicode_IS_ASCII(text)) { /* other scripts' digits, Unicode spaces and case: the reference */
        PyObject *fallback = PyDict_GetItemString(fallbacks, name);
        if (fallback == NULL) {
            PyErr_Format(PyExc_RuntimeError, "no Python validator %s", name);
            return NULL;
        }
        return PyObject_CallOneArg(fallback, text);
    }
    int valid = check(PyUnicode_1BYTE_DATA(text), PyUnicode_GET_LENGTH(text));
    return valid < 0 ? NULL : PyBool_FromLong(valid);
}

#define VALIDATOR(name, check)                                                                                \
    static PyObject *py_##name(PyObject *module, PyObject *text) { return validate(text, #name, check); }

VALIDATOR(credit_card_valid, card)
VALIDATOR(iban_valid, iban)
VALIDATOR(ssn_valid, ssn)
VALIDATOR(imei_valid, imei)
VALIDATOR(phone_valid, phone)
VALIDATOR(ipv4_public_or_private, ipv4)

static PyObject *
configure(PyObject *module, PyObject *args, PyObject *kwargs)
{
    static char *names[] = {"fallbacks", "iban_lengths", "country_codes", "imei_bodies", "card_groupings", NULL};
    PyObject *f, *lengths, *codes, *bodies, *groupings;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "$O!O!OOO:configure_validators", names, &PyDict_Type, &f,
                                     &PyDict_Type, &lengths, &codes, &bodies, &groupings))
        return NULL;
    if (!PyAnySet_Check(codes) || !PyAnySet_Check(bodies) || !PyAnySet_Check(groupings)) {
        PyErr_SetString(PyExc_TypeError, "country_codes, imei_bodies and card_groupings must be sets");
        return NULL;
    }
    Py_XSETREF(fallbacks, Py_NewRef(f));
    Py_XSETREF(iban_lengths, Py_NewRef(lengths));
    Py_XSETREF(country_codes, Py_NewRef(codes));
    Py_XSETREF(imei_bodies, Py_NewRef(bodies));
    Py_XSETREF(card_groupings, Py_NewRef(groupings));
    Py_RETURN_NONE;
}

PyMethodDef relay_validator_methods[] = {
    {"configure_validators", (PyCFunction)(void (*)(void))configure, METH_VARARGS | METH_KEYWORDS,
     "configure_validators(*, fallbacks, iban_lengths, country_codes, imei_bodies, card_groupings)"},
    {"credit_card_valid", py_credit_card_valid, METH_O, "validators.credit_card_valid, in C for ASCII text."},
    {"iban_valid", py_iban_valid, METH_O, "validators.iban_valid, in C for ASCII text."},
    {"ssn_valid", py_ssn_valid, METH_O, "validators.ssn_valid, in C for ASCII text."},
    {"imei_valid", py_imei_valid, METH_O, "validators.imei_valid, in C for ASCII text."},
    {"phone_valid", py_phone_valid, METH_O, "validators.phone_valid, in C for ASCII text."},
    {"ipv4_public_or_private", py_ipv4_public_or_private, METH_O,
     "validators.ipv4_public_or_private, in C for ASCII text."},
    {NULL, NULL, 0, NULL},
};
