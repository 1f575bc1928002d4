"""Repositories: every query Keeper runs against its durable record, as plain functions.

Each function takes a SQLAlchemy ``Session`` and never commits: the edge that called it (an
endpoint, the admin CLI, a console page) owns the transaction, so several calls can be one
atomic change. Changes made by people write an ``audit_log`` row in the same transaction.
Reads return frozen views (dataclasses or wire schemas), never ORM rows, so callers cannot
trip over lazy loads or detached instances, and secrets never ride along by accident.

Modules: ``partners``, ``api_keys``, ``nonces``, ``cards``, ``users``, ``sessions``,
``orders``, ``balances``; shared errors in ``errors``, the audit writer in ``audit``.
"""
