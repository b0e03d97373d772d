/* See include/CVhostUAPI.h. Every value comes from the kernel uapi headers;
 * the fallbacks below repeat the 6.12 definitions verbatim for numbers that
 * older build-host headers do not have. */
#include "CVhostUAPI.h"

#include <sys/mman.h>

#include <linux/vhost.h>
#include <linux/vhost_types.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <stddef.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>

/* USO offloads arrived in Linux 6.2 uapi. */
#ifndef TUN_F_USO4
#define TUN_F_USO4 0x20
#endif
#ifndef TUN_F_USO6
#define TUN_F_USO6 0x40
#endif

#ifndef VHOST_VDPA_RESUME
#define VHOST_VDPA_RESUME _IO(VHOST_VIRTIO, 0x7E)
#endif
#ifndef VHOST_VDPA_GET_VRING_DESC_GROUP
#define VHOST_VDPA_GET_VRING_DESC_GROUP _IOWR(VHOST_VIRTIO, 0x7F, struct vhost_vring_state)
#endif
#ifndef VHOST_VDPA_GET_VRING_SIZE
#define VHOST_VDPA_GET_VRING_SIZE _IOWR(VHOST_VIRTIO, 0x82, struct vhost_vring_state)
#endif

const unsigned long CVhost_GET_FEATURES = VHOST_GET_FEATURES;
const unsigned long CVhost_SET_FEATURES = VHOST_SET_FEATURES;
const unsigned long CVhost_SET_OWNER = VHOST_SET_OWNER;
const unsigned long CVhost_RESET_OWNER = VHOST_RESET_OWNER;
const unsigned long CVhost_SET_VRING_NUM = VHOST_SET_VRING_NUM;
const unsigned long CVhost_SET_VRING_ADDR = VHOST_SET_VRING_ADDR;
const unsigned long CVhost_SET_VRING_BASE = VHOST_SET_VRING_BASE;
const unsigned long CVhost_GET_VRING_BASE = VHOST_GET_VRING_BASE;
const unsigned long CVhost_SET_VRING_KICK = VHOST_SET_VRING_KICK;
const unsigned long CVhost_SET_VRING_CALL = VHOST_SET_VRING_CALL;
const unsigned long CVhost_SET_VRING_ERR = VHOST_SET_VRING_ERR;
const unsigned long CVhost_SET_BACKEND_FEATURES = VHOST_SET_BACKEND_FEATURES;
const unsigned long CVhost_GET_BACKEND_FEATURES = VHOST_GET_BACKEND_FEATURES;
const unsigned long CVhost_VDPA_GET_DEVICE_ID = VHOST_VDPA_GET_DEVICE_ID;
const unsigned long CVhost_VDPA_GET_STATUS = VHOST_VDPA_GET_STATUS;
const unsigned long CVhost_VDPA_SET_STATUS = VHOST_VDPA_SET_STATUS;
const unsigned long CVhost_VDPA_GET_CONFIG = VHOST_VDPA_GET_CONFIG;
const unsigned long CVhost_VDPA_SET_CONFIG = VHOST_VDPA_SET_CONFIG;
const unsigned long CVhost_VDPA_SET_VRING_ENABLE = VHOST_VDPA_SET_VRING_ENABLE;
const unsigned long CVhost_VDPA_GET_VRING_NUM = VHOST_VDPA_GET_VRING_NUM;
const unsigned long CVhost_VDPA_SET_CONFIG_CALL = VHOST_VDPA_SET_CONFIG_CALL;
const unsigned long CVhost_VDPA_GET_IOVA_RANGE = VHOST_VDPA_GET_IOVA_RANGE;
const unsigned long CVhost_VDPA_GET_CONFIG_SIZE = VHOST_VDPA_GET_CONFIG_SIZE;
const unsigned long CVhost_VDPA_GET_AS_NUM = VHOST_VDPA_GET_AS_NUM;
const unsigned long CVhost_VDPA_GET_VRING_GROUP = VHOST_VDPA_GET_VRING_GROUP;
const unsigned long CVhost_VDPA_SET_GROUP_ASID = VHOST_VDPA_SET_GROUP_ASID;
const unsigned long CVhost_VDPA_SUSPEND = VHOST_VDPA_SUSPEND;
const unsigned long CVhost_VDPA_RESUME = VHOST_VDPA_RESUME;
const unsigned long CVhost_VDPA_GET_VRING_DESC_GROUP = VHOST_VDPA_GET_VRING_DESC_GROUP;
const unsigned long CVhost_VDPA_GET_VQS_COUNT = VHOST_VDPA_GET_VQS_COUNT;
const unsigned long CVhost_VDPA_GET_GROUP_NUM = VHOST_VDPA_GET_GROUP_NUM;
const unsigned long CVhost_VDPA_GET_VRING_SIZE = VHOST_VDPA_GET_VRING_SIZE;

const unsigned long CVhost_sizeof_vring_state = sizeof(struct vhost_vring_state);
const unsigned long CVhost_sizeof_vring_addr = sizeof(struct vhost_vring_addr);
const unsigned long CVhost_sizeof_vring_file = sizeof(struct vhost_vring_file);
const unsigned long CVhost_sizeof_vdpa_config_header = sizeof(struct vhost_vdpa_config);
const unsigned long CVhost_sizeof_vdpa_iova_range = sizeof(struct vhost_vdpa_iova_range);
const unsigned long CVhost_sizeof_msg_v2 = sizeof(struct vhost_msg_v2);

const unsigned long CVhost_TUNSETIFF = TUNSETIFF;
const unsigned long CVhost_TUNSETOFFLOAD = TUNSETOFFLOAD;
const unsigned long CVhost_TUNSETVNETHDRSZ = TUNSETVNETHDRSZ;
const unsigned long CVhost_TUNGETIFF = TUNGETIFF;
const unsigned long CVhost_TUNSETQUEUE = TUNSETQUEUE;
const short CVhost_IFF_ATTACH_QUEUE = IFF_ATTACH_QUEUE;
const short CVhost_IFF_DETACH_QUEUE = IFF_DETACH_QUEUE;
const short CVhost_IFF_TAP = IFF_TAP;
const short CVhost_IFF_NO_PI = IFF_NO_PI;
const short CVhost_IFF_VNET_HDR = IFF_VNET_HDR;
const short CVhost_IFF_MULTI_QUEUE = IFF_MULTI_QUEUE;
const unsigned int CVhost_TUN_F_CSUM = TUN_F_CSUM;
const unsigned int CVhost_TUN_F_TSO4 = TUN_F_TSO4;
const unsigned int CVhost_TUN_F_TSO6 = TUN_F_TSO6;
const unsigned int CVhost_TUN_F_TSO_ECN = TUN_F_TSO_ECN;
const unsigned int CVhost_TUN_F_UFO = TUN_F_UFO;
const unsigned int CVhost_TUN_F_USO4 = TUN_F_USO4;
const unsigned int CVhost_TUN_F_USO6 = TUN_F_USO6;
const unsigned long CVhost_sizeof_ifreq = sizeof(struct ifreq);
const unsigned long CVhost_offsetof_ifreq_flags = offsetof(struct ifreq, ifr_flags);
const unsigned long CVhost_IFNAMSIZ = IFNAMSIZ;

int CVhost_ioctl_pointer(int fd, unsigned long request, void *argument) { return ioctl(fd, request, argument); }
int CVhost_ioctl_value(int fd, unsigned long request, unsigned long argument) { return ioctl(fd, request, argument); }
int CVhost_eventfd(unsigned int initial, int flags) { return eventfd(initial, flags); }
const int CVhost_EFD_CLOEXEC = EFD_CLOEXEC;
const int CVhost_EFD_NONBLOCK = EFD_NONBLOCK;

int CVhost_memfd_create(const char *name) { return memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING); }
