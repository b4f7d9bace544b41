"""Pure-Python twins of the compiled kernels in ``actorfw._cext``.

Each module here has the same names and behaviour as its compiled twin and is
the reference the twin tests compare it against. ``ACTORFW_PURE=1`` makes the
package use these on purpose; see :mod:`actorfw.kernels`.
"""
