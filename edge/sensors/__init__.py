"""Sensor gateway inputs of an edge node (``edge.sensors.inputs``): MQTT, CSV replay, HTTP."""
