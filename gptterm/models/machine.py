"""How much memory this machine has for a model: RAM, and VRAM where llama.cpp can use a GPU.

No psutil: ``/proc/meminfo`` on Linux, ``sysconf`` elsewhere, ``nvidia-smi``
for NVIDIA GPUs. The GPU counts only when this llama-cpp-python build can
offload to it; a CPU-only build runs every model from RAM.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True)
class Machine:
    ram_total: int | None
    ram_available: int | None
    gpu_name: str | None = None
    vram_total: int | None = None
    vram_free: int | None = None
    #: the GPU is there *and* this llama.cpp build can offload layers to it
    gpu_usable: bool = False

    def fits(self, need: int) -> str:
        """'yes', 'tight' (fits the total but not what is free now) or 'no'."""
        if self.gpu_usable and self.vram_total:
            if need <= (self.vram_free or self.vram_total):
                return "yes"
            if need <= self.vram_total:
                return "tight"
            # does not fit the GPU: llama.cpp can still split layers with RAM
            return self._fits_ram(need - (self.vram_free or 0))
        return self._fits_ram(need)

    def _fits_ram(self, need: int) -> str:
        if self.ram_total is None:
            return "?"
        if need <= (self.ram_available or self.ram_total):
            return "yes"
        return "tight" if need <= self.ram_total else "no"


def _meminfo() -> tuple[int | None, int | None]:
    total = available = None
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                key, _, rest = line.partition(":")
                if key in ("MemTotal", "MemAvailable"):
                    value = int(rest.split()[0]) * 1024
                    if key == "MemTotal":
                        total = value
                    else:
                        available = value
    except (OSError, ValueError, IndexError):
        pass
    if total is None:
        try:
            total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (AttributeError, ValueError, OSError):
            total = None
    return total, available


def _nvidia() -> tuple[str, int, int] | None:
    exe = shutil.which("nvidia-smi")
    if not exe:
        return None
    try:
        out = subprocess.run([exe, "--query-gpu=name,memory.total,memory.free", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=5, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return parse_nvidia_smi(out)


def parse_nvidia_smi(out: str) -> tuple[str, int, int] | None:
    """The first GPU of ``nvidia-smi --query-gpu=name,memory.total,memory.free`` output (MiB) in bytes."""
    for line in out.strip().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) >= 3:
            try:
                return parts[0], int(float(parts[1])) * 2**20, int(float(parts[2])) * 2**20
            except ValueError:
                continue
    return None


def _gpu_offload() -> bool:
    try:
        import llama_cpp  # heavy: llama_cpp (only the machine's probe pays for it); in the try: a build may lack it
    except ImportError:
        return False
    return bool(llama_cpp.llama_supports_gpu_offload())


@lru_cache(maxsize=1)
def this_machine() -> Machine:
    total, available = _meminfo()
    gpu = _nvidia()
    if gpu is None:
        return Machine(total, available)
    name, vram_total, vram_free = gpu
    return Machine(total, available, name, vram_total, vram_free, gpu_usable=_gpu_offload())
