"""The hub's HTTP API, one router per resource; :func:`hub.app.create_app` assembles them."""
