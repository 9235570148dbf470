import os

from softioc import builder, softioc

builder.SetDeviceName("CALC")
a = builder.aOut("A", 1.0)
b = builder.aOut("B", 2.0)

# A calc record made from Python: SUM = A + B, recomputed whenever A or B
# changes (CP: "channel process" input links).
total = builder.records.calc("SUM", CALC="A+B", INPA=builder.CP(a), INPB=builder.CP(b))


# Tell Python when the sum goes above 10: a calcout record writes each change
# of its result into a builder output record, whose on_update runs.
def report(high):
    print("sum above 10" if high else "sum back to 10 or less", flush=True)


high = builder.boolOut("HIGH", 0, ZNAM="No", ONAM="Yes", on_update=report)
builder.records.calcout("CHECK", CALC="A>10", INPA=builder.CP(total),
                        OUT=builder.PP(high), OOPT="On Change")
builder.UnsetDevice()

# Records from an ordinary .db file, with macros, beside the builder records.
here = os.path.dirname(os.path.abspath(__file__))
softioc.dbLoadDatabase("average.db", here, "P=CALC:,IN1=CALC:A,IN2=CALC:B")

builder.LoadDatabase()
softioc.iocInit()
softioc.interactive_ioc(globals())
