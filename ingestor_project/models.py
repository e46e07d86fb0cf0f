"""The status page's memory: a few recent samples of this host's metric totals."""

from __future__ import annotations

from django.db import models


class StatusSample(models.Model):
    """Metric totals at one moment, so the status page can draw rates over the last minutes.

    Written by whichever web process serves ``/`` (at most one row per bucket: gunicorn's
    workers share nothing but the database), pruned after an hour."""

    bucket = models.BigIntegerField(primary_key=True)  # unix seconds // the sampling interval
    taken_at = models.DateTimeField()
    totals = models.JSONField(default=dict)

    class Meta:
        ordering = ["bucket"]

    def __str__(self) -> str:
        return f"sample {self.taken_at:%Y-%m-%d %H:%M:%S}"
