"""pythonSoftIOC's ``softioc.pvlog``: importing it logs every client put.

Each put by a CA or PVA client to any record prints a line on stdout,
``user@host REC.FIELD old -> new``, the host being the client's IP address
over both protocols (with strict puts, the default; without them, and in
pythonSoftIOC, a CA client's host is the name it declares).  The
lines come from the put log (:mod:`softioc.putlog`, which sees the same puts
and also offers a file, a PV and Python ``logging``), printed by its thread,
not by the thread doing the put.  It relies on ``TRAPWRITE`` in the access
security rules, which pythonIOC's default rules have; keep it in your own
ACF's WRITE rules.
"""

from . import putlog


def _print(put: putlog.Put) -> None:
    refused = " (refused)" if put.refused else ""
    print(f"{put.user}@{put.host} {put.record}.{put.field} {put.old} -> {put.new}{refused}",
          flush=True)


putlog.add_listener(_print)
