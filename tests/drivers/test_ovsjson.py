"""The OVS library's C JSON parser, borrowed from the distribution's python3-openvswitch
when the PyPI wheel lacks it, parses exactly what the pure Python parser does."""

from __future__ import annotations

import json

import ovs.json
import pytest

from silonet.drivers import ovsjson

SAMPLES = [
    '{"id":1,"method":"update2","params":[null,{"Logical_Switch":{"a":{"insert":{"name":"n\\u00e9t",'
    '"tunnel_key":5000,"other_config":["map",[["silonet_managed","true"]]]}}}}]}',
    '[1,-2,3.5,1e3,true,false,null,"x",{"k":[]}]',
    '{"uuid":["uuid","550e8400-e29b-41d4-a716-446655440000"],"s":"tab\\tquote\\"brace{"}',
]


def test_enable_reports_the_parser_in_use() -> None:
    assert ovsjson.enable() in (ovs.json.PARSER_C, ovs.json.PARSER_PY)
    if ovsjson._candidates():
        assert ovs.json.PARSER == ovs.json.PARSER_C


@pytest.mark.parametrize("text", SAMPLES)
def test_same_result_as_the_standard_library(text: str) -> None:
    ovsjson.enable()
    parser = ovs.json.Parser(check_trailer=True)
    parser.feed(text)
    assert parser.finish() == json.loads(text)
