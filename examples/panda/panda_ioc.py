"""An IOC for a PandA, made from what the box says it has.

At start the IOC asks the PandA (over its TCP control port, with the
``pandablocks`` client library) for its blocks, their fields, the type of each
field and its current value, and makes one record per field:

=========================  ==============================================
PandA field                record
=========================  ==============================================
``time``, ``scalar``       ``aOut`` (EGU from the field's units)
``uint``, ``int``          ``longOut`` (``uint``: HOPR from its MAX)
``enum``                   ``mbbOut`` with the PandA's labels
``bit``                    ``boolOut``
``read ...``, ``bit_out``, the matching In record (``aIn``, ``longIn``,
``pos_out``                ``mbbIn``, ``boolIn``)
``table``                  one ``WaveformOut`` per column, and an NTTable
                           over them (PV Access)
=========================  ==============================================

named ``PREFIX:BLOCKn:FIELD`` (``PANDA:PULSE1:DELAY``, ``PANDA:SEQ1:TABLE``).

Keeping both sides in step:

* PandA -> PVs: a coroutine on the asyncio dispatcher's loop asks
  ``*CHANGES?`` ten times a second and sets the records that changed.
* PVs -> PandA, fields: each writable record has a ``validate`` callback
  that sends the put to the PandA and waits for its answer (2 s at most).  A
  value the PandA refuses (out of range, unknown label) is refused to the
  client as well -- ``caput`` reports an error and the PV keeps its value --
  instead of the PV showing a value the device never took.  validate runs in
  the EPICS server thread with the record locked, so it uses a connection of
  its own (blocking, not the asyncio loop's): the polling loop may be waiting
  for that very record's lock meanwhile.
* PVs -> PandA, tables: a table arrives as one write per column (an NTTable
  put writes them in order), so each column's ``on_update`` restarts a short
  timer and the whole table is written when the columns have settled.  The
  columns' ``validate`` refuses values the table cannot hold (an unknown
  TRIGGER label, a number out of the column's bit range).

Run::

    python panda_ioc.py --host 127.0.0.1 --port 8888 --prefix PANDA --screen panda.bob

``--screen`` also writes a Phoebus screen (.bob) of every PV, made with
``pvi`` from the same introspection.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pandablocks.commands import (
    ChangeGroup,
    Command,
    CommandError,
    GetBlockInfo,
    GetChanges,
    GetFieldInfo,
    Identify,
    Put,
    T,
)
from pandablocks.connections import ControlConnection
from pandablocks.responses import (
    Changes,
    EnumFieldInfo,
    FieldInfo,
    ScalarFieldInfo,
    TableFieldInfo,
    UintFieldInfo,
)
from pandablocks.utils import table_to_words, words_to_table

from softioc import alarm, builder, pva, screen, softioc
from softioc.asyncio_dispatcher import AsyncioDispatcher

log = logging.getLogger("panda_ioc")

TIMEOUT = 2.0           # seconds to wait for any answer from the PandA


# ---- talking to the PandA ---------------------------------------------------
#
# pandablocks' ready-made clients always connect to port 8888; its sans-IO
# ControlConnection does all of the protocol, so here are two small transports
# for it that take any port: a blocking one (for validate, which runs in EPICS
# server threads) and an asyncio one (for polling, on the dispatcher's loop).

_NOTHING = object()


def _reply(connection: ControlConnection) -> Any:
    """The response to the command in flight, or _NOTHING while incomplete."""
    for _, response in connection.responses():
        if isinstance(response, Exception):
            raise response          # CommandError: the PandA answered ERR
        return response
    return _NOTHING


class PandaClient:
    """A blocking connection to the PandA's control port, safe for any thread."""

    def __init__(self, host: str, port: int) -> None:
        self.address = (host, port)
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._connection = ControlConnection()

    def send(self, command: Command[T]) -> T:
        """Send a command and wait (TIMEOUT at most) for its response.  Raises
        CommandError if the PandA refused it, OSError if the link failed."""
        with self._lock:
            try:
                if self._sock is None:
                    self._sock = socket.create_connection(self.address, timeout=TIMEOUT)
                    self._connection = ControlConnection()
                    idn = self._exchange(Identify())
                    self._connection.set_api(idn.software_api())
                return self._exchange(command)
            except OSError:
                self.close()        # a half-finished exchange: start afresh next time
                raise

    def _exchange(self, command: Command[T]) -> T:
        assert self._sock is not None
        self._sock.sendall(self._connection.send(command))
        while (response := _reply(self._connection)) is _NOTHING:
            data = self._sock.recv(65536)
            if not data:
                raise ConnectionError("the PandA closed the connection")
            self._sock.sendall(self._connection.receive_bytes(data))
        return response

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


class AsyncPandaClient:
    """The same over asyncio streams, for coroutines on one event loop."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._writer: asyncio.StreamWriter | None = None
        self._lock = asyncio.Lock()

    async def send(self, command: Command[T]) -> T:
        async with self._lock:
            try:
                if self._writer is None:
                    await asyncio.wait_for(self._connect(), TIMEOUT)
                return await asyncio.wait_for(self._exchange(command), TIMEOUT)
            except (OSError, asyncio.TimeoutError):
                await self.close()
                raise

    async def _exchange(self, command: Command[T]) -> T:
        assert self._writer is not None
        self._writer.write(self._connection.send(command))
        while (response := _reply(self._connection)) is _NOTHING:
            data = await self._reader.read(65536)
            if not data:
                raise ConnectionError("the PandA closed the connection")
            self._writer.write(self._connection.receive_bytes(data))
        return response

    async def _connect(self) -> None:
        self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        self._connection = ControlConnection()
        self._connection.set_api((await self._exchange(Identify())).software_api())

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def refusal(error: CommandError) -> str:
    """The PandA's ``ERR ...`` answer inside a CommandError."""
    return str(error).rsplit(" -> ", 1)[-1].strip("'")


# ---- one PV per field ------------------------------------------------------

@dataclass
class Param:
    """A scalar field and its record, and how values convert between them."""

    key: str                                    # PandA name, "PULSE1.DELAY"
    record: Any
    to_device: Callable[[Any], str]
    from_device: Callable[[str], Any]

    def show(self, text: str) -> None:
        """Show a value the PandA reported."""
        try:
            value = self.from_device(text)
        except ValueError:
            log.error("%s: cannot show PandA value %r", self.key, text)
            self.record.set_alarm(alarm.INVALID_ALARM, alarm.READ_ALARM)
            return
        self.record.set(value)

    def validate(self, record: Any, value: Any) -> bool:
        """Write a client's put to the PandA; refuse it if the PandA does."""
        try:
            client.send(Put(self.key, self.to_device(value)))
        except CommandError as e:
            log.warning("%s=%s refused by the PandA: %s", self.key, value, refusal(e))
            return False
        except OSError as e:
            log.error("%s=%s not written, PandA unreachable: %s", self.key, value, e)
            return False
        return True


def _number(value: Any) -> str:
    return format(float(value), ".12g")


def _integer(value: Any) -> str:
    return str(int(value))


class Table:
    """A table field: one waveform per column, an NTTable over them."""

    def __init__(self, key: str, pv: str, info: TableFieldInfo, words: list[str]) -> None:
        self.key, self.pv, self.info = key, pv, info
        self.words = list(words)        # what the PandA has now
        self.rows = info.max_length // info.row_words
        self._timer: asyncio.TimerHandle | None = None
        self._commit: asyncio.Task[None] | None = None
        values = words_to_table(words, info, convert_enum_indices=True)
        self.columns: dict[str, Any] = {}
        for name, column in info.fields.items():
            ftvl = self._ftvl(column.subtype, column.bit_high - column.bit_low + 1)
            self.columns[name] = builder.WaveformOut(
                f"{pv}:{name}", list(values[name]), FTVL=ftvl, NELM=self.rows,
                DESC=(column.description or name)[:40],
                on_update=self.on_column_update,
                validate=self._column_validator(name))
        pva.NTTable(pv, self.columns, labels=list(self.columns))

    @staticmethod
    def _ftvl(subtype: str, bits: int) -> str:
        if subtype == "enum":
            return "STRING"             # the labels, as the PandA names them
        if subtype == "int":
            return "LONG"
        return "UCHAR" if bits <= 8 else "USHORT" if bits <= 16 else "ULONG"

    def _column_validator(self, name: str) -> Callable[[Any, Any], bool]:
        column = self.info.fields[name]
        bits = column.bit_high - column.bit_low + 1

        def validate(record: Any, value: Any) -> bool:
            if column.subtype == "enum":
                bad = [v for v in value if v not in (column.labels or [])]
            elif column.subtype == "int":
                bad = [v for v in value if not -(2 ** (bits - 1)) <= v < 2 ** (bits - 1)]
            else:
                bad = [v for v in value if not 0 <= v < 2**bits]
            if bad:
                log.warning("%s:%s: %s do not fit the column", self.pv, name, bad[:5])
            return not bad

        return validate

    def show(self, words: list[str]) -> None:
        """Show the table the PandA has; the last column posts the NTTable."""
        self.words = list(words)
        values = words_to_table(words, self.info, convert_enum_indices=True)
        for name, record in self.columns.items():
            record.set(values[name])

    def on_column_update(self, value: Any) -> None:
        # One column changed (runs on the dispatcher's loop).  More columns of
        # the same table put follow: write when none has come for 50 ms.
        if self._timer is not None:
            self._timer.cancel()
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(0.05, self._start_commit)

    def _start_commit(self) -> None:
        self._timer = None
        self._commit = asyncio.get_running_loop().create_task(self.commit())

    async def commit(self) -> None:
        """Write the columns to the PandA as one table."""
        columns = {name: record.get() for name, record in self.columns.items()}
        try:
            words = table_to_words(columns, self.info)
        except (AssertionError, ValueError) as e:
            log.error("%s: columns do not make a table (%s): showing the PandA's", self.pv, e)
            self.show(self.words)
            return
        if words == self.words:
            return                      # the PandA's own table, shown by show()
        try:
            await poller.send(Put(self.key, words))
        except (CommandError, OSError, asyncio.TimeoutError) as e:
            why = refusal(e) if isinstance(e, CommandError) else e
            log.error("%s: table not written (%s): showing the PandA's", self.key, why)
            self.show(self.words)
            return
        self.words = words


# ---- introspection and records ---------------------------------------------

def introspect() -> tuple[dict[str, int], dict[str, dict[str, FieldInfo]], Changes]:
    """Blocks (name -> instances), their fields, and every current value."""
    blocks = {name: info.number for name, info in client.send(GetBlockInfo()).items()}
    fields = {name: client.send(GetFieldInfo(name)) for name in blocks}
    # The first *CHANGES on a connection reports every value.
    values = client.send(GetChanges(ChangeGroup.ALL, get_multiline=True))
    return blocks, fields, values


# What each field became: for write_screen().
@dataclass
class Made:
    block: str
    field: str
    pv: str
    kind: str               # number, enum, bit, table
    writable: bool
    info: FieldInfo


def make_records(prefix: str, blocks: dict[str, int], fields: dict[str, dict[str, FieldInfo]],
                 changes: Changes) -> tuple[dict[str, Param], dict[str, Table], list[Made]]:
    values = changes.values
    params: dict[str, Param] = {}
    tables: dict[str, Table] = {}
    made: list[Made] = []
    for block, count in blocks.items():
        for n in range(1, count + 1):
            for name, info in fields[block].items():
                key = f"{block}{n}.{name}"
                pv = f"{prefix}:{block}{n}:{name}"
                desc = (info.description or name)[:40]
                if info.type == "table":
                    assert isinstance(info, TableFieldInfo)
                    words = changes.multiline_values.get(key, [])
                    tables[key] = Table(key, pv, info, words)
                    made.append(Made(f"{block}{n}", name, pv, "table", True, info))
                    continue
                param = _make_param(key, pv, info, values.get(key), values, desc)
                if param is None:
                    log.info("%s: %s fields are not served by this example", key, info.type)
                    continue
                params[key] = param
                made.append(Made(f"{block}{n}", name, pv, param_kind(info),
                                 param.record.is_output, info))
            if count == 1:      # the PandA may name a lone block without its number
                for name in fields[block]:
                    if f"{block}1.{name}" in params:
                        params[f"{block}.{name}"] = params[f"{block}1.{name}"]
                    if f"{block}1.{name}" in tables:
                        tables[f"{block}.{name}"] = tables[f"{block}1.{name}"]
    return params, tables, made


def param_kind(info: FieldInfo) -> str:
    if info.type == "bit_out" or info.subtype == "bit":
        return "bit"
    if info.subtype == "enum":
        return "enum"
    return "number"


def _make_param(key: str, pv: str, info: FieldInfo, text: str | None,
                values: dict[str, str], desc: str) -> Param | None:
    writable = info.type in ("param", "time")
    readonly = info.type in ("read", "bit_out", "pos_out")
    if not (writable or readonly):
        return None
    kind = param_kind(info)
    extra: dict[str, Any] = {"DESC": desc}
    make: Callable[..., Any]
    to_device: Callable[[Any], str]
    from_device: Callable[[str], Any]
    if kind == "bit":
        make = builder.boolOut if writable else builder.boolIn
        extra.update(ZNAM="0", ONAM="1")
        to_device, from_device = _integer, int
    elif kind == "enum":
        assert isinstance(info, EnumFieldInfo)
        labels = info.labels

        def make_mbb(name: str, initial: Any, **fields: Any) -> Any:
            mbb = builder.mbbOut if writable else builder.mbbIn
            return mbb(name, *[label[:25] for label in labels], initial_value=initial, **fields)

        def label_of(index: Any) -> str:
            return str(labels[int(index)])

        make, to_device = make_mbb, label_of

        from_device = labels.index
    elif info.type == "time" or info.subtype == "scalar":
        make = builder.aOut if writable else builder.aIn
        units = values.get(f"{key}.UNITS")
        if isinstance(info, ScalarFieldInfo):
            units = info.units
        extra.update(EGU=(units or "")[:15], PREC=6)
        to_device, from_device = _number, float
    elif info.subtype in ("uint", "int") or info.type == "pos_out":
        make = builder.longOut if writable else builder.longIn
        if isinstance(info, UintFieldInfo):
            if info.max_val >= 2**31:
                make = builder.int64Out if writable else builder.int64In
            extra.update(LOPR=0, HOPR=info.max_val)
        if info.type == "pos_out":
            extra.update(EGU=values.get(f"{key}.UNITS", "")[:15])
        to_device, from_device = _integer, int
    else:
        return None
    initial = from_device(text) if text is not None else None
    param = Param(key, None, to_device, from_device)
    if writable:
        extra["validate"] = param.validate
    param.record = make(pv, initial, **extra)
    return param


# ---- PandA -> PVs ------------------------------------------------------------

async def poll(params: dict[str, Param], tables: dict[str, Table], connected: Any,
               period: float) -> None:
    """Show what changed on the PandA, every ``period`` seconds, for ever."""
    while True:
        try:
            changes = await poller.send(GetChanges(ChangeGroup.ALL, get_multiline=True))
        except (OSError, asyncio.TimeoutError, CommandError) as e:
            if connected.get():
                log.error("lost the PandA: %s", e)
                connected.set(0, severity=alarm.MAJOR_ALARM, alarm=alarm.COMM_ALARM)
                records = [p.record for p in params.values()]
                records += [r for t in tables.values() for r in t.columns.values()]
                for record in records:
                    record.set_alarm(alarm.INVALID_ALARM, alarm.COMM_ALARM)
            await asyncio.sleep(1.0)
            continue
        found = not connected.get()
        if found:
            log.info("connected to the PandA")
            connected.set(1)
        # (a new connection's first *CHANGES reports every value: all are set,
        # which also clears the alarms of a lost connection)
        apply(changes, params, tables, every_table=found)
        await asyncio.sleep(period)


def apply(changes: Changes, params: dict[str, Param], tables: dict[str, Table],
          every_table: bool = False) -> None:
    for key, text in changes.values.items():
        if key in params:
            params[key].show(text)
        elif key.endswith(".UNITS") and key[:-6] in params:
            params[key[:-6]].record.set_field("EGU", text[:15])
    for key, words in changes.multiline_values.items():
        table = tables.get(key)
        if table is not None and (every_table or words != table.words):
            table.show(words)
    for key in changes.in_error:
        if key in params:
            params[key].record.set_alarm(alarm.INVALID_ALARM, alarm.READ_ALARM)


# ---- the operator screen -----------------------------------------------------

def write_screen(path: Path, prefix: str, made: list[Made]) -> None:
    """A Phoebus .bob with a group per block, made by pvi."""
    try:
        from pvi.device import (
            LED,
            CheckBox,
            ComboBox,
            SignalR,
            SignalRW,
            TableWrite,
            TextRead,
            TextWrite,
        )
    except ImportError:
        raise SystemExit("--screen needs pvi: pip install pvi") from None

    groups: dict[str, list[Any]] = {}
    for m in made:
        name, label, desc = screen.widget_name(m.field), m.field, m.info.description
        if m.kind == "table":
            assert isinstance(m.info, TableFieldInfo)
            widgets = [ComboBox(choices=c.labels) if c.subtype == "enum" else TextWrite()
                       for c in m.info.fields.values()]
            signal: Any = SignalRW(name=name, label=label, description=desc, write_pv=m.pv,
                                   write_widget=TableWrite(widgets=widgets))
        elif m.writable:
            widget = {"bit": CheckBox, "enum": ComboBox}.get(m.kind, TextWrite)()
            signal = SignalRW(name=name, label=label, description=desc, write_pv=m.pv,
                              write_widget=widget)
        else:
            widget = LED() if m.kind == "bit" else TextRead()
            signal = SignalR(name=name, label=label, description=desc, read_pv=m.pv,
                             read_widget=widget)
        groups.setdefault(m.block, []).append(signal)
    screen.write_groups(path, prefix, groups)


# ---- main --------------------------------------------------------------------

client: PandaClient         # validate's connection (and introspection's)
poller: AsyncPandaClient    # the polling loop's connection (and table writes)


def main(argv: list[str] | None = None) -> None:
    global client, poller
    parser = argparse.ArgumentParser(description="An IOC for a PandA (or sim_server.py)")
    parser.add_argument("--host", default="127.0.0.1", help="the PandA's address")
    parser.add_argument("--port", type=int, default=8888, help="its control port")
    parser.add_argument("--prefix", default="PANDA", help="PV name prefix")
    parser.add_argument("--screen", type=Path, help="also write a Phoebus screen here (.bob)")
    parser.add_argument("--poll", type=float, default=0.1, help="seconds between *CHANGES?")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    dispatcher = AsyncioDispatcher()
    client = PandaClient(args.host, args.port)
    poller = AsyncPandaClient(args.host, args.port)

    blocks, fields, changes = introspect()
    params, tables, made = make_records(args.prefix, blocks, fields, changes)
    connected = builder.boolIn(f"{args.prefix}:CONNECTED", 1, ZNAM="Disconnected",
                               ONAM="Connected", ZSV="MAJOR")
    if args.screen:
        write_screen(args.screen, args.prefix, made)
        log.info("wrote %s", args.screen)

    builder.LoadDatabase()
    softioc.iocInit(dispatcher)
    asyncio.run_coroutine_threadsafe(poll(params, tables, connected, args.poll),
                                     dispatcher.loop)
    log.info("serving %d fields of the PandA at %s:%d", len(made), args.host, args.port)
    softioc.interactive_ioc(globals())


if __name__ == "__main__":
    main()
