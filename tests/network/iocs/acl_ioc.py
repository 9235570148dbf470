"""An IOC with access rules by host and by user, for the network tests.

Usage: acl_ioc.py PREFIX ip|name USER [CONSOLE].  ``ip`` turns
access.check_client_ip() on.  PREFIX:BYHOST may be written only from CONSOLE
(default 198.51.100.20, host opi),
PREFIX:BYNAME only by a client whose host is called ``opi``, PREFIX:BYUSER only
by USER; PREFIX:OPEN by anyone.  Every write that reaches Python is printed
("written PREFIX:... = value").
"""

import sys

from softioc import access, builder, softioc

prefix, mode, user = sys.argv[1:4]
console = sys.argv[4] if len(sys.argv) > 4 else "198.51.100.20"
access.load_acf(f"""
HAG(consoles) {{ {console} }}
HAG(named) {{ opi }}
UAG(operators) {{ {user} }}
ASG(DEFAULT) {{ RULE(1, READ) RULE(1, WRITE, TRAPWRITE) }}
ASG(BYHOST) {{ RULE(1, READ) RULE(1, WRITE, TRAPWRITE) {{ HAG(consoles) }} }}
ASG(BYNAME) {{ RULE(1, READ) RULE(1, WRITE, TRAPWRITE) {{ HAG(named) }} }}
ASG(BYUSER) {{ RULE(1, READ) RULE(1, WRITE, TRAPWRITE) {{ UAG(operators) }} }}
""")
if mode == "ip":
    access.check_client_ip()
for name in ("BYHOST", "BYNAME", "BYUSER", "OPEN"):
    pv = f"{prefix}:{name}"
    builder.aOut(pv, 0.0, ASG="DEFAULT" if name == "OPEN" else name,
                 on_update=lambda value, pv=pv: print(f"written {pv} = {value}", flush=True))
builder.LoadDatabase()
softioc.iocInit()
print("IOC ready", flush=True)
softioc.non_interactive_ioc()
