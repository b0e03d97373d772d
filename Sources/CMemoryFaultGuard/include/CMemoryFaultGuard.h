/* A SIGBUS guard for the mappings of files a peer owns (a VMM's guest memory).
 *
 * vdpad's software datapath reads and writes a VMM's memory through its own MAP_SHARED
 * mapping of the VMM's file. When the VMM truncates that file (a memfd it did not seal, a
 * hugetlbfs file), every access past the new end raises SIGBUS. The handler here looks the
 * faulting address up among the registered ranges; inside one, it maps an anonymous
 * zero-filled page over the faulting page (MAP_FIXED | MAP_PRIVATE), counts the fault and
 * returns, so the access completes on memory that is no longer the guest's: the daemon lives,
 * and the port that registered the range sees the count and stops trusting the memory.
 * A SIGBUS anywhere else takes the action it would have had without the guard.
 *
 * The registry is a fixed table of lock-free slots: the handler reads it without locks. A
 * range is removed before its mapping is unmapped. */
#ifndef VDPAD_CMEMORYFAULTGUARD_H
#define VDPAD_CMEMORYFAULTGUARD_H

#include <stdint.h>

/* Installs the SIGBUS handler (once; later calls do nothing). 0, or -errno. */
int vdpad_fault_guard_install(void);

/* Registers [base, base + length): a slot number, or -1 when the table is full. */
int vdpad_fault_guard_add(void *base, uint64_t length);

/* Removes a slot (before its mapping goes away). */
void vdpad_fault_guard_remove(int slot);

/* How many faults the guard absorbed inside a slot's range. */
uint64_t vdpad_fault_guard_faults(int slot);

#endif
