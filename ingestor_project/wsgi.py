"""WSGI entry point for the web process (admin, health, metrics)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ingestor_project.settings")
application = get_wsgi_application()
