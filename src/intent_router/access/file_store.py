"""Keys in one JSON file, for one router.

The file holds ``{"version": 1, "keys": [record, …]}`` with hashed secrets only. Writers
(the ``keys`` CLI) take an exclusive ``flock`` on ``FILE.lock`` for the whole
read-modify-write, so two commands run at once never lose each other's change, and write
a temporary file in the same folder, fsync it and ``os.replace`` it over the old one, so
a reader (the server) sees the old file or the new one, never half of one. The server
re-reads the file when it changes (a new inode after each ``os.replace``, a new
modification time or size): a key created or revoked by the CLI takes effect on the next
request, without a restart.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from intent_router.access.keys import (
    KeyRecord,
    KeySpec,
    KeyStore,
    KeyStoreError,
    check_name_free,
    find,
    new_record,
    updated,
)

VERSION = 1


class FileKeyStore(KeyStore):
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._seen: tuple[int, int, int] | None = None  # (inode, mtime_ns, size) loaded
        self._by_hash: dict[str, KeyRecord] = {}

    # -- reading -------------------------------------------------------------------

    def _read(self) -> list[KeyRecord]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise KeyStoreError(
                f"cannot read the key file: {exc.strerror}", path=self.path
            ) from exc
        try:
            data = json.loads(text) if text.strip() else {"keys": []}
            return [KeyRecord.model_validate(item) for item in data["keys"]]
        except (ValueError, KeyError, TypeError, ValidationError) as exc:
            raise KeyStoreError(f"not a key file: {exc}", path=self.path) from None

    def _fresh(self) -> dict[str, KeyRecord]:
        """The records by hash, re-read when the file changed since the last look."""
        try:
            stat = self.path.stat()
            seen: tuple[int, int, int] | None = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        except FileNotFoundError:
            seen = None
        if seen != self._seen or seen is None:
            self._by_hash = {r.hash: r for r in self._read()}
            self._seen = seen
        return self._by_hash

    async def lookup(self, key_hash: str) -> KeyRecord | None:
        return self._fresh().get(key_hash)

    async def records(self) -> list[KeyRecord]:
        return sorted(self._read(), key=lambda r: r.created)

    # -- writing -------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[list[KeyRecord]]:
        """The records under an exclusive lock; whatever the block leaves is written."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock_path = self.path.with_name(self.path.name + ".lock")
        with open(lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                records = self._read()
                yield records
                self._write(records)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _write(self, records: list[KeyRecord]) -> None:
        body: dict[str, Any] = {"version": VERSION, "keys": [r.model_dump() for r in records]}
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(body, out, indent=1)
                out.write("\n")
                out.flush()
                os.fsync(out.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    async def create(self, spec: KeySpec) -> tuple[KeyRecord, str]:
        with self._locked() as records:
            check_name_free(records, spec.name)
            record, secret = new_record(spec)
            records.append(record)
        return record, secret

    async def update(self, ref: str, changes: Mapping[str, Any]) -> KeyRecord:
        with self._locked() as records:
            old = find(records, ref)
            new = updated(old, changes)
            if new.name != old.name:
                check_name_free(records, new.name, but=old.id)
            records[records.index(old)] = new
        return new

    async def revoke(self, ref: str) -> KeyRecord:
        with self._locked() as records:
            old = find(records, ref)
            new = old if old.revoked else old.model_copy(update={"revoked": time.time()})
            records[records.index(old)] = new
        return new
