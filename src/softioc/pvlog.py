"""pythonSoftIOC's ``softioc.pvlog``: importing it logs every client put.

Each put by a CA or PVA client to any record prints a line on stdout,
``user@host REC.FIELD old -> new`` (arrays as ``[a, b, ...]``, at most 16
elements).  It relies on ``TRAPWRITE`` in the access security rules, which
pythonIOC's default rules have; keep it in your own ACF's WRITE rules.
"""

from . import _ext

_ext.pvlog(True)
