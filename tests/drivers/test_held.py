"""``drivers/ovsdb/held``: what a device answers to an insert or a fetch is input too. The UUIDs
and rows read from a reply are checked as the library checks its own, and anything else a device
says is left out (the rows that refer to it are fetched again, at most ``FETCH_TRIES`` times)."""

from __future__ import annotations

import uuid

import ovs.jsonrpc
import pytest

from silonet.drivers.ovsdb import held

A, B = "6d2a6a3e-1c1b-4c53-9d8a-2f1e0a5b7c01", "6d2a6a3e-1c1b-4c53-9d8a-2f1e0a5b7c02"


class FakeIdl:
    """What ``Transaction`` needs of an IDL to be made and given raw operations (never sent here)."""

    class _Table:
        def __init__(self, columns: list[str]) -> None:
            self.columns = dict.fromkeys(columns)

    def __init__(self) -> None:
        self.txn = None
        self.tables = {"Physical_Locator": self._Table(["dst_ip", "encapsulation_type"]),
                       "Physical_Locator_Set": self._Table(["locators"])}


def answered(txn: held.Transaction, result: object) -> None:
    txn._process_reply(ovs.jsonrpc.Message.create_reply(result, 1))


def test_a_fetch_asks_each_row_by_uuid_and_reads_only_the_row_it_asked_for() -> None:
    txn, asked = held.fetch(FakeIdl(), {"Physical_Locator": {uuid.UUID(A), uuid.UUID(B)}})
    assert asked == [("Physical_Locator", uuid.UUID(A)), ("Physical_Locator", uuid.UUID(B))]
    assert txn._operations[0] == {"op": "select", "table": "Physical_Locator",
                                  "where": [["_uuid", "==", ["uuid", A]]],
                                  "columns": ["_uuid", "dst_ip", "encapsulation_type"]}
    row = {"dst_ip": "198.18.0.9", "encapsulation_type": "vxlan_over_ipv4"}
    answered(txn, [{"rows": [{"_uuid": ["uuid", A], **row}]}, {"rows": []}])  # B went meanwhile
    assert held.fetched(txn, asked) == [("Physical_Locator", A, row, None)]


@pytest.mark.parametrize("answer", [
    [{"rows": [{"_uuid": ["uuid", B], "dst_ip": "198.18.0.9"}]}],  # another row than the one asked for
    [{"rows": [{"_uuid": ["uuid", A]}, {"_uuid": ["uuid", A]}]}],  # two rows for one UUID
    [{"rows": [{"_uuid": ["uuid", A + "\n"]}]}],  # the library's regex would let a newline by
    [{"rows": [{"_uuid": ["named-uuid", A]}]}], [{"rows": [["uuid", A]]}], [{"rows": "x"}], [{"error": "x"}],
    [None], [], "rows", [[1]],
])
def test_a_fetch_answer_of_odd_shape_gives_no_row(answer: object) -> None:
    txn, asked = held.fetch(FakeIdl(), {"Physical_Locator": {uuid.UUID(A)}})
    answered(txn, answer)
    assert held.fetched(txn, asked) == []


def test_an_insert_is_read_by_the_position_of_its_raw_operation_among_the_last() -> None:
    txn = held.Transaction(FakeIdl())
    txn.add_op({"op": "insert", "table": "Physical_Locator", "uuid-name": "a", "row": {}})
    txn.add_op({"op": "insert", "table": "Physical_Locator", "uuid-name": "b", "row": {}})
    # the IDL's own operations come first (a wait, an update), the raw ones last
    answered(txn, [{}, {"count": 1}, {"uuid": ["uuid", A]}, {"uuid": ["uuid", B]}])
    assert (txn.inserted(0), txn.inserted(1)) == (A, B)
    for odd in ([{"uuid": ["uuid", "x"]}, {"uuid": A}], [{}], [None, None], [{"uuid": ["uuid", A, 1]}, {}]):
        answered(txn, odd)
        assert (txn.inserted(0), txn.inserted(1)) == (None, None), odd


def test_references_to_rows_of_the_same_transaction_take_the_uuids_the_device_gave() -> None:
    row = {"locators": ["set", [["named-uuid", "l0"], ["uuid", B]]], "one": ["named-uuid", "l0"], "ip": "198.18.0.9"}
    assert held.named(row, {"l0": A}) == {"locators": ["set", [["uuid", A], ["uuid", B]]], "one": ["uuid", A],
                                          "ip": "198.18.0.9"}


@pytest.mark.parametrize("answer", [
    [{"uuid": ["uuid", A]}],  # one result short: the positions from the end would name another row
    [{}, {"count": 1}, {"uuid": ["uuid", A]}],
    [{}, {"count": 1}, {"uuid": ["uuid", A]}, {"uuid": ["uuid", B]}, {}],  # one too many
])
def test_a_success_with_another_count_of_results_than_operations_fails_and_holds_nothing(answer: list) -> None:
    txn = held.Transaction(FakeIdl())
    txn.add_op({"op": "insert", "table": "Physical_Locator", "uuid-name": "a", "row": {}})
    txn.add_op({"op": "insert", "table": "Physical_Locator", "uuid-name": "b", "row": {}})
    txn.sent = 4  # what the request carried: the IDL's wait and update, then the two inserts
    landed: list[held.Transaction] = []
    txn.on_success = landed.append
    answered(txn, answer)
    assert txn._status == held.Transaction.ERROR and landed == []
    assert txn.get_error() == f"the device answered {len(answer)} results to 4 operations"


def test_a_success_with_one_result_per_operation_lands() -> None:
    txn = held.Transaction(FakeIdl())
    txn.add_op({"op": "insert", "table": "Physical_Locator", "uuid-name": "a", "row": {}})
    txn.sent = 2
    landed: list[held.Transaction] = []
    txn.on_success = landed.append
    answered(txn, [{"count": 1}, {"uuid": ["uuid", A]}])
    assert txn._status == held.Transaction.SUCCESS and landed == [txn] and txn.inserted(0) == A
