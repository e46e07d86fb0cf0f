"""Liveness and metrics endpoints (readiness lives in health.py)."""

from __future__ import annotations

import hmac

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST

from ingestor_project.exposition import exposition


@require_GET
def health(_request: HttpRequest) -> JsonResponse:
    """Liveness: the process answers. No I/O, so it stays fast whatever the dependencies do."""
    return JsonResponse({"status": "ok"})


def bears_metrics_token(request: HttpRequest) -> bool:
    """The request carries ``Authorization: Bearer <METRICS_TOKEN>`` (compared in constant time);
    False when no token is configured."""
    if not settings.METRICS_TOKEN:
        return False
    given = request.headers.get("Authorization", "")
    expected = f"Bearer {settings.METRICS_TOKEN}"
    return hmac.compare_digest(given.encode(), expected.encode())


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    if settings.METRICS_TOKEN and not bears_metrics_token(request):
        return HttpResponse(
            "unauthorised\n",
            status=401,
            content_type="text/plain",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return HttpResponse(exposition(), content_type=CONTENT_TYPE_LATEST)
