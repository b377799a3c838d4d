"""Where and in which dtype a model's weights load: from_pretrained's arguments, placement handed to accelerate."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from attncli.choices import Device, DeviceMap, TorchDtype
from attncli.errors import ModelLoadError, UsageError


MAX_MEMORY_FORM = ("expected DEVICE=SIZE[,DEVICE=SIZE...] such as 0=20GiB,cpu=60GiB: DEVICE a GPU index, cpu, mps "
                   "or disk; SIZE bytes or a number with KB, MB, GB, TB, KiB, MiB, GiB or TiB")
UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
         "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}
DEVICES = ("cpu", "mps", "disk")  # with GPU indices: the keys accelerate's get_max_memory accepts
_SIZE = re.compile(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*([a-z]*)")


def parse_max_memory(text: str) -> dict[int | str, int]:
    """'0=20GiB,cpu=60GiB' as accelerate's max_memory: {0: bytes, "cpu": bytes} (sizes as exact byte counts)."""
    budget: dict[int | str, int] = {}
    for part in text.split(","):
        key, eq, size = (s.strip().lower() for s in part.partition("="))
        found = _SIZE.fullmatch(size)
        gpu = re.fullmatch("[0-9]+", key) is not None
        if not eq or not (gpu or key in DEVICES) or not found or found.group(2) not in UNITS:
            raise UsageError(f"{part.strip()!r} is not DEVICE=SIZE", MAX_MEMORY_FORM)
        device: int | str = int(key) if gpu else key
        if device in budget:
            raise UsageError(f"{text.strip()!r} names {key} twice", MAX_MEMORY_FORM)
        budget[device] = int(float(found.group(1)) * UNITS[found.group(2)])
    return budget


def placement(device: str, dtype: TorchDtype | str | None, device_map: DeviceMap | str | dict | None,
              max_memory: dict | str | None, offload_folder: Path | str | None) -> dict[str, Any]:
    """from_pretrained's dtype and accelerate placement arguments, checked before any weights load.

    ``max_memory`` is accelerate's dict or its text form (see :func:`parse_max_memory`).
    """
    kwargs: dict[str, Any] = {}
    if isinstance(max_memory, str):
        max_memory = parse_max_memory(max_memory)
    if dtype is not None:
        import torch

        kwargs["dtype"] = getattr(torch, TorchDtype(dtype).value)
    if device_map is None:
        if max_memory or offload_folder:
            raise UsageError("--max-memory and --offload-folder only apply with a device map",
                             "add --device-map auto (device_map='auto' from Python)")
        return kwargs
    if device != Device.cpu.value:
        raise UsageError(f"--device {device} and --device-map both say where the model goes",
                         "give --device-map alone: accelerate places the model on every device it sees")
    try:
        import accelerate  # noqa: F401
    except ImportError as exc:
        raise ModelLoadError("--device-map needs the accelerate package", "pip install accelerate") from exc
    kwargs["device_map"] = device_map if isinstance(device_map, dict) else DeviceMap(device_map).value
    if max_memory:
        kwargs["max_memory"] = max_memory
    if offload_folder is not None:
        if Path(offload_folder).exists() and not Path(offload_folder).is_dir():
            raise UsageError(f"--offload-folder {offload_folder} is a file", "give a folder (made if missing)")
        kwargs["offload_folder"] = str(offload_folder)
    return kwargs


def input_device(model: Any) -> str:
    """Where a model placed by accelerate takes its inputs: the first device of its map that is not disk."""
    for where in getattr(model, "hf_device_map", {}).values():
        if where not in ("disk", "meta"):
            return f"cuda:{where}" if isinstance(where, int) else str(where)
    found = next((p.device for p in model.parameters() if p.device.type != "meta"), None)
    return str(found) if found is not None else Device.cpu.value
