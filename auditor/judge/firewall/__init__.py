"""The packet-filter model and evaluator (pure): rule text parsers, assembly, reachability.

Layers, each importing only the ones before it: `evaluate` (packets, matches, chains, the kernel's
walk), `iptables` and `nftables` (rule text parsers into that model), `assemble` (the recorded
rulesets into one pipeline), `reach` (which sources reach a port).
"""
