"""Registry content: the walker, cosign signatures, vulnerability scans."""
