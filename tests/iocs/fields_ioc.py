"""Field-change callbacks and SCAN changes by clients."""

from softioc import builder, softioc

seen = builder.longStringIn("FLD:SEEN", "", length=2000)
log = []


def note(field, value):
    log.append(f"{field}={value}")
    seen.set(";".join(log))


sp = builder.aOut("FLD:SP", 1.0, EGU="mA", on_field_change={"EGU": note, "HIHI": note})
anyf = builder.longOut("FLD:ANY", 0, on_field_change={"*": note})
ai = builder.aIn("FLD:AI", 0.0, DISP=0)     # clients change its SCAN: allow their puts
builder.LoadDatabase()
softioc.iocInit()
softioc.interactive_ioc(globals())
