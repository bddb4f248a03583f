"""Built-in profiles (YAML), shipped as package data of auditor.profiles."""
