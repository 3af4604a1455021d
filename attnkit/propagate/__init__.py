"""Propagating attention through the layers (Abnar & Zuidema 2020): rollout and flow.

rollout(attn, ...)           -> (L, B, T, T)          rollout after every layer
flow(attn, layer, rows, ...) -> (B, len(rows), T)     exact max-flow attention flow
rollout_per_head / flow_per_head                       one head at its layer (A&Z app. A.1)
"""

from attnkit.propagate.flow import flow
from attnkit.propagate.per_head import flow_per_head, rollout_per_head
from attnkit.propagate.rollout import rollout

__all__ = ["flow", "flow_per_head", "rollout", "rollout_per_head"]
