"""Errors the CLI turns into one line on stderr. Each carries a hint that says what to do next."""

from __future__ import annotations


class AttnError(Exception):
    """A known failure. The exit-code rule: 2 when changing what was typed fixes it (an option, a file you named,
    the model for the command); 1 when the world failed (the network or cache, a device, the disk, memory, a
    damaged file you did not name, such as the last capture or a model's weights)."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class UsageError(AttnError):
    """Bad input from the user: exits 2, like a bad option."""

    exit_code = 2


class ModelNotFoundError(AttnError):
    """A model reference that is neither an alias, a local folder, a cached id nor reachable on the hub."""


class ModelLoadError(AttnError):
    """The model exists but could not be loaded or cannot return attention weights."""


class DeviceError(AttnError):
    """The requested device (cuda, mps) is not available on this machine: another --device fixes it (exit 2)."""

    exit_code = 2


class CaptureError(AttnError):
    """The forward pass ran but did not give usable attention weights."""


class KeptError(CaptureError):
    """A capture that kept only part of the model (layers, heads, rows) asked for a part it lacks: capturing again
    with the options the hint names fixes it, so it exits 2 as any other retyped command."""

    exit_code = 2


class StoreError(AttnError):
    """A saved capture is missing, unreadable or from an incompatible version."""


class NotSupportedError(AttnError):
    """The model or input is valid but this command cannot use it: another --model or command fixes it (exit 2)."""

    exit_code = 2
