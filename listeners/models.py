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
