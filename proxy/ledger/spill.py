"""Rows the database could not take yet, kept in local JSON-lines files until it can.

Each process appends to its own file, `<dir>/ledger-<pid>.jsonl`. To replay, the file is first
renamed to `ledger-<pid>.<n>.replay` (a claim: new spills start a fresh file), read in batches,
written, and only then deleted; a replay cut short leaves the claimed file for the next attempt,
and rows written twice are ignored by the store. Files of processes that no longer run (a crash,
an outage that outlived its proxy) are claimed and replayed by the next proxy that starts.
Rows the database refused for their content go to `rejected.jsonl`, to be looked at, not lost.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
from collections.abc import Generator, Sequence
from pathlib import Path

import msgspec

from proxy.records import RequestRecord

_encode = msgspec.json.Encoder().encode  # Decimal as a string: exact
_decode = msgspec.json.Decoder(RequestRecord).decode
_NAME = re.compile(r"^ledger-(\d+)(?:\.\d+\.replay|\.jsonl)$")
_claims = itertools.count()


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    return True


class Spill:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.path = directory / f"ledger-{os.getpid()}.jsonl"
        self.rows = 0  # rows this process spilled and has not replayed yet (for logs and tests)

    def append(self, rows: Sequence[RequestRecord], *, name: str | None = None) -> None:
        """Blocking: append rows and fsync, so a spilled row survives a crash of the process."""
        self.directory.mkdir(parents=True, exist_ok=True)
        data = b"".join(_encode(row) + b"\n" for row in rows)
        with open(self.directory / name if name else self.path, "ab") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        if name is None:
            self.rows += len(rows)

    def reject(self, rows: Sequence[RequestRecord]) -> None:
        self.append(rows, name="rejected.jsonl")

    def claim(self, *, others: bool) -> list[Path]:
        """Rename this process's spill file (and, with `others`, dead processes' files) for replay.

        Call on the event loop's thread, like `record`, so no append races the rename.
        """
        claimed: list[Path] = []
        if not self.directory.is_dir():
            return claimed
        for entry in sorted(self.directory.iterdir()):
            match = _NAME.match(entry.name)
            if not match:
                continue
            pid = int(match.group(1))
            mine = pid == os.getpid()
            if not mine and (not others or _alive(pid)):
                continue
            if entry.name.endswith(".replay"):
                if not mine:  # a dead process's claim: take it over
                    target = self.directory / f"ledger-{os.getpid()}.{next(_claims)}.replay"
                    with contextlib.suppress(FileNotFoundError):
                        entry.rename(target)
                        claimed.append(target)
                else:
                    claimed.append(entry)
                continue
            target = self.directory / f"ledger-{os.getpid()}.{next(_claims)}.replay"
            with contextlib.suppress(FileNotFoundError):
                entry.rename(target)
                claimed.append(target)
                if mine:
                    self.rows = 0
        return claimed

    @staticmethod
    def batches(path: Path, size: int) -> Generator[list[RequestRecord], None, None]:
        """Blocking: the rows of a claimed file, `size` at a time; a torn last line is skipped."""
        with open(path, "rb") as file:
            while lines := list(itertools.islice(file, size)):
                batch: list[RequestRecord] = []
                for line in lines:
                    with contextlib.suppress(msgspec.DecodeError):
                        batch.append(_decode(line))
                yield batch
