"""Listening sockets: /proc/net/tcp{,6} text decoding, and real sockets of this process."""

from __future__ import annotations

import os
import socket

from auditor.host import sockets

# Recorded from a little-endian host: 127.0.0.1:5001, 0.0.0.0:22, [::]:5000, [::1]:8080, an
# established connection (state 01) that must be ignored, and ::ffff:10.0.0.10 (v4-mapped).
TCP = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1389 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 35800 1 0000000000000000 100 0 0 10 0
   1: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1234 1 0000000000000000 100 0 0 10 0
   2: 0100007F:1389 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 999 1 0000000000000000 20 4 30 10 -1
"""
TCP6 = """\
  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:1388 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 34551 1 0000000000000000 100 0 0 10 0
   1: 00000000000000000000000001000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000    33        0 777 1 0000000000000000 100 0 0 10 0
   2: 0000000000000000FFFF00000A00000A:1389 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 778 1 0000000000000000 100 0 0 10 0
"""


def test_ipv4_table_decodes_little_endian_words_and_keeps_listen_only() -> None:
    rows = sockets.parse_table(TCP, "tcp", "little")
    assert [(s.endpoint, s.loopback, s.inode) for s in rows] == [
        ("127.0.0.1:5001", True, 35800), ("0.0.0.0:22", False, 1234)]


def test_ipv6_table_wildcard_loopback_and_mapped() -> None:
    rows = sockets.parse_table(TCP6, "tcp6", "little")
    assert [(s.endpoint, s.loopback) for s in rows] == [
        ("[::]:5000", False), ("[::1]:8080", True), ("[::ffff:10.0.0.10]:5001", False)]
    assert rows[1].uid == 33


def test_big_endian_hosts_print_addresses_in_network_order() -> None:
    assert sockets.decode_address("7F000001", "big") == "127.0.0.1"
    assert sockets.decode_address("00000000000000000000000000000001", "big") == "::1"


def test_real_listeners_of_this_process_are_found_with_their_pid() -> None:
    v4 = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    v6 = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    try:
        v4.bind(("127.0.0.1", 0))
        v4.listen()
        v6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        v6.bind(("::", 0))
        v6.listen()
        ports = {v4.getsockname()[1]: ("127.0.0.1", True), v6.getsockname()[1]: ("::", False)}
        found = {row["port"]: row for row in sockets.listening() if row["port"] in ports}
        assert set(found) == set(ports)
        for port, (address, loopback) in ports.items():
            row = found[port]
            assert (row["address"], row["loopback"]) == (address, loopback)
            assert os.getpid() in [p["pid"] for p in row["processes"]]
    finally:
        v4.close()
        v6.close()


def test_a_processes_own_listening_sockets_through_proc_pid_net() -> None:
    import os
    import socket as pysocket

    from auditor.host import sockets as host_sockets

    with pysocket.socket(pysocket.AF_INET, pysocket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        found = host_sockets.of_process(os.getpid())
    assert {"endpoint": f"127.0.0.1:{port}", "address": "127.0.0.1", "port": port, "loopback": True} in found
    assert host_sockets.of_process(2**22 + 7) == []
