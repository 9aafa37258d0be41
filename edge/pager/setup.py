"""Config → transport → driver for the pager transmitter, written once for the service and the CLI.

`PagerService` (edge/pager/service.py, its simulator and its port), `edge pager page`
(edge/pager/cli.py) and `edge config check` (edge/pager/config.py) take the transmitter's
settings from `transmitter_settings`, so a setting such as the ESPA station cannot be forgotten
by one of them; the port is opened only by edge.hw.serial (through `open_transport`).
"""

from __future__ import annotations

from typing import Any

ALPHA_DRIVERS = ("jtech", "lrs", "waveware", "espa")  # transmitters that send a text with each page
SIM_KEYS = ("system", "capcode_base", "station")  # what the transmitter simulator needs to decode


def transmitter_settings(driver: str, *, system: int, message: str = "", capcode_base: int = 0,
                         station: str | None = None, ook_protocol: str | None = None) -> dict[str, Any]:
    """The keyword settings of `edge.pager.driver.make_transmitter` for `driver`."""
    settings: dict[str, Any] = {"system": system}
    if driver in ALPHA_DRIVERS:
        settings["message"] = message
    if driver == "waveware":
        settings["capcode_base"] = capcode_base
    if driver == "espa" and station is not None:
        settings["station"] = station
    if driver == "ook" and ook_protocol is not None:
        settings["ook_protocol"] = ook_protocol
    return settings


def settings_from_config(cfg: Any) -> dict[str, Any]:
    """The transmitter settings of a `[pager]` section (edge.pager.config.PagerConfig)."""
    return transmitter_settings(cfg.driver, system=cfg.system_id, message=cfg.message, capcode_base=cfg.capcode_base,
                                station=cfg.espa_station, ook_protocol=cfg.ook_protocol)


def sim_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """The part of the transmitter settings its simulator decodes with."""
    return {k: v for k, v in settings.items() if k in SIM_KEYS}
