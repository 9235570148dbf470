/* S10's client: M Channel Access subscriptions to each of N records, counting.
 *
 *   load_client PREFIX N M BASE FINAL PERIOD_S LIMIT_S
 *
 * Connects to PREFIX0 ... PREFIX<N-1>, makes M ca_create_subscription
 * (DBR_TIME_DOUBLE, DBE_VALUE | DBE_ALARM) on each, waits for every
 * subscription's first update (the record's value, BASE, before the load
 * starts) and prints "SUBSCRIBED".  The server then counts every record
 * BASE + 1, BASE + 2 ... FINAL, one step a period; every later update is
 * counted per subscription: received, lost (gaps in the counter), late.
 * Value v is due at T0 + (v - BASE - 1) periods, T0 the time stamp of the
 * first update (less its steps): an update received more than 2 periods
 * after it was due is late, whether the server's loop fell behind, its
 * processing was deferred or its sending queued.  The latency from each
 * update's own time stamp is reported apart.  Ends once every subscription
 * has seen FINAL, or LIMIT_S after SUBSCRIBED, and prints one line
 * "RESULT {json}".  Built at run time by the benchmark
 * (bench/s10.py) with the compiler and epicscorelibs' libca; everything runs
 * in this one thread (callbacks only inside ca_pend_event). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cadef.h>
#include <epicsTime.h>

#define BIN_S 20e-6          /* latency histogram: 20 us bins up to 2 s */
#define BINS 100000

typedef struct {
    double last;             /* last counter value seen */
    int started;             /* got the initial update */
} sub_t;

static sub_t *subs;
static long n_subs, started, done;
static double base_value, final_value, period_s;
static unsigned long long received, lost, late, backwards, bad_status;
static unsigned long long hist[BINS + 1], due_hist[BINS + 1];
static double lat_max, lat_sum, due_max;
static epicsTimeStamp t_first;        /* T0: when BASE + 1 was due */
static long exceptions;
static epicsTimeStamp first_rx, last_rx;
static int counting;

static void on_update(struct event_handler_args args)
{
    sub_t *sub = (sub_t *)args.usr;
    const struct dbr_time_double *v = (const struct dbr_time_double *)args.dbr;
    epicsTimeStamp now;
    double value, lat;
    long bin;

    if (args.status != ECA_NORMAL || !v) {
        bad_status++;
        return;
    }
    value = v->value;
    if (!sub->started) {
        sub->started = 1;
        sub->last = value;
        started++;
        if (value >= final_value)
            done++;
        return;
    }
    epicsTimeGetCurrent(&now);
    if (!counting) {
        first_rx = now;
        counting = 1;
        t_first = v->stamp;
        epicsTimeAddSeconds(&t_first, -(value - base_value - 1) * period_s);
    }
    last_rx = now;
    received++;
    if (value > sub->last + 1)
        lost += (unsigned long long)(value - sub->last - 1);
    else if (value <= sub->last)
        backwards++;
    if (value >= final_value && sub->last < final_value)
        done++;
    if (value > sub->last)
        sub->last = value;
    lat = epicsTimeDiffInSeconds(&now, &v->stamp);
    if (lat < 0)
        lat = 0;
    if (lat > lat_max)
        lat_max = lat;
    lat_sum += lat;
    bin = (long)(lat / BIN_S);
    hist[bin < BINS ? bin : BINS]++;
    lat = epicsTimeDiffInSeconds(&now, &t_first) - (value - base_value - 1) * period_s;
    if (lat < 0)
        lat = 0;
    if (lat > 2 * period_s)
        late++;
    if (lat > due_max)
        due_max = lat;
    bin = (long)(lat / BIN_S);
    due_hist[bin < BINS ? bin : BINS]++;
}

static void on_exception(struct exception_handler_args args)
{
    exceptions++;
    if (exceptions <= 5)
        fprintf(stderr, "CA exception: %s (%s)\n", ca_message(args.stat),
                args.ctx ? args.ctx : "");
}

static double percentile_ms(const unsigned long long *h, double max, double q)
{
    unsigned long long want, seen = 0;
    long i;
    if (!received)
        return -1;
    want = (unsigned long long)(q / 100.0 * (double)(received - 1)) + 1;
    for (i = 0; i <= BINS; i++) {
        seen += h[i];
        if (seen >= want)
            return i < BINS ? 1000.0 * (i + 0.5) * BIN_S : 1000.0 * max;
    }
    return 1000.0 * max;
}

int main(int argc, char **argv)
{
    const char *prefix;
    long n, m, i, j, missing = 0, tail = 0;
    double limit_s, waited = 0;
    chid *chans;
    char name[256];
    epicsTimeStamp t0, now;

    if (argc != 8) {
        fprintf(stderr, "usage: load_client PREFIX N M BASE FINAL PERIOD_S LIMIT_S\n");
        return 2;
    }
    prefix = argv[1];
    n = atol(argv[2]);
    m = atol(argv[3]);
    base_value = atof(argv[4]);
    final_value = atof(argv[5]);
    period_s = atof(argv[6]);
    limit_s = atof(argv[7]);
    n_subs = n * m;
    subs = calloc((size_t)n_subs, sizeof(sub_t));
    chans = calloc((size_t)n, sizeof(chid));
    if (!subs || !chans || n < 1 || m < 1)
        return 2;

    SEVCHK(ca_context_create(ca_disable_preemptive_callback), "ca_context_create");
    ca_add_exception_event(on_exception, NULL);
    for (i = 0; i < n; i++) {
        snprintf(name, sizeof name, "%s%ld", prefix, i);
        SEVCHK(ca_create_channel(name, NULL, NULL, CA_PRIORITY_DEFAULT, &chans[i]),
               "ca_create_channel");
    }
    if (ca_pend_io(30.0) != ECA_NORMAL) {
        for (i = 0; i < n; i++)
            if (ca_state(chans[i]) != cs_conn)
                missing++;
        printf("RESULT {\"error\": \"%ld of %ld channels did not connect\"}\n", missing, n);
        return 1;
    }
    for (i = 0; i < n; i++)
        for (j = 0; j < m; j++)
            SEVCHK(ca_create_subscription(DBR_TIME_DOUBLE, 1, chans[i], DBE_VALUE | DBE_ALARM,
                                          on_update, &subs[i * m + j], NULL),
                   "ca_create_subscription");
    ca_flush_io();
    while (started < n_subs && waited < 30.0) {
        ca_pend_event(0.05);
        waited += 0.05;
    }
    if (started < n_subs) {
        printf("RESULT {\"error\": \"%ld of %ld subscriptions got no first update\"}\n",
               n_subs - started, n_subs);
        return 1;
    }
    printf("SUBSCRIBED\n");
    fflush(stdout);

    epicsTimeGetCurrent(&t0);
    for (;;) {
        ca_pend_event(0.02);
        if (done >= n_subs)
            break;
        epicsTimeGetCurrent(&now);
        if (epicsTimeDiffInSeconds(&now, &t0) > limit_s)
            break;
    }
    for (i = 0; i < n_subs; i++)
        if (subs[i].last < final_value) {
            tail++;                                    /* never saw the final value */
            lost += (unsigned long long)(final_value - subs[i].last);
        }
    printf("RESULT {\"received\": %llu, \"lost\": %llu, \"late\": %llu, \"backwards\": %llu, "
           "\"incomplete_subscriptions\": %ld, \"bad_status\": %llu, \"exceptions\": %ld, "
           "\"latency_p50_ms\": %.3f, \"latency_p99_ms\": %.3f, \"latency_max_ms\": %.3f, "
           "\"due_p50_ms\": %.3f, \"due_p99_ms\": %.3f, \"due_max_ms\": %.3f, "
           "\"latency_mean_ms\": %.3f, \"receiving_s\": %.4f, \"subscriptions\": %ld}\n",
           received, lost, late, backwards, tail, bad_status, exceptions,
           percentile_ms(hist, lat_max, 50), percentile_ms(hist, lat_max, 99), 1000.0 * lat_max,
           percentile_ms(due_hist, due_max, 50), percentile_ms(due_hist, due_max, 99),
           1000.0 * due_max,
           received ? 1000.0 * lat_sum / (double)received : -1.0,
           counting ? epicsTimeDiffInSeconds(&last_rx, &first_rx) : 0.0, n_subs);
    fflush(stdout);
    ca_context_destroy();
    return 0;
}
