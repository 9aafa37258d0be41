"""433.92 MHz OOK pager keys (Retekess T119/T112, TD157, TD161): bits and pulse timings.

Pure and exact (../shared/pager.md §B). `bits` is the key in transmission order; `pulses_us`
alternates high, low, high, low … in microseconds, ready for a hardware-timed back-end (pigpio
waves or the serial bridge in protocol.OokBridge). Python sleeps are never used for timing.
"""

from __future__ import annotations

from edge.pager.protocol import FrameError

T119_TE_US = 271
TD157_TE_US = 212
TD161_CHIP_US = 200
PRINCETON_GUARD_TE = 30
TD161_GAP_CHIPS = 28
REPEATS = {"retekess-t119": 10, "retekess-td157": 10, "retekess-td161": 30}
ALL_OFF_PAGER = 999


def _field(value: int, width: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < (1 << width):
        raise FrameError(f"{name} {value!r} does not fit in {width} bits (0..{(1 << width) - 1})")
    return value


def _msb(value: int, width: int) -> str:
    return format(value, f"0{width}b")


def _lsb(value: int, width: int) -> str:
    return _msb(value, width)[::-1]


def _check_pager(card: int) -> None:
    if card in (0, 999, 1005):
        raise FrameError(f"pager {card} is 'all'/'all off' on Retekess bases: refused")


def t119_bits(station: int, pager: int, mute: bool = False) -> str:
    """T119/T112/TD165: station 13 bits LSB first, pager 10 bits LSB first, action (0 ring, 1 mute)."""
    _check_pager(pager)
    return _lsb(_field(station, 13, "station"), 13) + _lsb(_field(pager, 10, "pager"), 10) + ("1" if mute else "0")


def td157_bits(station: int, pager: int, action: int = 0b0010, *, allow_all_off: bool = False) -> str:
    """TD157: station 10 bits, pager 10 bits, action 4 bits, all MSB first (0010 = call)."""
    if not (allow_all_off and pager == ALL_OFF_PAGER and action == 0b1111):
        _check_pager(pager)
    return _msb(_field(station, 10, "station"), 10) + _msb(_field(pager, 10, "pager"), 10) + _msb(_field(action, 4, "action"), 4)


def _bcd3(value: int, name: str) -> list[int]:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 999:
        raise FrameError(f"{name} {value!r} out of range 0..999 (3 BCD digits)")
    return [value % 10, value // 10 % 10, value // 100]


def td161_bits(station: int, pager: int, function: int = 0) -> str:
    """TD161: nibbles pager ones/tens/hundreds, function, station ones/tens/hundreds, 0, 0; each LSB first."""
    _check_pager(pager)
    nibbles = _bcd3(pager, "pager") + [_field(function, 4, "function")] + _bcd3(station, "station") + [0, 0]
    return "".join(_lsb(n, 4) for n in nibbles)


def princeton_pulses(bits: str, te_us: int) -> list[int]:
    """`1` = high 3·TE, low TE; `0` = high TE, low 3·TE; then stop high TE and guard low 30·TE."""
    pulses = []
    for bit in bits:
        pulses += [3 * te_us, te_us] if bit == "1" else [te_us, 3 * te_us]
    return pulses + [te_us, PRINCETON_GUARD_TE * te_us]


def td161_pulses(bits: str, chip_us: int = TD161_CHIP_US) -> list[int]:
    """Chips: `0` = 1000, `1` = 1110; then 28 off chips. Runs of equal chips merge into one pulse."""
    chips = "".join("1110" if bit == "1" else "1000" for bit in bits) + "0" * TD161_GAP_CHIPS
    pulses, run, level = [], 0, "1"
    for chip in chips:
        if chip == level:
            run += 1
        else:
            pulses.append(run * chip_us)
            level, run = chip, 1
    pulses.append(run * chip_us)
    return pulses


def encode(protocol: str, system: int, card: int) -> dict:
    """The `edge pager encode` result: {"protocol", "bits", "pulses_us", "repeats"}."""
    if protocol == "retekess-t119":
        bits = t119_bits(system, card)
        pulses = princeton_pulses(bits, T119_TE_US)
    elif protocol == "retekess-td157":
        bits = td157_bits(system, card)
        pulses = princeton_pulses(bits, TD157_TE_US)
    elif protocol == "retekess-td161":
        bits = td161_bits(system, card)
        pulses = td161_pulses(bits)
    else:
        raise FrameError(f"unknown OOK protocol {protocol!r}; expected one of {sorted(REPEATS)}")
    return {"protocol": protocol, "bits": bits, "pulses_us": pulses, "repeats": REPEATS[protocol]}


def decode(protocol: str, pulses: list[int]) -> tuple[int, int]:
    """Inverse of `encode` for the simulator: (station, pager), or FrameError on a bad train."""
    if protocol in ("retekess-t119", "retekess-td157"):
        te = T119_TE_US if protocol == "retekess-t119" else TD157_TE_US
        if len(pulses) != 50 or pulses[-2:] != [te, PRINCETON_GUARD_TE * te]:
            raise FrameError("Princeton train must be 24 bits, a stop pulse and a guard")
        bits = ""
        for high, low in zip(pulses[0:48:2], pulses[1:48:2]):
            if (high, low) == (3 * te, te):
                bits += "1"
            elif (high, low) == (te, 3 * te):
                bits += "0"
            else:
                raise FrameError(f"pulse pair {high}/{low} µs is not a Princeton bit at TE {te}")
        if protocol == "retekess-t119":
            if bits[23] != "0":
                raise FrameError("T119 action is mute, not ring")
            return int(bits[:13][::-1], 2), int(bits[13:23][::-1], 2)
        if bits[20:] != "0010":
            raise FrameError(f"TD157 action {bits[20:]} is not call")
        return int(bits[:10], 2), int(bits[10:20], 2)
    if protocol == "retekess-td161":
        chips = "".join(("1" if i % 2 == 0 else "0") * (p // TD161_CHIP_US) for i, p in enumerate(pulses))
        if any(p % TD161_CHIP_US for p in pulses) or len(chips) != 36 * 4 + TD161_GAP_CHIPS:
            raise FrameError("TD161 train has the wrong length or off-grid chips")
        bits = ""
        for i in range(36):
            symbol = chips[4 * i: 4 * i + 4]
            if symbol not in ("1000", "1110"):
                raise FrameError(f"TD161 symbol {symbol} is neither 0 nor 1")
            bits += "1" if symbol == "1110" else "0"
        nibbles = [int(bits[4 * i: 4 * i + 4][::-1], 2) for i in range(9)]
        if nibbles[3] != 0 or any(n > 9 for n in nibbles[:3] + nibbles[4:7]):
            raise FrameError(f"TD161 nibbles {nibbles} are not a page")
        return nibbles[4] + 10 * nibbles[5] + 100 * nibbles[6], nibbles[0] + 10 * nibbles[1] + 100 * nibbles[2]
    raise FrameError(f"unknown OOK protocol {protocol!r}")
