"""The TOML configuration: one file, one frozen dataclass per section, every error at once.

Each section is a dataclass; `field(metadata=...)` carries bounds (`min`, `max`), a `pattern`,
and `help`. The loader reports each problem with its key path, the value found and what was
expected, and suggests the nearest known key for a typo (like ESPHome). Service sections are
looked up in `SERVICE_SECTIONS` and imported only when present in the file.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import importlib
import re
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from edge.errors import ConfigError

DEFAULT_PATH = "/etc/edge/edge.toml"
ID_PATTERN = r"[a-z0-9][a-z0-9-]{0,62}"  # MQTT topic level and ACL-safe (no + # /)

# section name -> "module:Class" of its dataclass. A service runs when its section is present
# and `enabled` (every service section has `enabled: bool = True`).
SERVICE_SECTIONS: dict[str, str] = {
    "pager": "edge.pager.config:PagerConfig",
    "locker": "edge.locker.config:LockerConfig",
    "vision": "edge.vision.config:VisionConfig",
    "qr": "edge.qr.config:QrConfig",
    "kiosk": "edge.kiosk.config:KioskConfig",
}
# service name -> "module:Class" of its Service subclass.
SERVICE_CLASSES: dict[str, str] = {
    "pager": "edge.pager.service:PagerService",
    "locker": "edge.locker.service:LockerService",
    "vision": "edge.vision.service:VisionService",
    "qr": "edge.qr.service:QrService",
    "kiosk": "edge.kiosk.service:KioskService",
}


def opt(default: Any = dataclasses.MISSING, *, help: str = "", **rules: Any) -> Any:
    """A config field: `opt(30, min=1, max=600, help="seconds between …")`."""
    meta = {"help": help, **rules}
    if isinstance(default, (list, dict, set)):
        value = default
        return field(default_factory=lambda: type(value)(value), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class BrokerConfig:
    url: str = opt("mqtt://127.0.0.1:1883", pattern=r"mqtts?://[^/\s:]+(:\d{1,5})?/?",
                   help="mqtt://HOST:PORT, or mqtts://HOST:PORT for TLS")
    username: str | None = opt(None, help="per-device user name on the broker (usually the device id)")
    password_file: str | None = opt(None, help="file holding the broker password (root-only)")
    ca_file: str | None = opt(None, help="CA certificate for mqtts://")
    cert_file: str | None = opt(None, help="client certificate (optional, for mutual TLS)")
    key_file: str | None = opt(None, help="client private key")
    keepalive_s: int = opt(30, min=5, max=600)
    command_key_file: str | None = opt(None, help="HMAC key that signs door-opening commands")
    command_max_age_s: int = opt(60, min=5, max=3600, help="signed commands older than this are refused")


@dataclass(frozen=True)
class SupervisorConfig:
    backoff_initial_s: float = opt(1.0, min=0.01, max=60)
    backoff_max_s: float = opt(60.0, min=0.01, max=3600)
    breaker_failures: int = opt(5, min=1, max=100, help="crashes within breaker_window_s that open the breaker")
    breaker_window_s: float = opt(300.0, min=1, max=86400)
    breaker_cooldown_s: float = opt(600.0, min=1, max=86400, help="how long a tripped service stays down")
    status_interval_s: float = opt(30.0, min=1, max=3600)


@dataclass(frozen=True)
class Config:
    site: str = opt(pattern=ID_PATTERN, help="office id, e.g. hn-badinh")
    device: str = opt(pattern=ID_PATTERN, help="device id, unique on the whole broker (its user name), e.g. kiosk-01")
    role: Literal["desk", "kiosk", "central"] = opt(help="which kind of device this is")
    data_dir: str = opt("/var/lib/edge", help="store, gallery and keys live here")
    language: Literal["vi", "en"] = opt("vi")
    log_level: Literal["debug", "info", "warning", "error"] = opt("info")
    broker: BrokerConfig = opt(BrokerConfig())
    supervisor: SupervisorConfig = opt(SupervisorConfig())
    services: dict[str, Any] = opt({}, help="(filled from the service sections)")

    @property
    def store_path(self) -> Path:
        return Path(self.data_dir) / "edge.db"

    def enabled_services(self) -> list[str]:
        return [name for name, section in self.services.items() if getattr(section, "enabled", True)]

    def simulated(self) -> list[str]:
        """Keys that select a built-in simulator (`port`/`camera` = "sim"): fine in a demo, a
        mistake on a device in service, so `edge run` and `edge doctor` say so."""
        return [f"{name}.{key}" for name in self.enabled_services() for key in ("port", "camera")
                if getattr(self.services[name], key, None) == "sim"]

    def warnings(self) -> list[str]:
        """Valid but unsafe settings for this role (a section's `warnings(role)`), e.g. face
        liveness turned off on a kiosk: `edge config check` and `edge doctor` print them."""
        return [w for name in self.enabled_services() if hasattr(self.services[name], "warnings")
                for w in self.services[name].warnings(self.role)]


# -- loading ------------------------------------------------------------------------------------

def load(path: str | Path) -> Config:
    """Read and validate a TOML file; raises ConfigError listing every problem."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise ConfigError(f"{path}: no such file") from err
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from err
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: not valid TOML: {err}") from err
    return from_dict(data)


def from_dict(data: dict) -> Config:
    problems: list[str] = []
    base_keys = {f.name for f in dataclasses.fields(Config)} - {"services"}
    known = base_keys | set(SERVICE_SECTIONS)
    base = {k: v for k, v in data.items() if k in base_keys}
    services: dict[str, Any] = {}
    for key, value in data.items():
        if key in SERVICE_SECTIONS:
            cls = _import(SERVICE_SECTIONS[key])
            section = parse(cls, value, key, problems)
            if section is not None:
                # Cross-key checks a section knows (e.g. lock numbers within its driver's range).
                problems.extend(section.problems() if hasattr(section, "problems") else [])
                services[key] = section
            else:
                problems.extend(_salvaged_cross_checks(cls, value, key, problems))
        elif key not in base_keys:
            problems.append(f"{key}: unknown key{_did_you_mean(key, known)}")
    config = parse(Config, base, "", problems)
    if problems:
        raise ConfigError(problems)
    config = dataclasses.replace(config, services=services)
    _check_roles(config, problems)
    if problems:
        raise ConfigError(problems)
    return config


CENTRAL_USER = "central"
DEVICE_ROLES = {"desk": {"pager", "qr", "kiosk", "vision"}, "kiosk": {"locker", "vision", "qr", "kiosk", "pager"}}


def _check_roles(config: Config, problems: list[str]) -> None:
    if config.role != "central" and config.device == CENTRAL_USER:
        problems.append(f"device: '{CENTRAL_USER}' is reserved for the central service "
                        "(the broker lets that user publish commands)")
    if config.role == "central":
        if config.services:
            problems.append(f"role: 'central' runs no device services, found {sorted(config.services)}")
        return
    for name in config.services:
        if name not in DEVICE_ROLES[config.role]:
            problems.append(f"{name}: not a service of role '{config.role}' "
                            f"(expected one of {sorted(DEVICE_ROLES[config.role])})")


def parse(cls: type, data: Any, path: str, problems: list[str]) -> Any:
    """Build dataclass `cls` from `data`, appending each problem to `problems`; None if any."""
    if not isinstance(data, dict):
        problems.append(f"{path or '(top level)'}: expected a table, found {_show(data)}")
        return None
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    before = len(problems)
    for key in data:
        if key not in fields:
            problems.append(f"{_join(path, key)}: unknown key{_did_you_mean(key, fields)}")
    values = {}
    for name, f in fields.items():
        key_path = _join(path, name)
        if name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                problems.append(f"{key_path}: missing, expected {_describe(hints[name])}")
            continue
        value = _convert(hints[name], data[name], key_path, problems)
        if value is not _BAD:
            _check_rules(f.metadata, value, key_path, problems)
            values[name] = value
    if len(problems) > before:
        return None
    try:
        return cls(**values)
    except ConfigError as err:  # a section's own cross-key checks in __post_init__
        problems.extend(err.problems)
        return None


def _salvaged_cross_checks(cls: type, data: Any, path: str, reported: list[str]) -> list[str]:
    """Cross-key problems of a section that has bad keys too, so one `config check` reports all.

    The bad keys are pruned (a key that is missing takes its parent table with it) until what is
    left parses; the section's cross-key checks then run on that, and only problems about keys not
    already reported are returned.
    """
    if not isinstance(data, dict):
        return []
    pruned = copy.deepcopy(data)
    seen = {_problem_path(r) for r in reported}
    found: list[str] = []
    for _ in range(32):
        trial: list[str] = []
        section = parse(cls, pruned, path, trial)
        if section is not None:
            found += section.problems() if hasattr(section, "problems") else []
            break
        # Problems about keys not reported yet come from the section's own cross-key checks.
        found += [p for p in trial if _problem_path(p) not in seen]
        stale = [p for p in trial if _problem_path(p) in seen]
        if not any([_prune(pruned, _problem_path(p), path) for p in stale]):
            break
    return [p for p in dict.fromkeys(found) if _problem_path(p) not in seen]


def _problem_path(problem: str) -> str:
    return problem.split(": ", 1)[0]


def _prune(data: dict, key_path: str, section: str) -> bool:
    """Remove the table entry `key_path` names (relative to `section`); True if something went."""
    if not key_path.startswith(section + "."):
        return False
    keys = [re.sub(r"\[\d+\]$", "", k) for k in key_path[len(section) + 1:].split(".")]
    parents, node = [], data
    for key in keys[:-1]:
        if not isinstance(node, dict) or key not in node:
            return False
        parents.append((node, key))
        node = node[key]
    if isinstance(node, dict) and keys[-1] in node:
        del node[keys[-1]]
        return True
    if parents:  # the key is missing: drop the table that needs it
        table, key = parents[-1]
        del table[key]
        return True
    return False


_BAD = object()


def _convert(tp: Any, value: Any, path: str, problems: list[str]) -> Any:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        if len(inner) == 1:
            return _convert(inner[0], value, path, problems)
    if origin is Literal:
        if value in args:
            return value
        problems.append(f"{path}: found {_show(value)}, expected one of {', '.join(map(repr, args))}")
        return _BAD
    if dataclasses.is_dataclass(tp):
        result = parse(tp, value, path, problems)
        return _BAD if result is None else result
    if origin is list:
        if not isinstance(value, list):
            problems.append(f"{path}: found {_show(value)}, expected {_describe(tp)}")
            return _BAD
        items = [_convert(args[0], v, f"{path}[{i}]", problems) for i, v in enumerate(value)]
        return _BAD if any(i is _BAD for i in items) else items
    if origin is dict:
        if not isinstance(value, dict):
            problems.append(f"{path}: found {_show(value)}, expected {_describe(tp)}")
            return _BAD
        items = {k: _convert(args[1], v, _join(path, k), problems) for k, v in value.items()}
        return _BAD if any(v is _BAD for v in items.values()) else items
    if tp is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if tp in (int, str, bool) and type(value) is tp:
        return value
    problems.append(f"{path}: found {_show(value)}, expected {_describe(tp)}")
    return _BAD


def _check_rules(meta: Any, value: Any, path: str, problems: list[str]) -> None:
    if value is None:
        return
    if "min" in meta and value < meta["min"]:
        problems.append(f"{path}: found {_show(value)}, expected at least {meta['min']}")
    if "max" in meta and value > meta["max"]:
        problems.append(f"{path}: found {_show(value)}, expected at most {meta['max']}")
    if "pattern" in meta and not re.fullmatch(meta["pattern"], str(value)):
        problems.append(f"{path}: found {_show(value)}, expected text matching {meta['pattern']}")
    if "check" in meta:
        message = meta["check"](value)
        if message:
            problems.append(f"{path}: found {_show(value)}, expected {message}")


def _describe(tp: Any) -> str:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in args if a is not type(None)) + " (optional)"
    if origin is Literal:
        return "one of " + ", ".join(map(repr, args))
    if origin is list:
        return f"a list of {_describe(args[0])}"
    if origin is dict:
        return f"a table of {_describe(args[1])}"
    if dataclasses.is_dataclass(tp):
        return "a table"
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(tp, str(tp))


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


def _did_you_mean(key: str, known: Any) -> str:
    close = difflib.get_close_matches(str(key), list(known), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _import(spec: str) -> Any:
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


def import_object(spec: str) -> Any:
    """Import "module:Name" (used for service classes, kept lazy so --help stays fast)."""
    return _import(spec)
