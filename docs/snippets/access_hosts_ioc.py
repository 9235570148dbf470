from softioc import access, builder, softioc

# Know Channel Access clients by their IP address, as PV Access always does.
access.check_client_ip()

access.load_acf("""
# The control room's consoles, by IP address.
HAG(consoles) { 198.51.100.20, 198.51.100.21 }
UAG(operators) { alice, bob }

ASG(DEFAULT) {
    RULE(1, READ)
    RULE(1, WRITE, TRAPWRITE)
}

# Anyone may read; only clients on a console may write.
ASG(CONSOLES) {
    RULE(1, READ)
    RULE(1, WRITE, TRAPWRITE) { HAG(consoles) }
}

# Only an operator, on a console, may write.
ASG(CONSOLE_OPERATORS) {
    RULE(1, READ)
    RULE(1, WRITE, TRAPWRITE) { UAG(operators) HAG(consoles) }
}
""")

builder.SetDeviceName("RF")
builder.aOut("PHASE", 0.0, ASG="CONSOLES",
             on_update=lambda value: print(f"phase set to {value}", flush=True))
builder.aOut("VOLTAGE", 1.0, ASG="CONSOLE_OPERATORS")

builder.LoadDatabase()
softioc.iocInit()
softioc.interactive_ioc(globals())
