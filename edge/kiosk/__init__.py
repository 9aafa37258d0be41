"""The device's local screens: the 24/7 pickup kiosk, reception, counter panel, wall display,
staff loading and technician status pages, served by aiohttp inside the supervisor's loop."""
