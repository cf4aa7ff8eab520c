"""Split GGUF sets (`<name>-00001-of-00003.gguf`): their names, completeness, one header.

llama.cpp loads a set from shard 1; every shard must be there, from the same download.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from stack.models.gguf import read_header
from stack.models.header import GgufError, GgufHeader

SPLIT_NAME = re.compile(r"^(?P<stem>.*)-(?P<index>\d{5})-of-(?P<count>\d{5})\.gguf$")


def split_shard_paths(path: Path) -> list[Path] | None:
    """All file names of the split set ``path`` belongs to, or None if it is not one."""
    match = SPLIT_NAME.match(path.name)
    if match is None:
        return None
    count = int(match["count"])
    return [path.parent / split_shard_name(match["stem"], i, count) for i in range(1, count + 1)]


def split_shard_name(stem: str, index: int, count: int) -> str:
    """``<stem>-0000i-of-0000n.gguf``, as gguf-split names shard ``index`` (from 1)."""
    return f"{stem}-{index:05d}-of-{count:05d}.gguf"


# A problem lists this many missing shards by name and counts the rest.
MAX_NAMED_SHARDS = 3


def split_set_problem(
    first: Path, count: int, headers: Mapping[Path, GgufHeader | None]
) -> str | None:
    """Why the split set of ``count`` shards whose shard 1 is ``first`` is unusable.

    ``headers`` maps each existing shard (named as the set's) to its header (None: it
    could not be read; a shard absent from the mapping is missing). The work is the shards
    present plus a few, however many the names announce: a name is no reason to walk
    99,999 files.
    """
    match = SPLIT_NAME.match(first.name)
    if match is None:
        raise ValueError(f"{first.name} is not named like a split set")
    stem = match["stem"]
    missing = count - len(headers)
    if missing > 0:
        named: list[str] = []
        index = 1  # each step is a present shard or a missing one named: few steps
        while len(named) < MAX_NAMED_SHARDS and index <= count:
            path = first.parent / split_shard_name(stem, index, count)
            if path not in headers:
                named.append(path.name)
            index += 1
        more = f" and {missing - len(named):,} more" if missing > len(named) else ""
        return f"split set incomplete: missing {', '.join(named)}{more}"
    for shard in sorted(headers, key=lambda p: p.name):
        header = headers[shard]
        found = SPLIT_NAME.match(shard.name)
        if header is None or found is None:
            continue
        index = int(found["index"]) - 1
        if header.split_count != count or header.split_no != index:
            return (
                f"{shard.name} says it is shard {header.split_no + 1} of {header.split_count}, "
                f"not {index + 1} of {count}: shards from different downloads?"
            )
    return None


def check_split_set(path: Path) -> list[Path]:
    """The shards of the split set ``path`` belongs to, after checking each is present.

    Raises GgufError when a shard is missing, unreadable, truncated or from another set.
    A file that is not named like a split set is returned alone.
    """
    shards = split_shard_paths(path)
    if shards is None:
        return [path]
    headers: dict[Path, GgufHeader | None] = {}
    for shard in shards:
        if shard.is_file():
            headers[shard] = read_header(shard)
    problem = split_set_problem(shards[0], len(shards), headers)
    if problem:
        raise GgufError(
            problem, path=shards[0], fix="download every shard of the set into the same folder"
        )
    return shards


def combine_shards(headers: Sequence[GgufHeader]) -> GgufHeader:
    """One header for a whole split set: metadata of shard 1, tensor totals of all shards."""
    first = min(headers, key=lambda h: h.split_no)
    sizes = [h.file_size for h in headers]
    count = max(len(h.layer_bytes) for h in headers)
    layers = [
        sum(h.layer_bytes[i] for h in headers if i < len(h.layer_bytes)) for i in range(count)
    ]
    return dataclasses.replace(
        first,
        parameter_count=sum(h.parameter_count for h in headers),
        tensor_count=sum(h.tensor_count for h in headers),
        data_size=sum(h.data_size for h in headers),
        file_size=None if None in sizes else sum(s or 0 for s in sizes),
        layer_bytes=tuple(layers),
        input_bytes=sum(h.input_bytes for h in headers),
        output_bytes=sum(h.output_bytes for h in headers),
        has_output_tensor=any(h.has_output_tensor for h in headers),
    )
