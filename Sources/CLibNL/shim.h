/* libnl-3 / libnl-genl-3 as a Swift system library.
 * Only headers and static inline helpers for what Swift cannot import
 * (expression macros). No logic lives here. */
#ifndef VDPAD_CLIBNL_SHIM_H
#define VDPAD_CLIBNL_SHIM_H

#include <netlink/netlink.h>
#include <netlink/msg.h>
#include <netlink/attr.h>
#include <netlink/handlers.h>
#include <netlink/errno.h>
#include <netlink/socket.h>
#include <netlink/genl/genl.h>
#include <netlink/genl/ctrl.h>
#include <linux/netlink.h>
#include <linux/genetlink.h>

/* NLMSG_HDRLEN is an expression macro. */
static inline int clibnl_nlmsg_hdrlen(void) { return NLMSG_HDRLEN; }
/* GENL_HDRLEN is an expression macro. */
static inline int clibnl_genl_hdrlen(void) { return GENL_HDRLEN; }
/* SOL_NETLINK lives in <linux/socket.h> on some libcs only. */
static inline int clibnl_sol_netlink(void) { return 270; }

#endif
