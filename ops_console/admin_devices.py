"""The admin CLI's commands for bank notifications (ADR 0010): devices, match policy,
templates. Part of ``python -m ops_console.admin_cli``::

    python -m ops_console.admin_cli register-device phone-4417 --card <card uuid>
    python -m ops_console.admin_cli revoke-device phone-4417
    python -m ops_console.admin_cli list-devices
    python -m ops_console.admin_cli set-match-policy main auto      # or suggest
    python -m ops_console.admin_cli seed-templates                 # the shipped formats

A device's secret is shown once, at registration, like a partner key's.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any, Protocol

from db.repositories import bank_templates, devices, notifications
from domain.bank_templates import SHIPPED


class Ctx(Protocol):
    actor: str

    @property
    def box(self) -> Any: ...

    def transaction(self, work: Callable[[Any], Any]) -> Any: ...

    def say(self, text: str) -> None: ...


def cmd_register_device(ctx: Ctx, args: argparse.Namespace) -> None:
    key_id, secret = ctx.transaction(
        lambda s: devices.register_device(s, ctx.box, args.device_id, args.card, ctx.actor)
    )
    ctx.say(f"device {args.device_id} for card {args.card}")
    ctx.say(f"  key id: {key_id}")
    ctx.say(f"  secret: {secret}")
    ctx.say("The secret is shown this once and cannot be displayed again; enter it on the phone.")


def cmd_revoke_device(ctx: Ctx, args: argparse.Namespace) -> None:
    changed = ctx.transaction(lambda s: devices.revoke_device(s, args.device_id, ctx.actor))
    ctx.say(f"device {args.device_id} {'revoked' if changed else 'was already revoked'}")


def cmd_list_devices(ctx: Ctx, args: argparse.Namespace) -> None:
    found = ctx.transaction(devices.list_devices)
    for d in found:
        seen = d.last_seen_at.isoformat() if d.last_seen_at else "never"
        silent = "  SILENT" if d.silent_since else ""
        ctx.say(
            f"{d.device_id}  {d.status:8}  {d.pan_masked}  pool {d.pool_id}  seen {seen}{silent}"
        )
    if not found:
        ctx.say("no devices")


def cmd_set_match_policy(ctx: Ctx, args: argparse.Namespace) -> None:
    ctx.transaction(
        lambda s: notifications.set_match_policy(s, args.pool_id, args.policy, ctx.actor)
    )
    ctx.say(f"pool {args.pool_id}: bank notifications {args.policy}")


def cmd_seed_templates(ctx: Ctx, args: argparse.Namespace) -> None:
    added = ctx.transaction(lambda s: bank_templates.seed(s, SHIPPED, ctx.actor))
    ctx.say(f"{added} bank template(s) added, {len(SHIPPED) - added} already there")


def add_commands(
    commands: Any, identifier: Callable[[str], str], text: Callable[[str], str]
) -> None:
    """Add the commands to the CLI's sub-parsers (``identifier``/``text``: its arg types)."""
    sub = commands.add_parser("register-device", help="register a card's phone (secret shown once)")
    sub.add_argument("device_id", type=identifier)
    sub.add_argument("--card", type=identifier, required=True, help="the card's id (uuid)")
    sub.set_defaults(run=cmd_register_device)

    sub = commands.add_parser("revoke-device", help="revoke a device's credential")
    sub.add_argument("device_id", type=identifier)
    sub.set_defaults(run=cmd_revoke_device)

    sub = commands.add_parser("list-devices", help="list devices and their health (no secrets)")
    sub.set_defaults(run=cmd_list_devices)

    sub = commands.add_parser("set-match-policy", help="what a pool does with a matched credit")
    sub.add_argument("pool_id", type=identifier)
    sub.add_argument("policy", choices=("auto", "suggest"))
    sub.set_defaults(run=cmd_set_match_policy)

    sub = commands.add_parser("seed-templates", help="add the shipped bank message templates")
    sub.set_defaults(run=cmd_seed_templates)
