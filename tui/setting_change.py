"""One `.env` edit before it is written: is it valid, what changes, which containers it hits.

The Settings editor asks this as the user types (in a thread: it reads `.env`, and a
model path check stats MODELS_DIR). Which services a change affects is what the engine
itself would decide: the plan for the old and the new settings, compared per service by
the same settings hash `up` compares with the running container's label.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from stack.settings import Settings, build_settings, envfile, mask, validate


@dataclass(frozen=True)
class ChangePreview:
    key: str
    old: str
    new: str
    problems: list[str] = field(default_factory=list)  # empty: valid
    affected: tuple[str, ...] = ()  # services `up` would recreate (or create, or remove)

    @property
    def valid(self) -> bool:
        return not self.problems

    @property
    def changed(self) -> bool:
        return self.old != self.new

    def diff_line(self, *, show_secrets: bool = False) -> str:
        old = self.old if show_secrets else mask(self.key, self.old)
        new = self.new if show_secrets else mask(self.key, self.new)
        return f"{self.key}: {old or '(empty)'} → {new or '(empty)'}"

    def effect(self) -> str:
        if not self.changed:
            return "Nothing changes: that is the value already."
        if not self.affected:
            return "No container uses it: it takes effect at once."
        names = ", ".join(self.affected)
        return f"Applying it (a on Settings) recreates only: {names}."


def preview_change(settings: Settings, key: str, value: str) -> ChangePreview:
    """Validate ``key=value`` against the file as it is now and work out its effect."""
    from stack.engine.plan import plan_services

    path = settings.env_file
    text = path.read_text() if path.exists() else ""
    before_doc = envfile.parse(text)
    after_doc = envfile.parse(envfile.with_value(before_doc, key, value))
    home = path.parent
    before = {(p.key, p.value) for p in validate(before_doc.values(), home=home)}
    # Only what this change breaks: older problems elsewhere do not block it (as on save).
    problems = [
        p.message if p.key == key else str(p)
        for p in validate(after_doc.values(), home=home, lines=after_doc)
        if p.key == key or (p.key, p.value) not in before
    ]
    old = before_doc.values().get(key, settings.values.get(key, ""))
    preview = ChangePreview(key, old, value, problems)
    if problems or old == value:
        return preview
    old_plan = {s.role: s.settings_hash for s in plan_services(build_settings(path, before_doc))}
    new_plan = {s.role: s.settings_hash for s in plan_services(build_settings(path, after_doc))}
    roles = [r for r in (*old_plan, *new_plan) if old_plan.get(r) != new_plan.get(r)]
    return ChangePreview(key, old, value, [], tuple(dict.fromkeys(roles)))
