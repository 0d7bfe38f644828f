/*
 * `fired(text)`: the built-in detector families' triggers in one C pass (see _triggers.h), the bits
 * in the order of FAMILIES; and `safe_shape(text)`, engine._SAFE_SHAPE.fullmatch as a bool.
 */
#include "_triggers.h"

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

static PyMethodDef methods[] = {
    {"fired", fired, METH_O, "fired(text): the bits of the families (in FAMILIES' order) whose trigger fires."},
    {"safe_shape", py_safe_shape, METH_O, "safe_shape(text): whether engine._SAFE_SHAPE fullmatches text."},
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
    PyObject *families = Py_BuildValue("(sssssss)", FAMILY_NAMES);
    int failed = families == NULL || PyModule_AddObjectRef(module, "FAMILIES", families) < 0;
    Py_XDECREF(families);
    if (failed) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
