"""The `[pager]` section: transmitter, services, counters, priority classes, cards, day rollover."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional

from edge.config import opt
from edge.errors import ConfigError

DRIVERS = ("jtech", "lrs", "waveware", "espa", "ook")


def _card_list(cards: list[int]) -> str:
    bad = [c for c in cards if not 1 <= c <= 99]
    return f"card numbers 1..99 (bad: {bad})" if bad else ""


def _display_pins(pins: list[int], counts) -> str:
    # 14/15 are the UART and float at boot (design §5): a segment there would flash at power-up.
    if len(pins) not in counts:
        return f"{' or '.join(map(str, counts)) if len(counts) < 4 else f'at most {max(counts)}'} pins"
    bad = [p for p in pins if not 2 <= p <= 27 or p in (14, 15)]
    if bad:
        return f"BCM pins 2..27 other than 14/15 (bad: {bad})"
    return "" if len(set(pins)) == len(pins) else "each pin once"


@dataclass(frozen=True)
class ServiceDef:
    prefix: str = opt(pattern=r"[A-Z]", help="one capital letter printed before the ticket number")
    name: str = opt("", help="shown on the display (Vietnamese)")
    name_en: str = opt("", help="English fallback")


@dataclass(frozen=True)
class PanelDef:
    """GPIO pins (BCM numbers) of one counter's physical panel; omit a pin to leave it out."""

    next_pin: Optional[int] = opt(None, min=2, max=27)
    recall_pin: Optional[int] = opt(None, min=2, max=27)
    skip_pin: Optional[int] = opt(None, min=2, max=27)
    rating_pins: list[int] = opt([], help="five pins for the 1..5 satisfaction keys",
                                 check=lambda v: "" if len(v) in (0, 5) and all(2 <= p <= 27 for p in v)
                                 else "five BCM pins 2..27")
    serving_led_pin: Optional[int] = opt(None, min=2, max=27, help="lit while a ticket is called")
    segment_pins: list[int] = opt([], check=lambda v: _display_pins(v, (0, 7, 8)),
                                  help="7-segment 'now serving' display: pins of segments a..g (+ dp)")
    digit_pins: list[int] = opt([], check=lambda v: _display_pins(v, range(0, 9)),
                                help="one select pin per digit, left to right (multiplexed); empty = one digit")
    active_high: bool = opt(True, help="segments lit by a high pin (common cathode); false for common anode")
    digit_active_high: bool = opt(False, help="a digit is selected by a high pin (false: low, common cathode)")

    def pins(self) -> list[int]:
        """Every pin this panel claims, for the overlap checks."""
        single = [self.next_pin, self.recall_pin, self.skip_pin, self.serving_led_pin]
        return [p for p in single if p is not None] + self.rating_pins + self.segment_pins + self.digit_pins


@dataclass(frozen=True)
class CounterDef:
    services: list[str] = opt(help="service ids this counter serves, in order")
    panel: Optional[PanelDef] = opt(None)


@dataclass(frozen=True)
class PagerConfig:
    enabled: bool = opt(True)
    driver: Literal["jtech", "lrs", "waveware", "espa", "ook"] = opt("jtech", help="transmitter protocol")
    port: str = opt("sim", help="serial device or pyserial URL; 'sim' starts the pty simulator; "
                                "'pigpio:17' drives an OOK module on BCM 17 (driver ook)")
    baud: Optional[int] = opt(None, min=300, max=921600, help="default: the transmitter's own rate")
    system_id: int = opt(10, min=0, max=9999, help="base/system id the cards are paired to (reuse the vendor's)")
    capcode_base: int = opt(0, min=0, max=9_999_000, help="WaveWare: capcode = capcode_base + card")
    message: str = opt("", help="text sent with each page (alpha pagers); empty = numeric/vibrate")
    ook_protocol: Literal["retekess-t119", "retekess-td157", "retekess-td161"] = opt("retekess-t119")
    cts_flow: bool = opt(False, help="JTECH Premises: stop writing while CTS is low")
    espa_station: str = opt("2", pattern=r"[0-9]", help="ESPA 4.4.4: address of the paging system selected with ENQ")
    retries: int = opt(2, min=0, max=10, help="retransmissions of a page the box refused or did not answer")
    ack_timeout_s: float = opt(0.5, min=0.05, max=10)
    reconnect_max_s: float = opt(30.0, min=0.1, max=600, help="cap of the reconnect backoff")
    services: dict[str, ServiceDef] = opt({"general": ServiceDef(prefix="A", name="Tiếp nhận hồ sơ", name_en="Filing")})
    counters: dict[str, CounterDef] = opt({"1": CounterDef(services=["general"])})
    priority_classes: dict[str, int] = opt(
        {"elderly": 900, "disabled": 900, "pregnant": 900, "child_under_6": 600, "veteran": 600},
        help="class -> seconds of head start; an ordinary ticket that waited longer still goes first (aging)")
    cards: int = opt(99, min=1, max=99, help="cards 1..cards are in use")
    broken_cards: list[int] = opt([], check=_card_list, help="cards never handed out")
    max_recalls: int = opt(3, min=0, max=20)
    repage_s: int = opt(0, min=0, max=600, help="re-page a called ticket every N s until served (0 = off); "
                                                 "counts as a recall, stops at max_recalls")
    keepalive_s: int = opt(0, min=0, max=30, help="LRS anti-theft: send the keep-alive to the system capcode "
                                                   "every N s while online (0 = off; 15 when the cards' "
                                                   "out-of-range alarm is on: they alarm after 33 s)")
    card_hold_s: int = opt(900, min=0, max=86400, help="after a no-show the card returns to the pool after this")
    double_press_s: float = opt(3.0, min=0, max=60, help="a second 'next' within this repeats the call instead")
    rating_window_s: int = opt(300, min=10, max=3600, help="a rating applies to the ticket finished this recently")
    appointment_grace_s: int = opt(900, min=0, max=7200, help="a check-in later than slot + this queues normally")
    default_service_s: int = opt(300, min=10, max=7200, help="service time assumed before any is measured")
    day_start_hour: int = opt(5, min=0, max=23, help="local hour at which numbering restarts")
    utc_offset_h: float = opt(7.0, min=-12, max=14, help="local time zone (Vietnam: +7)")
    long_press_s: float = opt(1.5, min=0.3, max=10, help="holding 'recall' this long pauses/resumes the counter")
    bounce_s: float = opt(0.05, min=0, max=1, help="button debounce")

    def __post_init__(self):
        # Cross-references (counter -> service, unique prefixes) fail `edge config check` too.
        found = problems(self)
        if found:
            raise ConfigError(found)


def problems(config: PagerConfig) -> list[str]:
    """Cross-field checks the per-field rules cannot express."""
    found = []
    prefixes: dict[str, str] = {}
    for sid, service in config.services.items():
        if service.prefix in prefixes:
            found.append(f"pager.services.{sid}.prefix: found {service.prefix!r}, already used by {prefixes[service.prefix]}")
        prefixes[service.prefix] = sid
    for name, counter in config.counters.items():
        for sid in counter.services:
            if sid not in config.services:
                found.append(f"pager.counters.{name}.services: found {sid!r}, expected one of {sorted(config.services)}")
        if not counter.services:
            found.append(f"pager.counters.{name}.services: empty, expected at least one service id")
    if not config.counters:
        found.append("pager.counters: empty, expected at least one counter")
    found += _pin_problems(config)
    if config.port.startswith("pigpio:") and config.driver != "ook":
        found.append(f"pager.port: found {config.port!r}, a pigpio GPIO port needs driver = \"ook\"")
    found += _transmitter_problems(config)
    return found


def _pin_problems(config: PagerConfig) -> list[str]:
    """A GPIO pin drives one thing: no pin twice within a panel or across counters' panels."""
    found = []
    owner: dict[int, str] = {}
    for name, counter in config.counters.items():
        if counter.panel is None:
            continue
        panel = counter.panel
        if panel.digit_pins and not panel.segment_pins:
            found.append(f"pager.counters.{name}.panel.digit_pins: found {panel.digit_pins}, "
                         "expected segment_pins too (the digits share them)")
        for pin in panel.pins():
            if pin in owner:
                found.append(f"pager.counters.{name}.panel: pin {pin} is used twice ({owner[pin]} and counter {name})")
            owner.setdefault(pin, f"counter {name}")
    return found


def _transmitter_problems(config: PagerConfig) -> list[str]:
    """Settings the transmitter itself would refuse (e.g. a JTECH base id above 999)."""
    from edge.pager import ook, protocol, setup  # pure modules, no I/O

    try:
        if config.driver == "ook":
            ook.encode(config.ook_protocol, config.system_id, 1)
            return []
        codec = protocol.transmitter(config.driver, **setup.settings_from_config(config))  # as the service builds it
        if config.keepalive_s:
            if config.driver != "lrs":
                return [f"pager.keepalive_s: found {config.keepalive_s}, the keep-alive is an LRS feature "
                        f"(driver is {config.driver!r}); set 0"]
            codec.keepalive_frame()  # the system capcode needs system_id 0..13
    except protocol.FrameError as err:
        return [f"pager: driver {config.driver!r} refuses these settings: {err}"]
    return []
