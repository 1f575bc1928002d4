"""Every string the payer reads, in Russian and English, and how a page picks its language.

The language comes from, in order: ``?lang=`` (the switch on the page), the cookie that
switch leaves behind, the browser's ``Accept-Language``, and finally :data:`DEFAULT_LANG`.
The page's script reads nothing but what the server rendered, so this module is the only
place the payer's texts live.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Final, Literal

Lang = Literal["ru", "en"]
LANGS: Final[tuple[Lang, ...]] = ("ru", "en")
DEFAULT_LANG: Final[Lang] = "en"
COOKIE: Final = "keeper_lang"

_EN: Final = {
    "page_title": "Payment",
    "lang_name": "English",
    "noscript": "Turn on JavaScript in your browser to pay.",
    "amount": "Amount",
    "time_left": "Time left",
    "order_ref": "Payment",
    # deposit, new
    "deposit_title": "Transfer to a card",
    "deposit_lead": (
        "Transfer exactly this amount to the card below in your bank's app, "
        "then press \u201cI have paid\u201d."
    ),
    "card_to_pay": "Card number",
    "copy": "Copy",
    "copied": "Copied",
    "copy_failed": "Select the number and copy it",
    "bank": "Bank",
    "holder": "Card holder",
    "exact_amount": "Pay the exact amount in one transfer, or the payment cannot be matched.",
    "i_have_paid": "I have paid",
    # withdrawal, new
    "withdrawal_title": "Receive a payout",
    "withdrawal_lead": "Enter the number of the card the money should go to.",
    "payer_card": "Your card number",
    "card_incomplete": "The card number is incomplete",
    "card_invalid": "Check the number: a digit seems to be mistyped",
    "card_ok": "The number looks right",
    "ok": "OK",
    # after confirming
    "pending_title": "Preparing your payment",
    "pending_lead": "This takes a few seconds.",
    "waiting_title": "Checking the payment",
    "waiting_lead_deposit": (
        "We are checking your transfer. This page updates by itself; there is no need to reload it."
    ),
    "waiting_lead_withdrawal": (
        "We are sending the money to your card. This page updates by itself; there is no "
        "need to reload it."
    ),
    "waiting_overdue": "This is taking longer than usual. We are still on it.",
    "payout_card": "Payout card",
    # verdicts
    "approved_title": "Payment complete",
    "approved_lead_deposit": "Your payment has been received. You can go back to the service.",
    "approved_lead_withdrawal": "The money has been sent to your card.",
    "rejected_title": "Payment rejected",
    "rejected_lead": (
        "We could not confirm this payment. If you have transferred money, contact the "
        "support of the service you were paying."
    ),
    "failed_title": "Payment failed",
    "failed_lead": (
        "Something went wrong while processing the payment. Contact the support of the "
        "service you were paying."
    ),
    "expired_title": "Time is up",
    "expired_lead": (
        "This payment link has expired and can no longer be used. Go back to the service to "
        "start a new payment."
    ),
    "declined_title": "Payment unavailable",
    "declined_lead": "This payment could not be prepared. Go back to the service and try again.",
    "cancelled_title": "Payment cancelled",
    "cancelled_lead": "The service has cancelled this payment. Nothing more needs to be done.",
    "not_found_title": "Payment not found",
    "not_found_lead": (
        "There is no payment at this address. Check the link, or go back to the service and "
        "start the payment again."
    ),
    # disputes: a closed deposit the payer says they paid
    "dispute_title": "Already paid?",
    "dispute_lead": (
        "If you transferred the money, send us the receipt from your bank. An operator will "
        "check it and credit the payment if it arrived."
    ),
    "dispute_receipt": "Receipt (PDF, PNG or JPEG, up to 5 MB)",
    "dispute_comment": "Comment (optional)",
    "dispute_send": "Send the receipt",
    "dispute_no_file": "Choose the receipt file first.",
    "dispute_too_large": "The file is larger than 5 MB.",
    "dispute_bad_type": "Send a PDF, PNG or JPEG file.",
    "dispute_open": (
        "We have your receipt. An operator will check it; open this page again to see the answer."
    ),
    "dispute_accepted": "Your payment was found and credited. You can go back to the service.",
    "dispute_rejected": "We checked your receipt and could not find the payment:",
    # transient problems
    "error_network": "No connection. Trying again\u2026",
    "error_generic": "Something went wrong. Please try again.",
}

_RU: Final = {
    "page_title": "Оплата",
    "lang_name": "Русский",
    "noscript": "Включите JavaScript в браузере, чтобы оплатить.",
    "amount": "Сумма",
    "time_left": "Осталось времени",
    "order_ref": "Платёж",
    "deposit_title": "Перевод на карту",
    "deposit_lead": (
        "Переведите ровно эту сумму на карту ниже в приложении вашего банка "
        "и нажмите \u00abЯ оплатил\u00bb."
    ),
    "card_to_pay": "Номер карты",
    "copy": "Копировать",
    "copied": "Скопировано",
    "copy_failed": "Выделите и скопируйте номер",
    "bank": "Банк",
    "holder": "Получатель",
    "exact_amount": "Переведите точную сумму одним платежом, иначе платёж не будет зачтён.",
    "i_have_paid": "Я оплатил",
    "withdrawal_title": "Получение выплаты",
    "withdrawal_lead": "Введите номер карты, на которую нужно перевести деньги.",
    "payer_card": "Номер вашей карты",
    "card_incomplete": "Номер карты введён не полностью",
    "card_invalid": "Проверьте номер: похоже, в нём опечатка",
    "card_ok": "Номер выглядит верно",
    "ok": "OK",
    "pending_title": "Готовим платёж",
    "pending_lead": "Это займёт несколько секунд.",
    "waiting_title": "Проверяем платёж",
    "waiting_lead_deposit": (
        "Мы проверяем ваш перевод. Страница обновится сама, перезагружать её не нужно."
    ),
    "waiting_lead_withdrawal": (
        "Мы отправляем деньги на вашу карту. Страница обновится сама, перезагружать её не нужно."
    ),
    "waiting_overdue": "Проверка занимает больше времени, чем обычно. Мы продолжаем.",
    "payout_card": "Карта для выплаты",
    "approved_title": "Платёж выполнен",
    "approved_lead_deposit": "Ваш платёж получен. Можно вернуться в сервис.",
    "approved_lead_withdrawal": "Деньги отправлены на вашу карту.",
    "rejected_title": "Платёж отклонён",
    "rejected_lead": (
        "Мы не смогли подтвердить этот платёж. Если вы перевели деньги, обратитесь в "
        "поддержку сервиса, в котором платили."
    ),
    "failed_title": "Платёж не выполнен",
    "failed_lead": (
        "При обработке платежа произошла ошибка. Обратитесь в поддержку сервиса, в котором платили."
    ),
    "expired_title": "Время истекло",
    "expired_lead": (
        "Срок действия ссылки истёк, оплатить по ней больше нельзя. Вернитесь в сервис и "
        "начните платёж заново."
    ),
    "declined_title": "Оплата недоступна",
    "declined_lead": "Подготовить платёж не удалось. Вернитесь в сервис и попробуйте снова.",
    "cancelled_title": "Платёж отменён",
    "cancelled_lead": "Сервис отменил этот платёж. Больше ничего делать не нужно.",
    "not_found_title": "Платёж не найден",
    "not_found_lead": (
        "По этому адресу платежа нет. Проверьте ссылку или вернитесь в сервис и начните "
        "платёж заново."
    ),
    "dispute_title": "Уже оплатили?",
    "dispute_lead": (
        "Если вы перевели деньги, пришлите нам квитанцию из банка. Оператор проверит её и "
        "зачислит платёж, если он поступил."
    ),
    "dispute_receipt": "Квитанция (PDF, PNG или JPEG, до 5 МБ)",
    "dispute_comment": "Комментарий (необязательно)",
    "dispute_send": "Отправить квитанцию",
    "dispute_no_file": "Сначала выберите файл квитанции.",
    "dispute_too_large": "Файл больше 5 МБ.",
    "dispute_bad_type": "Пришлите файл PDF, PNG или JPEG.",
    "dispute_open": (
        "Квитанция получена. Оператор её проверит; откройте эту страницу снова, чтобы "
        "увидеть ответ."
    ),
    "dispute_accepted": "Платёж найден и зачислен. Можно вернуться в сервис.",
    "dispute_rejected": "Мы проверили квитанцию, но не нашли платёж:",
    "error_network": "Нет соединения. Пробуем снова\u2026",
    "error_generic": "Что-то пошло не так. Попробуйте ещё раз.",
}

MESSAGES: Final = MappingProxyType({"en": MappingProxyType(_EN), "ru": MappingProxyType(_RU)})


def supported(value: str | None) -> Lang | None:
    """``value`` as a supported language code (``"ru"``, ``"en"``), else ``None``."""
    if not value:
        return None
    primary = value.strip().split("-", 1)[0].split("_", 1)[0].lower()
    return primary if primary in LANGS else None


def parse_accept_language(header: str | None) -> list[tuple[str, float]]:
    """The header's language ranges with their weights, best first (ties keep their order).

    Malformed parts are skipped rather than refused: a browser header is advice, not input.
    """
    ranges: list[tuple[str, float]] = []
    for part in (header or "").split(","):
        tag, _, params = part.strip().partition(";")
        tag = tag.strip()
        if not tag:
            continue
        weight = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        if 0.0 < weight <= 1.0:
            ranges.append((tag, weight))
    return sorted(ranges, key=lambda item: -item[1])


def negotiate(
    accept_language: str | None, *, requested: str | None = None, cookie: str | None = None
) -> Lang:
    """The page's language: the explicit choice, the remembered one, the browser's, the default."""
    for choice in (requested, cookie):
        lang = supported(choice)
        if lang is not None:
            return lang
    for tag, _ in parse_accept_language(accept_language):
        lang = supported(tag)
        if lang is not None:
            return lang
    return DEFAULT_LANG


def messages(lang: Lang) -> MappingProxyType[str, str]:
    return MESSAGES[lang]
