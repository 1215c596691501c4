"""Client addresses behind trusted proxies."""

from __future__ import annotations

import pytest

from app.core.client_ip import client_ip, parse_networks

PROXIES = parse_networks("10.0.0.0/8, 127.0.0.1")


def test_the_header_is_ignored_from_an_untrusted_peer() -> None:
    assert client_ip("203.0.113.9", "1.2.3.4", PROXIES) == "203.0.113.9"


def test_a_trusted_proxy_reports_the_client() -> None:
    assert client_ip("10.0.0.5", "198.51.100.7", PROXIES) == "198.51.100.7"


def test_spoofed_entries_left_of_the_proxy_are_ignored() -> None:
    # The client wrote "1.1.1.1" itself; nginx appended the address it really saw.
    assert client_ip("10.0.0.5", "1.1.1.1, 198.51.100.7", PROXIES) == "198.51.100.7"


def test_chains_of_trusted_proxies_are_walked() -> None:
    assert client_ip("127.0.0.1", "198.51.100.7, 10.1.2.3", PROXIES) == "198.51.100.7"


def test_a_malformed_chain_falls_back_to_the_peer() -> None:
    assert client_ip("10.0.0.5", "not-an-ip", PROXIES) == "10.0.0.5"


def test_no_proxies_configured_means_the_peer() -> None:
    assert client_ip("10.0.0.5", "198.51.100.7", ()) == "10.0.0.5"


def test_bad_network_specs_are_named() -> None:
    with pytest.raises(ValueError, match="nonsense"):
        parse_networks("10.0.0.0/8, nonsense")
