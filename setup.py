"""Build the Cython kernels: every ``cext/<name>.pyx`` becomes ``actorfw._cext.<name>``.

The kernels are compiled with bounds and wraparound checks off; the twin tests
(tests/test_*_twins.py) compare every kernel with its pure-Python twin in
``actorfw/_pure`` on random inputs, which is what guards that choice.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup

HERE = Path(__file__).parent

DIRECTIVES = {
    "language_level": 3,
    "boundscheck": False,
    "wraparound": False,
    "initializedcheck": False,
    "cdivision": True,
    "embedsignature": True,
    # Plain method descriptors: Python calls them about twice as fast as
    # cyfunctions, which is most of the cost of a small kernel call.
    "binding": False,
    # METH_O / METH_NOARGS for one- and no-argument methods: the fastest
    # calling conventions CPython has. Such arguments are positional only.
    "always_allow_keywords": False,
    # Overflow of counters and ballot rounds is checked by hand where it can
    # happen, so Cython's own overflow checks stay off.
    "overflowcheck": False,
}

# Extra C flags on request, e.g. ACTORFW_CFLAGS="-O0 -g" for a debugging build.
extra_compile_args = ["-O3", *os.environ.get("ACTORFW_CFLAGS", "").split()]

extensions = [
    Extension(
        f"actorfw._cext.{pyx.stem}",
        [str(pyx.relative_to(HERE))],
        include_dirs=[numpy.get_include()],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        extra_compile_args=extra_compile_args,
    )
    for pyx in sorted((HERE / "cext").glob("*.pyx"))
]

setup(ext_modules=cythonize(extensions, compiler_directives=DIRECTIVES))
