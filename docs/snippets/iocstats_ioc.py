from softioc import access, builder, softioc

# Only the IOC's administrators may write the records of group IOCADMIN.
access.load_acf("""
UAG(admins) { alice }
ASG(DEFAULT) {
    RULE(1, READ)
    RULE(1, WRITE, TRAPWRITE)
}
ASG(IOCADMIN) {
    RULE(1, READ)
    RULE(1, WRITE, TRAPWRITE) { UAG(admins) }
}
""")

builder.SetDeviceName("BL01-IOC-01")
builder.aOut("SETPOINT", 1.0)
builder.LoadDatabase()

# devIocStats' records under the IOC's name (any time before iocInit).
# Writing 1 to SYSRESET restarts the IOC: allowed, for the admins only.
stats = softioc.devIocStats("BL01-IOC-01", allow_restart=True)
stats.records["SYSRESET"].ASG = "IOCADMIN"

softioc.iocInit()
softioc.interactive_ioc(globals())
