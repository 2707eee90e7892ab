"""What both processes share: the settings, the database layer (`engagement.db`) and the
Prometheus registry they expose. Imports neither `service` nor `scheduler`."""
