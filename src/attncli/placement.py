"""Where and in which dtype a model's weights load: from_pretrained's arguments, placement handed to accelerate."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from attncli.choices import Device, DeviceMap, TorchDtype
from attncli.errors import ModelLoadError, UsageError


def placement(device: str, dtype: TorchDtype | str | None, device_map: DeviceMap | str | dict | None,
              max_memory: dict | None, offload_folder: Path | str | None) -> dict[str, Any]:
    """from_pretrained's dtype and accelerate placement arguments, checked before any weights load."""
    kwargs: dict[str, Any] = {}
    if dtype is not None:
        import torch

        kwargs["dtype"] = getattr(torch, TorchDtype(dtype).value)
    if device_map is None:
        if max_memory or offload_folder:
            raise UsageError("max_memory and offload_folder only apply with a device map", "pass device_map='auto'")
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
        kwargs["offload_folder"] = str(offload_folder)
    return kwargs


def input_device(model: Any) -> str:
    """Where a model placed by accelerate takes its inputs: the first device of its map that is not disk."""
    for where in getattr(model, "hf_device_map", {}).values():
        if where not in ("disk", "meta"):
            return f"cuda:{where}" if isinstance(where, int) else str(where)
    found = next((p.device for p in model.parameters() if p.device.type != "meta"), None)
    return str(found) if found is not None else Device.cpu.value
