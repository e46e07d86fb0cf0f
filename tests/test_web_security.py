"""The web process's security settings (issue 15, issue 14 item 6): no password on Django's
debug page, /ready details only for the token or staff, admin login throttling, cookies that
work over plain HTTP and are strict behind TLS, `check --deploy` clean, Flower's guard."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from listeners.heartbeat import beat
from tests.helpers import ROOT, TEST_INFLUX_URL, service_env

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "url-password-0123456789"
TOKEN = "ready-details-token-0123456789"


def test_the_debug_page_for_a_bad_host_shows_no_password_inside_a_url(client, settings):
    settings.DEBUG = True
    settings.CELERY_BROKER_URL = f"amqp://ingestor:{PASSWORD}@rabbitmq:5672//"
    settings.MQTT_URL = f"mqtt://listener:{PASSWORD}@mosquitto:1883"
    settings.INFLUX_URL = f"http://writer:{PASSWORD}@influxdb:8086"
    settings.DATABASE_URL = f"postgres://ingestor:{PASSWORD}@postgres:5432/ingestor"
    settings.REDIS_CACHE_URL = f"redis://:{PASSWORD}@redis:6379/0"
    response = client.get("/health", HTTP_HOST="attacker.example")
    page = response.content.decode()
    assert response.status_code == 400
    assert "DisallowedHost" in page and "CELERY_BROKER_URL" in page  # the debug page itself
    assert PASSWORD not in page
    assert "amqp://ingestor:********@rabbitmq:5672//" in page


# --- /ready ----------------------------------------------------------------------------------
@pytest.fixture
def unready(settings, influx):
    settings.INFLUX_URL, settings.INFLUX_DATABASE = TEST_INFLUX_URL, "no_such_database_here"
    settings.READY_LISTENERS = ["homeassistant"]
    settings.READY_CHECK_WORKERS = False
    settings.READY_CACHE_SECONDS = 0
    settings.METRICS_TOKEN = TOKEN
    beat("homeassistant", True, {})
    return settings


def test_ready_shows_anonymous_callers_statuses_only(client, unready):
    body = client.get("/ready").json()
    assert body["checks"]["influxdb"]["status"] == "unavailable"
    assert "no_such_database_here" not in json.dumps(body)
    assert all("error" not in check for check in body["checks"].values())


def test_ready_shows_details_with_the_metrics_token(client, unready):
    body = client.get("/ready", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").json()
    assert "no_such_database_here" in body["checks"]["influxdb"]["error"]
    wrong = client.get("/ready", HTTP_AUTHORIZATION="Bearer wrong-token").json()
    assert "error" not in wrong["checks"]["influxdb"]


def test_ready_shows_details_to_a_logged_in_staff_user_only(client, unready, django_user_model):
    client.force_login(django_user_model.objects.create_user("resident"))
    assert "error" not in client.get("/ready").json()["checks"]["influxdb"]
    client.force_login(django_user_model.objects.create_user("operator", is_staff=True))
    assert "no_such_database_here" in client.get("/ready").json()["checks"]["influxdb"]["error"]


# --- admin login -------------------------------------------------------------------------
def login(client: Client, password: str) -> int:
    response = client.post(
        "/admin/login/?next=/admin/", {"username": "admin", "password": password}
    )
    return response.status_code


def test_admin_login_is_refused_after_repeated_failures_even_with_the_right_password(
    client, django_user_model
):
    django_user_model.objects.create_superuser("admin", "admin@example.org", "right-password-1")
    statuses = [login(client, f"wrong-{n}") for n in range(30)]
    assert statuses[0] == 200  # the form again, with its error
    assert statuses[-1] == 429  # django-axes's lockout
    assert login(client, "right-password-1") == 429
    assert "_auth_user_id" not in client.session


def test_a_successful_login_before_the_limit_is_accepted(client, django_user_model):
    django_user_model.objects.create_superuser("admin", "admin@example.org", "right-password-1")
    assert [login(client, "wrong") for _ in range(3)] == [200, 200, 200]
    assert login(client, "right-password-1") == 302


# --- cookies and CSRF ----------------------------------------------------------------------
def test_login_over_plain_http_on_a_lan_address_passes_csrf(settings, django_user_model):
    settings.ALLOWED_HOSTS = ["192.168.1.20"]
    django_user_model.objects.create_superuser("admin", "admin@example.org", "right-password-1")
    browser = Client(enforce_csrf_checks=True, HTTP_HOST="192.168.1.20:8000")
    browser.get("/admin/login/")
    cookie = browser.cookies["csrftoken"]
    assert not cookie["secure"]  # a Secure cookie would never come back over http://
    response = browser.post(
        "/admin/login/?next=/admin/",
        {"username": "admin", "password": "right-password-1", "csrfmiddlewaretoken": cookie.value},
        HTTP_ORIGIN="http://192.168.1.20:8000",
    )
    assert response.status_code == 302, response.content[:300]
    assert not browser.cookies["sessionid"]["secure"]


def test_cookies_of_an_https_response_are_secure(client):
    response = client.get("/admin/login/", secure=True)
    assert response.cookies["csrftoken"]["secure"] is True


def test_x_forwarded_proto_is_trusted_only_behind_a_tls_proxy(client, settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_PROXY_SSL_HEADER = None  # BEHIND_TLS_PROXY=false
    spoofed = client.get("/admin/login/", HTTP_X_FORWARDED_PROTO="https")
    assert spoofed.status_code == 301 and spoofed["Location"].startswith("https://")
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    assert client.get("/admin/login/", HTTP_X_FORWARDED_PROTO="https").status_code == 200


def loaded_settings(**env: str) -> dict:
    names = [
        "SECURE_PROXY_SSL_HEADER",
        "SECURE_SSL_REDIRECT",
        "SESSION_COOKIE_SECURE",
        "CSRF_COOKIE_SECURE",
        "CSRF_TRUSTED_ORIGINS",
    ]
    code = (
        "import json; from django.conf import settings as s; "
        f"print(json.dumps({{n: getattr(s, n) for n in {names!r}}}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=service_env(**env),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_settings_are_lan_friendly_by_default_and_strict_behind_a_tls_proxy(tmp_path):
    lan = loaded_settings(DATA_DIR=str(tmp_path))
    assert lan["SECURE_PROXY_SSL_HEADER"] is None
    assert not (lan["SECURE_SSL_REDIRECT"] or lan["SESSION_COOKIE_SECURE"])
    assert not lan["CSRF_COOKIE_SECURE"]
    tls = loaded_settings(
        DATA_DIR=str(tmp_path),
        BEHIND_TLS_PROXY="true",
        CSRF_TRUSTED_ORIGINS="https://ingestor.example.org,https://home.example.org",
    )
    assert tls["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert tls["SECURE_SSL_REDIRECT"] and tls["SESSION_COOKIE_SECURE"] and tls["CSRF_COOKIE_SECURE"]
    assert tls["CSRF_TRUSTED_ORIGINS"] == [
        "https://ingestor.example.org",
        "https://home.example.org",
    ]


def docker_example_env() -> dict[str, str]:
    """docker/env.example's values as compose hands them to the ingestor, secrets filled in and
    the TLS-proxy settings its comments give for production."""
    env: dict[str, str] = {}
    for line in (ROOT / "docker/env.example").read_text().splitlines():
        match = re.match(r"^([A-Z][A-Z0-9_]*)=(.*)$", line)
        if match and match.group(2):
            env[match.group(1)] = match.group(2)
    env.update(
        SECRET_KEY="x" * 20 + "production-secret-key-0123456789-abcdefghijklmnop",
        ALLOWED_HOSTS="ingestor.example.org,web",
        BEHIND_TLS_PROXY="true",
        CSRF_TRUSTED_ORIGINS="https://ingestor.example.org",
        SECURE_HSTS_SECONDS="31536000",
        FLOWER_BASIC_AUTH="admin:flower-password",
        DEBUG="false",
        DATABASE_URL="postgres://ingestor:secret@postgres:5432/ingestor",
        CELERY_BROKER_URL="amqp://ingestor:secret@rabbitmq:5672//",
        INFLUX_URL="http://influxdb:8086",
        INFLUX_API_VERSION="2",
        INFLUX_TOKEN="influx-token",
    )
    return env


def test_check_deploy_is_clean_with_the_production_settings_of_docker_env_example(tmp_path):
    env = service_env(**docker_example_env(), DATA_DIR=str(tmp_path))
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "System check identified no issues" in output, output


# --- Flower ------------------------------------------------------------------------------
def test_flower_guard_refuses_a_lan_address_without_basic_auth(settings):
    settings.FLOWER_BASIC_AUTH = None
    with pytest.raises(CommandError, match="FLOWER_BASIC_AUTH"):
        call_command("flower_guard", "--address=0.0.0.0")
    with pytest.raises(CommandError):
        call_command("flower_guard", "--address=192.168.1.20")
    call_command("flower_guard", "--address=127.0.0.1")
    call_command("flower_guard", "--address=::1")
    settings.FLOWER_BASIC_AUTH = "admin:flower-password"
    call_command("flower_guard", "--address=0.0.0.0")


def test_the_procfile_runs_flower_only_past_the_guard():
    [line] = [x for x in (ROOT / "Procfile").read_text().splitlines() if x.startswith("flower:")]
    guard, _, flower = line.partition("&&")
    assert "manage.py flower_guard --address=${FLOWER_ADDRESS" in guard
    assert "celery -A ingestor_project flower --address=${FLOWER_ADDRESS" in flower
