# driver/kit/kit.mk - the channel kit's sources, for any driver's Makefile:
#
#   KBKIT_DIR := path/to/driver/kit
#   include $(KBKIT_DIR)/kit.mk
#   SOURCES += $(KBKIT_SOURCES)        # compile with -I$(KBKIT_DIR)
#
# Every kit source includes only kbkit_internal.h (<ntifs.h> + kbkit.h). kbcov.c, the
# coverage runtime, and kbcov_entry.c, the entry point of a coverage build, are empty
# unless compiled with -DKBCOV_ENABLED (see kbcov.h; `kbridge lab build --coverage`).
KBKIT_DIR     ?= $(dir $(lastword $(MAKEFILE_LIST)))
KBKIT_SOURCES := $(addprefix $(KBKIT_DIR),kbkit_channel.c kbkit_inverted.c kbkit_irpqueue.c \
                 kbkit_pool.c kbkit_ring.c kbkit_section.c kbkit_security.c kbkit_user.c \
                 kbcov.c kbcov_entry.c)
KBKIT_HEADERS := $(addprefix $(KBKIT_DIR),kbkit.h kbkit_internal.h kbridge_ring.h kbcov.h)
