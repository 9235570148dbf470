"""1000 records set in bursts, from several threads at once (no queue to overflow).

On ``burst(threads, rounds)`` each record BURST:i is set ``rounds`` times, the
records shared between ``threads`` OS threads; the last value of record i is
``rounds * 10000 + i``.  BURST:DONE counts finished bursts.
"""

import threading

from softioc import builder, softioc

N = 1000
records = [builder.longIn(f"BURST:{i}", 0) for i in range(N)]
done = builder.longIn("BURST:DONE", 0)
builder.LoadDatabase()
softioc.iocInit()


def burst(threads=1, rounds=5):
    def work(part):
        for r in range(1, rounds + 1):
            for i in part:
                records[i].set(r * 10000 + i)

    parts = [range(t, N, threads) for t in range(threads)]
    workers = [threading.Thread(target=work, args=(p,)) for p in parts]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    done.set(done.get() + 1)


softioc.interactive_ioc(globals())
