"""Compiled kernels, built from ``cext/*.pyx`` by the package install.

Import them through :mod:`actorfw.kernels`, which explains what to do when
they are missing.
"""
