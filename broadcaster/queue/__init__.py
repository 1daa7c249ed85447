"""The durable retry queue (a job table beside the announcements) and the worker loop."""
