"""Real-socket hostile servers (servers.py) and a CLI runner (run.py) for the hostile-target tests."""
