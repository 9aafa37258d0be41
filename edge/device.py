"""The built-in `device` service: commands about the device itself, present on every device.

`resend {from_seq, to_seq}` queues again the events of that seq range that the outbox still
holds (published rows are kept for a week), so the central service can fill a gap it detected.
The copies carry the same `id` and `seq`: a consumer that already has them stores them once.
"""

from __future__ import annotations

from edge.errors import CommandError
from edge.service import Service

MAX_RESEND = 10_000


class DeviceService(Service):
    name = "device"
    commands = {"resend": {"from_seq": int, "to_seq": int}}

    async def handle_command(self, type: str, args: dict, cmd_id: str | None = None) -> dict:
        first, last = args["from_seq"], args["to_seq"]
        if first < 1 or last < first:
            raise CommandError(f"resend: expected 1 <= from_seq <= to_seq, found {first}..{last}")
        if last - first + 1 > MAX_RESEND:
            raise CommandError(f"resend: at most {MAX_RESEND} events at once, asked for {last - first + 1}")
        return self.resend(first, last)

    def resend(self, first: int, last: int) -> dict:
        with self.ctx.store.transaction() as tx:
            rows = tx.execute(
                "SELECT topic, payload, json_extract(payload, '$.seq') AS seq FROM outbox "
                "WHERE topic LIKE '%/event' AND json_extract(payload, '$.seq') BETWEEN ? AND ? "
                "GROUP BY seq ORDER BY seq", (first, last)).fetchall()
            for topic, payload, _ in rows:
                tx.execute("INSERT INTO outbox(topic, payload, qos, retain, created) VALUES (?, ?, 1, 0, ?)",
                           (topic, payload, self.ctx.clock()))
            tx.audit("mqtt", "events_resent", from_seq=first, to_seq=last, found=len(rows))
        found = [r[2] for r in rows]
        return {"resent": len(found), "missing": _ranges(sorted(set(range(first, last + 1)) - set(found)))}


def _ranges(numbers: list[int]) -> list[list[int]]:
    """[3, 4, 5, 9] -> [[3, 5], [9, 9]]"""
    out: list[list[int]] = []
    for n in numbers:
        if out and out[-1][1] == n - 1:
            out[-1][1] = n
        else:
            out.append([n, n])
    return out
