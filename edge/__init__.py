"""Edge node: sources, detector runtime, tracker, node app, outbox, publisher, report endpoint."""
