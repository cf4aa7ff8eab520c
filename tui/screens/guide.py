"""The first-run guide: from no model to a streamed answer in a handful of keys.

checks → the use → a recommended model for this GPU → its download → settings tuned for
the use → the stack up → a first answer → Connect. The steps are stack/quickstart.py's,
the same as `llm-tui quickstart`; each blocking one runs in a thread worker with a cancel
token, posting a message when it is done. Enter takes the highlighted (recommended) choice;
Esc leaves the guide at any step, and g on the Dashboard comes back.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Header, OptionList, ProgressBar, Static
from textual.widgets.option_list import Option
from textual.worker import Worker, WorkerState, get_current_worker

from stack.cancel import CancelToken
from stack.doctor import Check, Status
from stack.settings import Settings
from stack.units import format_size
from tui.commands import bindings
from tui.screens.base import forward_worker_error
from tui.widgets.checklist import Checklist
from tui.widgets.footer import Footer

if TYPE_CHECKING:
    from stack.hub.jobs import DownloadProgress
    from stack.models.recommend import Recommendation
    from stack.models.tune import Tuning
    from stack.quickstart import Planned
    from tui.app import LlmTuiApp

GUIDE_SCREEN = "guide"
STEPS = ("Checks", "Use", "Model", "Download", "Settings", "Start", "Answer")  # one row at 80


class GuideScreen(Screen[None]):
    """One screen, one step at a time; the body changes, the keys stay the same."""

    CSS_PATH = "guide.tcss"  # loaded when it first shows

    BINDINGS = [*bindings("guide"), Binding("escape", "leave", "Leave", show=True)]
    AUTO_FOCUS = "#guide-choices"

    @dataclass
    class Checked(Message):
        checks: list[Check]

    @dataclass
    class Recommended(Message):
        found: list[Recommendation]

    @dataclass
    class Downloading(Message):
        progress: DownloadProgress

    @dataclass
    class Downloaded(Message):
        planned: Planned

    @dataclass
    class Tuned(Message):
        tuning: Tuning

    @dataclass
    class Progress(Message):
        line: str

    @dataclass
    class Started(Message):
        settings: Settings

    @dataclass
    class Answer(Message):
        text: str
        first_token_s: float | None
        done: bool

    def __init__(self) -> None:
        super().__init__()
        self.step = 0
        self.use = "agent"
        self.found: list[Recommendation] = []
        self.planned: Planned | None = None
        self.tuning: Tuning | None = None
        self.answer = ""
        self.busy = False
        self.started_at = time.monotonic()
        self.first_token_s: float | None = None  # from the guide's start, download aside
        self.download_s = 0.0

    @property
    def llm_app(self) -> LlmTuiApp:
        return cast("LlmTuiApp", self.app)

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="guide"):
            yield Static("", id="guide-steps", markup=False)
            yield Static("", id="guide-body", markup=False)
            yield Checklist(id="guide-checks")  # step 1's: the dashboard's rows, aligned
            yield OptionList(id="guide-choices")
            yield ProgressBar(id="guide-progress", show_eta=True)
            yield Static("", id="guide-hint", markup=False)
        yield Footer()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # Keys only where their step is: r while checking, c once the model has answered.
        if action == "recheck":
            return self.step == 0
        if action == "go_chat":
            return self.step == 6 and self.first_token_s is not None
        return True

    def on_mount(self) -> None:
        self.sub_title = "Guided setup"
        self.show_step(0)
        self.query_one("#guide-progress").display = False
        self.run_checks(self.llm_app.settings)

    # --- drawing ------------------------------------------------------------------------

    def show_step(self, step: int, body: str | Content = "", hint: str = "") -> None:
        self.step = step
        parts = [
            ("● " if i == step else "✓ " if i < step else "○ ") + name
            for i, name in enumerate(STEPS)
        ]
        self.query_one("#guide-steps", Static).update(
            Content(f"Step {step + 1} of {len(STEPS)}  " + " ".join(parts))
        )
        self.query_one("#guide-body", Static).update(body if body else Content(""))
        self.query_one("#guide-body").display = bool(body)
        self.query_one(Checklist).display = step == 0
        self.query_one("#guide-hint", Static).update(Content(hint))
        self.refresh_bindings()  # each step has its own keys (see check_action)

    def choices(self, options: list[str], highlighted: int = 0) -> None:
        menu = self.query_one("#guide-choices", OptionList)
        menu.clear_options()
        menu.add_options([Option(Content(text)) for text in options])
        menu.display = bool(options)
        if options:
            menu.highlighted = highlighted
            menu.focus()

    # --- 1. checks ----------------------------------------------------------------------

    @work(thread=True, exclusive=True, exit_on_error=False, group="guide-checks")
    def run_checks(self, settings: Settings) -> None:
        # The guide puts models there: a folder that does not exist yet is not a problem.
        settings.models_dir.mkdir(parents=True, exist_ok=True)
        self.post_message(self.Checked(self.llm_app.services.run_checks(settings)))

    def on_guide_screen_checked(self, message: Checked) -> None:
        from stack.quickstart import blocking_problems

        self.query_one(Checklist).show(message.checks)
        blocking = blocking_problems(message.checks)
        if blocking:
            self.show_step(
                0, hint="Fix the ✗ above, then press r to check again (Esc leaves the guide)."
            )
            self.choices([])
            return
        self.show_step(0, hint="Enter: continue (a ! only warns)")
        warned = any(check.status is Status.WARN for check in message.checks)
        # On the option too: at 80x24 a list of warnings leaves the hint below the screen.
        self.choices(["Continue  (a ! only warns)" if warned else "Continue"])

    def action_recheck(self) -> None:
        if self.step == 0:
            self.query_one(Checklist).show(None)
            self.run_checks(self.llm_app.settings)

    # --- 2. the use ---------------------------------------------------------------------

    def ask_use(self) -> None:
        from stack.quickstart import GUIDE_USES

        self.show_step(1, "What will talk to the model?", "Enter picks (1 and 2 work too)")
        self.choices([f"{n}. {text}" for n, text in enumerate(GUIDE_USES.values(), 1)])

    def action_pick(self, number: int) -> None:
        menu = self.query_one("#guide-choices", OptionList)
        if menu.display and 0 < number <= menu.option_count:
            menu.highlighted = number - 1
            menu.action_select()

    # --- 3. the model -------------------------------------------------------------------

    def look_for_models(self) -> None:
        self.show_step(2, f"Looking on Hugging Face for models for {self.use}…")
        self.choices([])
        free = self.free_vram()
        self.recommend(self.llm_app.settings, self.use, free)

    def free_vram(self) -> int | None:
        from stack.gpu import read_free_vram

        return read_free_vram(self.llm_app.services.read_gpus).free

    @work(thread=True, exclusive=True, exit_on_error=False, group="guide-models")
    def recommend(self, settings: Settings, use: str, free: int | None) -> None:
        from stack.quickstart import recommendations

        self.post_message(self.Recommended(recommendations(settings, use, free)))

    def on_guide_screen_recommended(self, message: Recommended) -> None:
        from stack.models.recommend import CPU_WARNING

        self.found = message.found
        cpu = any(r.fit is None or r.fit.free_vram is None for r in self.found)
        head = "Recommended for this machine (the best first)"
        self.show_step(
            2,
            f"{head}. {CPU_WARNING[0].upper()}{CPU_WARNING[1:]}." if cpu else f"{head}:",
            "Enter downloads the highlighted one",
        )
        self.choices([f"{r.label}\n  {r.why.replace('; ' + CPU_WARNING, '')}" for r in self.found])

    # --- 4. the download ----------------------------------------------------------------

    def download(self, pick: Recommendation) -> None:
        from stack.quickstart import plan_download

        settings = self.llm_app.settings
        planned = plan_download(settings, pick)
        self.choices([])
        if planned.present:
            self.post_message(self.Downloaded(planned))
            return
        self.show_step(
            3, f"Downloading {pick.entry.name} ({format_size(pick.entry.size)}) into "
            f"{settings.models_dir}…", "resumable: quitting keeps what has arrived"
        )  # fmt: skip
        bar = self.query_one("#guide-progress", ProgressBar)
        bar.update(total=pick.entry.size, progress=0)
        bar.display = True
        self.fetch(settings, planned, self.llm_app.cancel_token())

    @work(thread=True, exclusive=True, exit_on_error=False, group="guide-download")
    def fetch(self, settings: Settings, planned: Planned, cancel: CancelToken) -> None:
        from stack.hub.downloads import Downloader, JobState

        started = time.monotonic()
        settings.models_dir.mkdir(parents=True, exist_ok=True)
        downloader = Downloader.from_settings(settings)
        cancel.on_cancel(lambda: downloader.close(cancel=True, timeout=2))
        try:

            def report(progress: DownloadProgress) -> None:
                self.post_message(self.Downloading(progress))

            job = downloader.enqueue(planned.request, report)
            final = job.wait()
        finally:
            downloader.close(cancel=False)
        self.download_s = time.monotonic() - started
        if final.state is not JobState.DONE:
            if final.error is not None:
                raise final.error
            return  # cancelled: the part stays for the next try
        self.post_message(self.Downloaded(planned))

    def on_guide_screen_downloading(self, message: Downloading) -> None:
        self.query_one("#guide-progress", ProgressBar).update(progress=message.progress.bytes_done)

    def on_guide_screen_downloaded(self, message: Downloaded) -> None:
        self.planned = message.planned
        self.query_one("#guide-progress").display = False
        self.show_step(4, f"Sizing the settings for {message.planned.serve}…")
        self.tune(self.llm_app.settings, message.planned.serve, self.use, self.free_vram())

    # --- 5. tuned settings --------------------------------------------------------------

    @work(thread=True, exclusive=True, exit_on_error=False, group="guide-tune")
    def tune(self, settings: Settings, serve: str, use: str, free: int | None) -> None:
        from stack.quickstart import tuned_for

        self.post_message(self.Tuned(tuned_for(settings, serve, use, free)))

    def on_guide_screen_tuned(self, message: Tuned) -> None:
        from stack.models.tune import describe

        self.tuning = message.tuning
        lines = describe(message.tuning, self.llm_app.settings)
        self.show_step(4, "\n".join(lines), "Enter writes these to .env and starts the stack")
        self.choices(["Apply and start"])

    # --- 6. start -----------------------------------------------------------------------

    def start(self) -> None:
        if self.tuning is None or not self.llm_app.begin_stack_operation("the guided start"):
            return
        self.choices([])
        self.show_step(5, "Writing .env and starting the stack…")
        self.apply_and_start(self.llm_app.settings, self.tuning, self.llm_app.cancel_token())

    @work(thread=True, exclusive=True, exit_on_error=False, group="guide-start")
    def apply_and_start(self, settings: Settings, tuning: Tuning, cancel: CancelToken) -> None:
        from stack.quickstart import apply_tuning

        fresh = apply_tuning(settings, tuning)
        self.post_message(self.Started(fresh))  # the app takes the new settings first
        engine = self.llm_app.services.make_engine(fresh)

        def report(line: str) -> None:
            self.post_message(self.Progress(line))

        try:
            engine.up(progress=report, cancel=cancel)
        finally:
            engine.close()
        self.post_message(self.Progress(""))

    def on_guide_screen_progress(self, message: Progress) -> None:
        if message.line:
            self.query_one("#guide-hint", Static).update(Content(message.line))
            return
        self.llm_app.end_stack_operation()
        self.say_hello()

    def on_guide_screen_started(self, message: Started) -> None:
        self.llm_app.update_settings(message.settings)

    # --- 7. a first answer --------------------------------------------------------------

    def say_hello(self) -> None:
        from stack.quickstart import HELLO

        self.answer = ""
        self.show_step(6, f"You: {HELLO}\nlocal-chat: …")
        self.hello(self.llm_app.settings, self.llm_app.cancel_token())

    @work(thread=True, exclusive=True, exit_on_error=False, group="guide-hello")
    def hello(self, settings: Settings, cancel: CancelToken) -> None:
        from stack.quickstart import HELLO, HELLO_TOKENS, chat_url

        text = ""
        first: float | None = None
        worker = get_current_worker()
        for batch in self.llm_app.services.stream_chat(
            chat_url(settings),
            settings.litellm_master_key,
            [{"role": "user", "content": HELLO}],
            max_tokens=HELLO_TOKENS,
            cancel=cancel,
        ):
            if worker.is_cancelled:
                return
            piece = "".join(delta.text for delta in batch)
            if piece and first is None:
                first = time.monotonic()
            text += piece
            self.post_message(self.Answer(text, None, done=False))
        elapsed = None if first is None else first - self.started_at - self.download_s
        self.post_message(self.Answer(text, elapsed, done=True))

    def on_guide_screen_answer(self, message: Answer) -> None:
        from stack.quickstart import HELLO

        self.answer = message.text
        body = f"You: {HELLO}\nlocal-chat: {message.text or '…'}"
        if not message.done:
            self.show_step(6, body)
            return
        self.first_token_s = message.first_token_s
        took = f" (ready {message.first_token_s:.0f} s after the guide began, the download aside)"
        self.show_step(
            6,
            body + (took if message.first_token_s is not None else ""),
            "Your model answers. Enter: how to connect an IDE (Connect) · c: Chat",
        )
        self.choices(["Connect an IDE", "Go to Chat"])

    # --- Enter on a choice --------------------------------------------------------------

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        index = event.option_index
        if self.step == 0:
            self.ask_use()
        elif self.step == 1:
            from stack.quickstart import GUIDE_USES

            self.use = list(GUIDE_USES)[index]
            self.look_for_models()
        elif self.step == 2 and self.found:
            self.download(self.found[index])
        elif self.step == 4:
            self.start()
        elif self.step == 6:
            self.finish("connect" if index == 0 else "chat")

    def action_go_chat(self) -> None:
        if self.step == 6 and self.query_one("#guide-choices").display:
            self.finish("chat")

    def finish(self, mode: str) -> None:
        self.dismiss()
        self.llm_app.switch_mode(mode)

    def action_leave(self) -> None:
        self.dismiss()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if not worker.group.startswith("guide-") or event.state is not WorkerState.ERROR:
            return
        if worker.group == "guide-start":
            self.llm_app.end_stack_operation()
        from tui.app import error_text  # tui.app imports every screen

        steps = {"guide-models": 2, "guide-download": 3, "guide-tune": 4, "guide-start": 5}
        self.show_step(
            steps.get(worker.group, self.step),
            Content.styled("✗ " + error_text(worker.error), "$text-error"),
            "Esc leaves the guide; fix it and press g on the Dashboard to come back",
        )
        self.choices([])
        forward_worker_error(self, event)


def open_guide(app: Any) -> None:
    """Show the guide (a fresh one each time: it starts from the checks)."""
    app.push_screen(GuideScreen())
