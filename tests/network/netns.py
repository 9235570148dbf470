"""A small facility network of Linux network namespaces, for tests.

Each subnet is a bridge in a namespace of its own; each host is a namespace
with a veth pair per subnet it is on (``eth0``, ``eth1``... inside the host,
the other end on the subnet's bridge).  Addresses come only from the
documentation ranges 198.51.100.0/24 and 203.0.113.0/24; no namespace has a
link to the machine's real interfaces or a default route, so nothing sent in
this network leaves it.  A host with interfaces on two subnets does not
forward packets between them (a new namespace has ``ip_forward`` off): only a
program on it, such as a gateway, joins the subnets.

Programs run on a host with ``Host.popen``/``Host.run``, each in its own UTS
namespace so that it sees the host's name as its host name (what a Channel
Access client declares).  Their environment is the test's minus every
``EPICS_*`` variable, so EPICS defaults apply (broadcast searches on the
host's own interfaces) unless ``env`` says otherwise.

``Network.close()`` stops every process started on the network (and anything
else still inside its namespaces), then deletes the namespaces; every wait is
bounded.  Namespace names carry the creating process id and a random tag, so
concurrent runs never collide, and namespaces left by a run that was killed
are removed by the next one.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import pwd
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from softioc.testing import epics_tool

__all__ = ["ALLOWED", "Host", "Network", "Proc", "network_unavailable", "wait_until"]

#: The only address ranges a test network may use (RFC 5737 documentation ranges).
ALLOWED = (ipaddress.IPv4Network("198.51.100.0/24"), ipaddress.IPv4Network("203.0.113.0/24"))

_PREFIX = "pioc"
_NAME = re.compile(rf"^{_PREFIX}(\d+)-[0-9a-f]{{4}}-")


def network_unavailable() -> str | None:
    """Why namespaces cannot be built here (None if they can)."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "network namespaces need root: run the tests as root"
    for tool, package in (("ip", "iproute2"), ("unshare", "util-linux")):
        if shutil.which(tool) is None:
            return f"the `{tool}` command is not installed: apt-get install {package}"
    return None


def wait_until(check: Callable[[], Any], timeout: float, what: str,
               interval: float = 0.2) -> Any:
    """Call ``check`` until it returns something true; TimeoutError after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout} s")
        time.sleep(interval)


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["ip", *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, timeout=10)
    if check and result.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {result.stdout.strip()}")
    return result


def _netns_pids(ns: str) -> list[int]:
    out = _ip("netns", "pids", ns, check=False).stdout.split()
    return [int(p) for p in out if p.isdigit()]


def _kill_and_delete(ns: str) -> None:
    """Kill whatever still runs in namespace ``ns`` (bounded), then delete it."""
    for sig, pause in ((signal.SIGTERM, 2.0), (signal.SIGKILL, 2.0)):
        pids = _netns_pids(ns)
        if not pids:
            break
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        with contextlib.suppress(TimeoutError):
            wait_until(lambda: not _netns_pids(ns), pause, f"processes in {ns}", 0.05)
    _ip("netns", "delete", ns, check=False)


def _remove_stale() -> None:
    """Delete namespaces (and log directories) left by earlier runs whose process is gone."""
    listing = _ip("netns", "list", check=False).stdout
    for line in listing.splitlines():
        name = line.split()[0] if line.split() else ""
        match = _NAME.match(name)
        if match and not Path(f"/proc/{match.group(1)}").exists():
            _kill_and_delete(name)
    for path in Path(tempfile.gettempdir()).glob(f"{_PREFIX}*"):
        match = _NAME.match(path.name)
        if match and path.is_dir() and not Path(f"/proc/{match.group(1)}").exists():
            shutil.rmtree(path, ignore_errors=True)


class Proc:
    """A process on a host of the network; its output goes to a file."""

    def __init__(self, host: Host, args: Sequence[str], popen: subprocess.Popen[bytes],
                 log: Path) -> None:
        self.host, self.args, self.popen, self.log = host, list(args), popen, log

    @property
    def pid(self) -> int:
        return int(self.popen.pid)

    def output(self) -> str:
        """Everything the process printed so far."""
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def alive(self) -> bool:
        return self.popen.poll() is None

    def send_signal(self, sig: int) -> None:
        """Send ``sig`` to the process and its children (its own session)."""
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, sig)

    def stop(self, timeout: float = 5.0, sig: int = signal.SIGTERM) -> int:
        """``sig`` (SIGTERM), then SIGKILL after ``timeout`` s; the exit status."""
        self.send_signal(sig)
        try:
            return int(self.popen.wait(timeout))
        except subprocess.TimeoutExpired:
            self.send_signal(signal.SIGKILL)
            return int(self.popen.wait(timeout))

    def wait_for_output(self, text: str | re.Pattern[str], timeout: float,
                        start: int = 0) -> str:
        """Wait until the output (from character ``start``) contains ``text``; the output."""
        def seen() -> str | None:
            out = self.output()
            tail = out[start:]
            found = text.search(tail) if isinstance(text, re.Pattern) else text in tail
            return out if found else None

        try:
            return str(wait_until(seen, timeout, f"{text!r} from {self.args[0]}", 0.1))
        except TimeoutError as e:
            raise TimeoutError(f"{e}; output so far:\n{self.output()}") from None


class Host:
    """A host: a network namespace with an address on each of its subnets."""

    def __init__(self, network: Network, name: str, ns: str,
                 addresses: dict[str, str]) -> None:
        self.network, self.name, self.ns = network, name, ns
        self.addresses = addresses

    @property
    def ip(self) -> str:
        """The host's first address."""
        return next(iter(self.addresses.values()))

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """The test's environment without EPICS_* (so EPICS defaults apply), plus ``extra``."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("EPICS_")}
        tools = str(Path(epics_tool("caget")).parent)
        env["PATH"] = tools + os.pathsep + env.get("PATH", "")   # libca starts caRepeater
        env["PYTHONUNBUFFERED"] = "1"
        env.update(extra or {})
        return env

    def command(self, args: Sequence[str], hostname: str | None = None,
                user: str | None = None) -> list[str]:
        """``args`` wrapped to run in this host's namespaces, named ``hostname``, as ``user``."""
        as_user: list[str] = []
        if user is not None:
            entry = pwd.getpwnam(user)
            as_user = ["setpriv", f"--reuid={entry.pw_uid}", f"--regid={entry.pw_gid}",
                       "--clear-groups"]
        return ["ip", "netns", "exec", self.ns, "unshare", "--uts", "sh", "-c",
                'hostname "$0" && exec "$@"', hostname or self.name, *as_user, *args]

    def popen(self, args: Sequence[str], env: Mapping[str, str] | None = None,
              hostname: str | None = None, user: str | None = None,
              cwd: str | os.PathLike[str] | None = None) -> Proc:
        """Start ``args`` on this host (stopped by ``Network.close()`` at the latest).

        ``hostname`` is the host name the program sees (default: the host's
        name); any other name is how a test makes a client lie about itself.
        ``user`` runs it as that local user instead of the test's; ``cwd``
        in that directory.
        """
        log = self.network.logdir / f"{len(self.network.procs):03d}-{self.name}.log"
        with open(log, "wb") as out:
            popen = subprocess.Popen(
                self.command(args, hostname, user), env=self.env(env), stdin=subprocess.DEVNULL,
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True, cwd=cwd,
            )
        proc = Proc(self, args, popen, log)
        self.network.procs.append(proc)
        return proc

    def run(self, args: Sequence[str], env: Mapping[str, str] | None = None,
            timeout: float = 20.0, hostname: str | None = None, user: str | None = None,
            ) -> subprocess.CompletedProcess[str]:
        """Run ``args`` on this host to the end (stdout and stderr merged)."""
        return subprocess.run(
            self.command(args, hostname, user), env=self.env(env), stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout,
        )

    def tool(self, name: str, *args: str, env: Mapping[str, str] | None = None,
             timeout: float = 20.0, hostname: str | None = None, user: str | None = None,
             ) -> subprocess.CompletedProcess[str]:
        """Run an EPICS command-line tool (caget, pvput...) on this host."""
        return self.run([epics_tool(name), *args], env=env, timeout=timeout,
                        hostname=hostname, user=user)


class Network:
    """Subnets (bridges) and hosts (namespaces) built on demand; ``close()`` removes all."""

    def __init__(self) -> None:
        reason = network_unavailable()
        if reason:
            raise RuntimeError(reason)
        _remove_stale()
        self.tag = f"{_PREFIX}{os.getpid()}-{secrets.token_hex(2)}-"
        self.subnets: dict[str, tuple[str, ipaddress.IPv4Network]] = {}
        self.hosts: dict[str, Host] = {}
        self.procs: list[Proc] = []
        self.namespaces: list[str] = []
        self._ports = 0
        self._tmp = tempfile.TemporaryDirectory(prefix=self.tag)
        self.logdir = Path(self._tmp.name)

    def _netns(self, name: str) -> str:
        ns = self.tag + name
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", ns) or len(ns) > 60:
            raise ValueError(f"bad namespace name {ns!r}")
        _ip("netns", "add", ns)
        self.namespaces.append(ns)
        _ip("-n", ns, "link", "set", "lo", "up")
        return ns

    def subnet(self, name: str, cidr: str) -> None:
        """A subnet ``name`` (e.g. 198.51.100.0/24): a bridge in its own namespace."""
        net = ipaddress.IPv4Network(cidr)
        if not any(net.subnet_of(allowed) for allowed in ALLOWED):
            raise ValueError(f"{cidr} is outside {', '.join(map(str, ALLOWED))}")
        if name in self.subnets:
            raise ValueError(f"subnet {name} exists")
        ns = self._netns("br-" + name)
        _ip("-n", ns, "link", "add", "br0", "type", "bridge")
        _ip("-n", ns, "link", "set", "br0", "up")
        self.subnets[name] = (ns, net)

    def host(self, name: str, **addresses: str) -> Host:
        """A host on the given subnets: ``host("ioc1", a="198.51.100.10")``."""
        if name in self.hosts or not addresses:
            raise ValueError(f"host {name}: exists, or has no address")
        for subnet, address in addresses.items():
            if subnet not in self.subnets:
                raise ValueError(f"no subnet {subnet}")
            if ipaddress.ip_address(address) not in self.subnets[subnet][1]:
                raise ValueError(f"{address} is not on subnet {subnet}")
        ns = self._netns(name)
        for i, (subnet, address) in enumerate(addresses.items()):
            bridge_ns, net = self.subnets[subnet]
            self._ports += 1
            port, dev = f"p{self._ports}", f"eth{i}"
            # Both ends are created inside their namespaces: nothing appears on the real host.
            _ip("-n", ns, "link", "add", dev, "type", "veth", "peer", "name", port,
                "netns", bridge_ns)
            _ip("-n", bridge_ns, "link", "set", port, "master", "br0", "up")
            _ip("-n", ns, "addr", "add", f"{address}/{net.prefixlen}",
                "broadcast", str(net.broadcast_address), "dev", dev)
            _ip("-n", ns, "link", "set", dev, "up")
        host = Host(self, name, ns, dict(addresses))
        self.hosts[name] = host
        return host

    def close(self) -> None:
        """Stop every process, then delete every namespace (bounded, never raises)."""
        for proc in self.procs:
            proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 3
        for proc in self.procs:
            try:
                proc.popen.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGKILL)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.popen.wait(2)
        for ns in reversed(self.namespaces):
            with contextlib.suppress(Exception):
                _kill_and_delete(ns)
        self.namespaces.clear()
        self._tmp.cleanup()

    def stop_since(self, mark: int) -> None:
        """Stop the processes started since ``len(self.procs)`` was ``mark`` (bounded)."""
        for proc in self.procs[mark:]:
            proc.stop(3.0)

    def logs(self, since: int = 0) -> str:
        """The command line and output of every process (started since ``since``)."""
        parts = []
        for proc in self.procs[since:]:
            parts.append(f"--- {proc.host.name}: {' '.join(proc.args)}\n{proc.output()}")
        return "\n".join(parts)

    def __enter__(self) -> Network:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

