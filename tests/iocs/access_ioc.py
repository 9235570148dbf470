"""Access security: AS:LOCKED may only be written by user 'nobody-here';
AS:OPEN by anyone."""

from softioc import access, builder, softioc

access.load_acf("""
UAG(trusted) { nobody-here }
ASG(DEFAULT) {
    RULE(1, READ)
    RULE(1, WRITE, TRAPWRITE)
}
ASG(LOCKED) {
    RULE(1, READ)
    RULE(1, WRITE) { UAG(trusted) }
}
""")
locked = builder.aOut("AS:LOCKED", 1.0, ASG="LOCKED", on_update=print)
opened = builder.aOut("AS:OPEN", 1.0)
builder.LoadDatabase()
softioc.iocInit()
softioc.interactive_ioc(globals())
