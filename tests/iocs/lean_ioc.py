"""An IOC of builder records with the default dispatcher: which heavy modules
it imported by the time it serves (none of them), then an ``async def``
on_update, which brings asyncio in only when it first runs."""
import sys

from softioc import builder, softioc

HEAVY = ("asyncio", "ssl", "setuptools", "setuptools_dso", "epicscorelibs.path",
         "pvxslibs.path", "tempfile", "shutil", "epicsdbbuilder")


async def later(value):
    import asyncio

    await asyncio.sleep(0)
    print("ASYNC", value, "asyncio" in sys.modules, flush=True)


builder.SetDeviceName("LEAN")
ai = builder.aIn("AI", initial_value=1.0)
ao = builder.aOut("AO", initial_value=0.0, on_update=later)
builder.LoadDatabase()
softioc.iocInit()
print("IMPORTED", *[m for m in HEAVY if m in sys.modules] or ["nothing"], flush=True)
print("FIELDS", len(ai.field_names), "VAL" in ai.field_names, "INPA" in ai.field_names,
      flush=True)
softioc.interactive_ioc(globals())
