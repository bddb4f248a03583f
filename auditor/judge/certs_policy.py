"""Certificate policy constants the checks use without loading X.509 code (pure data)."""

WEAK_HASHES = frozenset({"md5", "sha1", "md2", "md4"})
