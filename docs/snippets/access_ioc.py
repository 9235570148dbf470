from softioc import access, builder, softioc

access.load_acf("""
UAG(operators) { alice, bob }

# Everyone may read and write; TRAPWRITE lets on_field_change see writes.
ASG(DEFAULT) {
    RULE(1, READ)
    RULE(1, WRITE, TRAPWRITE)
}

# Everyone may read; only the operators may write.
ASG(OPERATORS) {
    RULE(1, READ)
    RULE(1, WRITE, TRAPWRITE) { UAG(operators) }
}

# Nobody may write over the network.
ASG(READONLY) {
    RULE(1, READ)
}
""")

builder.SetDeviceName("SAFE")
target = builder.aOut("TARGET", 1.0, ASG="OPERATORS")
serial = builder.stringOut("SERIAL", "SN-0042", ASG="READONLY")
heater = builder.aOut("HEATER", 0.0, DRVH=100)        # the DEFAULT group


def limit_changed(field, value):
    print(f"HEATER.{field} is now {value}", flush=True)


# Called after a client writes HEATER's DRVH field (needs TRAPWRITE).
heater.on_field_change("DRVH", limit_changed)

builder.LoadDatabase()
softioc.iocInit()
softioc.interactive_ioc(globals())
