"""python manage.py flower_guard --address=ADDR — exits 1 when Flower would serve on an address
other than loopback without FLOWER_BASIC_AUTH. Flower shows every task's arguments (the home's
data) and can revoke tasks, so the Procfile and the container run it before Flower."""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError


def is_loopback(address: str) -> bool:
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name may resolve to anything


class Command(BaseCommand):
    help = "Refuse a non-loopback Flower address without FLOWER_BASIC_AUTH."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--address", required=True, help="the address Flower will bind")

    def handle(self, *args, address: str, **options) -> None:
        if settings.FLOWER_BASIC_AUTH or is_loopback(address):
            return
        raise CommandError(
            f"Flower would serve task arguments on {address} to anyone: set FLOWER_BASIC_AUTH "
            "(user:password) or FLOWER_ADDRESS=127.0.0.1"
        )
