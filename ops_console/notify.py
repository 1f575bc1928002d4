"""Browser notifications of orders that await a decision, and of bank notifications that
matched no order (ADR 0010), for operators who opted in.

The operator queue already chimes and toasts while its tab is in front. With the tab in the
background, the same "new order" moment raises a notification through the browser's
Notifications API, from a script the queue page injects (``st.html`` with JavaScript, run
in the console's own page; no service worker and no third party). It fires only when the
tab is hidden, the person opted in (``console_users.notify_desktop``, *My account*) and the
browser granted the permission. The text names the order by its short id (the first 8
characters of its uid) only: never a card number, an amount or a partner; an unmatched bank
notification likewise by the short id of the notification, never its text.

Web Push (a notification with the tab closed) is not used: see
docs/decisions/0011-operator-notifications-in-the-browser.md.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Final

import streamlit as st

from db.repositories import users as users_repo
from ops_console import auth, runtime

#: Roles that see the queue, hence may opt in.
ROLES: Final = frozenset({"operator", "admin"})
TITLE: Final = "Keeper: an order awaits a decision"
UNMATCHED_TITLE: Final = "Keeper: a bank credit matched no order"


def short_id(uid: str) -> str:
    return uid.replace("-", "")[:8]


def texts(uids: Iterable[str]) -> list[dict[str, str]]:
    """What each notification says: the order's short id, nothing else of the order."""
    return [
        {"tag": f"keeper-order-{short_id(uid)}", "body": f"Order {short_id(uid)}"} for uid in uids
    ]


def unmatched_texts(notification_ids: Iterable[str]) -> list[dict[str, str]]:
    """What each unmatched bank notification's alert says: its short id, nothing of its text
    (which holds the amount and the card's digits)."""
    return [
        {"tag": f"keeper-notice-{short_id(ident)}", "body": f"Bank notification {short_id(ident)}"}
        for ident in notification_ids
    ]


def script(
    uids: Iterable[str], *, title: str = TITLE, notes: list[dict[str, str]] | None = None
) -> str:
    """A ``<script>`` raising one notification per order (or per given note), only while the
    tab is hidden."""
    payload = json.dumps(texts(uids) if notes is None else notes)
    title = json.dumps(title)
    return f"""<script>
(() => {{
  if (!("Notification" in window) || Notification.permission !== "granted") return;
  if (document.visibilityState === "visible") return;
  for (const note of {payload}) {{
    const shown = new Notification({title}, {{ body: note.body, tag: note.tag }});
    shown.onclick = () => {{ window.focus(); shown.close(); }};
  }}
}})();
</script>"""


def raise_for(who: auth.Who, uids: list[str]) -> None:
    """Called by the queue with the orders new this run."""
    if uids and who.notify_desktop:
        st.html(script(uids), unsafe_allow_javascript=True)


def raise_unmatched(who: auth.Who, notification_ids: list[str]) -> None:
    """Called by the queue with the bank notifications that matched nothing, new this run."""
    if notification_ids and who.notify_desktop:
        notes = unmatched_texts(notification_ids)
        st.html(script([], title=UNMATCHED_TITLE, notes=notes), unsafe_allow_javascript=True)


PERMISSION_WIDGET: Final = """<div style="font-family: sans-serif; font-size: 0.9rem">
<button id="keeper-allow" type="button">Allow notifications in this browser</button>
<span id="keeper-permission" style="margin-left: 0.5rem"></span></div>
<script>
(() => {
  const state = document.getElementById("keeper-permission");
  const show = () => {
    state.textContent = !("Notification" in window) ? "this browser has no notifications"
      : "browser permission: " + Notification.permission;
  };
  document.getElementById("keeper-allow").onclick = () => {
    if ("Notification" in window) Notification.requestPermission().then(show);
  };
  show();
})();
</script>"""


def opt_in_section(who: auth.Who) -> None:
    """*My account*: opt in, and let the browser ask for its permission (a click, as
    browsers require)."""
    st.markdown("**Browser notifications**")
    wanted = st.toggle(
        "Notify me of orders awaiting a decision while the console is in the background",
        value=who.notify_desktop,
        key="notify_desktop",
    )
    if wanted != who.notify_desktop:
        with runtime.sessions().begin() as session:
            user = users_repo.get_user(session, who.username)
            if user is not None:
                users_repo.set_notify_desktop(session, user.id, wanted)
        st.rerun()
    if wanted:
        st.html(PERMISSION_WIDGET, unsafe_allow_javascript=True)
        st.caption(
            "Keep a console tab open on the Operator queue. The notification names the "
            "order's short id only."
        )
