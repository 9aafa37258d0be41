"""One error tree for the whole project (see shared/style.md §4)."""


class EdgeError(Exception):
    """Base of every error raised on purpose by edge."""


class ConfigError(EdgeError, ValueError):
    """Error raised when a configuration file or section is invalid; `.problems` lists each one."""

    def __init__(self, problems):
        self.problems = list(problems) if not isinstance(problems, str) else [problems]
        super().__init__("\n".join(self.problems))


class DeviceError(EdgeError, OSError):
    """Error raised when a piece of hardware (or its simulator) misbehaves."""


class DeviceNotReady(DeviceError):
    """Error raised when a device is absent or busy for now; callers retry with capped backoff."""


class ProtocolError(DeviceError):
    """Error raised when a frame from a device is malformed, truncated or fails its checksum."""


class StoreError(EdgeError):
    """Error raised when the SQLite store is unusable or its audit chain is broken."""


class CommandError(EdgeError, ValueError):
    """Error raised when an inbound command is malformed, unknown or refused; the text is sent back."""


class CommandAuthError(CommandError):
    """Error raised when a command that needs a signature is unsigned, forged, stale or replayed."""
