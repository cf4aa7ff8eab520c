"""One card per stack service: state and health, model, device, ports, uptime or exit."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.content import Content
from textual.reactive import reactive
from textual.widgets import Static

from stack.engine.exits import exit_label
from stack.settings import Settings
from tui.commands import bindings
from tui.formatting import format_duration, host_ports, short_port

if TYPE_CHECKING:
    from stack.engine import ServiceStatus

# What clients call each service (the card's subtitle).
ROLE_NOTES = {
    "inference": "local-chat",
    "inference-code": "local-code",
    "api-gateway": "OpenAI API",
}

# Card looks: the CSS class (border colour), the symbol and the text colour of the state.
LOOKS = {
    "ok": ("●", "$text-success"),
    "busy": ("◐", "$text-warning"),
    "bad": ("✗", "$text-error"),
    "off": ("○", "$text-muted"),
}


def service_roles(settings: Settings) -> list[str]:
    """The services these settings run, in the order cards and log tabs show them."""
    roles = ["inference"]
    if settings.has_code_model:
        roles.append("inference-code")
    return [*roles, "api-gateway"]


def look_of(status: ServiceStatus | None) -> str:
    """ok | busy | bad | off for the card's colours."""
    if status is None or status.state == "missing":
        return "off"
    if status.state == "running":
        return {"starting": "busy", "unhealthy": "bad"}.get(status.health, "ok")
    if status.state in ("restarting", "paused", "created", "removing"):
        return "busy"
    if status.oom_killed or status.exit_code not in (None, 0) or status.state == "dead":
        return "bad"
    return "off"


def state_text(status: ServiceStatus) -> str:
    if status.state == "missing":
        return "not created"
    if status.state == "running":
        if status.health == "starting":
            return "starting · loading" if status.role.startswith("inference") else "starting"
        return f"running · {status.health}" if status.health else "running"
    if status.state == "exited":
        return "exited" if status.exit_code else "stopped"
    return status.state


def short_image(image: str) -> str:
    """``ghcr.io/berriai/litellm:v1.2`` → ``litellm:v1.2``."""
    return image.rsplit("/", 1)[-1]


def card_lines(status: ServiceStatus | None) -> list[Content]:
    if status is None:
        return [Content.styled("· checking…", "$text-muted")]
    symbol, colour = LOOKS[look_of(status)]
    lines = [Content.styled(f"{symbol} {state_text(status)}", f"bold {colour}")]
    if status.state == "missing":
        lines.append(Content.styled("u starts the stack", "$text-muted"))
        return lines
    lines.append(Content(status.model or short_image(status.image) or "—"))
    # GPU/CPU says where a model runs: meaningless for the gateway.
    device = [] if status.role == "api-gateway" else ["GPU" if status.gpu else "CPU"]
    place = [*device, *map(short_port, host_ports(status.ports))]
    lines.append(Content.styled(" · ".join(place), "$text-muted"))
    if status.drift:
        # What runs is not what .env says: name the keys, and the key that fixes it.
        keys = ", ".join(status.drift)
        lines.append(Content.styled(f"out of date: {keys} · u applies", "$text-warning"))
    if status.state == "running":
        if status.uptime_s is not None:
            lines.append(Content.styled(f"up {format_duration(status.uptime_s)}", "$text-muted"))
    else:
        dead = exit_label(status.exit_code, status.oom_killed)
        if dead:
            lines.append(Content.styled(dead, f"bold {colour}"))
        if status.error:
            lines.append(Content.styled(status.error, "$text-error"))
    return lines


class ServiceCard(Static, can_focus=True):
    """A service's card; focus one and press R to restart it, l for its logs."""

    BINDINGS = bindings("dashboard.card")

    status: reactive[ServiceStatus | None] = reactive(None)

    def __init__(self, role: str, status: ServiceStatus | None = None, *, first: bool) -> None:
        # `-first` (no gap before it) is a class, not an order rule such as `:last-of-type`:
        # those make Textual restyle every card again after each mount.
        classes = f"service-card -{look_of(status)}" + (" -first" if first else "")
        super().__init__(classes=classes, markup=False)
        self.role = role
        # Content, not a str: a border title is markup, and roles come from container labels.
        self.border_title = Content(role)
        self.border_subtitle = Content(ROLE_NOTES.get(role, ""))
        self.set_reactive(ServiceCard.status, status)

    def on_mount(self) -> None:
        self.watch_status(self.status)

    def watch_status(self, status: ServiceStatus | None) -> None:
        look = look_of(status)
        for name in LOOKS:
            self.set_class(name == look, f"-{name}")
        self.update(Content("\n").join(card_lines(status)))

    def action_neighbour(self, step: int) -> None:
        cards = list(self.parent.query_children(ServiceCard)) if self.parent else [self]
        index = cards.index(self) if self in cards else 0
        cards[(index + step) % len(cards)].focus()
