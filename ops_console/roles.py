"""Which role may open which page: the single table both the navigation and the pages read.

The navigation offers a user only the pages of their role; each page checks again when it
runs (a bookmarked URL must not open a page the role lacks), and the API checks a third time
for anything that acts.

A ``partner`` user sees the partner portal only (the ``portal_*`` pages, and its account);
those pages show one partner's data, read through ``db.repositories.portal``, which scopes
every query to the partner the signed-in user is bound to.
"""

from __future__ import annotations

from typing import Final

ADMIN: Final = "admin"
OPERATOR: Final = "operator"
ANALYST: Final = "analyst"
PARTNER: Final = "partner"

PAGE_ROLES: Final[dict[str, frozenset[str]]] = {
    "queue": frozenset({OPERATOR, ADMIN}),
    "disputes": frozenset({OPERATOR, ADMIN}),
    "orders": frozenset({OPERATOR, ADMIN, ANALYST}),
    "balances": frozenset({OPERATOR, ADMIN, ANALYST}),
    "card_monitoring": frozenset({OPERATOR, ADMIN, ANALYST}),
    "callbacks": frozenset({OPERATOR, ADMIN}),
    "notifications": frozenset({OPERATOR, ADMIN}),
    "dead_letters": frozenset({OPERATOR, ADMIN}),
    "health": frozenset({OPERATOR, ADMIN}),
    "dashboards": frozenset({ANALYST, ADMIN}),
    "partners": frozenset({ADMIN}),
    "api_keys": frozenset({ADMIN}),
    "callback_secrets": frozenset({ADMIN}),
    "cards": frozenset({ADMIN}),
    "devices": frozenset({ADMIN}),
    "bank_templates": frozenset({ADMIN}),
    "users": frozenset({ADMIN}),
    "audit": frozenset({ADMIN}),
    "portal_orders": frozenset({PARTNER}),
    "portal_balance": frozenset({PARTNER}),
    "portal_callbacks": frozenset({PARTNER}),
    "portal_keys": frozenset({PARTNER}),
    "portal_secrets": frozenset({PARTNER}),
    "portal_settings": frozenset({PARTNER}),
    "account": frozenset({OPERATOR, ADMIN, ANALYST, PARTNER}),
}


def may_open(role: str | None, page: str) -> bool:
    return role is not None and role in PAGE_ROLES.get(page, frozenset())


#: The pages by navigation section: (page key, file under ops_console/, title, icon).
SECTIONS: Final[dict[str, list[tuple[str, str, str, str]]]] = {
    "Operations": [
        ("queue", "views/queue.py", "Operator queue", ":material/notifications_active:"),
        ("disputes", "views/disputes.py", "Disputes", ":material/gavel:"),
        ("orders", "views/orders.py", "Orders", ":material/receipt_long:"),
        ("balances", "views/balances.py", "Balances and ledger", ":material/account_balance:"),
        (
            "card_monitoring",
            "views/card_monitoring.py",
            "Card monitoring",
            ":material/monitor_heart:",
        ),
        ("callbacks", "views/callbacks.py", "Callback deliveries", ":material/send:"),
        ("notifications", "views/notifications.py", "Bank notifications", ":material/sms:"),
        ("dead_letters", "views/dead_letters.py", "Dead letters", ":material/report:"),
        ("health", "views/health.py", "System health", ":material/health_and_safety:"),
    ],
    "Analytics": [
        ("dashboards", "views/dashboards.py", "Dashboards", ":material/monitoring:"),
    ],
    "Admin": [
        ("partners", "views/partners.py", "Partners", ":material/storefront:"),
        ("api_keys", "views/api_keys.py", "API keys", ":material/key:"),
        ("callback_secrets", "views/callback_secrets.py", "Callback secrets", ":material/vpn_key:"),
        ("cards", "views/cards.py", "Card pools and cards", ":material/credit_card:"),
        ("devices", "views/devices.py", "Devices", ":material/smartphone:"),
        (
            "bank_templates",
            "views/bank_templates.py",
            "Bank message templates",
            ":material/text_snippet:",
        ),
        ("users", "views/users.py", "Console users", ":material/group:"),
        ("audit", "views/audit.py", "Audit log", ":material/history:"),
    ],
    "Partner portal": [
        ("portal_orders", "views/portal_orders.py", "My orders", ":material/receipt_long:"),
        (
            "portal_balance",
            "views/portal_balance.py",
            "Balance and ledger",
            ":material/account_balance:",
        ),
        ("portal_callbacks", "views/portal_callbacks.py", "My callbacks", ":material/send:"),
        ("portal_keys", "views/portal_keys.py", "My API keys", ":material/key:"),
        (
            "portal_secrets",
            "views/portal_secrets.py",
            "My callback secrets",
            ":material/vpn_key:",
        ),
        ("portal_settings", "views/portal_settings.py", "My settings", ":material/tune:"),
    ],
    "Account": [
        ("account", "views/account.py", "My account", ":material/person:"),
    ],
}


def page_title(page: str) -> str:
    return next(t for pages in SECTIONS.values() for k, _, t, _ in pages if k == page)
