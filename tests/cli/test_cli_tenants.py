"""`silonet tenant create|list|show|patch|delete` as a user runs it, on a local store seeded with the
example (cust-42 is acme's, cust-43 globex's): tables and --json, one `error:` line per problem
with exit 1, and nothing written when refused."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.cli import silonet


def tenants(datadir: Path) -> list[dict]:
    p = silonet(datadir, "tenant", "list", "--json")
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def errors(p) -> list[str]:  # type: ignore[no-untyped-def]
    assert p.returncode == 1, (p.returncode, p.stdout, p.stderr)
    assert "Traceback" not in p.stderr
    lines = p.stderr.strip().splitlines()
    assert all(line.startswith("error: ") for line in lines), p.stderr
    return lines


def test_create_list_show_patch_delete(datadir: Path) -> None:
    p = silonet(datadir, "tenant", "create", "acme", "--group", "vsa", "--group", "kvb", "--vni-pool", "20000-20099",
                "--max-networks", "4", "--max-attachments", "0")
    assert p.returncode == 0, p.stderr
    assert "acme" in p.stdout and "kvb, vsa" in p.stdout and "20000-20099" in p.stdout and "1 / 4" in p.stdout
    assert "3 / 0" in p.stdout  # cust-42's three attachments, against a quota of none
    shown = json.loads(silonet(datadir, "tenant", "show", "acme", "--json").stdout)
    assert shown == {"name": "acme", "interface_groups": ["kvb", "vsa"], "vni_pool": {"first": 20000, "last": 20099},
                     "max_networks": 4, "max_attachments": 0, "use": {"networks": 1, "attachments": 3}}
    p = silonet(datadir, "tenant", "patch", "acme", '{"max_attachments": null, "interface_groups": ["pad"]}', "--json")
    assert p.returncode == 0, p.stderr
    assert (json.loads(p.stdout)["max_attachments"], json.loads(p.stdout)["interface_groups"]) == (None, ["pad"])
    assert silonet(datadir, "tenant", "create", "globex").returncode == 0
    listed = silonet(datadir, "tenant", "list")
    assert listed.returncode == 0 and "globex" in listed.stdout and "(none)" in listed.stdout
    assert [t["name"] for t in tenants(datadir)] == ["acme", "globex"]
    # the local store is the admin's: a network of acme's given no VNI takes it from acme's pool
    made = json.loads(silonet(datadir, "network", "create", "n1", "--tenant", "acme", "--json").stdout)
    assert made["vni"] == 20000
    audit = json.loads(silonet(datadir, "audit", "--limit", "5", "--json").stdout)
    assert [e["action"] for e in audit[1:4]] == ["tenant.create", "tenant.update", "tenant.create"]
    assert silonet(datadir, "network", "delete", "cust-43", "--cascade").returncode == 0
    p = silonet(datadir, "tenant", "delete", "globex")
    assert p.returncode == 0 and "deleted the contract of tenant globex" in p.stdout, p.stderr
    assert [t["name"] for t in tenants(datadir)] == ["acme"]


def test_every_problem_is_one_line_and_nothing_is_written(datadir: Path) -> None:
    assert silonet(datadir, "tenant", "create", "acme", "--vni-pool", "20000-20099").returncode == 0
    before = tenants(datadir)
    audit = silonet(datadir, "audit", "--json").stdout
    lines = errors(silonet(datadir, "tenant", "create", "globex", "--group", "nope", "--group", "zz",
                           "--vni-pool", "20050-20150"))
    assert lines == [
        "error: interface_groups: interface group 'nope' does not exist (tenant 'globex' is granted it)",
        "error: interface_groups: interface group 'zz' does not exist (tenant 'globex' is granted it)",
        "error: vni_pool: VNI pool 20050-20150 overlaps the VNI pool 20000-20099 of tenant 'acme': tenants' pools "
        "are disjoint"]
    assert errors(silonet(datadir, "tenant", "create", "globex", "--vni-pool", "300-200")) == [
        "error: vni_pool: first (300) must not exceed last (200)"]
    assert errors(silonet(datadir, "tenant", "create", "globex", "--vni-pool", "lots")) == [
        "error: --vni-pool: 'lots' is not FIRST-LAST (e.g. 20000-20999)"]
    assert errors(silonet(datadir, "tenant", "create", "globex", "--max-networks", "-1")) == [
        "error: max_networks: -1: must be an integer 0..2147483647 (null: no limit)"]
    assert errors(silonet(datadir, "tenant", "create", "a b")) == [
        "error: name: 'a b' must be 1..64 characters of [A-Za-z0-9._-]"]
    assert errors(silonet(datadir, "tenant", "create", "acme")) == [
        "error: name: tenant 'acme' already has a record (change it with PATCH)"]
    assert errors(silonet(datadir, "tenant", "patch", "acme", "[1]")) == [
        "error: PATCH: a merge patch of a tenant is a JSON object (RFC 7396)"]
    assert errors(silonet(datadir, "tenant", "patch", "acme", '{"name": "b"}')) == [
        "error: name: cannot change (a tenant keeps its name: its networks name it)"]
    assert errors(silonet(datadir, "tenant", "show", "nobody")) == ["error: name: tenant 'nobody' does not exist"]
    assert errors(silonet(datadir, "tenant", "delete", "acme")) == [
        "error: name: tenant 'acme' is still used by 1 network(s): 'cust-42' (delete them first)"]
    assert tenants(datadir) == before
    assert silonet(datadir, "audit", "--json").stdout == audit
