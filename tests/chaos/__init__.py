"""The chaos run (issue 13's proof): ``stack`` (private services and our processes), ``faults``
(the seeded schedule), ``mqtt_load`` (the MQTT half of the load; the HA half is hasim with
poison records), ``reconcile`` (every emitted event accounted for) and ``run`` (the runner,
``python -m tests.chaos`` / ``make chaos``). tests/test_chaos.py runs the short version."""
