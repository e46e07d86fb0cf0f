"""A protocol-faithful Home Assistant WebSocket API simulator: a test, demo and benchmark tool,
never imported by the product."""
