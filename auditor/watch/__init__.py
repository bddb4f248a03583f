"""`regaudit watch`: continuous mode. The registry's notifications, judged per event.

Modules: `events` (the envelope, pure), `store` (durable intake and tag state, SQLite WAL),
`judge` (one tag's facts, judged by the engine's content checks), `alerts` (outbox and senders),
`metrics` (Prometheus exposition), `service` (the HTTP intake and the background loops),
`config` (the watcher's settings), `unit` (systemd unit).
"""
