"""The GGUF files in MODELS_DIR: one entry per model, split sets grouped, headers cached.

Headers are cached in a JSON file keyed by path, size and mtime, so a rescan of an
unchanged folder costs one ``stat`` per file. Files that cannot be used (not GGUF, cut
short, an incomplete split set) are listed with the reason instead of stopping the scan.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from stack.atomic import write_atomic
from stack.errors import LlmTuiError
from stack.models.gguf import read_header
from stack.models.header import GgufError, GgufHeader, TruncatedData
from stack.models.splits import SPLIT_NAME, combine_shards, split_set_problem, split_shard_name

# Bump when GgufHeader's fields or the entry layout change: older caches are then ignored.
CACHE_VERSION = 1
SKIPPED_SUFFIXES = (".part", ".corrupt", ".tmp", ".incomplete")


class LibraryError(LlmTuiError):
    """A model-library operation was refused or failed."""


@dataclass(frozen=True)
class LocalModel:
    """One model in MODELS_DIR: a single .gguf or a whole split set."""

    relative_path: str  # POSIX path relative to MODELS_DIR; shard 1 for a split set
    path: Path  # absolute
    shards: tuple[str, ...]  # relative paths of the files present (every shard of a set)
    size: int  # bytes, all shards together
    mtime_ns: int  # the newest shard's
    header: GgufHeader | None  # a split set's headers combined; None if unreadable
    broken: str = ""  # why it cannot be served; empty when usable
    is_chat: bool = False  # it is CHAT_MODEL
    is_code: bool = False  # it is CODE_MODEL

    @property
    def name(self) -> str:
        if self.header is not None and self.header.name:
            return self.header.name
        return PurePosixPath(self.relative_path).stem

    @property
    def usable(self) -> bool:
        return not self.broken


@dataclass(frozen=True)
class _FileInfo:
    """What one file contributes: its header, or why it has none / is incomplete."""

    size: int
    mtime_ns: int
    header: GgufHeader | None
    error: str


def default_cache_path() -> Path:
    """``$XDG_CACHE_HOME/llm-tui/library.json`` (``~/.cache/llm-tui/library.json``)."""
    base = os.environ.get("XDG_CACHE_HOME") or ""
    root = Path(base) if Path(base).is_absolute() else Path.home() / ".cache"
    return root / "llm-tui" / "library.json"


def scan_library(
    models_dir: Path,
    *,
    cache_path: Path | None = None,
    chat_model: str = "",
    code_model: str = "",
) -> list[LocalModel]:
    """Every model under ``models_dir`` (recursively), sorted by relative path.

    Hidden files and folders and partial downloads are skipped. A missing folder is an
    empty library. The cache is read from and written to ``cache_path`` (default:
    :func:`default_cache_path`); a cache that cannot be read or written is ignored.
    """
    root = models_dir.expanduser().resolve()
    cache_file = cache_path if cache_path is not None else default_cache_path()
    cache = _load_cache(cache_file)
    changed = False
    infos: dict[str, _FileInfo] = {}
    for relative, stat in _gguf_files(root):
        key = str(root / relative)
        cached = cache.get(key)
        if cached is not None and (cached.size, cached.mtime_ns) == stat:
            infos[relative] = cached
            continue
        infos[relative] = _read(root / relative, *stat)
        cache[key] = infos[relative]
        changed = True
    for key in [k for k in cache if _is_under(k, root) and _relative(k, root) not in infos]:
        del cache[key]
        changed = True
    if changed:
        _save_cache(cache_file, cache)
    chat, code = _normal(chat_model), _normal(code_model)
    models = [_with_marks(_model(root, g, infos), chat=chat, code=code) for g in _groups(infos)]
    return sorted(models, key=lambda m: m.relative_path)


def delete_model(models_dir: Path, model: LocalModel) -> list[Path]:
    """Delete every file of ``model`` (all shards); the caller has asked the user first.

    Refuses, before deleting anything, a path that leads outside ``models_dir``.
    Returns the files removed.
    """
    root = models_dir.expanduser().resolve()
    targets: list[Path] = []
    for relative in model.shards or (model.relative_path,):
        pure = PurePosixPath(relative)
        if pure.is_absolute() or ".." in pure.parts or "\\" in relative:
            raise _outside(relative, root)
        target = root / pure
        # Resolve the folder, not the file: deleting a symlink removes the link only.
        if not target.parent.resolve().is_relative_to(root) or target.name in ("", "."):
            raise _outside(relative, root)
        if not target.name.lower().endswith(".gguf"):
            raise LibraryError(
                f"refusing to delete {relative!r}: not a .gguf file",
                fix="delete it yourself if you really mean to",
            )
        targets.append(target)
    removed: list[Path] = []
    for target in targets:
        try:
            target.unlink()
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise LibraryError(
                f"cannot delete {target}: {exc.strerror or exc}",
                fix="check the file's permissions (MODELS_DIR may be read-only)",
            ) from None
        removed.append(target)
    return removed


def _outside(relative: str, root: Path) -> LibraryError:
    return LibraryError(
        f"refusing to delete {relative!r}: it is not inside MODELS_DIR ({root})",
        fix="delete it yourself if you really mean to",
    )


def _normal(relative: str) -> str:
    text = relative.strip().replace("\\", "/")
    return str(PurePosixPath(text)) if text else ""


def _with_marks(model: LocalModel, *, chat: str, code: str) -> LocalModel:
    names = {model.relative_path, *model.shards}
    is_chat, is_code = bool(chat) and chat in names, bool(code) and code in names
    if not (is_chat or is_code):
        return model
    return LocalModel(
        model.relative_path,
        model.path,
        model.shards,
        model.size,
        model.mtime_ns,
        model.header,
        model.broken,
        is_chat=is_chat,
        is_code=is_code,
    )


def _gguf_files(root: Path) -> Iterator[tuple[str, tuple[int, int]]]:
    """(POSIX path relative to ``root``, (size, mtime_ns)) of each candidate model file."""
    stack = [root]
    seen: set[tuple[int, int]] = set()  # folders symlinked into a loop are walked once
    while stack:
        folder = stack.pop()
        try:
            info = folder.stat()
            entries = list(os.scandir(folder))
        except OSError:
            continue
        if (info.st_dev, info.st_ino) in seen:
            continue
        seen.add((info.st_dev, info.st_ino))
        for entry in entries:
            name = entry.name
            if name.startswith("."):
                continue
            try:
                if entry.is_dir():
                    stack.append(Path(entry.path))
                    continue
                lower = name.lower()
                if not lower.endswith(".gguf") or lower.endswith(SKIPPED_SUFFIXES):
                    continue
                stat = entry.stat()
            except OSError:
                continue
            relative = Path(entry.path).relative_to(root).as_posix()
            yield relative, (stat.st_size, stat.st_mtime_ns)


def _read(path: Path, size: int, mtime_ns: int) -> _FileInfo:
    try:
        return _FileInfo(size, mtime_ns, read_header(path), "")
    except TruncatedData as exc:
        return _FileInfo(size, mtime_ns, exc.header, exc.reason)
    except GgufError as exc:
        return _FileInfo(size, mtime_ns, None, exc.reason)


@dataclass(frozen=True)
class _Group:
    """One model's files: shard 1's path (present or not), the set's size, those present."""

    first: str
    count: int
    present: tuple[str, ...]


def _groups(infos: Mapping[str, _FileInfo]) -> list[_Group]:
    """Relative paths grouped per model, split set shards in order.

    Built from the files present: a name announcing 99,999 shards costs no more than any
    other. A name whose index is not within its count is a file of its own.
    """
    sets: dict[tuple[str, str, int], list[str]] = {}
    groups: list[_Group] = []
    for relative in sorted(infos):
        pure = PurePosixPath(relative)
        match = SPLIT_NAME.match(pure.name)
        count = int(match["count"]) if match else 0
        if match is None or not 1 <= int(match["index"]) <= count or count < 2:
            groups.append(_Group(relative, 1, (relative,)))
            continue
        sets.setdefault((str(pure.parent), match["stem"], count), []).append(relative)
    for (parent, stem, count), present in sets.items():
        first = (PurePosixPath(parent) / split_shard_name(stem, 1, count)).as_posix()
        groups.append(_Group(first, count, tuple(sorted(present))))
    return groups


def _model(root: Path, group: _Group, infos: Mapping[str, _FileInfo]) -> LocalModel:
    files = [infos[r] for r in group.present]
    headers = [f.header for f in files if f.header is not None]
    broken = _problem(group, infos)
    if group.count > 1 and headers:
        header: GgufHeader | None = combine_shards(headers)
    else:
        header = headers[0] if headers else None
    return LocalModel(
        relative_path=group.first,
        path=root / group.first,
        shards=group.present,
        size=sum(f.size for f in files),
        mtime_ns=max(f.mtime_ns for f in files),
        header=header,
        broken=broken,
    )


def _problem(group: _Group, infos: Mapping[str, _FileInfo]) -> str:
    if group.count == 1:
        info = infos[group.first]
        if info.error:
            return info.error
        header = info.header
        if header is not None and header.split_count > 1:
            return (
                f"this is shard {header.split_no + 1} of {header.split_count} of a split set, "
                "but its name lacks the -0000N-of-0000M part llama.cpp needs"
            )
        return ""
    headers = {Path(r): infos[r].header for r in group.present}
    problem = split_set_problem(Path(group.first), group.count, headers)
    if problem:
        return problem
    for index, relative in enumerate(group.present, start=1):
        if infos[relative].error:
            return f"shard {index} of {group.count}: {infos[relative].error}"
    return ""


def _is_under(key: str, root: Path) -> bool:
    return key.startswith(f"{root}{os.sep}")


def _relative(key: str, root: Path) -> str:
    return Path(key).relative_to(root).as_posix()


def _load_cache(path: Path) -> dict[str, _FileInfo]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("version") != CACHE_VERSION:
        return {}
    files = data.get("files")
    if not isinstance(files, dict):
        return {}
    cache: dict[str, _FileInfo] = {}
    for key, entry in files.items():
        with contextlib.suppress(KeyError, TypeError, ValueError):
            cache[key] = _entry_from_json(entry)
    return cache


def _entry_from_json(entry: Mapping[str, Any]) -> _FileInfo:
    raw = entry["header"]
    header = GgufHeader.from_dict(raw) if raw is not None else None
    return _FileInfo(int(entry["size"]), int(entry["mtime_ns"]), header, str(entry["error"]))


def _save_cache(path: Path, cache: Mapping[str, _FileInfo]) -> None:
    files = {
        key: {
            "size": info.size,
            "mtime_ns": info.mtime_ns,
            "header": info.header.as_dict() if info.header is not None else None,
            "error": info.error,
        }
        for key, info in sorted(cache.items())
    }
    text = json.dumps({"version": CACHE_VERSION, "files": files}, separators=(",", ":"))
    # A cache that cannot be written only makes the next scan slower.
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, text)
