"""The OVS library writes its JSON-RPC messages with orjson once a driver exists: the same text."""

from __future__ import annotations

import functools
import json

import ovs.json
import ovs.jsonrpc

from silonet import jsontext
from silonet.drivers.ovsdb import driver as ovsdb
from silonet.model import Gateway, Management, Port


def test_a_driver_sets_the_librarys_encoder_and_its_messages_are_the_same_text() -> None:
    gw = Gateway("ps1", "198.18.0.1", Management("ovsdb", "tcp:127.0.0.1:1"), ports=(Port("p1"),))
    ovsdb.OvsdbDriver(gw, lambda: None)  # never started
    assert ovs.json.dumper is jsontext.dumps_compact
    ops = ["hardware_vtep", {"op": "insert", "table": "Physical_Locator_Set", "uuid-name": "set0",
                             "row": {"locators": ["set", [["uuid", "6f1c1ad2-8f3e-4bde-9a52-3f7d1d2e4c10"]]]}},
           {"op": "wait", "table": "Physical_Switch", "where": [["name", "==", "g1"]], "columns": ["other_config"],
            "until": "==", "rows": [{"other_config": ["map", [["silonet:epoch", "7"]]]}], "timeout": 0}]
    msg = ovs.jsonrpc.Message.create_request("transact", ops)
    library = functools.partial(json.dumps, separators=(",", ":"))
    assert ovs.json.to_string(msg.to_json()) == library(msg.to_json(), sort_keys=True)
    assert ovs.json.to_string(msg.to_json(), pretty=True) == library(msg.to_json(), indent=2, sort_keys=True)
