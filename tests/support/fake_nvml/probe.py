"""A process that samples GPUs on command, for tests that load the fake NVML library.

    python -m tests.support.fake_nvml.probe '{"targets": [{"role": …, "container_id": …}]}'

Each line on stdin is a command, answered by one JSON line on stdout:
    tick     one `GpuSampler.sample()` with the targets (a reading, history kept)
    read     one `read_gpus()` (a session opened and shut for it)
    quit     close the sampler and exit
Errors answer {"error": "<type>: <message>"}. The test changes the script between
commands; the library sees the change on its next call.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from typing import Any

from stack.gpu import GpuSampler, GpuUnavailable, ServiceTarget, read_gpus


def plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    return value


def main() -> None:
    options = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
    targets = [ServiceTarget(**target) for target in options.get("targets", [])]
    sampler = GpuSampler(wsl=options.get("wsl"))
    for line in sys.stdin:
        command = line.strip()
        try:
            if command == "tick":
                answer: Any = plain(sampler.sample(time.monotonic(), targets))
                answer["history"] = {
                    key: [value for _, value in sampler.history.series(key)]
                    for key in sampler.history
                }
            elif command == "read":
                answer = plain(read_gpus())
            elif command == "quit":
                sampler.close()
                return
            else:
                answer = {"error": f"unknown command {command!r}"}
        except GpuUnavailable as error:
            answer = {"error": f"GpuUnavailable: {error}"}
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()
