from django.contrib import admin
from django.urls import path

from ingestor_project import status, views
from ingestor_project.health import ReadinessView

urlpatterns = [
    path("", status.status, name="status"),
    path("health", views.health, name="health"),
    path("ready", ReadinessView.as_view(), name="ready"),
    path("metrics", views.metrics, name="metrics"),
    path("admin/", admin.site.urls),
]
