"""Pure plan compiler: intent -> desired state per gateway -> ordered operations."""

from silonet.plan.compiler import Compiler, compile_gateway, compile_intent
from silonet.plan.diff import apply_ops, diff
from silonet.plan.ops import (
    Bind,
    EnsureLogicalSwitch,
    Operation,
    RemoveLogicalSwitch,
    SetFloodList,
    Unbind,
)
from silonet.plan.state import GatewayState, LogicalSwitch, MacTable

__all__ = [
    "Bind",
    "Compiler",
    "EnsureLogicalSwitch",
    "GatewayState",
    "LogicalSwitch",
    "MacTable",
    "Operation",
    "RemoveLogicalSwitch",
    "SetFloodList",
    "Unbind",
    "apply_ops",
    "compile_gateway",
    "compile_intent",
    "diff",
]
