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

PyMethodDef relay_trigger_methods[] = {
    {"fired", fired, METH_O, "fired(text): the bits of the families (in FAMILIES' order) whose trigger fires."},
    {"safe_shape", py_safe_shape, METH_O, "safe_shape(text): whether engine._SAFE_SHAPE fullmatches text."},
    {NULL, NULL, 0, NULL},
};
