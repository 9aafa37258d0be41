"""Pure wire formats of the supported locker boards: frames, checksums, replies. No I/O.

Every protocol class has the same shape so the driver and the simulator are generic:
`open_request`, `status_request`, `all_off_request` build frames; `take_reply(kind, buf)` and
`take_request(buf)` cut one frame off the front of a byte buffer (skipping leading noise) and
decode it, raising `FrameError` for a frame that is present but wrong (checksum, terminator).
"""

from __future__ import annotations

from edge.locker.protocols.common import BoardReading, FrameError, LockState, Reply, Request
from edge.locker.protocols.eighta import EightAProtocol
from edge.locker.protocols.kerong import KerongProtocol
from edge.locker.protocols.modbus import ModbusProtocol

PROTOCOLS = {"kerong": KerongProtocol, "8a": EightAProtocol, "modbus": ModbusProtocol}

__all__ = ["PROTOCOLS", "BoardReading", "FrameError", "LockState", "Reply", "Request",
           "KerongProtocol", "EightAProtocol", "ModbusProtocol"]
