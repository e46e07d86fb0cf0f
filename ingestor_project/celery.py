"""The Celery application. Its configuration lives in ``celeryconfig``, read lazily on Celery's
first look at it: importing this module must not import the settings (the settings package
imports this one)."""

from __future__ import annotations

import os

from celery import Celery

from ingestor_project import periodic_tasks

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ingestor_project.settings")

app = Celery("ingestor")
app.config_from_object("ingestor_project.celeryconfig")
app.autodiscover_tasks(["tasks"], related_name="celery_tasks")
periodic_tasks.install(app)  # celery worker --send-periodic-tasks: beat's schedule, no beat process
