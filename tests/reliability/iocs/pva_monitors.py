"""PV Access monitor clients for the load test (not an IOC).

``pva_monitors.py FIRST COUNT PER N TIMEOUT``: COUNT p4p contexts (each its
own TCP connection to the IOC), context c (FIRST <= c < FIRST+COUNT)
monitoring PER of the records LOAD:0..N-1, starting at LOAD:(c*PER % N).
Prints ``CONNECTED`` once every monitor has a value, then ``FINALS OK`` and
exits 0 once every monitor's latest value is its final one (900000 + i);
prints what is missing and exits 1 if TIMEOUT seconds pass first.
"""

import os
import sys
import time

from p4p.client.thread import Context

FINAL = 900000
first, count, per, n = (int(a) for a in sys.argv[1:5])
timeout = float(sys.argv[5])
conf = {k: v for k, v in os.environ.items() if k.startswith("EPICS_PVA")}
last = {}


def keeper(key):
    def update(value):
        if not isinstance(value, Exception):
            last[key] = value["value"]
    return update


contexts, subscriptions, wanted = [], [], {}
for c in range(first, first + count):
    ctx = Context("pva", conf=conf, useenv=False, nt=False)
    contexts.append(ctx)
    for j in range(per):
        i = (c * per + j) % n
        key = (c, i)
        wanted[key] = FINAL + i
        subscriptions.append(ctx.monitor(f"LOAD:{i}", keeper(key)))

# p4p 4.3's thread client drops a subscription's first wake-up if it comes
# before monitor() has returned ("Lost Subscription update"), and the
# subscription then never wakes again: look at every queue once now.
for s in subscriptions:
    s._Q.push(s._handle)

deadline = time.monotonic() + timeout
reported = time.monotonic()
while len(last) < len(wanted) and time.monotonic() < deadline:
    time.sleep(0.1)
    if time.monotonic() - reported > 10:
        print("connecting", len(last), "of", len(wanted), flush=True)
        reported = time.monotonic()
print("CONNECTED", len(last), "of", len(wanted), flush=True)
while time.monotonic() < deadline:
    missing = [k for k, v in wanted.items() if last.get(k) != v]
    if not missing:
        break
    time.sleep(0.2)
missing = [k for k, v in wanted.items() if last.get(k) != v]
for s in subscriptions:
    s.close()
for ctx in contexts:
    ctx.close()
if missing:
    print("FINALS MISSING", len(missing), "e.g.", [(k, last.get(k)) for k in missing[:5]],
          flush=True)
    sys.exit(1)
print("FINALS OK", len(wanted), flush=True)
