"""Listener state the web process reads: heartbeats for readiness and metrics."""

from __future__ import annotations

from django.db import models


class ListenerHeartbeat(models.Model):
    name = models.CharField(max_length=64, primary_key=True)
    last_seen = models.DateTimeField()
    connected = models.BooleanField(default=False)
    # Counters and state the listener reports with each beat (events, reconnects, pending...).
    details = models.JSONField(default=dict, blank=True)

    def __str__(self) -> str:
        return f"{self.name} ({'connected' if self.connected else 'disconnected'})"


class SourceCursor(models.Model):
    """The durable high-water mark of one source: every event up to ``position_ns`` (HA's own
    timestamps) is known to be safely in the broker. After any gap, backfill starts here."""

    name = models.CharField(max_length=128, primary_key=True)
    position_ns = models.BigIntegerField()
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.name} @ {self.position_ns}"
