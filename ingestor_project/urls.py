from django.contrib import admin
from django.urls import path

from ingestor_project import views
from ingestor_project.health import ReadinessView

urlpatterns = [
    path("health", views.health, name="health"),
    path("ready", ReadinessView.as_view(), name="ready"),
    path("metrics", views.metrics, name="metrics"),
    path("admin/", admin.site.urls),
]
