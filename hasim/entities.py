"""The simulated home's entities: their states, attributes and how each kind changes."""

from __future__ import annotations

import json
import random
from typing import Any

from hasim.codec import dumps, quote


class Entity:
    """One simulated entity: its current state (as a dict and as JSON) and how it moves on.

    Subclasses implement ``next_state`` and return attributes together with their JSON; static
    attributes are serialised once at construction, which is most of the cost saved per event.
    """

    domain = "sensor"
    weight = 1.0  # relative update frequency

    def __init__(self, object_id: str, attributes: dict[str, Any], state: str) -> None:
        self.entity_id = f"{self.domain}.{object_id}"
        self.attributes = attributes
        self.attributes_json = dumps(attributes)
        self.text = state
        self._state: dict[str, Any] | None = None
        self.state_json = ""
        self.last_changed = ""

    @property
    def state(self) -> dict[str, Any]:
        """The current state object; parsed from its JSON only when events are not recorded."""
        if self._state is None:
            self._state = json.loads(self.state_json)
        return self._state

    @state.setter
    def state(self, value: dict[str, Any] | None) -> None:
        self._state = value

    def next_state(self, rng: random.Random) -> tuple[str, dict[str, Any], str]:
        raise NotImplementedError


class NumericSensor(Entity):
    def __init__(
        self,
        object_id: str,
        name: str,
        spec: tuple[str, str, str, float, float, float, int, float],
        rng: random.Random,
    ) -> None:
        unit, device_class, state_class, low, high, step, decimals, weight = spec
        # HA's attribute order for a sensor with a unit.
        attributes = {
            "state_class": state_class,
            "unit_of_measurement": unit,
            "device_class": device_class,
            "friendly_name": name,
        }
        self.value = rng.uniform(low, low + (high - low) / 2)
        self.low, self.high, self.step, self.decimals = low, high, step, decimals
        self.increasing = state_class == "total_increasing"
        self.weight = weight
        self._format = f"%.{decimals}f".__mod__
        super().__init__(object_id, attributes, self._format(self.value))

    def next_state(self, rng: random.Random) -> tuple[str, dict[str, Any], str]:
        if self.increasing:
            value = self.value + rng.random() * self.step
        else:
            value = min(self.high, max(self.low, self.value + (rng.random() * 2 - 1) * self.step))
        text = self._format(value)
        if text == self.text:
            # HA fires state_changed only when something changed; move by one display unit.
            unit = 10**-self.decimals
            value = value + unit if self.increasing or value + unit <= self.high else value - unit
            text = self._format(value)
        self.value = value
        return text, self.attributes, self.attributes_json


class Toggle(Entity):
    def __init__(self, domain: str, object_id: str, attributes: dict[str, Any], weight: float):
        self.domain, self.weight = domain, weight
        super().__init__(object_id, attributes, "off")

    def next_state(self, rng: random.Random) -> tuple[str, dict[str, Any], str]:
        return ("off" if self.text == "on" else "on"), self.attributes, self.attributes_json


class StatusSensor(Entity):
    """A text-state sensor (HA's enum device class), e.g. an appliance's programme status."""

    OPTIONS = ("idle", "Running", "Rinsing", "Paused", "Finished")
    weight = 0.5

    def __init__(self, object_id: str, name: str) -> None:
        attributes = {
            "options": list(self.OPTIONS),
            "device_class": "enum",
            "icon": "mdi:washing-machine",
            "friendly_name": name,
        }
        super().__init__(object_id, attributes, "idle")

    def next_state(self, rng: random.Random) -> tuple[str, dict[str, Any], str]:
        text = rng.choice([option for option in self.OPTIONS if option != self.text])
        return text, self.attributes, self.attributes_json


class Climate(Entity):
    """A thermostat: mostly attribute changes under a steady hvac mode, as in a real home."""

    domain = "climate"
    MODES = ("off", "heat", "cool", "auto")
    PRESETS = ("none", "eco", "comfort", "away")

    def __init__(self, object_id: str, name: str, rng: random.Random) -> None:
        self.current = round(rng.uniform(18.0, 22.0), 1)
        self.target = 21.0
        self.preset, self.name = "comfort", name
        self.static = {
            "hvac_modes": list(self.MODES),
            "min_temp": 7,
            "max_temp": 35,
            "target_temp_step": 0.5,
            "preset_modes": list(self.PRESETS),
        }
        # The JSON of the unchanging attributes, without its closing brace, to append to.
        self._static_json = dumps(self.static)[:-1]
        self._tail_json = f',"friendly_name":{quote(name)},"supported_features":401}}'
        super().__init__(object_id, self._render("heat")[0], "heat")

    def _render(self, mode: str) -> tuple[dict[str, Any], str]:
        if mode == "off":
            action = "off"
        else:
            action = "heating" if mode != "cool" and self.current < self.target else "idle"
        attributes = {
            **self.static,
            "current_temperature": self.current,
            "temperature": self.target,
            "hvac_action": action,
            "preset_mode": self.preset,
            "friendly_name": self.name,
            "supported_features": 401,
        }
        # json.dumps writes floats with repr(), so this is byte for byte what it would write.
        text = (
            f'{self._static_json},"current_temperature":{self.current!r},'
            f'"temperature":{self.target!r},"hvac_action":"{action}",'
            f'"preset_mode":"{self.preset}"{self._tail_json}'
        )
        return attributes, text

    def next_state(self, rng: random.Random) -> tuple[str, dict[str, Any], str]:
        mode = self.text
        roll = rng.random()
        if roll < 0.03:
            mode = rng.choice([m for m in self.MODES if m != mode])
        elif roll < 0.12:
            self.target = min(30.0, max(15.0, self.target + rng.choice((-0.5, 0.5))))
            self.preset = rng.choice(self.PRESETS)
        # The measured temperature always moves, so every event changes something.
        self.current = round(self.current + rng.choice((-0.2, -0.1, 0.1, 0.2)), 1)
        self.attributes, self.attributes_json = self._render(mode)
        return mode, self.attributes, self.attributes_json


class Light(Entity):
    """A colour light: list attributes, and nulls for colour and brightness while off (as HA)."""

    domain = "light"
    weight = 0.5

    def __init__(self, object_id: str, name: str) -> None:
        self.name = name
        self._name_json = quote(name)
        super().__init__(object_id, self._render(None, None)[0], "off")
        self._off = (self.attributes, self.attributes_json)

    def _render(self, brightness: int | None, rgb: list[int] | None) -> tuple[dict[str, Any], str]:
        attributes = {
            "supported_color_modes": ["rgb"],
            "color_mode": "rgb" if rgb is not None else None,
            "brightness": brightness,
            "rgb_color": rgb,
            "friendly_name": self.name,
            "supported_features": 40,
        }
        if rgb is None or brightness is None:
            return attributes, dumps(attributes)
        text = (
            f'{{"supported_color_modes":["rgb"],"color_mode":"rgb","brightness":{brightness},'
            f'"rgb_color":[{rgb[0]},{rgb[1]},{rgb[2]}],"friendly_name":{self._name_json},'
            f'"supported_features":40}}'
        )
        return attributes, text

    def next_state(self, rng: random.Random) -> tuple[str, dict[str, Any], str]:
        if self.text == "on" and rng.random() < 0.3:
            self.attributes, self.attributes_json = self._off
            return "off", self.attributes, self.attributes_json
        rgb = [rng.randrange(256), rng.randrange(256), rng.randrange(256)]
        brightness = rng.randrange(1, 256)
        self.attributes, self.attributes_json = self._render(brightness, rgb)
        return "on", self.attributes, self.attributes_json


# unit, device_class, state_class, low, high, step, decimals, weight
_NUMERIC = {
    "temperature": ("°C", "temperature", "measurement", 16.0, 28.0, 0.3, 1, 1.0),
    "humidity": ("%", "humidity", "measurement", 30.0, 70.0, 1.0, 1, 1.0),
    "power": ("W", "power", "measurement", 0.0, 3500.0, 150.0, 1, 2.0),
    "energy": ("kWh", "energy", "total_increasing", 100.0, 2000.0, 0.05, 3, 1.5),
    "pressure": ("hPa", "pressure", "measurement", 980.0, 1040.0, 0.4, 1, 0.5),
}
# The order entities are created in: every kind shows up even in a home of ten entities.
_KINDS = ("temperature", "humidity", "power", "switch", "motion")
_KINDS += ("energy", "status", "climate", "light", "pressure")
_ROOMS = ("living_room", "kitchen", "bedroom", "bathroom", "office", "hallway", "garage")
_ROOMS += ("basement", "attic", "garden", "dining_room", "kids_room", "guest_room", "laundry")
_ROOMS += ("porch", "pantry", "study", "gym", "workshop", "cellar")


def _make_entity(kind: str, room: str, suffix: str, rng: random.Random) -> Entity:
    name = room.replace("_", " ").title()
    if kind in _NUMERIC:
        object_id = f"{room}_{kind}{suffix}"
        return NumericSensor(object_id, f"{name} {kind.title()}", _NUMERIC[kind], rng)
    if kind == "switch":
        attributes = {"friendly_name": f"{name} Plug"}
        return Toggle("switch", f"{room}_plug{suffix}", attributes, 0.5)
    if kind == "motion":
        attributes = {"device_class": "motion", "friendly_name": f"{name} Motion"}
        return Toggle("binary_sensor", f"{room}_motion{suffix}", attributes, 1.0)
    if kind == "status":
        return StatusSensor(f"{room}_appliance_status{suffix}", f"{name} Appliance Status")
    if kind == "climate":
        return Climate(f"{room}_thermostat{suffix}", f"{name} Thermostat", rng)
    return Light(f"{room}_light{suffix}", f"{name} Light")


def make_entities(count: int, rng: random.Random) -> list[Entity]:
    """`count` entities, kinds taking turns and rooms filling up; the same rng, the same home."""
    entities = []
    per_round = len(_KINDS) * len(_ROOMS)
    for i in range(count):
        kind = _KINDS[i % len(_KINDS)]
        room = _ROOMS[(i // len(_KINDS)) % len(_ROOMS)]
        suffix = f"_{i // per_round + 1}" if i >= per_round else ""
        entities.append(_make_entity(kind, room, suffix, rng))
    return entities
