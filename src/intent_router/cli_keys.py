"""``intent-router keys create|list|update|revoke``: manage API keys, thin over the stores.

``create`` prints the new key once, alone on the last line of stdout (``KEY=$(intent-router
keys create … | tail -1)``); it is stored hashed and cannot be shown again. ``list`` shows
each key's spend in its current budget period, read from the budget ledger beside the keys
(``FILE.spend.json``, or Redis).
"""

from __future__ import annotations

import argparse
import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from intent_router.access.budget import BudgetLedger
from intent_router.access.budget_memory import MemoryBudgetLedger, spend_file_for
from intent_router.access.budget_redis import RedisBudgetLedger
from intent_router.access.keys import PRIORITY_NAMES, KeyRecord, KeySpec, KeyStore, KeyStoreError
from intent_router.access.stores import key_store

COLUMNS = ("id", "name", "team", "budget_usd", "spend_usd", "period", "rpm", "tpm", "models",
           "routes", "priority", "created", "status")  # fmt: skip


def _store(args: argparse.Namespace) -> KeyStore:
    store = key_store(args.keys, args.redis)
    if store is None:
        raise KeyStoreError("say where the keys are: --keys FILE or --redis URL")
    return store


def _names(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _priority(text: str) -> int:
    if text.lower() in PRIORITY_NAMES:
        return PRIORITY_NAMES[text.lower()]
    if text.isdigit() and int(text) in PRIORITY_NAMES.values():
        return int(text)
    raise argparse.ArgumentTypeError(f"'{text}' is not one of low, normal, high (or 0, 1, 2)")


def _changes(args: argparse.Namespace) -> dict[str, Any]:
    """The fields a create/update command line sets (unset flags are left out)."""
    out: dict[str, Any] = {}
    for name in ("team", "budget_usd", "period", "rpm", "tpm", "priority"):
        value = getattr(args, name)
        if value is not None:
            out[name] = value
    for name in ("models", "routes"):
        value = getattr(args, name)
        if value is not None:  # "any" lifts the limit (keys update)
            out[name] = None if value.strip().lower() == "any" else _names(value)
    return out


def _ledger(args: argparse.Namespace) -> BudgetLedger:
    """The budget ledger beside the keys, read-only here (spend of the current period)."""
    if args.redis is not None:
        return RedisBudgetLedger(args.redis)
    return MemoryBudgetLedger(spend_file_for(args.keys))


def _row(record: KeyRecord, spend: float | None) -> dict[str, Any]:
    data = record.public()
    data["spend_usd"] = spend
    data["created"] = datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%d %H:%M")
    data["status"] = "active" if record.active else "revoked"
    return data


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list):
        return ",".join(value)
    if isinstance(value, float):
        return f"{value:.4f}".rstrip("0").rstrip(".")
    return str(value)


def _table(rows: list[dict[str, Any]]) -> str:
    cells = [list(COLUMNS)] + [[_cell(row[c]) for c in COLUMNS] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(COLUMNS))]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip()
                     for r in cells)  # fmt: skip


async def _run(args: argparse.Namespace) -> int:
    store = _store(args)
    try:
        if args.action == "create":
            try:
                spec = KeySpec(name=args.name, **_changes(args))
            except ValidationError as exc:
                first = exc.errors()[0]
                raise KeyStoreError(first["msg"], field=str(first["loc"][0])) from None
            record, secret = await store.create(spec)
            print(f"created key {record.id} '{record.name}'; it is shown once, store it now:")
            print(secret)
        elif args.action == "list":
            ledger = _ledger(args)
            try:
                rows = [_row(r, await ledger.spend("key", r.id, r.period))
                        for r in await store.records() if args.all or r.active]  # fmt: skip
            finally:
                if isinstance(ledger, RedisBudgetLedger):  # a memory ledger's close writes
                    await ledger.aclose()  # its file: never from a reader (the server owns it)
            print(json.dumps(rows, indent=1) if args.json else _table(rows))
        elif args.action == "update":
            changes = _changes(args)
            if args.rename:
                changes["name"] = args.rename
            if not changes:
                raise KeyStoreError("nothing to update: give at least one field flag")
            record = await store.update(args.ref, changes)
            print(f"updated key {record.id} '{record.name}'")
        else:
            record = await store.revoke(args.ref)
            print(f"revoked key {record.id} '{record.name}'")
    finally:
        await store.aclose()
    return 0


def cmd_keys(args: argparse.Namespace) -> int:
    return asyncio.run(_run(args))


def add_parser(sub: Any) -> None:
    """The ``keys`` command and its actions, on the CLI's subparsers."""
    keys = sub.add_parser("keys", help="Manage API keys.", description="Manage API keys.")
    actions = keys.add_subparsers(dest="action", required=True)

    def action(name: str, help_text: str) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = actions.add_parser(name, help=help_text, description=help_text)
        where = p.add_mutually_exclusive_group(required=True)
        where.add_argument("--keys", type=Path, metavar="FILE", help="the key file (one router)")
        where.add_argument("--redis", metavar="URL", help="the Redis holding keys (replicas)")
        p.set_defaults(handler=cmd_keys)
        return p

    def fields(p: argparse.ArgumentParser) -> None:
        p.add_argument("--team", help="team (shares the cache tenant)")
        p.add_argument("--budget-usd", type=float, metavar="X", help="budget per period")
        p.add_argument("--period", choices=["1d", "7d", "30d"], help="budget period (30d)")
        p.add_argument("--rpm", type=int, metavar="N", help="requests per minute")
        p.add_argument("--tpm", type=int, metavar="N", help="tokens per minute")
        p.add_argument("--models", metavar="a,b", help="the only models the key may use (any)")
        p.add_argument("--routes", metavar="r1,r2", help="the only routes the key may use (any)")
        p.add_argument("--priority", type=_priority, metavar="P",
                       help="admission priority: low, normal, high (or 0, 1, 2)")  # fmt: skip

    create = action("create", "Create a key; prints it once, alone on the last line.")
    create.add_argument("--name", required=True, help="a unique name for the key")
    fields(create)
    listing = action("list", "List keys (a table; --json for JSON).")
    listing.add_argument("--json", action="store_true", help="print a JSON array")
    listing.add_argument("--all", action="store_true", help="include revoked keys")
    update = action("update", "Change a key's fields (by name or id).")
    update.add_argument("ref", metavar="NAME_OR_ID")
    update.add_argument("--rename", metavar="NAME", help="give the key a new name")
    fields(update)
    revoke = action("revoke", "Revoke a key (by name or id); it stops working at once.")
    revoke.add_argument("ref", metavar="NAME_OR_ID")
