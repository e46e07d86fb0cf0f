"""What the web process shows and sets about secrets: Django's error pages never show a password
inside a URL, and cookies set over HTTPS are Secure whatever the settings say."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.views.debug import SafeExceptionReporterFilter

from ingestor_project.logging import redact_text


class UrlPasswordFilter(SafeExceptionReporterFilter):
    """Django's filter hides settings named like secrets (PASSWORD, TOKEN, KEY...), not the
    password inside CELERY_BROKER_URL, MQTT_URL, DATABASE_URL or INFLUX_URL: mask those too,
    in the settings list, the request's data and the traceback's local variables."""

    def cleanse_setting(self, key: Any, value: Any) -> Any:
        value = super().cleanse_setting(key, value)
        return _masked(value)

    def get_safe_request_meta(self, request: HttpRequest) -> dict[str, Any]:
        return {k: _masked(v) for k, v in super().get_safe_request_meta(request).items()}

    def get_traceback_frame_variables(self, request: Any, tb_frame: Any) -> Any:
        variables = super().get_traceback_frame_variables(request, tb_frame)
        return [(name, _masked(value)) for name, value in variables]


def _masked(value: Any) -> Any:
    if type(value) is str:  # lazy strings stay as they are: they hold no URL
        return redact_text(value)
    return value


class SecureCookiesOverHttps:
    """Cookies of an HTTPS response are Secure: over plain HTTP on a LAN the settings leave them
    without the flag (login must work there), and a request that came over TLS keeps them."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if request.is_secure():
            for morsel in response.cookies.values():
                morsel["secure"] = True
        return response
