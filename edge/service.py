"""The contract between the supervisor and each service (pager, locker, vision, qr, kiosk).

A service is built from a `ServiceContext` (its frozen config section, the store, the clock,
its peers), then the supervisor calls `start()`, runs `run()` as a task until it is cancelled,
and calls `stop()`. `run()` raising is a crash: the supervisor restarts the service alone with
backoff. State changes go through `ctx.store.transaction()` with their events; the MQTT
reporter publishes them from the outbox. Services never publish directly.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Awaitable, Callable, ClassVar

from edge.errors import CommandError
from edge.store import Store, Tx

if TYPE_CHECKING:
    from edge.events import EventBus
    from edge.peers import LockerPeer, PagerPeer, QrPeer, VisionPeer

HEALTH_STATES = ("ok", "degraded", "down")


@dataclass
class ServiceContext:
    name: str
    site: str
    device: str
    store: Store
    config: Any  # the service's frozen config dataclass
    data_dir: Path
    clock: Callable[[], float] = time.time
    language: str = "vi"
    peers: dict[str, "Service"] = field(default_factory=dict)  # filled by the supervisor
    pin_factory: Any = None  # gpiozero pin factory; None = gpiozero's default
    demo: bool = False  # running under `edge demo`: simulators instead of hardware
    broker_connected: Callable[[], bool] | None = None  # the MQTT link, for status screens
    # How the service's loops wait: asyncio.sleep on a device; a test passes a FakeClock's `wait`
    # (edge.testing) with that clock, so the loops wait on the time the test moves, not real seconds.
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep
    # A driver thread's blocking waits (a coil window, a GPIO pulse) and the clock that times them:
    # time.sleep and time.monotonic on a device (no wall-clock step can shorten a coil window); a
    # test passes its clock's `sleep` and the clock itself, so those waits pass virtually too.
    thread_sleep: Callable[[float], None] = time.sleep
    monotonic: Callable[[], float] = time.monotonic

    @property
    def bus(self) -> "EventBus":
        """The device's in-process event bus (edge.events): every message the store commits for
        MQTT, heard by the other services (a screen hears what the broker hears)."""
        return self.store.bus

    def peer(self, name: str) -> "Service | None":
        """Another running service of this device, untyped (the status page asks every one's health)."""
        return self.peers.get(name)

    # Typed peers (edge.peers): what a caller may ask of each, checked against the real classes.
    def locker(self) -> "LockerPeer | None":
        return self.peers.get("locker")  # type: ignore[return-value]

    def pager(self) -> "PagerPeer | None":
        return self.peers.get("pager")  # type: ignore[return-value]

    def vision(self) -> "VisionPeer | None":
        return self.peers.get("vision")  # type: ignore[return-value]

    def qr(self) -> "QrPeer | None":
        return self.peers.get("qr")  # type: ignore[return-value]


class Service:
    """Base class. Subclasses set `name`, override what they need, and keep state in the store."""

    name: ClassVar[str] = "service"
    # A critical service (pager, locker) must be healthy for the systemd watchdog to be fed.
    critical: ClassVar[bool] = False
    # Inbound MQTT commands: type -> {arg: type or (type, default)}; args are validated
    # against this before `handle_command` is called. Unknown types are refused.
    commands: ClassVar[dict[str, dict[str, Any]]] = {}
    # Command types that move hardware (open a door): they must carry a valid HMAC signature.
    signed_commands: ClassVar[frozenset[str]] = frozenset()
    # A service whose loop must keep moving sets this and calls `heartbeat()` from its loop;
    # a critical service silent for longer is "wedged" and the systemd watchdog is not fed.
    wedged_after_s: ClassVar[float | None] = None

    def __init__(self, ctx: ServiceContext):
        self.ctx = ctx
        self.log = logging.getLogger(f"edge.{self.name}")
        self.last_heartbeat = time.monotonic()

    def heartbeat(self) -> None:
        """Record progress of the main loop (see `wedged_after_s`)."""
        self.last_heartbeat = time.monotonic()

    async def start(self) -> None:
        """Open hardware, restore state from the store, publish the retained snapshot."""

    async def run(self) -> None:
        """The service's main loop; runs until cancelled. Raising means the service crashed."""
        await asyncio.Event().wait()

    async def stop(self) -> None:
        """Release hardware; outputs to their safe state (locker coils off first)."""

    def health(self) -> str:
        """'ok', 'degraded' (working with a fault, e.g. a transmitter offline) or 'down'."""
        return "ok"

    def snapshot(self) -> dict:
        """The retained state published on `{service}/state` (no personal data)."""
        return {}

    def publish_state(self, tx: Tx | None = None) -> None:
        """Queue the current snapshot; inside `tx` when given, so it commits with the change."""
        if tx is not None:
            tx.set_state(self.name, self.snapshot())
            return
        with self.ctx.store.transaction() as own:
            own.set_state(self.name, self.snapshot())

    async def handle_command(self, type: str, args: dict, cmd_id: str | None = None) -> dict:
        """Execute a validated command; return the result fields, or raise CommandError.

        `cmd_id` is the MQTT command id (already deduplicated by the dispatcher); a service that
        moves hardware keys its own durable intent record with it.
        """
        raise CommandError(f"service {self.name} takes no commands")

    async def demo(self) -> None:
        """Under `edge demo`: drive this service's simulators so something visible happens."""


def check_command(service: "Service | type[Service]", type: str, args: Any) -> dict:
    """`args` of command `type` checked against the service's `commands` schema, defaults filled in.
    Every route to an action (MQTT, a screen, a GPIO panel) goes through here, so each refuses
    the same input with the same words."""
    spec = service.commands.get(type)
    if spec is None:
        raise CommandError(f"unknown command type '{type}' for {service.name} "
                           f"(expected one of {sorted(service.commands)})")
    return validate_args(spec, args)


def validate_args(spec: dict[str, Any], args: Any) -> dict:
    """Check command args against a `commands` spec; returns them with defaults filled in."""
    if not isinstance(args, dict):
        raise CommandError(f"'args' must be an object, found {type(args).__name__}")
    unknown = sorted(set(args) - set(spec))
    if unknown:
        raise CommandError(f"unknown argument(s) {unknown}; expected {sorted(spec)}")
    result = {}
    for name, rule in spec.items():
        tp, default, required = (rule[0], rule[1], False) if isinstance(rule, tuple) else (rule, None, True)
        if name not in args:
            if required:
                raise CommandError(f"missing argument '{name}' ({tp.__name__})")
            result[name] = default
            continue
        value = args[name]
        ok = isinstance(value, tp) and not (tp is int and isinstance(value, bool))
        if tp is float and isinstance(value, int) and not isinstance(value, bool):
            ok, value = True, float(value)
        if not ok:
            raise CommandError(f"argument '{name}' must be {tp.__name__}, found {type(value).__name__}")
        result[name] = value
    return result
