"""The application layer: ports, services and the composition root."""
