"""A protocol-faithful simulator of Home Assistant's WebSocket API: a test, demo and benchmark
tool, never imported by the product.

What it speaks follows HA's developer documentation and ``homeassistant/components/websocket_api``:

- ``auth_required`` -> ``auth`` -> ``auth_ok`` | ``auth_invalid`` (then the socket is closed);
  anything other than a well-formed ``auth`` message in the auth phase is ``auth_invalid`` too.
- Commands carry an integer ``id`` that must increase on each connection (``id_reuse``), unknown
  types get ``unknown_command``, malformed ones ``invalid_format``; a frame that is not JSON (or
  not text) makes HA drop the connection, and so does this. A frame may hold a list of commands.
- ``supported_features`` with ``coalesce_messages``: from then on whatever is ready to be written
  goes out as one JSON array per frame, exactly like HA's writer; a lone message stays an object.
- ``subscribe_events`` (with or without ``event_type``), ``unsubscribe_events``, ``ping``,
  ``get_states`` and ``history/history_during_period`` (compressed rows, as the frontend gets them).
- ``state_changed`` events with HA's real shape; the new state's ``last_updated`` equals the
  event's ``time_fired`` and strictly increases per entity, so every change has its own timestamp.

Modules: ``server`` (HomeAssistantSimulator), ``thread`` (SimulatorThread, for synchronous code),
``protocol`` (auth and commands), ``connection`` (one client), ``load`` (the generated events),
``entities``, ``history`` (the record and history queries), ``codec`` (JSON, timestamps, ULIDs).
Nothing is re-exported here: this package is a Django app, and loading it must stay cheap.
"""
