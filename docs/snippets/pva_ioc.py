from softioc import builder, pva, softioc

builder.SetDeviceName("STAGE")
x = builder.aIn("X", 1.0, EGU="mm", PREC=3)
y = builder.aIn("Y", 2.0, EGU="mm", PREC=3)

# One more PV, STAGE:POSITION, with both values in one structure.  A change
# of X posts nothing, a change of Y the whole group: set X, then Y, and
# monitors get both values together, never a new X with an old Y.
pva.Group("POSITION", {
    "x": pva.Field(x, trigger=""),
    "y": pva.Field(y, trigger="*"),
})

# A table: waveform records as the columns of an NTTable, STAGE:POINTS.
# PV Access clients can write the whole table; each column's on_update runs.
xs = builder.WaveformOut("POINTS:X", [0.0, 1.0, 2.0], length=100,
                         on_update=lambda v: print("x column:", v.tolist(), flush=True))
ys = builder.WaveformOut("POINTS:Y", [0.0, 0.5, 1.0], length=100)
pva.NTTable("POINTS", {"x": xs, "y": ys}, labels=["X (mm)", "Y (mm)"])


def move(new_x, new_y):
    x.set(new_x)
    y.set(new_y)        # posts STAGE:POSITION


builder.LoadDatabase()
softioc.iocInit()
softioc.interactive_ioc(globals())
