"""aai/aao, waveforms of every numeric type and of strings, >16-state enums."""

import numpy as np

from softioc import builder, softioc

dtypes = ["int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64",
          "float32", "float64"]
waves = {d: builder.WaveformIn(f"T:WF:{d}", np.arange(3, dtype=d) + 1, length=8)
         for d in dtypes}
strings = builder.WaveformOut("T:STRS", ["alpha", "beta"], length=4,
                              on_update=lambda v: print("STRS got", v, flush=True))
aai = builder.aaIn("T:AAI", [1.5, 2.5], length=4)
aao = builder.aaOut("T:AAO", [3, 4], datatype="int32", length=4,
                    on_update=lambda v: print("AAO got", v.tolist(), flush=True))
states = [f"State{i}" for i in range(20)]
big_in = builder.mbbIn("T:BIG", *states, initial_value=17)
big_out = builder.mbbOut("T:BIGOUT", *states, initial_value=3,
                         on_update=lambda v: print("BIGOUT got", v, flush=True))
builder.LoadDatabase()
softioc.iocInit()
print("FIELDS", len(big_in.field_names), "VAL" in big_in.field_names, flush=True)
softioc.interactive_ioc(globals())
