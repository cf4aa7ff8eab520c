"""The real app, headless, in a process that loads the fake NVML library: what the GPU views say.

    python -m tests.support.fake_nvml.app_probe ENV_FILE

Runs `make_app` with the real services (the real GPU sampler through pynvml, the real
engine at DOCKER_HOST, /proc for the container mapping) except the doctor checks (slow
and beside the point here), opens the dashboard and then the GPU screen, waits for a
reading on each, and prints one JSON object with what their widgets show.
"""

from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from stack.settings import load_settings
from tests.tui.helpers import settle, text, until
from tui.__main__ import make_app
from tui.services import Services


async def probe(env_file: Path) -> dict[str, Any]:
    from textual.widgets import Static

    from tui.screens.gpu import GpuScreen
    from tui.widgets.gpu_chart import Chart
    from tui.widgets.gpu_panel import GpuPanel

    services = replace(Services(), run_checks=lambda settings: [], first_run_guide=False)
    app = make_app(load_settings(env_file), services)
    shown: dict[str, Any] = {}
    async with app.run_test(size=(100, 32)) as pilot:
        allow = ("stack-events", "gpu-sample", "doctor")
        panel = app.screen.query_one(GpuPanel)
        await until(lambda: panel.reading is not None, "the dashboard's GPU reading")
        await settle(app, allow=allow)
        shown["panel"] = text(panel.query_one("#gpu-lines", Static))
        shown["panel_title"] = str(panel.border_title)
        await pilot.press("7")
        await until(lambda: isinstance(app.screen, GpuScreen), "the GPU screen")
        screen = app.screen
        assert isinstance(screen, GpuScreen)
        await until(lambda: screen.reading is not None, "the GPU screen's reading")
        await settle(app, allow=allow)
        shown["title"] = text(screen.query_one("#gpu-title", Static))
        shown["usage"] = text(screen.query_one("#gpu-usage", Static))
        shown["charts"] = {
            (chart.id or "").removeprefix("gpu-chart-"): {
                "title": str(chart.border_title),
                "empty": chart.empty_text if not chart.series else "",
            }
            for chart in screen.query(Chart)
        }
        await pilot.press("1")
        await settle(app, allow=allow)
    return shown


if __name__ == "__main__":
    print(json.dumps(asyncio.run(probe(Path(sys.argv[1])))))
