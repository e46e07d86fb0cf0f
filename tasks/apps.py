from django.apps import AppConfig


class TasksConfig(AppConfig):
    name = "tasks"
    verbose_name = "Ingest tasks"

    def ready(self) -> None:
        # settings.INGEST_SCHEMA, built once per process from the plain INFLUX_* settings.
        from django.conf import settings

        from tasks.schema_config import install_schema

        install_schema(settings)
