"""Settings for the pytest process: the real settings module, fed test defaults through the
environment exactly as a deployment would feed it, so the same validation runs."""

import os

TEST_ENV = {
    "SECRET_KEY": "test-secret-key-not-for-production-0123456789",
    "LOG_FORMAT": "console",
    "CELERY_BROKER_URL": "amqp://guest:guest@127.0.0.1:5672//",
    "INFLUX_URL": "http://127.0.0.1:18086",
}
for _key, _value in TEST_ENV.items():
    os.environ.setdefault(_key, _value)

_UMASK = os.umask(0o022)
os.umask(_UMASK)
from ingestor_project.settings import *  # noqa: E402,F403

# The product's private umask is for the processes a test starts (they load the real settings);
# the test runner itself keeps its own, since it prepares files for services that run as other
# users (Mosquitto, RabbitMQ, PostgreSQL) and builds the container image.
os.umask(_UMASK)
