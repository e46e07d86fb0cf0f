"""The contract between listeners and workers: what one event looks like on the wire.

Listeners build events with the constructors of ``events.contract`` and pack batches with
``events.codec``; the write task unpacks them and reads the same keys. Neither side imports the
other, and nothing here imports Django: this package is plain data.
"""
