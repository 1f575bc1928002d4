"""Partner callbacks: every terminal order event POSTed, signed, to the partner.

``python -m stream_agents.callbacks`` runs one process of two loops:

* **intake** (:mod:`.intake`): consumes ``order-events`` (group ``keeper-callbacks``) and
  records one delivery per terminal event in ``callback_deliveries``, committing offsets only
  after the insert; the delivery id follows from (order uid, event type), so redelivered
  events never duplicate a delivery;
* **sender** (:mod:`.sender`): claims due deliveries (``FOR UPDATE SKIP LOCKED``), signs them
  (:mod:`.signing`, scheme in :mod:`.verify`) and POSTs them, retrying with exponential
  back-off and jitter (:mod:`.backoff`) for up to 24 hours, then parks them in
  ``dead-letters``.

``python -m stream_agents.callbacks resend <delivery_id>`` makes a parked or delivered
delivery pending again (``db.repositories.callbacks.resend``, audited). Partners verify
callbacks as :mod:`.verify` shows; see ``docs/callbacks.md``.
"""
