"""The desk: the one keyed step that owns an order's whole life (ADR 0005).

- :mod:`.orders`: the order's state machine over the ``order/<uid>`` entries;
- :mod:`.pool`: the pool's cards, which one takes a deposit;
- :mod:`.ledger`: the balances of the partners working at the desk;
- :mod:`.outputs`: what an order's state publishes or asks of the other parts;
- :mod:`.step`: one command through the three parts, over an overlay of the table;
- :mod:`.agent`: the Faust agent, batches, the table writes and the expiry timer.
"""
