/* Kernel vhost / vhost-vdpa uapi numbers that Swift cannot import (_IOR/_IOW
 * expression macros), exported as constants with the CVhost_ prefix.
 *
 * The build host's <linux/vhost.h> may be older than the kernel vdpad runs on
 * (Debian bookworm ships 6.1 headers); numbers it lacks are defined in shims.c
 * from their _IO* definitions in the 6.12 uapi. Tests/VDPANetlinkTests and the
 * kernel-lab tests cross-check every value against the 6.12 headers. */
#ifndef VDPAD_CVHOSTUAPI_H
#define VDPAD_CVHOSTUAPI_H

#include <stdint.h>

extern const unsigned long CVhost_GET_FEATURES;
extern const unsigned long CVhost_SET_FEATURES;
extern const unsigned long CVhost_SET_OWNER;
extern const unsigned long CVhost_RESET_OWNER;
extern const unsigned long CVhost_SET_VRING_NUM;
extern const unsigned long CVhost_SET_VRING_ADDR;
extern const unsigned long CVhost_SET_VRING_BASE;
extern const unsigned long CVhost_GET_VRING_BASE;
extern const unsigned long CVhost_SET_VRING_KICK;
extern const unsigned long CVhost_SET_VRING_CALL;
extern const unsigned long CVhost_SET_VRING_ERR;
extern const unsigned long CVhost_SET_BACKEND_FEATURES;
extern const unsigned long CVhost_GET_BACKEND_FEATURES;
extern const unsigned long CVhost_VDPA_GET_DEVICE_ID;
extern const unsigned long CVhost_VDPA_GET_STATUS;
extern const unsigned long CVhost_VDPA_SET_STATUS;
extern const unsigned long CVhost_VDPA_GET_CONFIG;
extern const unsigned long CVhost_VDPA_SET_CONFIG;
extern const unsigned long CVhost_VDPA_SET_VRING_ENABLE;
extern const unsigned long CVhost_VDPA_GET_VRING_NUM;
extern const unsigned long CVhost_VDPA_SET_CONFIG_CALL;
extern const unsigned long CVhost_VDPA_GET_IOVA_RANGE;
extern const unsigned long CVhost_VDPA_GET_CONFIG_SIZE;
extern const unsigned long CVhost_VDPA_GET_AS_NUM;
extern const unsigned long CVhost_VDPA_GET_VRING_GROUP;
extern const unsigned long CVhost_VDPA_SET_GROUP_ASID;
extern const unsigned long CVhost_VDPA_SUSPEND;
extern const unsigned long CVhost_VDPA_RESUME;
extern const unsigned long CVhost_VDPA_GET_VRING_DESC_GROUP;
extern const unsigned long CVhost_VDPA_GET_VQS_COUNT;
extern const unsigned long CVhost_VDPA_GET_GROUP_NUM;
extern const unsigned long CVhost_VDPA_GET_VRING_SIZE;

/* Sizes of the uapi structs the ioctls carry, for layout cross-checks. */
extern const unsigned long CVhost_sizeof_vring_state;
extern const unsigned long CVhost_sizeof_vring_addr;
extern const unsigned long CVhost_sizeof_vring_file;
extern const unsigned long CVhost_sizeof_vdpa_config_header;
extern const unsigned long CVhost_sizeof_vdpa_iova_range;
extern const unsigned long CVhost_sizeof_msg_v2;


/* TUN/TAP (<linux/if_tun.h>): the software datapath's TAP backend. */
extern const unsigned long CVhost_TUNSETIFF;
extern const unsigned long CVhost_TUNSETOFFLOAD;
extern const unsigned long CVhost_TUNSETVNETHDRSZ;
extern const unsigned long CVhost_TUNGETIFF;
extern const unsigned long CVhost_TUNSETQUEUE;
extern const short CVhost_IFF_ATTACH_QUEUE;
extern const short CVhost_IFF_DETACH_QUEUE;
extern const short CVhost_IFF_TAP;
extern const short CVhost_IFF_NO_PI;
extern const short CVhost_IFF_VNET_HDR;
extern const short CVhost_IFF_MULTI_QUEUE;
extern const unsigned int CVhost_TUN_F_CSUM;
extern const unsigned int CVhost_TUN_F_TSO4;
extern const unsigned int CVhost_TUN_F_TSO6;
extern const unsigned int CVhost_TUN_F_TSO_ECN;
extern const unsigned int CVhost_TUN_F_UFO;
extern const unsigned int CVhost_TUN_F_USO4;
extern const unsigned int CVhost_TUN_F_USO6;
/* struct ifreq: size, and offsets of ifr_name and ifr_flags. */
extern const unsigned long CVhost_sizeof_ifreq;
extern const unsigned long CVhost_offsetof_ifreq_flags;
extern const unsigned long CVhost_IFNAMSIZ;

/* Non-variadic trampolines: Swift cannot call variadic ioctl(2), and Glibc's
 * module does not export <sys/eventfd.h>. Only Sources/VDPASystem/Syscalls.swift
 * calls these. */
int CVhost_ioctl_pointer(int fd, unsigned long request, void *argument);
int CVhost_ioctl_value(int fd, unsigned long request, unsigned long argument);
int CVhost_eventfd(unsigned int initial, int flags);
/* memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING): guest memory shared with a vhost device, sealable as QEMU's is. */
int CVhost_memfd_create(const char *name);
extern const int CVhost_EFD_CLOEXEC;
extern const int CVhost_EFD_NONBLOCK;

#endif
