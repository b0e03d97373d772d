#define _GNU_SOURCE
#include "CMemoryFaultGuard.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define SLOTS 1024

struct slot {
    _Atomic uintptr_t base;
    _Atomic uint64_t length;
    _Atomic uint64_t faults;
    _Atomic int used;
};

static struct slot slots[SLOTS];
static struct sigaction previous;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static int install_error;
static uintptr_t page_size;

static void handler(int signal_number, siginfo_t *info, void *context) {
    uintptr_t address = (uintptr_t)info->si_addr;
    for (int i = 0; i < SLOTS; i++) {
        if (atomic_load_explicit(&slots[i].used, memory_order_acquire) != 1) continue;
        uintptr_t base = atomic_load_explicit(&slots[i].base, memory_order_relaxed);
        uint64_t length = atomic_load_explicit(&slots[i].length, memory_order_relaxed);
        if (address < base || address - base >= length) continue;
        /* mmap is a plain system call: safe here in practice (not on POSIX's list). */
        void *page = (void *)(address & ~(page_size - 1));
        if (mmap(page, page_size, PROT_READ | PROT_WRITE, MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) == MAP_FAILED) break;
        atomic_fetch_add_explicit(&slots[i].faults, 1, memory_order_relaxed);
        return;
    }
    /* Not ours: what would have happened without the guard. */
    if ((previous.sa_flags & SA_SIGINFO) && previous.sa_sigaction != NULL) {
        previous.sa_sigaction(signal_number, info, context);
        return;
    }
    if (previous.sa_handler != SIG_DFL && previous.sa_handler != SIG_IGN && previous.sa_handler != NULL) {
        previous.sa_handler(signal_number);
        return;
    }
    /* Default action: restore it; returning re-executes the access, which faults again. */
    signal(SIGBUS, SIG_DFL);
}

static void install(void) {
    page_size = (uintptr_t)sysconf(_SC_PAGESIZE);
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_sigaction = handler;
    action.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&action.sa_mask);
    if (sigaction(SIGBUS, &action, &previous) != 0) install_error = -errno;
}

int vdpad_fault_guard_install(void) {
    pthread_once(&once, install);
    return install_error;
}

int vdpad_fault_guard_add(void *base, uint64_t length) {
    for (int i = 0; i < SLOTS; i++) {
        int expected = 0;
        /* 2: being filled in, invisible to the handler (it looks for 1). */
        if (atomic_compare_exchange_strong(&slots[i].used, &expected, 2)) {
            atomic_store_explicit(&slots[i].base, (uintptr_t)base, memory_order_relaxed);
            atomic_store_explicit(&slots[i].length, length, memory_order_relaxed);
            atomic_store_explicit(&slots[i].faults, 0, memory_order_relaxed);
            atomic_store_explicit(&slots[i].used, 1, memory_order_release);
            return i;
        }
    }
    return -1;
}

void vdpad_fault_guard_remove(int slot) {
    if (slot < 0 || slot >= SLOTS) return;
    atomic_store_explicit(&slots[slot].used, 0, memory_order_release);
}

uint64_t vdpad_fault_guard_faults(int slot) {
    if (slot < 0 || slot >= SLOTS) return 0;
    return atomic_load_explicit(&slots[slot].faults, memory_order_relaxed);
}
