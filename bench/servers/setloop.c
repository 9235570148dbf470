/* S1's limit: what set() does (lock, store VAL, process, unlock), in a C
 * loop inside the IOC process, with no Python.  Built and loaded by
 * softioc_server.py (ours only) with the compiler and the epicscorelibs
 * headers and libraries pythonIOC was built with. */
#include <dbAccess.h>
#include <dbLock.h>
#include <epicsTime.h>

long setloop(const char *name, double base, long max_sets, double seconds)
{
    DBADDR addr;
    epicsTimeStamp start, now;
    long n = 0;
    if (dbNameToAddr(name, &addr) || addr.field_type != DBF_DOUBLE)
        return -1;
    epicsTimeGetCurrent(&start);
    while (n < max_sets) {
        int i;
        for (i = 0; i < 500; i++) {
            n++;
            dbScanLock(addr.precord);
            *(epicsFloat64 *)addr.pfield = base + n;
            dbProcess(addr.precord);
            dbScanUnlock(addr.precord);
        }
        epicsTimeGetCurrent(&now);
        if (epicsTimeDiffInSeconds(&now, &start) > seconds)
            break;
    }
    return n;
}
