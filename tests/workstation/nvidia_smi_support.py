"""A stand-in `nvidia-smi` for tests: CI has no GPU, so a script on PATH answers as the driver's tool does."""

from __future__ import annotations

from pathlib import Path

from workstation import inventory

# nvidia-smi's own answers, as an H100 host with one unhealthy GPU and a card without ECC give them
# (`--format=csv,noheader,nounits`: ", " between fields, memory in MiB, "[N/A]" for what the card lacks).
GPU_LINES = (
    "0, GPU-4a7c3d2e-91f0-5b6a-8c1d-0e2f3a4b5c6d, NVIDIA H100 80GB HBM3, 81559, 34, 0\n"
    "1, GPU-b81e22f4-07c3-4d9a-a6e5-3f2c1d0b9a87, NVIDIA H100 80GB HBM3, 81559, 41, 3\n"
    "2, GPU-0d9e8f7a-6b5c-4d3e-2f1a-0b9c8d7e6f5a, NVIDIA GeForce RTX 4090, 24564, [N/A], [Not Supported]\n"
)


def stand_in_nvidia_smi(folder: Path, *, gpus: str, processes: str = "", exit_code: int = 0, sleep: int = 0) -> Path:
    """An `nvidia-smi` on PATH that answers the two queries the inventory makes, as the real one does.

    It stands in for the NVIDIA driver because CI has no GPU; everything else — running it, its
    timeout, reading /proc for the processes' users — is the real code on real processes.
    """
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "gpus.csv").write_text(gpus)
    (folder / "processes.csv").write_text(processes)
    program = folder / "nvidia-smi"
    program.write_text(
        "#!/bin/sh\n"
        f"sleep {sleep}\n"
        f"if [ {exit_code} -ne 0 ]; then echo \"NVIDIA-SMI has failed because it couldn't communicate with "
        f'the NVIDIA driver. Make sure that the latest NVIDIA driver is installed and running."; exit {exit_code}; fi\n'
        'case "$1" in\n'
        f'  --query-gpu={inventory.GPU_FIELDS}) [ "$2" = --format=csv,noheader,nounits ] '
        f'&& cat "{folder}/gpus.csv" ;;\n'
        f'  --query-compute-apps={inventory.PROCESS_FIELDS}) [ "$2" = --format=csv,noheader ] '
        f'&& cat "{folder}/processes.csv" ;;\n'
        '  *) echo "Invalid combination of input arguments." >&2; exit 2 ;;\n'
        "esac\n"
    )
    program.chmod(0o755)
    return folder
