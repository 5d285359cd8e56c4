import pytest

from server.state import parse_ice_servers


def test_ice_servers_from_json():
    assert parse_ice_servers("") == []
    servers = parse_ice_servers('[{"urls": "turn:t.example.org:3478", "username": "u", "credential": "p"}, '
                                '{"urls": "stun:s.example.org"}]')
    assert servers == [{"urls": "turn:t.example.org:3478", "username": "u", "credential": "p"},
                       {"urls": "stun:s.example.org"}]


@pytest.mark.parametrize("text, message", [("{", "not valid JSON"), ("[1]", "expected a JSON list"),
                                          ('[{"urls": "stun:x", "pasword": "p"}]', "unknown keys")])
def test_bad_ice_servers_are_explained(text, message):
    with pytest.raises(ValueError, match=message):
        parse_ice_servers(text)
