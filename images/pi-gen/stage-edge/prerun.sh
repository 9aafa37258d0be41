#!/bin/bash -e
# Start from the Lite system built by stage2.
if [ ! -d "${ROOTFS_DIR}" ]; then
	copy_previous
fi
