"""A PVA client (p4p, so PVXS) for the network tests, run on a namespace host.

    p4p_client.py get PV          prints the value
    p4p_client.py put PV VALUE    prints "ok"

Exit status 0 on success, 1 with the error printed.  The EPICS_PVA_*
variables of the environment apply (e.g. EPICS_PVA_NAME_SERVERS).
"""

import sys

from p4p.client.thread import Context


def main() -> int:
    command, pv, *rest = sys.argv[1:]
    ctx = Context("pva", nt=False)
    try:
        if command == "get":
            print(ctx.get(pv, timeout=3)["value"])
        else:
            ctx.put(pv, float(rest[0]), timeout=3, wait=True)
            print("ok")
    except Exception as e:
        print(f"{type(e).__name__}: {e}")
        return 1
    finally:
        ctx.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
