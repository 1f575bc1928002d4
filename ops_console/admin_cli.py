"""Administration from the command line: partners, keys, pools, cards, users, demo data.

    python -m ops_console.admin_cli create-partner acme --name "Acme" --deposit-fee-bp 250 \\
        --withdrawal-fee-bp 150 --pool main
    python -m ops_console.admin_cli issue-key acme      # shows the secret once
    python -m ops_console.admin_cli revoke-key kp_...
    python -m ops_console.admin_cli create-pool main --name "Main pool"
    python -m ops_console.admin_cli add-card --pool main --bank "Bank" --holder "A HOLDER" \\
        --currency EUR --expires 2030-12 ...           # the number is read from stdin/prompt
    python -m ops_console.admin_cli create-user alice --role operator --password-env ALICE_PW
    python -m ops_console.admin_cli create-user acme-ops --role partner --partner acme \
        --password-env ACME_PW                        # a partner portal user of acme
    python -m ops_console.admin_cli publish-config      # every partner and card to Kafka
    python -m ops_console.admin_cli seed-demo           # idempotent demo data
    python -m ops_console.admin_cli register-device phone-1 --card <card id>  # ADR 0010

Secrets never travel on the command line, where ``ps`` and shell history would keep them: a
card number or a password is read from stdin (or a no-echo prompt on a terminal), a password
may also come from a named environment variable. Output shows card numbers masked, and a key
secret only at the one moment it is issued. Every text argument and secret follows the text
rule of :mod:`domain.text` (ids as identifiers, names as labels, passwords and card numbers
as secrets): a bad argument is a usage error naming it (exit 2), a bad secret exit 1.
``DATABASE_URL``, ``KAFKA_BOOTSTRAP_SERVERS``, ``KEEPER_TOPIC_PREFIX``, ``KEEPER_ENV`` and
``KEEPER_DATA_KEY`` configure it. Exit status 0 on success, 1 on a refused or failed command,
2 on bad usage.
"""

from __future__ import annotations

import argparse
import calendar
import getpass
import hmac
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Literal, TextIO, TypeVar

from aiokafka.errors import KafkaError
from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from db.crypto import (
    CardNumberError,
    DataKeyError,
    DataKeySettings,
    SealError,
    SecretBox,
    mask_pan,
)
from db.engine import make_engine, session_factory
from db.models import CONSOLE_ROLES
from db.repositories import api_keys, cards, partners, second_factor, users
from db.repositories.errors import RepositoryError
from db.settings import DEFAULT_DATABASE_URL
from domain.text import IDENTIFIER, LABEL, SECRET, InvalidText, TextRule, check_text, text_violation
from ops_console import admin_devices
from schemas.cards import CardConfigured, PartnerConfigured
from stream_agents.config_publisher import PublishReport, publish_configs_sync

T = TypeVar("T")

DEMO_PARTNER = "demo-shop"
DEMO_POOL = "main"
DEMO_ENV_FILE = Path(".local/demo-partner.env")
#: Public test numbers (Visa, Mastercard, Visa): Luhn-valid, never issued to a real person.
DEMO_CARDS = (
    ("4111111111111111", "Demo Bank", "DEMO HOLDER ONE"),
    ("5555555555554444", "Demo Bank", "DEMO HOLDER TWO"),
    ("4242424242424242", "Sample Bank", "DEMO HOLDER THREE"),
)
DEMO_CURRENCY = "EUR"
DEMO_CARD_EXPIRES_ON = date(2030, 12, 31)
#: Per card: 50 000.00 a day, 1 000 000.00 a month, 100 / 2 000 orders, 10.00 .. 10 000.00.
DEMO_CARD_LIMITS = {
    "daily_limit_minor": 5_000_000,
    "monthly_limit_minor": 100_000_000,
    "daily_count_limit": 100,
    "monthly_count_limit": 2_000,
    "min_order_minor": 1_000,
    "max_order_minor": 1_000_000,
}
#: Demo users; the password comes from ``KEEPER_DEMO_<ROLE>_PASSWORD`` or, in development
#: only, the printed default.
DEMO_USERS = ("admin", "operator", "analyst")


class AdminError(Exception):
    """A refusal the CLI reports as ``error: ...`` with exit status 1."""


class AdminSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KEEPER_", extra="ignore", frozen=True)

    env: Literal["development", "test", "production"] = "development"
    database_url: str = Field(
        DEFAULT_DATABASE_URL,
        validation_alias=AliasChoices("DATABASE_URL", "KEEPER_DATABASE_URL"),
    )
    kafka_bootstrap_servers: str = Field(
        "127.0.0.1:9092",
        validation_alias=AliasChoices("KAFKA_BOOTSTRAP_SERVERS", "KEEPER_KAFKA_BOOTSTRAP_SERVERS"),
    )
    topic_prefix: str = ""


@dataclass
class Context:
    """What every command needs; built once in :func:`main`."""

    settings: AdminSettings
    database_url: str
    bootstrap: str
    topic_prefix: str
    actor: str
    stdin: TextIO
    out: TextIO
    _box: SecretBox | None = None

    @property
    def box(self) -> SecretBox:
        if self._box is None:
            self._box = SecretBox.from_settings(DataKeySettings())
        return self._box

    def transaction(self, work: Callable[[Session], T]) -> T:
        """Run ``work`` in one transaction, committed when it returns."""
        engine = make_engine(self.database_url)
        try:
            with session_factory(engine).begin() as session:
                return work(session)
        finally:
            engine.dispose()

    def say(self, text: str) -> None:
        print(text, file=self.out)

    def publish(self, *, partner_ids: Sequence[str] | None, pools: Sequence[str] | None) -> None:
        """Publish configurations (``None``: every one) after the change is committed."""

        def load(session: Session) -> tuple[list[PartnerConfigured], list[CardConfigured]]:
            configs = [
                partners.partner_config(terms)
                for terms in partners.list_partners(session)
                if partner_ids is None or terms.partner_id in partner_ids
            ]
            return configs, cards.all_card_configs(session, pools)

        partner_configs, card_configs = self.transaction(load)
        try:
            report: PublishReport = publish_configs_sync(
                self.bootstrap,
                partners=partner_configs,
                cards=card_configs,
                topic_prefix=self.topic_prefix,
            )
        except (KafkaError, OSError, TimeoutError) as error:
            raise AdminError(
                f"cannot publish to Kafka at {self.bootstrap} ({type(error).__name__}); the "
                "database change is committed: run `publish-config` once Kafka is up"
            ) from None
        self.say(
            f"published {report.partners} partner config(s) to {report.partner_topic} and "
            f"{report.cards} card config(s) to {report.card_topic}"
        )


# --- reading secrets ----------------------------------------------------------------------


def read_secret(ctx: Context, prompt: str, *, confirm: bool = False) -> str:
    """One line from stdin, or a no-echo prompt when stdin is a terminal."""
    if ctx.stdin.isatty():
        value = getpass.getpass(prompt)
        if confirm and getpass.getpass("again: ") != value:
            raise AdminError("the two entries differ")
    else:
        value = ctx.stdin.readline().rstrip("\r\n")
    name = prompt.strip().rstrip(":")
    if not value:
        raise AdminError(f"nothing read for {name}")
    return check_text(name, value, SECRET)


def password_from(ctx: Context, env_name: str | None) -> str:
    if env_name:
        value = os.environ.get(env_name)
        if not value:
            raise AdminError(f"environment variable {env_name} is not set or empty")
        return check_text(f"the password in {env_name}", value, SECRET)
    return read_secret(ctx, "password: ", confirm=True)


def parse_expiry(text: str) -> date:
    """``YYYY-MM-DD``, or ``YYYY-MM`` / ``MM/YY`` (as printed on cards: the month's last day)."""
    try:
        if "/" in text:
            month, year = (int(part) for part in text.split("/"))
            year += 2000 if year < 100 else 0
        elif text.count("-") == 1:
            year, month = (int(part) for part in text.split("-"))
        else:
            return date.fromisoformat(text)
        return date(year, month, calendar.monthrange(year, month)[1])
    except ValueError:
        raise argparse.ArgumentTypeError("expected YYYY-MM-DD, YYYY-MM or MM/YY") from None


# --- commands -----------------------------------------------------------------------------


def cmd_create_partner(ctx: Context, args: argparse.Namespace) -> None:
    terms = ctx.transaction(
        lambda s: partners.create_partner(
            s,
            partner_id=args.partner_id,
            name=args.name,
            deposit_fee_bp=args.deposit_fee_bp,
            withdrawal_fee_bp=args.withdrawal_fee_bp,
            pool_id=args.pool,
            callback_url=args.callback_url,
            actor=ctx.actor,
        )
    )
    ctx.say(
        f"partner {terms.partner_id} created: deposit fee {terms.deposit_fee_bp} bp, "
        f"withdrawal fee {terms.withdrawal_fee_bp} bp, pool {terms.pool_id or '-'}"
    )
    if args.publish:
        ctx.publish(partner_ids=[terms.partner_id], pools=[])


def cmd_issue_key(ctx: Context, args: argparse.Namespace) -> None:
    key_id, secret = ctx.transaction(
        lambda s: api_keys.issue_api_key(s, ctx.box, args.partner_id, ctx.actor)
    )
    ctx.say(f"API key for partner {args.partner_id}")
    ctx.say(f"  key id: {key_id}")
    ctx.say(f"  secret: {secret}")
    ctx.say("The secret is shown this once and cannot be displayed again; store it now.")


def cmd_revoke_key(ctx: Context, args: argparse.Namespace) -> None:
    changed = ctx.transaction(lambda s: api_keys.revoke_api_key(s, args.key_id, ctx.actor))
    ctx.say(f"API key {args.key_id} {'revoked' if changed else 'was already revoked'}")


def cmd_list_keys(ctx: Context, args: argparse.Namespace) -> None:
    keys = ctx.transaction(lambda s: api_keys.list_api_keys(s, args.partner_id))
    for key in keys:
        used = key.last_used_at.isoformat() if key.last_used_at else "never"
        ctx.say(f"{key.key_id}  {key.status:8}  created {key.created_at:%Y-%m-%d}  used {used}")
    if not keys:
        ctx.say(f"partner {args.partner_id} has no API keys")


def cmd_create_pool(ctx: Context, args: argparse.Namespace) -> None:
    pool = ctx.transaction(
        lambda s: cards.create_pool(
            s, pool_id=args.pool_id, name=args.name, description=args.description, actor=ctx.actor
        )
    )
    ctx.say(f"pool {pool.pool_id} created")


def cmd_add_card(ctx: Context, args: argparse.Namespace) -> None:
    pan = read_secret(ctx, "card number: ")
    card_id = ctx.transaction(
        lambda s: cards.add_card(
            s,
            ctx.box,
            pool_id=args.pool,
            pan=pan,
            bank=args.bank,
            holder=args.holder,
            currency=args.currency,
            expires_on=args.expires,
            daily_limit_minor=args.daily_limit_minor,
            monthly_limit_minor=args.monthly_limit_minor,
            daily_count_limit=args.daily_count_limit,
            monthly_count_limit=args.monthly_count_limit,
            min_order_minor=args.min_order_minor,
            max_order_minor=args.max_order_minor,
            actor=ctx.actor,
        )
    )
    card = ctx.transaction(lambda s: cards.card_public(s, card_id))
    assert card is not None
    ctx.say(f"card {card.pan_masked} added to pool {card.pool_id} as {card_id}")
    if args.publish:
        ctx.publish(partner_ids=[], pools=[card.pool_id])


def cmd_create_user(ctx: Context, args: argparse.Namespace) -> None:
    password = password_from(ctx, args.password_env)
    user = ctx.transaction(
        lambda s: users.create_user(
            s, args.username, password, args.role, ctx.actor, partner_id=args.partner
        )
    )
    of = f" of partner {args.partner}" if args.partner else ""
    ctx.say(f"user {user.username} created with role {user.role}{of}")


def cmd_reset_second_factor(ctx: Context, args: argparse.Namespace) -> None:
    """The way back in when the only admin lost their phone and their recovery codes."""
    now = datetime.now(UTC)
    reset = ctx.transaction(
        lambda s: second_factor.reset(s, args.username, actor=ctx.actor, now=now)
    )
    ctx.say(
        f"second factor of {args.username} removed; their sessions ended"
        if reset
        else f"{args.username} has no second factor"
    )


def cmd_force_password_reset(ctx: Context, args: argparse.Namespace) -> None:
    temporary = password_from(ctx, args.password_env) if args.temporary else None
    ctx.transaction(
        lambda s: users.force_password_reset(
            s, args.username, actor=ctx.actor, temporary_password=temporary
        )
    )
    ctx.say(f"{args.username} must set a new password at the next sign-in")


def cmd_publish_config(ctx: Context, args: argparse.Namespace) -> None:
    ctx.publish(partner_ids=None, pools=None)


# --- seed-demo ----------------------------------------------------------------------------


def _demo_password(ctx: Context, role: str) -> tuple[str, bool]:
    """(password, is the printed default)."""
    name = f"KEEPER_DEMO_{role.upper()}_PASSWORD"
    value = os.environ.get(name)
    if value:
        return check_text(name, value, SECRET), False
    if ctx.settings.env != "development":
        raise AdminError(
            f"set KEEPER_DEMO_{role.upper()}_PASSWORD: demo default passwords exist only "
            "when KEEPER_ENV=development"
        )
    return f"{role}-demo-password", True


def _seed_rows(ctx: Context, session: Session) -> list[str]:
    """Create whatever demo rows are missing; one line of report per row."""
    report = []
    if cards.get_pool(session, DEMO_POOL) is None:
        cards.create_pool(session, pool_id=DEMO_POOL, name="Main pool", actor=ctx.actor)
        report.append(f"pool {DEMO_POOL}: created")
    if partners.get_partner(session, DEMO_PARTNER) is None:
        partners.create_partner(
            session,
            partner_id=DEMO_PARTNER,
            name="Demo Shop",
            deposit_fee_bp=250,
            withdrawal_fee_bp=150,
            pool_id=DEMO_POOL,
            actor=ctx.actor,
        )
        report.append(f"partner {DEMO_PARTNER}: created (deposit 250 bp, withdrawal 150 bp)")
    for pan, bank, holder in DEMO_CARDS:
        existing = cards.find_card_by_pan(session, ctx.box, pan)
        if existing is None:
            cards.add_card(
                session,
                ctx.box,
                pool_id=DEMO_POOL,
                pan=pan,
                bank=bank,
                holder=holder,
                currency=DEMO_CURRENCY,
                expires_on=DEMO_CARD_EXPIRES_ON,
                actor=ctx.actor,
                **DEMO_CARD_LIMITS,
            )
            report.append(f"card {mask_pan(pan)}: added to pool {DEMO_POOL}")
    for role in DEMO_USERS:
        if users.get_user(session, role) is None:
            password, default = _demo_password(ctx, role)
            users.create_user(session, role, password, role, ctx.actor)
            shown = f"password {password} (demo default)" if default else "password from env"
            report.append(f"user {role}: created, role {role}, {shown}")
    return report


def _read_env_file(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    values = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        name, sep, value = line.partition("=")
        if sep and not name.startswith("#"):
            values[name.strip()] = value.strip()
    return values


def _demo_key_valid(ctx: Context, session: Session, path: Path) -> str | None:
    """The key id in ``path`` if it is an active demo-shop key whose secret matches."""
    values = _read_env_file(path)
    key_id, secret = values.get("KEEPER_KEY_ID", ""), values.get("KEEPER_SECRET", "")
    if not key_id or not secret:
        return None
    try:
        key = api_keys.find_api_key(session, ctx.box, key_id)
    except SealError:
        return None
    if key is None or not key.active or key.partner_id != DEMO_PARTNER:
        return None
    return key_id if hmac.compare_digest(key.secret, secret.encode("utf-8")) else None


def _write_env_file(path: Path, key_id: str, secret: str) -> None:
    if path.exists() and not path.is_file():
        raise AdminError(f"{path} exists and is not a regular file; pass another --env-file")
    path.parent.mkdir(parents=True, exist_ok=True)
    text = (
        "# Keeper demo partner credentials, written by"
        " `python -m ops_console.admin_cli seed-demo`.\n"
        "# Development only; load with: set -a; . .local/demo-partner.env; set +a\n"
        f"KEEPER_PARTNER_ID={DEMO_PARTNER}\n"
        f"KEEPER_KEY_ID={key_id}\n"
        f"KEEPER_SECRET={secret}\n"
    )
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)
    path.chmod(0o600)  # an existing file keeps its mode through O_CREAT


def cmd_seed_demo(ctx: Context, args: argparse.Namespace) -> None:
    if ctx.settings.env == "production":
        raise AdminError("seed-demo refuses to run with KEEPER_ENV=production")
    env_file: Path = args.env_file

    def seed(session: Session) -> tuple[list[str], tuple[str, str] | None]:
        report = _seed_rows(ctx, session)
        key_id = _demo_key_valid(ctx, session, env_file)
        if key_id is not None:
            report.append(f"API key {key_id}: kept (secret in {env_file})")
            return report, None
        issued = api_keys.issue_api_key(session, ctx.box, DEMO_PARTNER, ctx.actor)
        report.append(f"API key {issued[0]}: issued, secret written to {env_file}")
        return report, issued

    if env_file.exists() and not env_file.is_file():
        raise AdminError(f"{env_file} exists and is not a regular file; pass another --env-file")
    report, issued = ctx.transaction(seed)
    if issued is not None:
        _write_env_file(env_file, *issued)
    for line in report:
        ctx.say(line)
    if args.publish:
        ctx.publish(partner_ids=[DEMO_PARTNER], pools=[DEMO_POOL])
    ctx.say("demo data is in place")


# --- argument parsing ---------------------------------------------------------------------


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be a non-negative integer")
    return value


def _text(rule: TextRule) -> Callable[[str], str]:
    """An argparse ``type`` that refuses text outside ``rule`` as a usage error."""

    def check(value: str) -> str:
        violation = text_violation(value, rule)
        if violation is not None:
            raise argparse.ArgumentTypeError(
                f"{violation.problem.value}: the text {violation.describe()}"
            )
        return value

    check.__name__ = rule.name
    return check


ID, TEXT = _text(IDENTIFIER), _text(LABEL)


def _add_publish_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--no-publish",
        dest="publish",
        action="store_false",
        help="do not publish the configuration to Kafka",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ops_console.admin_cli", description=(__doc__ or "").split("\n")[0]
    )
    parser.add_argument("--database-url", help="default: DATABASE_URL or the local cluster")
    parser.add_argument("--kafka", help="bootstrap servers (default: KAFKA_BOOTSTRAP_SERVERS)")
    parser.add_argument("--topic-prefix", help="prefix of topic names (KEEPER_TOPIC_PREFIX)")
    parser.add_argument(
        "--actor", type=TEXT, help="name recorded in the audit log (default: cli:<user>)"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sub = commands.add_parser("create-partner", help="create a partner")
    sub.add_argument("partner_id", type=ID)
    sub.add_argument("--name", type=TEXT, required=True)
    sub.add_argument("--deposit-fee-bp", type=int, required=True)
    sub.add_argument("--withdrawal-fee-bp", type=int, required=True)
    sub.add_argument("--pool", type=ID)
    sub.add_argument("--callback-url", type=TEXT)
    _add_publish_flag(sub)
    sub.set_defaults(run=cmd_create_partner)

    sub = commands.add_parser("issue-key", help="issue an API key (the secret is shown once)")
    sub.add_argument("partner_id", type=ID)
    sub.set_defaults(run=cmd_issue_key)

    sub = commands.add_parser("revoke-key", help="revoke an API key")
    sub.add_argument("key_id", type=ID)
    sub.set_defaults(run=cmd_revoke_key)

    sub = commands.add_parser("list-keys", help="list a partner's API keys (no secrets)")
    sub.add_argument("partner_id", type=ID)
    sub.set_defaults(run=cmd_list_keys)

    sub = commands.add_parser("create-pool", help="create a card pool")
    sub.add_argument("pool_id", type=ID)
    sub.add_argument("--name", type=TEXT, required=True)
    sub.add_argument("--description", type=TEXT)
    sub.set_defaults(run=cmd_create_pool)

    sub = commands.add_parser("add-card", help="add a card (number read from stdin or a prompt)")
    sub.add_argument("--pool", type=ID, required=True)
    sub.add_argument("--bank", type=TEXT, required=True)
    sub.add_argument("--holder", type=TEXT, required=True)
    sub.add_argument("--currency", type=TEXT, required=True)
    sub.add_argument("--expires", type=parse_expiry, required=True, help="YYYY-MM[-DD] or MM/YY")
    for limit in ("daily-limit-minor", "monthly-limit-minor", "daily-count-limit"):
        sub.add_argument(f"--{limit}", type=_non_negative, required=True)
    for limit in ("monthly-count-limit", "min-order-minor", "max-order-minor"):
        sub.add_argument(f"--{limit}", type=_non_negative, required=True)
    _add_publish_flag(sub)
    sub.set_defaults(run=cmd_add_card)

    sub = commands.add_parser("create-user", help="create a console user")
    sub.add_argument("username", type=ID)
    sub.add_argument("--role", required=True, choices=CONSOLE_ROLES)
    sub.add_argument(
        "--partner", type=ID, help="the partner a user of role partner belongs to (required)"
    )
    sub.add_argument("--password-env", metavar="VAR", help="read the password from $VAR")
    sub.set_defaults(run=cmd_create_user)

    sub = commands.add_parser(
        "reset-second-factor", help="remove a console user's second factor (audited)"
    )
    sub.add_argument("username", type=ID)
    sub.set_defaults(run=cmd_reset_second_factor)

    sub = commands.add_parser(
        "force-password-reset", help="make a console user set a new password (audited)"
    )
    sub.add_argument("username", type=ID)
    sub.add_argument(
        "--temporary", action="store_true", help="also set a temporary password (stdin or env)"
    )
    sub.add_argument("--password-env", metavar="VAR", help="read the password from $VAR")
    sub.set_defaults(run=cmd_force_password_reset)

    sub = commands.add_parser("publish-config", help="publish every partner and card config")
    sub.set_defaults(run=cmd_publish_config)

    admin_devices.add_commands(commands, ID, TEXT)  # bank notifications (ADR 0010)

    sub = commands.add_parser("seed-demo", help="create demo data (idempotent)")
    sub.add_argument("--env-file", type=Path, default=DEMO_ENV_FILE)
    _add_publish_flag(sub)
    sub.set_defaults(run=cmd_seed_demo)
    return parser


def _default_actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = AdminSettings()
    except ValueError as error:
        print(f"error: bad settings: {error}", file=sys.stderr)
        return 1
    ctx = Context(
        settings=settings,
        database_url=args.database_url or settings.database_url,
        bootstrap=args.kafka or settings.kafka_bootstrap_servers,
        topic_prefix=settings.topic_prefix if args.topic_prefix is None else args.topic_prefix,
        actor=args.actor or _default_actor(),
        stdin=sys.stdin,
        out=sys.stdout,
    )
    try:
        args.run(ctx, args)
    except (
        AdminError,
        InvalidText,
        RepositoryError,
        CardNumberError,
        DataKeyError,
        SealError,
    ) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except OperationalError as error:
        reason = str(error.orig).strip().splitlines()[0] if error.orig else "no answer"
        print(f"error: cannot use the database: {reason}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
