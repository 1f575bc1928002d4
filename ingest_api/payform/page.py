"""The payment form's HTML: a small escaping template renderer, the page, the not-found page,
the static assets and the security headers they are served with.

Templates hold ``{{ name }}`` placeholders only (no logic); every value is HTML-escaped. Texts
come from :mod:`.i18n`, so a template never holds a word in either language.
"""

from __future__ import annotations

import hashlib
import html
import re
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Final

from domain.orders import Direction
from ingest_api.payform.formatting import format_amount, group_card, short_ref
from ingest_api.payform.i18n import LANGS, Lang, messages
from ingest_api.payform.state import DISPUTE_SCREENS, PageState, Screen

#: Everything from this origin, nothing inline, nothing framed: the card number and the
#: payment link are the page's secrets.
CSP: Final = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
PAGE_HEADERS: Final = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",  # the link is a capability: never leak it onwards
    "Cache-Control": "no-store",
}

#: name → media type; nothing else under ``static/`` is served.
ASSETS: Final = {
    "pay.js": "text/javascript; charset=utf-8",
    "pay.css": "text/css; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}

_PLACEHOLDER: Final = re.compile(r"\{\{\s*([a-z0-9_]+)\s*\}\}")


class TemplateError(KeyError):
    pass


def render(template: str, values: Mapping[str, object]) -> str:
    """Fill ``{{ name }}`` placeholders with escaped values; a missing name is an error."""

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise TemplateError(name)
        return html.escape(str(values[name]), quote=True)

    return _PLACEHOLDER.sub(fill, template)


@cache
def template(name: str) -> str:
    return resources.files("ingest_api.payform").joinpath("templates", name).read_text("utf-8")


@cache
def asset(name: str) -> bytes:
    if name not in ASSETS:
        raise FileNotFoundError(name)
    return resources.files("ingest_api.payform").joinpath("static", name).read_bytes()


@cache
def asset_version() -> str:
    """A digest of every asset: a new release never runs against a cached old script."""
    digest = hashlib.sha256()
    for name in sorted(ASSETS):
        digest.update(asset(name))
    return digest.hexdigest()[:12]


def _common(lang: Lang) -> dict[str, object]:
    other = next(code for code in LANGS if code != lang)
    values: dict[str, object] = {f"t_{key}": text for key, text in messages(lang).items()}
    values.update(
        lang=lang,
        other_lang=other,
        other_lang_name=messages(other)["lang_name"],
        asset_version=asset_version(),
    )
    return values


def _hidden(condition: bool) -> str:
    return "hidden" if condition else ""


def render_page(state: PageState, lang: Lang, now_ms: int) -> str:
    order, card, t = state.order, state.card, messages(lang)
    deposit = order.direction is Direction.DEPOSIT
    values = _common(lang)
    values.update(
        uid=str(order.uid),
        short_ref=short_ref(str(order.uid)),
        direction=order.direction.value,
        status=order.status.value,
        version=order.version,
        screen=state.screen.value,
        expires_ms=order.expires_at_ms,
        now_ms=now_ms,
        amount=format_amount(order.amount_minor, order.currency, lang),
        card_digits=card.number if card else "",
        card_grouped=group_card(card.number) if card else "",
        card_bank=(card.bank or "") if card else "",
        card_holder=(card.holder or "") if card else "",
        hidden_bank=_hidden(not (card and card.bank)),
        hidden_holder=_hidden(not (card and card.holder)),
        payer_card_masked=group_card_masked(order.payer_card_masked),
        hidden_payout=_hidden(not order.payer_card_masked),
        waiting_lead=t["waiting_lead_deposit" if deposit else "waiting_lead_withdrawal"],
        approved_lead=t["approved_lead_deposit" if deposit else "approved_lead_withdrawal"],
    )
    for screen in Screen:
        values[f"hidden_{screen.value.replace('-', '_')}"] = _hidden(screen is not state.screen)
    values.update(_dispute_values(state))
    return render(template("page.html"), values)


def _dispute_values(state: PageState) -> dict[str, object]:
    """The dispute panel: offered under an expired or rejected deposit, or the dispute's
    state once there is one (``none``: none yet)."""
    dispute = state.dispute
    shown = state.order.direction is Direction.DEPOSIT and state.screen in DISPUTE_SCREENS
    current = "none" if dispute is None else dispute.status.value
    values: dict[str, object] = {
        "dispute_state": current,
        "hidden_dispute": _hidden(not shown),
        "dispute_reason": (dispute.resolution_reason or "") if dispute else "",
    }
    for name in ("none", "open", "accepted", "rejected"):
        values[f"hidden_dispute_{name}"] = _hidden(name != current)
    return values


def render_not_found(lang: Lang) -> str:
    return render(template("not_found.html"), _common(lang))


def group_card_masked(masked: str | None) -> str:
    """``424242******4242`` → ``4242 42•• •••• 4242`` (the payer's own card, as a reminder)."""
    if not masked:
        return ""
    shown = masked.replace("*", "\u2022")
    return " ".join(shown[i : i + 4] for i in range(0, len(shown), 4))
