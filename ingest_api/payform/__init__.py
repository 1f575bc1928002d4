"""The payer's payment form: the page at ``/pay/{uid}``, its strings, and its live status feed.

* :mod:`.i18n` — every string the payer reads, in Russian and English, and the choice of
  language from ``?lang=``, a cookie or ``Accept-Language``;
* :mod:`.formatting` — amounts and card numbers as the payer reads them;
* :mod:`.feed` — one Kafka consumer of ``order-events`` per API process, fanning each order's
  public status out to the pages that watch it (Server-Sent Events);
* :mod:`.state` — the order as the page shows it, from PostgreSQL and the feed, newest wins;
* :mod:`.page` — the HTML (no inline script or style: a strict Content-Security-Policy).
"""
