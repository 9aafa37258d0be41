"""Result lockers: board protocols, drivers, pty simulators, the locker service and its flows.

Layers (see docs/locker.md): `protocols/` (pure frames and checksums), `driver.py` (a serial
board driver that takes a transport) and `gpio.py` (relay HAT via gpiozero), `sim.py`
(simulators speaking the same bytes), `flows.py` + `service.py` (assignments, pickups, alarms,
all durable through the store; the service's concerns in hardware.py, doors.py, opening.py,
recovery.py, kiosk_api.py, views.py, remote.py, demo.py; every SQL statement in queries.py; its
waits in timing.py), `cli.py` and `bench.py`.
"""
