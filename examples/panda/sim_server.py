"""A simulated PandA: the PandABlocks TCP control protocol, served on 127.0.0.1.

A subset of the real PandABlocks-server's control port, faithful enough that
the ``pandablocks`` client library (and so ``panda_ioc.py``) talks to it as to
a real box::

    < *BLOCKS?              > !PULSE 1 / !COUNTER 1 / !SEQ 1 / .
    < PULSE.*?              > !ENABLE 0 param bit / !DELAY 2 time / ... / .
    < *ENUMS.PULSE.TRIG_EDGE?  > !Rising / !Falling / !Either / .
    < PULSE1.DELAY=0.5      > OK
    < PULSE1.DELAY?         > OK =0.5
    < PULSE1.DELAY=-1       > ERR Number out of range
    < *CHANGES?             > !PULSE1.DELAY=0.5 / !SEQ1.TABLE< / ... / .
    < SEQ1.TABLE<           (then one or more lines of decimal words, then
    < 1 / 0 / 0 / <blank>    a blank line)          > OK
    < SEQ1.TABLE?           > !1 / !0 / !0 / .

Blocks: PULSE1 (ENABLE bit, TRIG_EDGE enum, DELAY and WIDTH times with
units, PULSES uint, OUT bit output), COUNTER1 (ENABLE, STEP, MIN, MAX; OUT, a
position that counts while enabled; CARRY) and SEQ1 (ENABLE, TABLE with
REPEATS/TRIGGER/POSITION/TIME1 columns; TABLE_LINE and STATE, read-only).

Usage::

    python sim_server.py 8888          # serve on 127.0.0.1:8888
    python sim_server.py 0             # pick a free port; prints it

The first line printed is ``listening on 127.0.0.1:PORT``.  The server runs
until SIGINT/SIGTERM, or for ``--exit-after`` seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import signal
import struct
from dataclasses import dataclass, field
from typing import Any

CLOCK_HZ = 125_000_000          # time fields are stored in FPGA clock ticks
TIME_UNITS = {"min": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6}
MAX_TICKS = 2**48 - 1
INT32 = (-(2**31), 2**31 - 1)
CAPTURE_LABELS = ["No", "Value", "Diff", "Sum", "Mean", "Min", "Max", "Min Max",
                  "Min Max Mean"]
TRIGGER_LABELS = ["Immediate", "BITA=0", "BITA=1", "BITB=0", "BITB=1", "BITC=0", "BITC=1",
                  "POSA>=POSITION", "POSA<=POSITION", "POSB>=POSITION", "POSB<=POSITION",
                  "POSC>=POSITION", "POSC<=POSITION"]
TICK = 0.1                       # seconds between simulation steps
# SEQ1.TABLE at start: (REPEATS=1, Immediate, POSITION=0, TIME1=100) and
# (REPEATS=2, BITA=1, POSITION=-50, TIME1=200), 3 words a row.
DEFAULT_TABLE = [1 | 0 << 16, 0, 100, 2 | 2 << 16, (-50) & 0xFFFFFFFF, 200]


class DeviceError(Exception):
    """Answered to the client as ``ERR message``."""


@dataclass
class Column:
    """One column of a table field: bits hi..lo of each row."""

    name: str
    hi: int
    lo: int
    subtype: str                # uint, int or enum
    desc: str
    labels: list[str] = field(default_factory=list)

    def check(self, raw: int) -> None:
        if self.subtype == "enum" and raw >= len(self.labels):
            raise DeviceError(f"Invalid enumeration value in column {self.name}")


@dataclass
class Field:
    """A field of a block type: ``type`` and ``subtype`` as PandA reports them."""

    name: str
    type: str                   # param, read, time, bit_out, pos_out, table
    subtype: str | None
    desc: str
    default: Any = 0
    labels: list[str] = field(default_factory=list)     # enum subtype
    maximum: int | None = None                          # uint subtype
    columns: list[Column] = field(default_factory=list)  # table type
    max_length: int = 0                                  # table: words

    @property
    def info(self) -> str:
        return f"{self.type} {self.subtype}" if self.subtype else self.type

    @property
    def group(self) -> str:
        """The *CHANGES group the field reports in."""
        return {"param": "CONFIG", "time": "CONFIG", "read": "READ", "bit_out": "BITS",
                "pos_out": "POSN", "table": "TABLE"}[self.type]

    @property
    def row_words(self) -> int:
        return max(c.hi for c in self.columns) // 32 + 1

    @property
    def attributes(self) -> list[str]:
        return {"time": ["UNITS", "RAW", "INFO"], "bit_out": ["CAPTURE_WORD", "OFFSET", "INFO"],
                "pos_out": ["CAPTURE", "UNITS", "SCALE", "OFFSET", "SCALED", "INFO"],
                "table": ["MAX_LENGTH", "LENGTH", "B", "FIELDS", "ROW_WORDS", "INFO"],
                }.get(self.type, ["MAX", "INFO"] if self.subtype == "uint" else ["INFO"])


@dataclass
class Block:
    name: str
    count: int
    desc: str
    fields: list[Field]

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise DeviceError("No such field")


def make_blocks() -> list[Block]:
    return [
        Block("PULSE", 1, "One-shot pulse delay and stretch", [
            Field("ENABLE", "param", "bit", "Enable the block", 1),
            Field("TRIG_EDGE", "param", "enum", "INP trigger edge", "Rising",
                  labels=["Rising", "Falling", "Either"]),
            Field("DELAY", "time", None, "Output pulse delay (0 for no delay)", 0.0),
            Field("WIDTH", "time", None, "Output pulse width (0 for input pulse width)",
                  0.001),
            Field("PULSES", "param", "uint", "Number of pulses following each trigger", 1,
                  maximum=65535),
            Field("OUT", "bit_out", None, "Output pulse train", 0),
        ]),
        Block("COUNTER", 1, "Up/Down pulse counter", [
            Field("ENABLE", "param", "bit", "Count while high", 1),
            Field("STEP", "param", "int", "Amount to count at each tick", 1),
            Field("MIN", "param", "int", "Rollover value when counting down", 0),
            Field("MAX", "param", "int", "Rollover value when counting up", 1000),
            Field("OUT", "pos_out", None, "Current counter value", 0),
            Field("CARRY", "bit_out", None, "Toggles at each rollover", 0),
        ]),
        Block("SEQ", 1, "Sequencer", [
            Field("ENABLE", "param", "bit", "Run the table while high", 0),
            Field("TABLE", "table", None, "Sequencer table of lines", DEFAULT_TABLE,
                  max_length=3 * 1024,
                  columns=[
                      Column("REPEATS", 15, 0, "uint", "Number of times the line repeats"),
                      Column("TRIGGER", 19, 16, "enum", "Condition to start the phase",
                             TRIGGER_LABELS),
                      Column("POSITION", 63, 32, "int", "Position for the trigger"),
                      Column("TIME1", 95, 64, "uint", "Duration of phase 1"),
                  ]),
            Field("TABLE_LINE", "read", "uint", "Current line in the table", 0,
                  maximum=2**32 - 1),
            Field("STATE", "read", "enum", "Internal state machine", "WAIT_ENABLE",
                  labels=["UNREADY", "WAIT_ENABLE", "LOAD_TABLE", "WAIT_TRIGGER", "PHASE1",
                          "PHASE2"]),
        ]),
    ]


def _int(text: str, low: int, high: int) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        raise DeviceError("Invalid number") from None
    if not low <= value <= high:
        raise DeviceError("Number out of range")
    return value


def _float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise DeviceError("Invalid number") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise DeviceError("Invalid number")
    return value


def _fmt(value: float) -> str:
    return format(value, ".12g")


class Panda:
    """The simulated device: every value, and the change index of each."""

    def __init__(self) -> None:
        self.blocks = {b.name: b for b in make_blocks()}
        self.values: dict[str, Any] = {}     # "PULSE1.DELAY" -> stored value
        self.attrs: dict[str, str] = {}      # "PULSE1.DELAY.UNITS" -> text
        self.changed: dict[str, int] = {}    # key -> change index of its last change
        self.change_index = 0
        for block in self.blocks.values():
            for n in range(1, block.count + 1):
                for f in block.fields:
                    key = f"{block.name}{n}.{f.name}"
                    if f.type == "time":
                        self.attrs[key + ".UNITS"] = "s"
                        self.values[key] = round(f.default * CLOCK_HZ)
                    else:
                        self.values[key] = f.default
                    if f.type == "pos_out":
                        self.attrs.update({key + ".CAPTURE": "No", key + ".UNITS": "",
                                           key + ".SCALE": "1", key + ".OFFSET": "0"})
        for key in [*self.values, *self.attrs]:
            self._mark(key)

    # ---- names ---------------------------------------------------------

    def resolve(self, name: str) -> tuple[Block, int, Field, str | None]:
        """``PULSE1.DELAY.UNITS`` -> (block, 1, field, "UNITS").  The number may be
        left out of a block that has only one instance (``PULSE.DELAY``)."""
        parts = name.split(".")
        if len(parts) not in (2, 3):
            raise DeviceError("No such field")
        block_name = parts[0].rstrip("0123456789")
        block = self.blocks.get(block_name)
        if block is None:
            raise DeviceError("No such block")
        number = parts[0][len(block_name):]
        if not number and block.count != 1:
            raise DeviceError("Missing block number")
        n = int(number) if number else 1
        if not 1 <= n <= block.count:
            raise DeviceError("Block number out of range")
        f = block.field(parts[1])
        attr = parts[2] if len(parts) == 3 else None
        if attr is not None and attr not in f.attributes:
            raise DeviceError("No such attribute")
        return block, n, f, attr

    def _mark(self, key: str) -> None:
        self.change_index += 1
        self.changed[key] = self.change_index

    def _set(self, key: str, value: Any) -> None:
        if self.values.get(key) != value:
            self.values[key] = value
            self._mark(key)

    # ---- values as text ------------------------------------------------

    def get(self, name: str) -> str | list[str]:
        block, n, f, attr = self.resolve(name)
        key = f"{block.name}{n}.{f.name}"
        if attr is not None:
            return self.get_attr(key, f, attr)
        if f.type == "table":
            return [str(w) for w in self.values[key]]
        return self.format(key, f, self.values[key])

    def format(self, key: str, f: Field, value: Any) -> str:
        if f.type == "time":
            return _fmt(value / CLOCK_HZ / TIME_UNITS[self.attrs[key + ".UNITS"]])
        return str(value)

    def get_attr(self, key: str, f: Field, attr: str) -> str | list[str]:
        if attr == "INFO":
            return f.info
        if attr == "MAX":
            return str(f.maximum)
        if f.type == "time" and attr == "RAW":
            return str(self.values[key])
        if f.type == "bit_out":
            bit = sorted(k for k in self.values if self.resolve(k)[2].type == "bit_out").index(key)
            return f"PCAP.BITS{bit // 32}" if attr == "CAPTURE_WORD" else str(bit % 32)
        if f.type == "pos_out" and attr == "SCALED":
            scale, offset = float(self.attrs[key + ".SCALE"]), float(self.attrs[key + ".OFFSET"])
            return _fmt(self.values[key] * scale + offset)
        if f.type == "table":
            words = self.values[key]
            if attr == "FIELDS":
                return [f"{c.hi}:{c.lo} {c.name} {c.subtype}" for c in f.columns]
            if attr == "B":
                data = struct.pack(f"<{len(words)}I", *words)
                return [base64.b64encode(data).decode()] if data else []
            return str({"MAX_LENGTH": f.max_length, "LENGTH": len(words),
                        "ROW_WORDS": f.row_words}[attr])
        return self.attrs[f"{key}.{attr}"]

    def put(self, name: str, text: str) -> None:
        block, n, f, attr = self.resolve(name)
        key = f"{block.name}{n}.{f.name}"
        if attr is not None:
            self.put_attr(key, f, attr, text)
        elif f.type in ("read", "bit_out", "pos_out", "table"):
            raise DeviceError("Field not writeable")
        else:
            self._set(key, self.parse(key, f, text))

    def parse(self, key: str, f: Field, text: str) -> Any:
        if f.type == "time":
            seconds = _float(text) * TIME_UNITS[self.attrs[key + ".UNITS"]]
            ticks = round(seconds * CLOCK_HZ)
            if not 0 <= ticks <= MAX_TICKS:
                raise DeviceError("Number out of range")
            return ticks
        if f.subtype == "bit":
            if text not in ("0", "1"):
                raise DeviceError("Invalid bit value")
            return int(text)
        if f.subtype == "enum":
            if text not in f.labels:
                raise DeviceError("Invalid enumeration value")
            return text
        if f.subtype == "uint":
            return _int(text, 0, f.maximum if f.maximum is not None else 2**32 - 1)
        if f.subtype == "int":
            return _int(text, *INT32)
        raise DeviceError("Field not writeable")

    def put_attr(self, key: str, f: Field, attr: str, text: str) -> None:
        if f.type == "time" and attr == "UNITS":
            if text not in TIME_UNITS:
                raise DeviceError("Invalid enumeration value")
            if self.attrs[key + ".UNITS"] != text:
                self.attrs[key + ".UNITS"] = text
                self._mark(key + ".UNITS")
                self._mark(key)             # the value now reads in other units
        elif f.type == "time" and attr == "RAW":
            self._set(key, _int(text, 0, MAX_TICKS))
        elif f.type == "pos_out" and attr in ("CAPTURE", "UNITS", "SCALE", "OFFSET"):
            if attr == "CAPTURE" and text not in CAPTURE_LABELS:
                raise DeviceError("Invalid enumeration value")
            if attr in ("SCALE", "OFFSET"):
                _float(text)
            if self.attrs[f"{key}.{attr}"] != text:
                self.attrs[f"{key}.{attr}"] = text
                self._mark(f"{key}.{attr}")
        else:
            raise DeviceError("Attribute not writeable")

    def put_table(self, name: str, words: list[int]) -> None:
        block, n, f, attr = self.resolve(name)
        if f.type != "table" or attr is not None:
            raise DeviceError("Not a table field")
        if len(words) > f.max_length:
            raise DeviceError("Table too long")
        if len(words) % f.row_words:
            raise DeviceError("Table length is not a whole number of rows")
        for row in range(0, len(words), f.row_words):
            bits = sum(w << (32 * i) for i, w in enumerate(words[row:row + f.row_words]))
            for c in f.columns:
                c.check((bits >> c.lo) & ((1 << (c.hi - c.lo + 1)) - 1))
        key = f"{block.name}{n}.{f.name}"
        self.values[key] = list(words)
        self._mark(key)         # a table write always reports as a change

    # ---- *BLOCKS, *DESC, *ENUMS, *CHANGES -------------------------------

    def star(self, query: str) -> str | list[str]:
        """``*IDN``, ``*BLOCKS``, ``*DESC.x``, ``*ENUMS.x`` (the ``?`` removed)."""
        if query == "*IDN":
            return "PandA SW: 4.0-sim FPGA: 0.0.0 00000000 00000000 rootfs: pythonIOC-sim"
        if query == "*BLOCKS":
            return [f"{b.name} {b.count}" for b in self.blocks.values()]
        what, _, target = query.partition(".")
        if what in ("*DESC", "*ENUMS") and target:
            return self._desc_or_enums(what, target)
        raise DeviceError("Unknown command")

    def _desc_or_enums(self, what: str, target: str) -> str | list[str]:
        parts = target.split(".")
        block = self.blocks.get(parts[0].rstrip("0123456789"))
        if block is None:
            raise DeviceError("No such block")
        if len(parts) == 1:
            if what == "*DESC":
                return block.desc
            raise DeviceError("No such field")
        table_field = parts[1].endswith("[]")
        f = block.field(parts[1][:-2] if table_field else parts[1])
        if table_field and len(parts) == 3 and f.type == "table":
            column = next((c for c in f.columns if c.name == parts[2]), None)
            if column is None:
                raise DeviceError("No such table field")
            if what == "*DESC":
                return column.desc
            if column.subtype == "enum":
                return column.labels
            raise DeviceError("Field has no enumeration")
        if len(parts) == 2:
            if what == "*DESC":
                return f.desc
            if f.subtype == "enum":
                return f.labels
        elif len(parts) == 3 and what == "*ENUMS":
            if f.type == "time" and parts[2] == "UNITS":
                return list(TIME_UNITS)
            if f.type == "pos_out" and parts[2] == "CAPTURE":
                return CAPTURE_LABELS
        raise DeviceError("Field has no enumeration")

    def changes(self, seen: dict[str, int], groups: list[str]) -> list[str]:
        """Lines for ``*CHANGES?``: what changed since this connection last asked."""
        lines = []
        for key, index in sorted(self.changed.items(), key=lambda kv: kv[1]):
            parts = key.split(".")
            f = self.resolve(key)[2]
            group = "ATTR" if len(parts) == 3 else f.group
            if group not in groups or index <= seen.get(group, 0):
                continue
            if f.type == "table" and len(parts) == 2:
                lines.append(f"{key}<")
            else:
                lines.append(f"{key}={self.get(key)}")
        for group in groups:
            seen[group] = self.change_index
        return lines

    # ---- the simulation ------------------------------------------------

    def step(self) -> None:
        """Advance the simulation by one tick."""
        if self.values["COUNTER1.ENABLE"]:
            low, high = self.values["COUNTER1.MIN"], self.values["COUNTER1.MAX"]
            out = self.values["COUNTER1.OUT"] + self.values["COUNTER1.STEP"]
            if out > high or out < low:
                out = low if out > high else high
                self._set("COUNTER1.CARRY", 1 - self.values["COUNTER1.CARRY"])
            self._set("COUNTER1.OUT", out)
        if self.values["PULSE1.ENABLE"]:
            self._set("PULSE1.OUT", 1 - self.values["PULSE1.OUT"])
        rows = len(self.values["SEQ1.TABLE"]) // self.blocks["SEQ"].field("TABLE").row_words
        if self.values["SEQ1.ENABLE"] and rows:
            self._set("SEQ1.STATE", "PHASE1")
            self._set("SEQ1.TABLE_LINE", self.values["SEQ1.TABLE_LINE"] % rows + 1)
        else:
            self._set("SEQ1.STATE", "WAIT_ENABLE")
            self._set("SEQ1.TABLE_LINE", 0)


GROUPS = ["CONFIG", "BITS", "POSN", "READ", "ATTR", "TABLE", "METADATA"]


class Connection:
    """One client of the control port: its own *CHANGES bookkeeping."""

    def __init__(self, panda: Panda) -> None:
        self.panda = panda
        self.seen: dict[str, int] = {}
        self.table: tuple[str, list[int], str | None] | None = None   # (field, words, error)

    def handle(self, line: str) -> list[str] | None:
        """The response lines to one request line (None: more lines needed)."""
        if self.table is not None:
            return self._table_line(line)
        try:
            return self._handle(line)
        except DeviceError as e:
            return [f"ERR {e}"]

    def _handle(self, line: str) -> list[str] | None:
        query, assign, table = line.find("?"), line.find("="), line.find("<")
        if table >= 0 and (query < 0 or table < query) and (assign < 0 or table < assign):
            name, mode = line[:table], line[table:]
            if mode != "<":
                self.table = (name, [], "Only '<' table writes are simulated")
            else:
                self.table = (name, [], None)
            return None
        if line.endswith("?"):
            return self._reply(self._query(line[:-1]))
        if assign >= 0:
            name, value = line[:assign], line[assign + 1:]
            if name.startswith("*CHANGES"):
                group = name[len("*CHANGES"):].lstrip(".")
                for g in [group] if group else GROUPS:
                    self.seen[g] = 0           # report everything next time
            elif name.startswith("*"):
                raise DeviceError("Unknown command")
            else:
                self.panda.put(name, value)
            return ["OK"]
        raise DeviceError("Unknown command")

    def _query(self, name: str) -> str | list[str]:
        if name.startswith("*CHANGES"):
            group = name[len("*CHANGES"):].lstrip(".")
            if group and group not in GROUPS:
                raise DeviceError("Unknown change group")
            return self.panda.changes(self.seen, [group] if group else GROUPS)
        if name.startswith("*"):
            return self.panda.star(name)
        if name.endswith(".*"):
            target = name[:-2]
            if "." in target:
                return self.panda.resolve(target)[2].attributes
            block = self.panda.blocks.get(target.rstrip("0123456789"))
            if block is None:
                raise DeviceError("No such block")
            return [f"{f.name} {i} {f.info}" for i, f in enumerate(block.fields)]
        return self.panda.get(name)

    @staticmethod
    def _reply(value: str | list[str]) -> list[str]:
        if isinstance(value, list):
            return [f"!{v}" for v in value] + ["."]
        return [f"OK ={value}"]

    def _table_line(self, line: str) -> list[str] | None:
        assert self.table is not None
        name, words, error = self.table
        if line.strip():
            if error is None:
                try:
                    words.extend(_int(w, 0, 2**32 - 1) for w in line.split())
                except DeviceError as e:
                    self.table = (name, words, str(e))
            return None
        self.table = None
        if error is not None:
            return [f"ERR {error}"]
        try:
            self.panda.put_table(name, words)
        except DeviceError as e:
            return [f"ERR {e}"]
        return ["OK"]


async def serve(port: int, exit_after: float | None = None) -> None:
    panda = Panda()

    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connection = Connection(panda)
        try:
            while line := await reader.readline():
                response = connection.handle(line.decode(errors="replace").rstrip("\r\n"))
                if response is not None:
                    writer.write("".join(r + "\n" for r in response).encode())
                    await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def simulate() -> None:
        while True:
            await asyncio.sleep(TICK)
            panda.step()

    server = await asyncio.start_server(client, "127.0.0.1", port)
    print(f"listening on 127.0.0.1:{server.sockets[0].getsockname()[1]}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if exit_after is not None:
        loop.call_later(exit_after, stop.set)
    ticker = asyncio.create_task(simulate())
    async with server:
        await stop.wait()
    ticker.cancel()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("port", type=int, help="TCP port on 127.0.0.1 (0: pick a free one)")
    parser.add_argument("--exit-after", type=float, metavar="SECONDS",
                        help="stop by itself after this long")
    args = parser.parse_args(argv)
    asyncio.run(serve(args.port, args.exit_after))


if __name__ == "__main__":
    main()
