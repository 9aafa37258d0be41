#!/bin/bash -e
# Host side: copy what images/build.sh staged in files/ into the new root file system.
F=files
install -d "${ROOTFS_DIR}/opt/edge/wheels" "${ROOTFS_DIR}/opt/edge/share/docs"
install -m 644 "${F}"/wheels/*.whl "${ROOTFS_DIR}/opt/edge/wheels/"
install -m 644 "${F}/constraints.txt" "${ROOTFS_DIR}/opt/edge/constraints.txt"
install -m 644 "${F}/deployment.md" "${ROOTFS_DIR}/opt/edge/share/docs/deployment.md"
rm -rf "${ROOTFS_DIR}/opt/edge/share/hw-tests"
cp -r "${F}/hw-tests" "${ROOTFS_DIR}/opt/edge/share/hw-tests"
install -m 755 "${F}/edge-firstboot" "${ROOTFS_DIR}/usr/local/sbin/edge-firstboot"
install -m 755 "${F}/edge-update" "${ROOTFS_DIR}/usr/local/sbin/edge-update"
for unit in "${F}"/systemd/*.service; do
	install -m 644 "${unit}" "${ROOTFS_DIR}/etc/systemd/system/"
done
install -d "${ROOTFS_DIR}/etc/systemd/system.conf.d" "${ROOTFS_DIR}/etc/systemd/journald.conf.d"
install -m 644 "${F}"/systemd/system.conf.d/*.conf "${ROOTFS_DIR}/etc/systemd/system.conf.d/"
install -m 644 "${F}"/systemd/journald.conf.d/*.conf "${ROOTFS_DIR}/etc/systemd/journald.conf.d/"
