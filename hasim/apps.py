from django.apps import AppConfig


class HasimConfig(AppConfig):
    name = "hasim"
    verbose_name = "Home Assistant simulator"
