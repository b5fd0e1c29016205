"""Paths provider: which files `LOG_PATH` names now, and how they map onto Bytewax partitions.

`LOG_PATH` holds literal paths and globs (`**` recurses); `LOG_EXCLUDE` holds globs never read
(matched against the whole path with fnmatch, so `*.gz` or `*/archive/*` work). The globs are
expanded again at every discovery (`DISCOVER_INTERVAL_S`) while the processor runs, so files created
after start are read (from their start: `START_AT` only decides for files present at first start).

Partitions (decision): Bytewax partitions are fixed when the flow starts, but files come and go, so a
partition is not a file. For `process`, each configured pattern is a *group* of `TAIL_SHARDS`
partitions; a discovered file belongs to the first pattern that matches it, and within the group to
the shard `fingerprint % shards`. Sharding by the content fingerprint (not the path) keeps a renamed,
copied or compressed rotation in the partition that holds its checkpoint, so it continues at its
offset. With one shard, a group's partition key is the pattern itself: for a literal `LOG_PATH` that is
the key the previous version used, so its snapshots resume. `ingest` (no recovery) uses one group of
all its paths with one shard per worker, so files are read in parallel.

Rotated siblings: a file in the same directory whose name extends a known file's name at a `.`, `-`
or `_` (`api.log.1`, `api.log.2.gz`, `api.log-20261125`) is a *sibling*. Siblings are never read as
new files (a literal `LOG_PATH` means that one file), but a sibling holding a known fingerprint with
unread lines (a rotation that happened while the processor was behind or down) is continued.
"""

from __future__ import annotations

import fnmatch
import glob
import logging
import os
import stat
from collections.abc import Iterable, Sequence

log = logging.getLogger(__name__)
_GLOB_CHARS = frozenset("*?[")
_SIBLING_CUTS = ".-_"


def is_glob(pattern: str) -> bool:
    return bool(_GLOB_CHARS & set(pattern))


def path_problem(pattern: str) -> str | None:
    """A configuration error a user can act on (a directory where a file is expected), or None."""
    if not is_glob(pattern) and os.path.isdir(pattern):
        return (
            f"LOG_PATH names a directory, not a file: {pattern} "
            f"(give a file or a glob, e.g. {os.path.join(pattern, '*.log')})"
        )
    return None


def expand(patterns: Sequence[str], *, must_exist: bool) -> list[str]:
    """Files for patterns now: glob matches (regular files only) and literal paths, sorted."""
    found: set[str] = set()
    for pattern in patterns:
        if is_glob(pattern):
            found.update(os.path.normpath(p) for p in glob.glob(pattern, recursive=True) if os.path.isfile(p))
        elif must_exist and not os.path.isfile(pattern):
            raise FileNotFoundError(f"log file not found: {pattern}")
        else:
            found.add(os.path.normpath(pattern))
    if must_exist and not found:
        raise FileNotFoundError(f"no log file matches {', '.join(patterns)}")
    return sorted(found)


def _is_file(path: str) -> bool:
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def _prefixes(name: str) -> Iterable[str]:
    """`a.log.1.gz` -> `a`, `a.log`, `a.log.1`: the names it could be a rotation of."""
    for i, ch in enumerate(name):
        if ch in _SIBLING_CUTS and i > 0:
            yield name[:i]


class PathsProvider:
    """The files of one group of patterns: matched now, minus excluded ones, minus those an earlier
    group claims; and their rotated siblings."""

    def __init__(
        self,
        patterns: Sequence[str],
        exclude: Sequence[str] = (),
        earlier: Sequence[str] = (),
        later: Sequence[str] = (),
        quiet: Sequence[str] = (),
    ) -> None:
        self.patterns = [os.path.normpath(p) for p in patterns]
        self._exclude = [os.path.normpath(p) for p in exclude]
        self._earlier = [os.path.normpath(p) for p in earlier]
        self._others = self._earlier + [os.path.normpath(p) for p in later]
        self._announced: set[str] = {os.path.normpath(p) for p in quiet}  # never said to be missing

    def excluded(self, path: str) -> bool:
        return any(fnmatch.fnmatchcase(path, p) for p in self._exclude)

    @staticmethod
    def _claimed(path: str, patterns: Sequence[str]) -> bool:
        return any(p == path or (is_glob(p) and fnmatch.fnmatchcase(path, p)) for p in patterns)

    def paths(self, *, announce: bool = False) -> list[str]:
        """The files the patterns match now (sorted); with `announce`, say once per pattern that it
        matches nothing yet (a processor keeps waiting for it)."""
        found: dict[str, None] = {}
        for pattern in self.patterns:
            if is_glob(pattern):
                matches = sorted(os.path.normpath(p) for p in glob.glob(pattern, recursive=True) if _is_file(p))
            else:
                matches = [pattern] if _is_file(pattern) else []
            if announce:
                self._announce(pattern, bool(matches))
            for p in matches:
                if not self.excluded(p) and not self._claimed(p, self._earlier):
                    found[p] = None
        return list(found)

    def _announce(self, pattern: str, matched: bool) -> None:
        if matched:
            self._announced.discard(pattern)
        elif pattern not in self._announced:
            self._announced.add(pattern)
            problem = path_problem(pattern)
            if problem:
                log.error("%s", problem)
            elif is_glob(pattern):
                log.warning("no file matches LOG_PATH %s yet; waiting for one", pattern)
            else:
                log.warning("LOG_PATH %s does not exist yet; waiting for it", pattern)

    def siblings(self, known: Iterable[str], exclude: set[str]) -> list[str]:
        """Rotated siblings of the `known` paths (files beside them whose names extend theirs), not
        in `exclude`, not excluded by LOG_EXCLUDE and not matched by another group's patterns."""
        by_dir: dict[str, set[str]] = {}
        for path in known:
            directory, name = os.path.split(path)
            by_dir.setdefault(directory, set()).add(name)
        out: list[str] = []
        for directory, names in by_dir.items():
            try:
                entries = sorted(os.listdir(directory or "."))
            except OSError:
                continue
            for entry in entries:
                if entry in names or not any(p in names for p in _prefixes(entry)):
                    continue
                path = os.path.join(directory, entry)
                if (
                    path not in exclude
                    and not self.excluded(path)
                    and not self._claimed(path, self._others)
                    and _is_file(path)
                ):
                    out.append(path)
        return out
