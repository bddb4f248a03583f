"""Host facts read on the registry host: sockets, processes, mounts, files, firewall, proxies."""
