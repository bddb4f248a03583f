"""proxy.* checks: nginx.py (proxy.nginx-*), apache.py (proxy.apache-*), forwarded_headers.py.

Shared readers live in _*.py (private modules are not walked for checks).
"""
