"""The `engagement` command: migrate, serve, scheduler, run-job, info, and the development
commands (dev, demo). The top of the house: it starts either process and imports each only
for the commands that need it."""
