"""How the handshake tests record a state machine's outputs: one short line each."""

from __future__ import annotations

from collections.abc import Sequence

from orbitd.first_connect import AnswerReoffer
from orbitd.handshake import Failed, PhaseChanged, SendRelay


def describe(outputs: Sequence[object]) -> list[str]:
    """`send <frame type>`, `phase <phase>`, `failed <code>`, `AnswerReoffer <generation>`,
    or the output's class name."""
    names = []
    for out in outputs:
        if isinstance(out, SendRelay):
            names.append(f"send {out.frame.TYPE}")
        elif isinstance(out, PhaseChanged):
            names.append(f"phase {out.phase.value}")
        elif isinstance(out, Failed):
            names.append(f"failed {out.code}")
        elif isinstance(out, AnswerReoffer):
            names.append(f"AnswerReoffer {out.generation}")
        else:
            names.append(type(out).__name__)
    return names
