/* See include/CRingCeiling.h. Mirrors Documentation/performance-anchors §3: split-ring
 * layout, queue size 256, per-side state padded to its own cache line. */
#include "CRingCeiling.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define QSIZE 256u
#define QMASK (QSIZE - 1u)
#define SLOT_BYTES 2048u
#define LINE 64

struct desc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags;
    uint16_t next;
};

struct used_elem {
    uint32_t id;
    uint32_t len;
};

struct ring {
    struct desc desc[QSIZE] __attribute__((aligned(LINE)));
    struct {
        uint16_t flags;
        uint16_t idx;
        uint16_t ring[QSIZE];
    } avail __attribute__((aligned(LINE)));
    struct {
        uint16_t flags;
        uint16_t idx;
        struct used_elem ring[QSIZE];
    } used __attribute__((aligned(LINE)));
    _Alignas(LINE) volatile int stop;
    _Alignas(LINE) unsigned char data[QSIZE * SLOT_BYTES];
};

/* Driver ("producer") state: touched only by the driver thread. */
struct driver {
    uint16_t avail_idx;   /* next avail index to fill */
    uint16_t last_used;   /* used entries reclaimed */
    unsigned in_flight;
    uint64_t reclaimed;
    char pad[LINE];
} __attribute__((aligned(LINE)));

/* Device ("consumer") state: touched only by the device thread. */
struct device {
    uint16_t last_avail;
    uint16_t used_idx;
    uint64_t packets;
    uint64_t checksum;
    unsigned char backend[32 * SLOT_BYTES];
} __attribute__((aligned(LINE)));

struct run {
    struct ring *ring;
    struct driver drv;
    struct device dev;
    unsigned batch;
    unsigned payload;
    int direction;
};

static inline uint16_t load_acquire(uint16_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static inline void store_release(uint16_t *p, uint16_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }

/* One driver step: reclaim what the device used, post up to `batch` buffers, publish once. */
static inline void driver_step(struct run *r)
{
    struct ring *q = r->ring;
    struct driver *d = &r->drv;
    uint16_t used = load_acquire(&q->used.idx);
    while (d->last_used != used) {
        uint32_t id = q->used.ring[d->last_used & QMASK].id;
        (void)id;
        d->last_used++;
        d->in_flight--;
        d->reclaimed++;
    }
    unsigned added = 0;
    while (added < r->batch && d->in_flight < QSIZE) {
        uint16_t head = d->avail_idx & QMASK;
        struct desc *e = &q->desc[head];
        e->addr = (uint64_t)head * SLOT_BYTES;
        e->len = r->payload;
        e->flags = r->direction == CRingCeiling_copyToDriver ? 2 /* VIRTQ_DESC_F_WRITE */ : 0;
        e->next = 0;
        q->avail.ring[head] = head;
        d->avail_idx++;
        d->in_flight++;
        added++;
    }
    if (added)
        store_release(&q->avail.idx, d->avail_idx);
}

/* One device step: take up to `batch` available buffers, copy each payload, publish used once. */
static inline unsigned device_step(struct run *r)
{
    struct ring *q = r->ring;
    struct device *v = &r->dev;
    uint16_t avail = load_acquire(&q->avail.idx);
    unsigned n = 0;
    while (v->last_avail != avail && n < r->batch) {
        uint16_t head = q->avail.ring[v->last_avail & QMASK];
        struct desc e = q->desc[head & QMASK];
        unsigned char *buffer = q->data + (e.addr & (QSIZE * SLOT_BYTES - 1));
        unsigned len = e.len <= SLOT_BYTES ? e.len : SLOT_BYTES;
        if (r->direction == CRingCeiling_copyToDriver)
            memcpy(buffer, v->backend + n * SLOT_BYTES, len);
        else
            memcpy(v->backend + n * SLOT_BYTES, buffer, len);
        struct used_elem *u = &q->used.ring[v->used_idx & QMASK];
        u->id = head;
        u->len = r->direction == CRingCeiling_copyToDriver ? len : 0;
        v->used_idx++;
        v->last_avail++;
        n++;
    }
    if (n) {
        store_release(&q->used.idx, v->used_idx);
        /* Read by the thread that times the run. */
        __atomic_store_n(&v->packets, v->packets + n, __ATOMIC_RELAXED);
        v->checksum += v->backend[0];
    }
    return n;
}

static double now_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

int ring_ceiling_pin_current_thread(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return sched_setaffinity(0, sizeof set, &set) == 0 ? 0 : errno;
}

static void *driver_thread(void *argument)
{
    struct run *r = argument;
    ring_ceiling_pin_current_thread(0);
    while (!__atomic_load_n(&r->ring->stop, __ATOMIC_RELAXED))
        driver_step(r);
    return NULL;
}

static void *device_thread(void *argument)
{
    struct run *r = argument;
    ring_ceiling_pin_current_thread(1);
    while (!__atomic_load_n(&r->ring->stop, __ATOMIC_RELAXED))
        device_step(r);
    return NULL;
}

double ring_ceiling_run_direction(int threads, int batch, int payload_bytes, double seconds, int direction)
{
    if ((threads != 1 && threads != 2) || batch < 1 || batch > 32 || payload_bytes < 0 ||
        payload_bytes > (int)SLOT_BYTES || !(seconds > 0))
        return -1;
    struct ring *ring = aligned_alloc(4096, (sizeof(struct ring) + 4095) & ~(size_t)4095);
    struct run *r = aligned_alloc(LINE, (sizeof(struct run) + LINE - 1) & ~(size_t)(LINE - 1));
    if (!ring || !r) {
        free(ring);
        free(r);
        return -1;
    }
    memset(ring, 0, sizeof *ring);
    memset(r, 0, sizeof *r);
    r->ring = ring;
    r->batch = (unsigned)batch;
    r->payload = (unsigned)payload_bytes;
    r->direction = direction;
    memset(r->dev.backend, 0x5a, sizeof r->dev.backend);
    memset(ring->data, 0xa5, sizeof ring->data);

    double result = -1;
    if (threads == 1) {
        /* Warm-up, then the measured loop; the clock is read every 1024 rounds. */
        double start = now_seconds(), end = start + seconds;
        uint64_t first = 0;
        int warm = 1;
        double measured_start = start;
        for (;;) {
            for (int i = 0; i < 1024; i++) {
                driver_step(r);
                device_step(r);
            }
            double t = now_seconds();
            if (warm && t - start > 0.1) {
                warm = 0;
                first = r->dev.packets;
                measured_start = t;
                end = t + seconds;
            }
            if (!warm && t >= end) {
                result = (double)(r->dev.packets - first) / (t - measured_start) / 1e6;
                break;
            }
        }
    } else {
        pthread_t producer, consumer;
        if (pthread_create(&consumer, NULL, device_thread, r) != 0)
            goto out;
        if (pthread_create(&producer, NULL, driver_thread, r) != 0) {
            __atomic_store_n(&ring->stop, 1, __ATOMIC_RELAXED);
            pthread_join(consumer, NULL);
            goto out;
        }
        struct timespec warm = {0, 100 * 1000 * 1000};
        nanosleep(&warm, NULL);
        uint64_t first = __atomic_load_n(&r->dev.packets, __ATOMIC_RELAXED);
        double start = now_seconds();
        struct timespec span = {(time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9)};
        nanosleep(&span, NULL);
        uint64_t last = __atomic_load_n(&r->dev.packets, __ATOMIC_RELAXED);
        double elapsed = now_seconds() - start;
        __atomic_store_n(&ring->stop, 1, __ATOMIC_RELAXED);
        pthread_join(producer, NULL);
        pthread_join(consumer, NULL);
        result = (double)(last - first) / elapsed / 1e6;
    }
out:
    free(ring);
    free(r);
    return result;
}

double ring_ceiling_run(int threads, int batch, int payload_bytes, double seconds)
{
    return ring_ceiling_run_direction(threads, batch, payload_bytes, seconds, CRingCeiling_copyFromDriver);
}
