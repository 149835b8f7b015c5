"""Hub: ingest, store, incidents, routing, work orders, API, dashboard."""
