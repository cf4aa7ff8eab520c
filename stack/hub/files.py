"""What a repo holds: its GGUF files grouped into models (quants, split sets), with sizes."""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

UNKNOWN_QUANT = "unknown"
# Quant names as llama.cpp and the big GGUF publishers write them: Q4_K_M, Q8_0, IQ4_XS,
# IQ3_XXS, Q4_0_4_4, TQ1_0, F16, BF16, MXFP4, Unsloth's dynamic UD-Q4_K_XL, ...
_QUANT_RE = re.compile(
    r"(?<![a-z0-9])("
    r"(?:ud-)?(?:i?q[1-8]|tq[12])(?:_(?:[0-9]+|k|xxs|xs|s|m|l|xl|nl))*"
    r"|bf16|fp16|f16|fp32|f32|mxfp4(?:_moe)?"
    r")(?![a-z0-9])",
    re.IGNORECASE,
)
_SPLIT_RE = re.compile(r"^(?P<base>.+)-(?P<index>\d{5})-of-(?P<count>\d{5})\.gguf$", re.IGNORECASE)


# --- results ----------------------------------------------------------------------------


@dataclass(frozen=True)
class RepoSummary:
    """One search hit."""

    repo_id: str
    downloads: int = 0
    likes: int = 0
    trending_score: int = 0
    last_modified: datetime | None = None
    gated: bool = False
    parameters: int | None = None  # from the Hub's own GGUF scan, when it has one
    architecture: str | None = None
    context_length: int | None = None


@dataclass(frozen=True)
class RemoteFile:
    """One file of a repo at one commit. ``sha256`` is known for LFS files (all GGUFs)."""

    path: str
    size: int
    sha256: str | None = None

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class GgufEntry:
    """A model you can pick: one GGUF file, or a whole split set as a single entry."""

    name: str  # file name, or the set's name without the -0000N-of-0000M suffix
    quant: str
    files: tuple[RemoteFile, ...]  # split sets: shards in order, shard 1 first
    shards: int = 1  # what the file names announce (a set may be incomplete on the Hub)
    mmproj: bool = False  # a vision projector, loaded beside a model, not a model itself

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)

    @property
    def is_split(self) -> bool:
        return self.shards > 1

    @property
    def complete(self) -> bool:
        return len(self.files) == self.shards

    @property
    def first_file(self) -> RemoteFile:
        """What llama.cpp is given: shard 1 of a split set."""
        return self.files[0]


@dataclass(frozen=True)
class RepoFiles:
    """The GGUF files of a repo at one commit."""

    repo_id: str
    revision: str
    commit: str
    gated: bool
    entries: tuple[GgufEntry, ...] = field(default_factory=tuple)

    @property
    def models(self) -> list[GgufEntry]:
        return [e for e in self.entries if not e.mmproj]

    @property
    def mmproj(self) -> list[GgufEntry]:
        return [e for e in self.entries if e.mmproj]

    def by_quant(self) -> dict[str, list[GgufEntry]]:
        """Model entries grouped by quant name, in listing order (projectors left out)."""
        groups: dict[str, list[GgufEntry]] = defaultdict(list)
        for entry in self.models:
            groups[entry.quant].append(entry)
        return dict(groups)


# --- file names -------------------------------------------------------------------------


def parse_quant(path: str) -> str:
    """The quant named in a GGUF path, upper-cased (``unknown`` when none is named).

    The file name wins over its folders (publishers put split sets in ``Q4_K_M/``); within a
    name the last match wins, since the quant comes last (``…-Q8_0.gguf``).
    """
    parts = path.split("/")
    stem = _SPLIT_RE.sub(r"\g<base>", parts[-1])
    stem = re.sub(r"\.gguf$", "", stem, flags=re.IGNORECASE)
    for part in [stem, *reversed(parts[:-1])]:
        found = _QUANT_RE.findall(part)
        if found:
            return str(found[-1]).upper()
    return UNKNOWN_QUANT


def group_gguf_files(files: list[RemoteFile]) -> list[GgufEntry]:
    """GGUF files as pickable entries: split sets collapse into one entry per set."""
    sets: dict[tuple[str, str, int], dict[int, RemoteFile]] = {}
    slots: list[RemoteFile | tuple[str, str, int]] = []  # listing order, one slot per entry
    for remote in files:
        if not remote.path.lower().endswith(".gguf"):
            continue
        match = _SPLIT_RE.match(remote.name)
        if match is None or int(match["count"]) < 2:
            slots.append(remote)
            continue
        key = (remote.path.rpartition("/")[0], match["base"], int(match["count"]))
        if key not in sets:
            sets[key] = {}
            slots.append(key)
        sets[key].setdefault(int(match["index"]), remote)
    entries: list[GgufEntry] = []
    for slot in slots:
        if isinstance(slot, RemoteFile):
            entries.append(_entry(slot.name, (slot,), 1, slot.path))
        else:
            shards = sets[slot]
            ordered = tuple(shards[i] for i in sorted(shards))
            entries.append(_entry(slot[1], ordered, slot[2], ordered[0].path))
    return entries


def _entry(name: str, files: tuple[RemoteFile, ...], shards: int, path: str) -> GgufEntry:
    return GgufEntry(
        name=name,
        quant=parse_quant(path),
        files=files,
        shards=shards,
        mmproj="mmproj" in name.lower(),
    )


def pick_entry(listing: RepoFiles, wanted: str) -> GgufEntry:
    """The model of ``listing`` named by a quant (Q4_K_M) or by a file name or path."""
    from stack.hub.errors import HubError

    models = listing.models
    lowered = wanted.lower()
    by_file = [
        e for e in models if any(lowered in (f.path.lower(), f.name.lower()) for f in e.files)
    ]
    matches = by_file or [e for e in models if e.quant.lower() == lowered]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        quants = ", ".join(sorted({e.quant for e in models})) or "none"
        raise HubError(
            f"{listing.repo_id} has no GGUF {wanted!r}",
            fix=f"available quants: {quants} (`llm-tui files {listing.repo_id}`)",
        )
    names = ", ".join(e.first_file.path for e in matches)
    raise HubError(
        f"{wanted!r} matches several files in {listing.repo_id}: {names}",
        fix="name the file instead of the quant",
    )
