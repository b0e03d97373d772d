/* The C reference ceiling for vdpa-bench datapath: the least work a split-ring
 * hand-off can do (virtio 1.x §2.7 layout, 16-byte descriptors, avail/used
 * indices published with release and read with acquire, one payload copy per
 * packet), with none of the checks a device must make on guest-controlled
 * data. What the Swift engine achieves is read against it.
 *
 * Not part of vdpad: only vdpa-bench links it. */
#ifndef VDPAD_CRINGCEILING_H
#define VDPAD_CRINGCEILING_H

/* Which way the consumer ("device") copies the payload. */
enum {
    CRingCeiling_copyFromDriver = 0, /* TX: out of the driver's buffer into a backend buffer */
    CRingCeiling_copyToDriver = 1,   /* RX: from a backend buffer into the driver's buffer */
};

/* Runs the hand-off for `seconds` and returns millions of packets per second.
 * threads: 1 (driver and device steps alternate on the calling thread) or 2
 * (a driver thread on cpu 0 and a device thread on cpu 1, spinning on shared
 * memory). batch: packets per index publication (both sides). payload_bytes:
 * bytes copied per packet (at most 2048). Returns a negative value when the
 * arguments are out of range or a thread cannot be started. */
double ring_ceiling_run(int threads, int batch, int payload_bytes, double seconds);

/* As ring_ceiling_run, with the copy direction given (CRingCeiling_copy*). */
double ring_ceiling_run_direction(int threads, int batch, int payload_bytes, double seconds, int direction);

/* Pins the calling thread to `cpu` (sched_setaffinity); 0 on success, else errno.
 * Used by vdpa-bench so that the Swift threads run where the C ones do. */
int ring_ceiling_pin_current_thread(int cpu);

#endif
