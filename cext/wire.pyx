"""The wire envelope and the message-value codec, compiled: the twin of ``actorfw/_pure/wire.py``.

Same names and behaviour; read the pure twin for the rules. What differs is
how: the walks test types with C pointer compares, copy a container only
when something inside it changed (a plain JSON value is handed to orjson
as it is, no copy at all), and parse batch frames with pointer arithmetic;
the common message is written and read straight to and from its bytes (the
direct writer and reader, below), with no tree in between.
Errors are cold: when the fast path meets anything wrong it hands the input
to the pure twin, whose careful walk raises the precise error, so both
report the same errors by construction.
"""

cimport cython
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.dict cimport PyDict_GetItem, PyDict_Next, PyDict_SetItem, PyDict_Size
from cpython.float cimport PyFloat_AS_DOUBLE
from cpython.list cimport PyList_Append, PyList_GET_ITEM, PyList_GET_SIZE, PyList_GetSlice
from cpython.long cimport PyLong_AsLongLongAndOverflow, PyLong_AsUnsignedLongLong
from cpython.object cimport PyObject, PyObject_GenericSetAttr, PyTypeObject
from cpython.tuple cimport PyTuple_GET_ITEM, PyTuple_GET_SIZE
from cpython.unicode cimport PyUnicode_DecodeUTF8

cdef extern from "Python.h":
    const char *PyUnicode_AsUTF8AndSize(object, Py_ssize_t *) except NULL
    const char *PyUnicode_AsUTF8AndSize_noerror "PyUnicode_AsUTF8AndSize" (object, Py_ssize_t *)
    PyObject *PyErr_Occurred()
    void PyErr_Clear()
    PyObject *PyObject_GenericGetAttr(PyObject *, PyObject *)
    ctypedef struct _GetattroOf "PyTypeObject":  # the one field of a type read here
        void *tp_getattro
from libc.math cimport isfinite
from libc.stdint cimport uint8_t, uint64_t
from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memchr, memcmp, memcpy

import numpy as np
import orjson

from actorfw._pure import wire as _twin
from actorfw._pure.wire import (
    INLINE_BUDGET,
    INLINE_BYTES,
    MAX_DEPTH,
    WIRE_VERSION,
    MalformedBatch,
)

__all__ = [
    "MAX_DEPTH",
    "WIRE_VERSION",
    "Envelope",
    "MalformedBatch",
    "bind",
    "check_value",
    "decode_batch",
    "decode_value",
    "encode_batch",
    "encode_value",
    "explain_refusal",
]

DEF _PLAIN = 1
DEF _HAS_SENDER = 2
DEF _MAX_NAME = 4096
DEF _LONG_DIGITS = 19  # a run of this many digits may be an integer past 64 bits
DEF _FAST_DEPTH = 32  # the direct writer and reader leave deeper values to the general path

cdef int _MAX_DEPTH = MAX_DEPTH
cdef Py_ssize_t _INLINE_BYTES = INLINE_BYTES
cdef Py_ssize_t _INLINE_BUDGET = INLINE_BUDGET
cdef object _ndarray = np.ndarray
cdef object _ascontiguous = np.ascontiguousarray
cdef object _dumps = orjson.dumps
cdef object _loads = orjson.loads
cdef object _JSONDecodeError = orjson.JSONDecodeError
cdef object _JSONEncodeError = orjson.JSONEncodeError


@cython.freelist(256)
@cython.final
cdef class Envelope:
    """One message between nodes (see the pure twin for the attributes)."""

    cdef public int kind
    cdef public object source
    cdef public object target
    cdef public object sender
    cdef public object corr
    cdef public object body
    cdef public object buffers
    cdef public bint plain

    def __init__(self, int kind, source, target, sender, corr, body, buffers, bint plain):
        self.kind = kind
        self.source = source
        self.target = target
        self.sender = sender
        self.corr = corr
        self.body = body
        self.buffers = buffers
        self.plain = plain

    def __repr__(self):
        return (
            f"Envelope(kind={self.kind}, source={self.source!r}, target={self.target!r}, "
            f"sender={self.sender!r}, corr={self.corr}, {len(self.body)} body bytes, "
            f"{len(self.buffers)} buffers)"
        )


# -- the registry -----------------------------------------------------------------------------

cdef dict _BY_NAME = {}
cdef dict _NAME_OF = {}
cdef dict _FIELDS = {}
cdef set _DIRECT = set()
cdef set _SLOTTED = set()
cdef object _CLOCK = None
cdef object _object_new = object.__new__
cdef tuple _NO_ARGS = ()


cdef extern from "Python.h":
    PyTypeObject PyBaseObject_Type
    int PyObject_GenericSetDict(object, object, void *) except -1


cdef inline object _fresh(type cls):
    """``object.__new__(cls)``, without the call through Python: a registered class's
    instance before its fields are set (such classes do not define ``__new__``)."""
    return PyBaseObject_Type.tp_new(cls, <PyObject *>_NO_ARGS, NULL)
cdef object _REF = None
cdef object _REPLY = None


def bind(
    by_name, name_of, fields, ref_type, reply_type, refused, malformed, direct=None, slotted=None,
    clock=None,
):
    """Give the codec the registry of message types; see the pure twin."""
    global _BY_NAME, _NAME_OF, _FIELDS, _DIRECT, _SLOTTED, _REF, _REPLY, _CLOCK
    _CLOCK = clock
    _BY_NAME = by_name
    _NAME_OF = name_of
    _FIELDS = fields
    _DIRECT = set() if direct is None else direct
    _SLOTTED = set() if slotted is None else slotted
    _REF = ref_type
    _REPLY = reply_type
    # The pure twin explains errors for both: it must know the same registry.
    _twin.bind(
        by_name, name_of, fields, ref_type, reply_type, refused, malformed, direct, slotted, clock
    )


explain_refusal = _twin.explain_refusal


# -- encoding values --------------------------------------------------------------------------

class _Refuse(Exception):
    pass


cdef inline bint _int_ok(object value):
    cdef int overflow = 0
    PyLong_AsLongLongAndOverflow(value, &overflow)
    if overflow == 0:
        return True
    if overflow < 0:
        return False
    try:
        PyLong_AsUnsignedLongLong(value)
    except OverflowError:
        return False
    return True


@cython.final
cdef class _Encoder:
    cdef list buffers
    cdef bint tagged
    cdef Py_ssize_t inline_left

    def __cinit__(self):
        self.buffers = []
        self.tagged = False
        self.inline_left = _INLINE_BUDGET

    cdef object walk(self, object value, int depth):
        cdef type kind = type(value)
        cdef Py_ssize_t i, n
        cdef object item, done, out, name, key, fields
        cdef PyObject *k
        cdef PyObject *v
        cdef Py_ssize_t pos = 0
        cdef double d
        if kind is str or kind is bool or value is None:
            return value
        if kind is int:
            if _int_ok(value):
                return value
            raise _Refuse()
        if kind is float:
            d = PyFloat_AS_DOUBLE(value)
            if isfinite(d):
                return value
            self.tagged = True
            return {"$f": "nan" if d != d else ("inf" if d > 0 else "-inf")}
        if kind is list:
            if depth >= _MAX_DEPTH:
                raise _Refuse()
            out = None
            i = 0
            # As the twin's iteration goes: the length read again at each item
            # (reading a message's field may run code that edits the list).
            while i < PyList_GET_SIZE(value):
                item = <object>PyList_GET_ITEM(value, i)
                done = self.walk(item, depth + 1)
                if out is None:
                    if done is not item:
                        out = PyList_GetSlice(value, 0, i)
                        out.append(done)
                else:
                    out.append(done)
                i += 1
            return value if out is None else out
        if kind is dict:
            if depth >= _MAX_DEPTH:
                raise _Refuse()
            out = None
            i = 0
            while PyDict_Next(value, &pos, &k, &v):
                key = <object>k
                if type(key) is not str:
                    raise _Refuse()
                item = <object>v
                done = self.walk(item, depth + 1)
                if out is None:
                    if done is not item:
                        out = {}
                        # copy what came before unchanged
                        _copy_prefix(value, out, i)
                        out[key] = done
                else:
                    out[key] = done
                i += 1
            if out is None:
                out = value
            if PyDict_Size(out) == 1:
                key = next(iter(out))
                if (<str>key).startswith("$"):
                    self.tagged = True
                    return {"$d": out}
            return out
        if kind is tuple:
            if depth >= _MAX_DEPTH:
                raise _Refuse()
            self.tagged = True
            n = PyTuple_GET_SIZE(value)
            out = []
            for i in range(n):
                out.append(self.walk(<object>PyTuple_GET_ITEM(value, i), depth + 1))
            return {"$t": out}
        if kind is _REF:
            self.tagged = True
            return {"$r": [value.node, value.name]}
        name = _NAME_OF.get(kind)
        if name is not None:
            if depth >= _MAX_DEPTH:
                raise _Refuse()
            self.tagged = True
            fields = {}
            for key in <tuple>_FIELDS[kind]:
                fields[key] = self.walk(getattr(value, key), depth + 1)
            return {"$m": [name, fields]}
        if kind is bytes:
            self.tagged = True
            n = PyBytes_GET_SIZE(value)
            if n <= _INLINE_BYTES and n <= self.inline_left:
                self.inline_left -= n
                return {"$x": (<bytes>value).decode("latin-1")}
            self.buffers.append(value)
            return {"$b": len(self.buffers) - 1}
        if kind is _ndarray:
            if value.dtype.hasobject:
                raise _Refuse()
            self.tagged = True
            self.buffers.append(_ascontiguous(value))
            return {"$a": [len(self.buffers) - 1, value.dtype.str, list(value.shape)]}
        if kind is _REPLY:
            self.tagged = True
            return {"$p": [value.node, value.corr]}
        if kind is _CLOCK:
            self.tagged = True
            self.buffers.append(value.encode())
            return {"$v": len(self.buffers) - 1}
        raise _Refuse()


cdef void _copy_prefix(dict source, dict out, Py_ssize_t count):
    cdef Py_ssize_t pos = 0, i = 0
    cdef PyObject *k
    cdef PyObject *v
    while i < count and PyDict_Next(source, &pos, &k, &v):
        PyDict_SetItem(out, <object>k, <object>v)
        i += 1


def check_value(value):
    """Raise the bound refusal error unless ``value`` is a message value."""
    cdef _Encoder enc = _Encoder.__new__(_Encoder)
    try:
        enc.walk(value, 0)
    except _Refuse:
        raise explain_refusal(value) from None

# -- the direct writer: the common message written straight into its bytes -------------------
#
# The twin of the direct reader below: a registered message (or a tuple) of
# strings without escapes, integers of 64 bits, booleans, None, refs, reply
# handles, small bytes without escapes, lists and tuples, and the values kept
# in buffers (larger bytes, numpy arrays, vector clocks), is written byte for
# byte as orjson writes the tree the walk would build, without building it,
# and its buffers listed in the walk's order. At the
# first value it does not take it gives up, and the walk and orjson encode
# the value from the start, so what it writes is what they would have.

DEF _WRITER_STACK = 512


cdef struct _Writer:
    char *buf
    Py_ssize_t size
    Py_ssize_t cap
    Py_ssize_t inline_left
    bint failed  # out of memory: the general path takes over (and raises, if it must)
    PyObject *buffers  # the list of the encoding's buffers, in the walk's order (the caller's)
    char stack[_WRITER_STACK]


cdef bint _room(_Writer *w, Py_ssize_t more) noexcept:
    cdef Py_ssize_t cap
    cdef char *grown
    if w.size + more <= w.cap:
        return True
    cap = w.cap * 2
    while cap < w.size + more:
        cap *= 2
    if w.buf == w.stack:
        grown = <char *>malloc(cap)
        if grown != NULL:
            memcpy(grown, w.buf, w.size)
    else:
        grown = <char *>realloc(w.buf, cap)
    if grown == NULL:
        w.failed = True
        return False
    w.buf = grown
    w.cap = cap
    return True


cdef inline bint _put(_Writer *w, const char *text, Py_ssize_t n) noexcept:
    if not _room(w, n):
        return False
    memcpy(w.buf + w.size, text, n)
    w.size += n
    return True


cdef bint _put_str(_Writer *w, object text) noexcept:
    """A string that JSON writes without an escape; False for any other."""
    cdef Py_ssize_t n, i
    cdef const char *p = PyUnicode_AsUTF8AndSize_noerror(text, &n)
    if p == NULL:  # a lone surrogate: not UTF-8
        PyErr_Clear()
        return False
    for i in range(n):
        if <uint8_t>p[i] < 0x20 or p[i] == 0x22 or p[i] == 0x5C:
            return False
    if not _room(w, n + 2):
        return False
    w.buf[w.size] = 0x22
    memcpy(w.buf + w.size + 1, p, n)
    w.buf[w.size + 1 + n] = 0x22
    w.size += n + 2
    return True


cdef bint _put_int(_Writer *w, object value) noexcept:
    cdef int overflow = 0
    cdef long long number = PyLong_AsLongLongAndOverflow(value, &overflow)
    cdef char digits[24]
    cdef int at = 24
    cdef unsigned long long left
    if overflow != 0:  # past 64 signed bits: the walk decides
        return False
    if number == -1 and PyErr_Occurred() != NULL:
        PyErr_Clear()
        return False
    left = (0ULL - <unsigned long long>number) if number < 0 else <unsigned long long>number
    while True:
        at -= 1
        digits[at] = <char>(0x30 + left % 10)
        left //= 10
        if left == 0:
            break
    if number < 0:
        at -= 1
        digits[at] = 0x2D
    return _put(w, digits + at, 24 - at)


cdef bint _put_bytes(_Writer *w, bytes data) noexcept:
    """Small bytes inline (``$x``): their code points, each byte below 0x80 as itself."""
    cdef Py_ssize_t n = PyBytes_GET_SIZE(data), i
    cdef const uint8_t *p = <const uint8_t *>PyBytes_AS_STRING(data)
    cdef uint8_t b
    if n > _INLINE_BYTES or n > w.inline_left:
        return False
    if not _room(w, 2 * n + 10):
        return False
    memcpy(w.buf + w.size, b'{"$x":"', 7)
    w.size += 7
    for i in range(n):
        b = p[i]
        if b < 0x20 or b == 0x22 or b == 0x5C:
            return False
        if b < 0x80:
            w.buf[w.size] = <char>b
            w.size += 1
        else:  # the code point's UTF-8
            w.buf[w.size] = <char>(0xC0 | (b >> 6))
            w.buf[w.size + 1] = <char>(0x80 | (b & 0x3F))
            w.size += 2
    w.inline_left -= n
    memcpy(w.buf + w.size, b'"}', 2)
    w.size += 2
    return True


cdef bint _put_value(_Writer *w, object value, int depth) except -1:
    """Write ``value`` as the walk and orjson would; False where it gives up."""
    cdef type kind = type(value)
    cdef Py_ssize_t i, n
    cdef PyObject *found
    cdef tuple fields
    if kind is str:
        return _put_str(w, value)
    if kind is int:
        return _put_int(w, value)
    if value is None:
        return _put(w, "null", 4)
    if kind is bool:
        return _put(w, "true", 4) if value else _put(w, "false", 5)
    if depth >= _FAST_DEPTH:
        return False
    if kind is list or kind is tuple:
        if kind is tuple and not _put(w, '{"$t":', 6):
            return False
        if not _put(w, "[", 1):
            return False
        # As a list's iterator goes: the length read again at each item and the
        # item held while it is written (a field read may run code that edits it).
        i = 0
        while i < (PyList_GET_SIZE(value) if kind is list else PyTuple_GET_SIZE(value)):
            item = <object>(PyList_GET_ITEM(value, i) if kind is list else PyTuple_GET_ITEM(value, i))
            if i and not _put(w, ",", 1):
                return False
            if not _put_value(w, item, depth + 1):
                return False
            i += 1
        if not _put(w, "]", 1):
            return False
        return kind is list or _put(w, "}", 1)
    if kind is _REF:
        return (
            _put(w, '{"$r":[', 7)
            and _put_str(w, value.node)
            and _put(w, ",", 1)
            and _put_str(w, value.name)
            and _put(w, "]}", 2)
        )
    if kind is _REPLY:
        return (
            _put(w, '{"$p":[', 7)
            and type(value.node) is str
            and _put_str(w, value.node)
            and _put(w, ",", 1)
            and type(value.corr) is int
            and _put_int(w, value.corr)
            and _put(w, "]}", 2)
        )
    if kind is bytes:
        if PyBytes_GET_SIZE(value) <= _INLINE_BYTES and PyBytes_GET_SIZE(value) <= w.inline_left:
            return _put_bytes(w, <bytes>value)
        return _put_buffer(w, b'{"$b":', value) and _put(w, "}", 1)
    if kind is _ndarray:
        dtype = value.dtype
        if dtype.hasobject:
            return False
        if not (
            _put_buffer(w, b'{"$a":[', _ascontiguous(value))
            and _put(w, ",", 1)
            and _put_str(w, dtype.str)
            and _put(w, ",[", 2)
        ):
            return False
        shape = value.shape
        for i in range(PyTuple_GET_SIZE(shape)):
            if i and not _put(w, ",", 1):
                return False
            if not _put_int(w, <object>PyTuple_GET_ITEM(shape, i)):
                return False
        return _put(w, "]]}", 3)
    if kind is _CLOCK:
        return _put_buffer(w, b'{"$v":', value.encode()) and _put(w, "}", 1)
    # Only a class whose fields are plain slots or plain __dict__ entries, read
    # without running its code: the general path may read them again.
    if (<_GetattroOf *>kind).tp_getattro != <void *>PyObject_GenericGetAttr or not (
        kind in _SLOTTED or kind in _DIRECT
    ):
        return False
    found = PyDict_GetItem(_NAME_OF, kind)
    if found == NULL or type(<object>found) is not str:
        return False
    if not (_put(w, '{"$m":[', 7) and _put_str(w, <object>found) and _put(w, ",{", 2)):
        return False
    found = PyDict_GetItem(_FIELDS, kind)
    if found == NULL:
        return False
    fields = <tuple>found
    for i in range(PyTuple_GET_SIZE(fields)):
        key = <object>PyTuple_GET_ITEM(fields, i)
        if i and not _put(w, ",", 1):
            return False
        if not (_put_str(w, key) and _put(w, ":", 1)):
            return False
        if not _put_value(w, getattr(value, key), depth + 1):
            return False
    return _put(w, "}]}", 3)


cdef bint _put_buffer(_Writer *w, const char *tag, object buffer) except -1:
    """``tag`` (``{"$b":``, ``{"$v":`` or ``{"$a":[``), then the index of ``buffer``,
    appended to the encoding's buffers, as the walk appends it."""
    cdef list buffers = <list>w.buffers
    buffers.append(buffer)
    return _put(w, tag, len(tag)) and _put_int(w, PyList_GET_SIZE(buffers) - 1)


def encode_value(value):
    """Encode a message value: ``(body, buffers, plain)``."""
    cdef _Writer writer
    cdef bint written
    cdef list buffers
    # A registered message or a tuple, tagged whatever is in it (never plain):
    # first, the direct writer.
    if type(value) in _NAME_OF or type(value) is tuple:
        buffers = []
        writer.buf = writer.stack
        writer.size = 0
        writer.cap = _WRITER_STACK
        writer.inline_left = _INLINE_BUDGET
        writer.failed = False
        writer.buffers = <PyObject *>buffers
        try:
            written = _put_value(&writer, value, 0)
            if written:
                return PyBytes_FromStringAndSize(writer.buf, writer.size), buffers, False
        except Exception:  # a field that would not be read: the walk decides, and words it
            pass
        finally:
            if writer.buf != writer.stack:
                free(writer.buf)
    return _encode_general(value)


cdef object _encode_general(value):
    cdef _Encoder enc = _Encoder.__new__(_Encoder)
    try:
        tree = enc.walk(value, 0)
        body = _dumps(tree)
    except _Refuse:
        raise explain_refusal(value) from None
    except _JSONEncodeError:
        return _twin.encode_value(value)  # raises the same error, worded by the twin
    return body, enc.buffers, not enc.tagged


# -- decoding values --------------------------------------------------------------------------

class _Bad(Exception):
    pass


cdef object _walk(object node, object buffers, int depth):
    # ``depth`` counts the containers around ``node``, as the encoder does.
    cdef type kind = type(node)
    cdef PyObject *k
    cdef PyObject *v
    cdef Py_ssize_t pos = 0
    if kind is list:
        if depth >= _MAX_DEPTH:
            raise _Bad()
        return _walk_items(<list>node, buffers, depth + 1)
    if kind is not dict:
        return node
    if PyDict_Size(node) == 1:
        PyDict_Next(node, &pos, &k, &v)
        if (<str>k).startswith("$"):
            return _build(<str>k, <object>v, buffers, depth)
    if depth >= _MAX_DEPTH:
        raise _Bad()
    return _walk_values(<dict>node, buffers, depth + 1)


cdef list _walk_items(list node, object buffers, int depth):
    """The list with each item walked at ``depth``: the same list if none changed."""
    cdef Py_ssize_t i, n = PyList_GET_SIZE(node)
    cdef object item, done
    cdef list out = None
    for i in range(n):
        item = <object>PyList_GET_ITEM(node, i)
        done = _walk(item, buffers, depth)
        if out is None:
            if done is not item:
                out = PyList_GetSlice(node, 0, i)
                out.append(done)
        else:
            out.append(done)
    return node if out is None else out


cdef dict _walk_values(dict node, object buffers, int depth):
    """The dict with each value walked at ``depth``: the same dict if none changed."""
    cdef PyObject *k
    cdef PyObject *v
    cdef Py_ssize_t pos = 0, i = 0
    cdef object item, done
    cdef dict out = None
    while PyDict_Next(node, &pos, &k, &v):
        item = <object>v
        done = _walk(item, buffers, depth)
        if out is None:
            if done is not item:
                out = {}
                _copy_prefix(node, out, i)
                out[<object>k] = done
        else:
            out[<object>k] = done
        i += 1
    return node if out is None else out


cdef object _build(str tag, object args, object buffers, int depth):
    # ``depth`` is that of the value the tag stands for; container tags check it.
    cdef object cls, fields, expected, raw, name
    cdef Py_ssize_t index, pos
    cdef PyObject *k
    cdef PyObject *v
    if tag == "$m":
        if type(args) is not list or len(args) != 2:
            raise _Bad()
        name = args[0]
        fields = args[1]
        if type(name) is not str or type(fields) is not dict or depth >= _MAX_DEPTH:
            raise _Bad()
        if PyDict_GetItem(_BY_NAME, name) == NULL:
            raise _Bad()
        cls = <object>PyDict_GetItem(_BY_NAME, name)
        expected = <tuple>_FIELDS[cls]
        if PyDict_Size(fields) != len(expected):
            raise _Bad()
        for key in expected:
            if PyDict_GetItem(fields, key) == NULL:
                raise _Bad()
        out = _walk_values(<dict>fields, buffers, depth + 1)
        if cls in _SLOTTED:
            # A slotted frozen dataclass: set each slot past the class's frozen
            # __setattr__, as its generated __init__ does (object.__setattr__).
            built = _fresh(cls)
            pos = 0
            while PyDict_Next(out, &pos, &k, &v):
                PyObject_GenericSetAttr(built, <object>k, <object>v)
            return built
        if cls in _DIRECT:
            # Its fields become its __dict__: a fresh dict of the decoded tree's,
            # held by nothing else, so it is taken as it is rather than copied.
            built = _fresh(cls)
            PyObject_GenericSetDict(built, out, NULL)
            return built
        try:
            return cls(**out)
        except Exception:
            raise _Bad()
    if tag == "$t":
        if type(args) is not list or depth >= _MAX_DEPTH:
            raise _Bad()
        return tuple(_walk_items(<list>args, buffers, depth + 1))
    if tag == "$r":
        if (
            type(args) is not list or len(args) != 2
            or type(args[0]) is not str or type(args[1]) is not str
            or not args[0] or not args[1]
        ):
            raise _Bad()
        return _REF(args[0], args[1])
    if tag == "$b":
        if type(args) is not int or args < 0 or args >= len(buffers):
            raise _Bad()
        raw = buffers[args]
        return raw if type(raw) is bytes else bytes(raw)
    if tag == "$x":  # the bytes' code points; one past U+00FF is no byte
        if type(args) is not str:
            raise _Bad()
        try:
            return (<str>args).encode("latin-1")
        except UnicodeEncodeError:
            raise _Bad()
    if tag == "$v":
        if type(args) is not int or args < 0 or args >= len(buffers) or _CLOCK is None:
            raise _Bad()
        try:
            return _CLOCK.decode(buffers[args])
        except (ValueError, TypeError, OverflowError):
            raise _Bad()
    if tag == "$f":
        if args != "nan" and args != "inf" and args != "-inf":
            raise _Bad()
        return float(args)
    if tag == "$p":
        if type(args) is not list or len(args) != 2 or type(args[0]) is not str or type(args[1]) is not int:
            raise _Bad()
        return _REPLY(args[0], args[1])
    if tag == "$d":
        if type(args) is not dict or depth >= _MAX_DEPTH:
            raise _Bad()
        # A user dict whose own key starts with "$": walk its values, not its key.
        return _walk_values(<dict>args, buffers, depth + 1)
    if tag == "$a":
        return _twin._build_array(args, buffers, depth)  # rare and numpy-bound: the twin's code
    raise _Bad()


cdef enum:
    _SCAN_LONG_DIGITS = 1   # a run of 19 digits outside strings: maybe an integer past 64 bits
    _SCAN_TOO_DEEP = 2      # lists and dicts nested more than MAX_DEPTH deep


cdef uint8_t _CLASS[256]  # what a byte outside strings is to the scan: 0 nothing of interest
DEF _DIGIT = 1
DEF _QUOTE = 2
DEF _OPEN = 3
DEF _CLOSE = 4
for _c in range(0x30, 0x3A):
    _CLASS[_c] = _DIGIT
_CLASS[0x22] = _QUOTE
_CLASS[0x5B] = _OPEN
_CLASS[0x7B] = _OPEN
_CLASS[0x5D] = _CLOSE
_CLASS[0x7D] = _CLOSE


cdef int _scan(const uint8_t *p, Py_ssize_t n) noexcept nogil:
    """One pass over a body that orjson accepted: what the twin must look at more carefully.

    Outside strings, counts how deep brackets nest and how long runs of digits
    are. The body is valid JSON, so a string runs from a quote to the next
    quote that is not preceded by an odd number of backslashes.
    """
    cdef Py_ssize_t i = 0, back
    cdef int depth = 0, run = 0, found = 0
    cdef uint8_t kind
    cdef const uint8_t *quote
    while i < n:
        kind = _CLASS[p[i]]
        i += 1
        if kind == 0:
            run = 0
        elif kind == _DIGIT:
            run += 1
            if run >= _LONG_DIGITS:
                found |= _SCAN_LONG_DIGITS
        else:
            run = 0
            if kind == _QUOTE:
                while True:
                    quote = <const uint8_t *>memchr(p + i, 0x22, n - i)
                    if quote == NULL:
                        return found
                    i = quote - p + 1
                    back = 0
                    while p[i - 2 - back] == 0x5C:  # backslashes before the quote
                        back += 1
                    if back % 2 == 0:
                        break
            elif kind == _OPEN:
                depth += 1
                if depth > _MAX_DEPTH:
                    found |= _SCAN_TOO_DEEP
            else:
                depth -= 1
    return found


# -- the direct reader: the common message read straight from its bytes ---------------------
#
# Most bodies are a registered message whose fields are strings, integers,
# booleans, None, refs and other such messages, in lists and tuples, with
# the values the encoder keeps in buffers (larger bytes, numpy arrays, vector
# clocks) built from their buffers as the general path builds them. The
# reader below takes exactly those, written as the encoder writes them (no
# whitespace, fields in their declared order, no escapes in strings, no
# floats), and builds the message without the tree orjson would make. At the
# first byte it does not expect it gives up (``_MISS``) and the general path
# (orjson, then the walk) decodes the body from the start: what the reader
# accepts is valid JSON that the general path decodes to the same value, so
# the two paths cannot disagree, and everything unusual, or wrong, is
# decided, and worded, where it always was.

cdef object _MISS = object()
cdef str _last_name = None  # the last message name read: most bodies repeat it


cdef struct _Reader:
    const char *p
    Py_ssize_t i
    Py_ssize_t n


cdef inline bint _take(_Reader *r, const char *text, Py_ssize_t k) noexcept:
    if r.n - r.i >= k and memcmp(r.p + r.i, text, k) == 0:
        r.i += k
        return True
    return False


cdef object _fast_str(_Reader *r):
    """A string with no escapes and no control characters; ``_MISS`` otherwise."""
    cdef Py_ssize_t start = r.i + 1, j = start
    cdef const uint8_t *p = <const uint8_t *>r.p
    while j < r.n:
        if p[j] == 0x22:
            break
        if p[j] == 0x5C or p[j] < 0x20:
            return _MISS
        j += 1
    else:
        return _MISS
    r.i = j + 1
    try:
        return PyUnicode_DecodeUTF8(r.p + start, j - start, NULL)
    except UnicodeDecodeError:
        return _MISS


cdef object _fast_int(_Reader *r):
    """An integer of at most 18 digits, as JSON writes it; ``_MISS`` otherwise."""
    cdef Py_ssize_t j = r.i, digits = 0
    cdef bint negative = False
    cdef long long value = 0
    cdef const uint8_t *p = <const uint8_t *>r.p
    if p[j] == 0x2D:  # '-'
        negative = True
        j += 1
    while j < r.n and 0x30 <= p[j] <= 0x39:
        value = value * 10 + (p[j] - 0x30)
        digits += 1
        j += 1
    if digits == 0 or digits > 18 or (digits > 1 and p[j - digits] == 0x30):
        return _MISS
    if j < r.n and (p[j] == 0x2E or p[j] == 0x65 or p[j] == 0x45):  # a float: '.', 'e', 'E'
        return _MISS
    r.i = j
    return -value if negative else value


cdef object _fast_items(_Reader *r, object buffers, int depth):
    """The items of a list, the reader at its ``[``; a new list, or ``_MISS``."""
    cdef list out = []
    cdef object item
    r.i += 1
    if _take(r, "]", 1):
        return out
    while True:
        item = _fast(r, buffers, depth)
        if item is _MISS:
            return _MISS
        out.append(item)
        if _take(r, ",", 1):
            continue
        if _take(r, "]", 1):
            return out
        return _MISS


cdef object _fast_message(_Reader *r, object buffers, int depth):
    """``["name",{fields}]`` of a registered message, the reader at its ``[``."""
    global _last_name
    cdef object name, cls, value, out, built
    cdef tuple expected
    cdef Py_ssize_t start, size, i, count
    cdef const char *text
    cdef PyObject *found
    cdef PyObject *k
    cdef PyObject *v
    cdef Py_ssize_t pos
    if not _take(r, "[\"", 2):
        return _MISS
    r.i -= 1
    start = r.i + 1
    name = _last_name
    if name is not None:
        text = PyUnicode_AsUTF8AndSize(name, &size)
        if (
            r.n - start > size
            and memcmp(r.p + start, text, size) == 0
            and r.p[start + size] == 0x22
        ):
            r.i = start + size + 1
        else:
            name = None
    if name is None:
        name = _fast_str(r)
        if name is _MISS:
            return _MISS
    found = PyDict_GetItem(_BY_NAME, name)
    if found == NULL:
        return _MISS
    _last_name = name
    cls = <object>found
    if not (cls in _SLOTTED or cls in _DIRECT):
        return _MISS  # built by calling it: by the general path, once the body is known good
    found = PyDict_GetItem(_FIELDS, cls)
    if found == NULL:
        return _MISS
    expected = <tuple>found
    if not _take(r, ",{", 2):
        return _MISS
    out = {}
    count = PyTuple_GET_SIZE(expected)
    for i in range(count):
        key = <object>PyTuple_GET_ITEM(expected, i)
        if i and not _take(r, ",", 1):
            return _MISS
        text = PyUnicode_AsUTF8AndSize(key, &size)
        if not (
            r.n - r.i >= size + 4
            and r.p[r.i] == 0x22
            and memcmp(r.p + r.i + 1, text, size) == 0
            and r.p[r.i + 1 + size] == 0x22
            and r.p[r.i + 2 + size] == 0x3A
        ):
            return _MISS
        r.i += size + 3
        value = _fast(r, buffers, depth + 1)
        if value is _MISS:
            return _MISS
        PyDict_SetItem(out, key, value)
    if not _take(r, "}]", 2):
        return _MISS
    # Built as the general path builds it (_build, "$m"), without running the
    # class's own code (the body may yet be refused whole).
    if cls in _SLOTTED:
        built = _fresh(cls)
        pos = 0
        while PyDict_Next(out, &pos, &k, &v):
            PyObject_GenericSetAttr(built, <object>k, <object>v)
        return built
    built = _fresh(cls)  # in _DIRECT: its fields become its __dict__
    PyObject_GenericSetDict(built, out, NULL)
    return built


cdef object _fast_pair(_Reader *r):
    """``["text",second]`` with a non-empty string first; the two, or ``_MISS``."""
    cdef object first, second
    if not _take(r, "[", 1) or r.i >= r.n or r.p[r.i] != 0x22:
        return _MISS
    first = _fast_str(r)
    if first is _MISS or not first or not _take(r, ",", 1) or r.i >= r.n:
        return _MISS
    if r.p[r.i] == 0x22:
        second = _fast_str(r)
    else:
        second = _fast_int(r)
    if second is _MISS or not _take(r, "]", 1):
        return _MISS
    return (first, second)


cdef object _fast(_Reader *r, object buffers, int depth):
    """One value at the reader; ``_MISS`` at the first thing it does not take."""
    cdef char c
    cdef object value, pair
    if r.i >= r.n or depth > _FAST_DEPTH:
        return _MISS
    c = r.p[r.i]
    if c == 0x22:  # '"'
        return _fast_str(r)
    if c == 0x2D or 0x30 <= c <= 0x39:
        return _fast_int(r)
    if c == 0x74:  # 't'
        return True if _take(r, "true", 4) else _MISS
    if c == 0x66:  # 'f'
        return False if _take(r, "false", 5) else _MISS
    if c == 0x6E:  # 'n'
        return None if _take(r, "null", 4) else _MISS
    if c == 0x5B:  # '['
        return _fast_items(r, buffers, depth + 1)
    if c != 0x7B or not _take(r, "{\"$", 3) or r.n - r.i < 3:  # '{' and a tag
        return _MISS
    c = r.p[r.i]
    if r.p[r.i + 1] != 0x22 or r.p[r.i + 2] != 0x3A:  # a one-letter tag, then '":'
        return _MISS
    r.i += 3
    if c == 0x6D:  # "$m"
        value = _fast_message(r, buffers, depth)
    elif c == 0x74:  # "$t"
        if r.i >= r.n or r.p[r.i] != 0x5B:
            return _MISS
        value = _fast_items(r, buffers, depth + 1)
        if value is not _MISS:
            value = tuple(<list>value)
    elif c == 0x72:  # "$r"
        pair = _fast_pair(r)
        if pair is _MISS or type((<tuple>pair)[1]) is not str or not (<tuple>pair)[1]:
            return _MISS
        value = _REF((<tuple>pair)[0], (<tuple>pair)[1])
    elif c == 0x70:  # "$p"
        pair = _fast_pair(r)
        if pair is _MISS or type((<tuple>pair)[1]) is not int:
            return _MISS
        value = _REPLY((<tuple>pair)[0], (<tuple>pair)[1])
    elif c == 0x78:  # "$x"
        if r.i >= r.n or r.p[r.i] != 0x22:
            return _MISS
        value = _fast_str(r)
        if value is _MISS:
            return _MISS
        try:
            value = (<str>value).encode("latin-1")
        except UnicodeEncodeError:
            return _MISS
    elif c == 0x62 or c == 0x76 or c == 0x61:  # a value kept in buffers
        if r.i >= r.n:
            return _MISS
        if c == 0x61:  # "$a": [buffer, dtype, shape]
            value = _fast_items(r, buffers, depth + 1) if r.p[r.i] == 0x5B else _MISS
        else:  # "$b", "$v": a buffer's index
            value = _fast_int(r)
        if value is _MISS:
            return _MISS
        # Built as the general path builds it; what that refuses, it words.
        value = _build("$a" if c == 0x61 else "$b" if c == 0x62 else "$v", value, buffers, depth)
    else:
        return _MISS
    if value is _MISS or not _take(r, "}", 1):
        return _MISS
    return value


def decode_value(body, buffers=(), plain=False):
    """Rebuild a message value from :func:`encode_value`'s output.

    Whatever the input, the only error is the bound malformed error (see the
    pure twin): anything unusual goes to the twin, which words the refusal.
    """
    cdef int found
    cdef _Reader reader
    if type(body) is not bytes:
        return _twin.decode_value(body, buffers, plain)  # rare: the twin converts it
    if plain is False:  # (anything else is for the general path to judge)
        reader.p = PyBytes_AS_STRING(body)
        reader.i = 0
        reader.n = PyBytes_GET_SIZE(body)
        try:
            value = _fast(&reader, buffers, 0)
        except Exception:  # a class that would not be built: the general path decides
            value = _MISS
        if value is not _MISS and reader.i == reader.n:
            return value
    try:
        tree = _loads(body)
    except _JSONDecodeError:
        return _twin.decode_value(body, buffers, plain)  # raises, worded by the twin
    found = _scan(<const uint8_t *>PyBytes_AS_STRING(body), PyBytes_GET_SIZE(body))
    if found & _SCAN_LONG_DIGITS or (plain and found & _SCAN_TOO_DEEP):
        return _twin.decode_value(body, buffers, plain)  # careful checks, by the twin
    if plain:
        return tree
    try:
        return _walk(tree, buffers, 0)
    except Exception:
        return _twin.decode_value(body, buffers, plain)  # raises, worded by the twin


# -- batches ----------------------------------------------------------------------------------

cdef inline Py_ssize_t _varint_size(uint64_t v) noexcept nogil:
    cdef Py_ssize_t n = 1
    while v >= 0x80:
        v >>= 7
        n += 1
    return n


cdef inline uint8_t *_put_varint(uint8_t *p, uint64_t v) noexcept nogil:
    while v >= 0x80:
        p[0] = <uint8_t>((v & 0x7F) | 0x80)
        p += 1
        v >>= 7
    p[0] = <uint8_t>v
    return p + 1


def batch_end(envelopes, Py_ssize_t start, Py_ssize_t max_count, Py_ssize_t max_bytes):
    """Where the batch of ``envelopes`` that begins at ``start`` ends (see the pure twin)."""
    cdef list envs = envelopes if type(envelopes) is list else list(envelopes)
    cdef Py_ssize_t end = start, n = len(envs), size = 0
    cdef Envelope env
    if start < 0:
        raise ValueError(f"a batch cannot begin at {start}")
    if max_count < 1 or max_bytes < 1:
        raise ValueError(f"a batch holds at least one envelope, not {max_count} or {max_bytes} bytes")
    while end < n and end - start < max_count and size < max_bytes:
        env = <Envelope?>envs[end]
        size += len(env.body)
        if env.buffers:
            for buffer in env.buffers:
                size += memoryview(buffer).nbytes
        end += 1
    return end


def encode_batch(envelopes):
    """The frames of one batch carrying ``envelopes``: the batch frame, then every buffer."""
    cdef list envs = envelopes if type(envelopes) is list else list(envelopes)
    cdef Py_ssize_t i, n = len(envs), size = 1 + _varint_size(<uint64_t>n)
    cdef Envelope env
    cdef list targets = [], senders = [], bodies = []
    cdef list frames = [None]
    cdef object target, sender, body
    cdef uint64_t corr
    cdef bytes out
    cdef uint8_t *p
    cdef Py_buffer view
    for i in range(n):
        env = <Envelope?>envs[i]
        target = (<str>env.target).encode("utf-8")
        sender = (<str>env.sender).encode("utf-8") if env.sender is not None else None
        body = env.body
        if type(body) is not bytes:
            body = bytes(body)
        targets.append(target)
        senders.append(sender)
        bodies.append(body)
        corr = PyLong_AsUnsignedLongLong(env.corr)
        size += 2 + _varint_size(corr)
        size += _varint_size(PyBytes_GET_SIZE(target)) + PyBytes_GET_SIZE(target)
        if sender is not None:
            size += _varint_size(PyBytes_GET_SIZE(sender)) + PyBytes_GET_SIZE(sender)
        size += _varint_size(PyBytes_GET_SIZE(body)) + PyBytes_GET_SIZE(body)
        size += _varint_size(len(env.buffers))
        if env.buffers:
            frames.extend(env.buffers)
    out = PyBytes_FromStringAndSize(NULL, size)
    p = <uint8_t *>PyBytes_AS_STRING(out)
    p[0] = WIRE_VERSION
    p = _put_varint(p + 1, <uint64_t>n)
    for i in range(n):
        env = <Envelope>envs[i]
        target = targets[i]
        sender = senders[i]
        body = bodies[i]
        p[0] = <uint8_t>env.kind
        p[1] = (_PLAIN if env.plain else 0) | (_HAS_SENDER if sender is not None else 0)
        p = _put_varint(p + 2, PyLong_AsUnsignedLongLong(env.corr))
        p = _put_varint(p, PyBytes_GET_SIZE(target))
        memcpy(p, PyBytes_AS_STRING(target), PyBytes_GET_SIZE(target))
        p += PyBytes_GET_SIZE(target)
        if sender is not None:
            p = _put_varint(p, PyBytes_GET_SIZE(sender))
            memcpy(p, PyBytes_AS_STRING(sender), PyBytes_GET_SIZE(sender))
            p += PyBytes_GET_SIZE(sender)
        p = _put_varint(p, PyBytes_GET_SIZE(body))
        memcpy(p, PyBytes_AS_STRING(body), PyBytes_GET_SIZE(body))
        p += PyBytes_GET_SIZE(body)
        p = _put_varint(p, len(env.buffers))
    frames[0] = out
    return frames


cdef inline bint _get_varint(const uint8_t *buf, Py_ssize_t *pos, Py_ssize_t end, uint64_t *out) noexcept nogil:
    cdef uint64_t value = 0, byte
    cdef int shift = 0
    cdef Py_ssize_t p = pos[0]
    while True:
        if p >= end:
            return False
        byte = buf[p]
        p += 1
        if shift == 63 and byte > 1:
            return False  # past 64 bits (the pure twin's value would exceed 2**64-1)
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            break
        shift += 7
        if shift > 63:
            return False
    pos[0] = p
    out[0] = value
    return True


def decode_batch(source, frames, Py_ssize_t max_message_size):
    """Split a received batch into envelopes; see the pure twin."""
    cdef Py_buffer view
    cdef list envelopes = [], oversized = []
    cdef Py_ssize_t nframes = len(frames), index = 1, pos = 0, end, count, i, size, nbuf, j, body_at
    cdef uint64_t value, corr, length
    cdef const uint8_t *buf
    cdef int kind, flags
    cdef object target, sender, body, buffers, buffer
    cdef Envelope env
    cdef bint bad = False
    cdef object last_target = None, last_sender = None
    cdef Py_ssize_t last_target_at = 0, last_target_len = 0, last_sender_at = 0, last_sender_len = 0
    if nframes == 0:
        return _twin.decode_batch(source, frames, max_message_size)
    first = frames[0]
    PyObject_GetBuffer(first, &view, PyBUF_SIMPLE)
    try:
        buf = <const uint8_t *>view.buf
        end = view.len
        if end < 1 or buf[0] != WIRE_VERSION:
            bad = True
        else:
            pos = 1
            if not _get_varint(buf, &pos, end, &value) or value > <uint64_t>end:
                bad = True
            else:
                count = <Py_ssize_t>value
                for i in range(count):
                    if pos + 2 > end:
                        bad = True
                        break
                    kind = buf[pos]
                    flags = buf[pos + 1]
                    pos += 2
                    if kind > 3 or flags & ~(_PLAIN | _HAS_SENDER):
                        bad = True
                        break
                    if not _get_varint(buf, &pos, end, &corr):
                        bad = True
                        break
                    # Lengths are checked as unsigned 64-bit numbers before any cast.
                    if not _get_varint(buf, &pos, end, &length) or length > _MAX_NAME or length > <uint64_t>(end - pos):
                        bad = True
                        break
                    # Envelopes of a batch mostly share their names: reuse the last string.
                    if (
                        last_target is not None and <Py_ssize_t>length == last_target_len
                        and memcmp(buf + pos, buf + last_target_at, length) == 0
                    ):
                        target = last_target
                    else:
                        try:
                            target = PyUnicode_DecodeUTF8(<const char *>(buf + pos), <Py_ssize_t>length, NULL)
                        except UnicodeDecodeError:
                            bad = True
                            break
                        last_target = target
                        last_target_at = pos
                        last_target_len = <Py_ssize_t>length
                    pos += <Py_ssize_t>length
                    sender = None
                    if flags & _HAS_SENDER:
                        if not _get_varint(buf, &pos, end, &length) or length > _MAX_NAME or length > <uint64_t>(end - pos):
                            bad = True
                            break
                        if (
                            last_sender is not None and <Py_ssize_t>length == last_sender_len
                            and memcmp(buf + pos, buf + last_sender_at, length) == 0
                        ):
                            sender = last_sender
                        else:
                            try:
                                sender = PyUnicode_DecodeUTF8(<const char *>(buf + pos), <Py_ssize_t>length, NULL)
                            except UnicodeDecodeError:
                                bad = True
                                break
                            last_sender = sender
                            last_sender_at = pos
                            last_sender_len = <Py_ssize_t>length
                        pos += <Py_ssize_t>length
                    if not _get_varint(buf, &pos, end, &length) or length > <uint64_t>(end - pos):
                        bad = True
                        break
                    body_at = pos
                    pos += <Py_ssize_t>length
                    if not _get_varint(buf, &pos, end, &value) or value > <uint64_t>(nframes - index):
                        bad = True
                        break
                    nbuf = <Py_ssize_t>value
                    size = <Py_ssize_t>length
                    if nbuf:
                        buffers = list(frames[index : index + nbuf])
                        for buffer in buffers:
                            size += memoryview(buffer).nbytes
                    else:
                        buffers = []
                    index += nbuf
                    env = Envelope.__new__(Envelope)
                    env.kind = kind
                    env.source = source
                    env.target = target
                    env.sender = sender
                    env.corr = corr
                    env.plain = flags & _PLAIN
                    if size > max_message_size:
                        env.body = b""
                        env.buffers = []
                        oversized.append(env)
                    else:
                        # Copied only now that its size is known to be within the limit.
                        env.body = PyBytes_FromStringAndSize(<const char *>(buf + body_at), <Py_ssize_t>length)
                        env.buffers = buffers
                        envelopes.append(env)
                if not bad and (pos != end or index != nframes):
                    bad = True
    finally:
        PyBuffer_Release(&view)
    if bad:
        _twin.decode_batch(source, frames, max_message_size)  # raises the precise error
        raise MalformedBatch("malformed batch")
    return envelopes, oversized
