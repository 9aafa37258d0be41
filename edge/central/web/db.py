"""The web side's PostgreSQL connection (psycopg 3 async)."""

from __future__ import annotations

import asyncio

import psycopg


class AsyncDb:
    """One shared async connection for the web side, reopened after a failure."""

    def __init__(self, dsn: str):
        self.dsn = dsn
        self._conn: psycopg.AsyncConnection | None = None
        self._lock = asyncio.Lock()

    async def run(self, func, *args):
        async with self._lock:
            for attempt in (1, 2):
                try:
                    if self._conn is None or self._conn.closed:
                        self._conn = await psycopg.AsyncConnection.connect(self.dsn, autocommit=True, connect_timeout=5)
                    return await func(self._conn, *args)
                except psycopg.OperationalError:
                    await self.close()
                    if attempt == 2:
                        raise

    async def ping(self) -> bool:
        try:
            await self.run(lambda conn: conn.execute("SELECT 1"))
            return True
        except psycopg.Error:
            return False

    async def close(self) -> None:
        if self._conn is not None:
            try:
                await self._conn.close()
            except psycopg.Error:
                pass
            self._conn = None
