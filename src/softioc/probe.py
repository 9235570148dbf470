"""``pythonioc probe live`` and ``pythonioc probe ready``: is the IOC in this
container (or on this host) live, is it ready?  For Kubernetes' liveness and
readiness probes (exec probes: they run in the IOC's container, another
process than the IOC).

The IOC publishes what it knows of itself in ``softioc.health``'s records
(``PREFIX:LIVE`` and ``PREFIX:READY``, Yes or No, with the reason in
``LIVE_MSG``/``READY_MSG``), updated every period by health's thread; the
probe reads them over Channel Access and checks:

* a Channel Access server accepts connections at the IOC's address and port;
* it serves ``PREFIX:LIVE`` (or ``PREFIX:READY``) within ``timeout``;
* the record's time stamp is at most ``max_age`` seconds old (a health
  thread that stopped, a process that hangs, fails liveness);
* its value is Yes (else the IOC's reason: a wedged dispatcher, still
  starting, stopping...).

It exits 0 if all hold, else 1 with one line saying what failed.

Where it looks: no broadcast and no UDP.  The IOC's Channel Access server
is on this host (Kubernetes' host networking, or the pod's own network), at
the first address of ``EPICS_CAS_INTF_ADDR_LIST`` if the IOC serves on
chosen interfaces, else 127.0.0.1, and the port the IOC takes
(``EPICS_CAS_SERVER_PORT``, else ``EPICS_CA_SERVER_PORT``, else 5064): the
probe, started in the IOC's environment, reads the same variables.  It
searches there over TCP (libca's name server, ``EPICS_CA_NAME_SERVERS``),
with ``EPICS_CA_ADDR_LIST`` emptied and ``EPICS_CA_AUTO_ADDR_LIST=NO`` in
its own process, so the IOC's settings for its clients (an address list for
its CA links) do not send it elsewhere.  ``address`` (``--address
HOST[:PORT]``) overrides the address and port.
"""

from __future__ import annotations

import os
import socket
import sys
import time

from . import _core

__all__ = ["check", "ca_address", "main", "DEFAULT_TIMEOUT", "DEFAULT_MAX_AGE", "KINDS"]

KINDS = ("live", "ready")
DEFAULT_TIMEOUT = 3.0       # s for the whole check
DEFAULT_MAX_AGE = 10.0      # s the health records' time stamp may lag (their period: 1 s)
CA_SERVER_PORT = 5064
YES = "Yes"                 # the health records' ONAM


def _port(text: str | None) -> int | None:
    if text is None or not text.strip():
        return None
    try:
        port = int(text)
    except ValueError:
        return None
    return port if 0 < port < 65536 else None


def ca_address(address: str | None = None,
               env: dict[str, str] | None = None) -> tuple[str, int]:
    """(host, port) of the IOC's Channel Access server, as the module's
    description says; ``address`` is ``HOST`` or ``HOST:PORT``."""
    env = dict(os.environ) if env is None else env
    port = (_port(env.get("EPICS_CAS_SERVER_PORT")) or _port(env.get("EPICS_CA_SERVER_PORT"))
            or CA_SERVER_PORT)
    host = "127.0.0.1"
    interfaces = env.get("EPICS_CAS_INTF_ADDR_LIST", "").split()
    if interfaces and interfaces[0].split(":")[0] not in ("0.0.0.0", ""):
        host = interfaces[0].split(":")[0]
    if address:
        given, _, given_port = address.rpartition(":") if ":" in address else (address, "", "")
        if given_port:
            port_number = _port(given_port)
            if port_number is None:
                raise ValueError(f"--address {address}: the port must be a number 1-65535")
            port = port_number
        host = given or host
    return host, port


def _client_env(host: str, port: int, timeout: float) -> dict[str, str]:
    """libca's settings for the probe: one TCP name server, no UDP search,
    and a connection timeout of the probe's own (libca's default, 30 s, is
    also how long a refused name-server connection makes it wait to end)."""
    return {
        "EPICS_CA_NAME_SERVERS": f"{host}:{port}",
        "EPICS_CA_ADDR_LIST": "",
        "EPICS_CA_AUTO_ADDR_LIST": "NO",
        "EPICS_CA_CONN_TMO": f"{max(timeout, 0.5):g}",
    }


def check(kind: str, prefix: str, timeout: float = DEFAULT_TIMEOUT,
          max_age: float = DEFAULT_MAX_AGE, address: str | None = None) -> str | None:
    """None if the IOC whose health records are under ``prefix`` is ``kind``
    (``"live"`` or ``"ready"``); else one line saying why not.  Sets the
    EPICS_CA_* variables of this process (see the module's description)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    if not timeout > 0:
        raise ValueError("timeout must be > 0")
    deadline = time.monotonic() + timeout
    prefix = prefix.rstrip(":")
    host, port = ca_address(address)
    where = f"{host}:{port}"
    try:
        socket.create_connection((host, port), timeout).close()
    except OSError as e:
        why = e.strerror or str(e) or type(e).__name__
        return f"no Channel Access server accepts connections at {where} ({why})"
    os.environ.update(_client_env(host, port, timeout))
    name = f"{prefix}:{kind.upper()}"
    left = max(deadline - time.monotonic(), 0.1)
    try:
        (value, stamp, _), (reason, _, _) = _core.ca_get([name, f"{name}_MSG"], left)
    except TimeoutError:
        return (f"the Channel Access server at {where} does not serve {name} (within "
                f"{timeout:g} s): no health records under {prefix}, or another IOC "
                "holds that port")
    except (RuntimeError, ValueError) as e:
        return f"reading {name} from {where} failed: {e}"
    if not stamp:
        return f"{name} has never been updated (the IOC's health thread has not run)"
    age = time.time() - stamp
    if age > max_age:
        return (f"{name} was last updated {age:.1f} s ago (more than {max_age:g} s): "
                "the IOC's health thread is not running")
    if value != YES:
        return " ".join(reason.split()) or f"{name} is {value}"
    return None


def main(kind: str, prefix: str | None = None, timeout: float | None = None,
         max_age: float | None = None, address: str | None = None) -> int:
    """``pythonioc probe KIND``: print one line, return the exit status
    (0: ``kind``, 1: not, or the IOC could not be asked).  ``prefix``
    defaults to ``$IOC_PREFIX``; None for the others: the defaults."""
    timeout = DEFAULT_TIMEOUT if timeout is None else timeout
    max_age = DEFAULT_MAX_AGE if max_age is None else max_age
    prefix = prefix or os.environ.get("IOC_PREFIX", "")
    if not prefix.rstrip(":"):
        print(f"not {kind}: no IOC prefix: set IOC_PREFIX or give --prefix", file=sys.stderr)
        return 1
    try:
        reason = check(kind, prefix, timeout, max_age, address)
    except ValueError as e:
        print(f"not {kind}: {e}", file=sys.stderr)
        return 1
    prefix = prefix.rstrip(":")
    if reason is not None:
        print(f"{prefix}: not {kind}: {reason}", file=sys.stderr, flush=True)
        return 1
    print(f"{prefix}: {kind}", flush=True)
    return 0

