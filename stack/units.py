"""Numbers with units (and GPU names), written the same way by the CLI, the TUI and every
message."""

from __future__ import annotations

KiB, MiB, GiB, TiB = 1 << 10, 1 << 20, 1 << 30, 1 << 40
_UNITS = ((TiB, "TiB"), (GiB, "GiB"), (MiB, "MiB"), (KiB, "KiB"))


def format_size(size: int | float) -> str:
    """Bytes in binary units with three significant digits: 4.37 GiB, 12.3 GiB, 512 MiB.

    Three digits tell quants of one model apart (Q4_K_M 4.58 GiB vs Q4_K_S 4.37 GiB) and
    keep columns short; VRAM is sold in GiB, so the units are binary, as NVML's are.
    """
    size = max(0, size)
    for scale, unit in _UNITS:
        if size >= scale:
            value = size / scale
            # Round first, so 9.996 GiB reads "10.0 GiB", not "10.00 GiB".
            digits = 2 if round(value, 2) < 10 else 1 if round(value, 1) < 100 else 0
            return f"{value:.{digits}f} {unit}"
    return f"{int(size)} B"


VENDOR_WORDS = ("NVIDIA ", "GeForce ")


def short_gpu_name(name: str) -> str:
    """``NVIDIA GeForce RTX 4050 Laptop GPU`` → ``RTX 4050 Laptop GPU``: room for numbers."""
    for word in VENDOR_WORDS:
        name = name.replace(word, "")
    return name.strip() or "GPU"
