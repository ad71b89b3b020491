"""One error type for everything the user did wrong, and one for verification mismatches.

Both carry where the problem is (file, node, op) so the CLI can print a single line
and exit with the documented code: 2 for bad or unsupported input, 1 for a mismatch.
"""
from __future__ import annotations


class BnnccError(Exception):
    exit_code = 2

    def __init__(self, why: str, *, file: str | None = None, node: str | None = None,
                 op: str | None = None):
        super().__init__(why)
        self.why, self.file, self.node, self.op = why, file, node, op

    def at(self, *, file=None, node=None, op=None) -> "BnnccError":
        """Fill in location fields that are still unknown (inner code rarely knows the file)."""
        self.file = self.file or file
        self.node = self.node or node
        self.op = self.op or op
        return self

    def line(self) -> str:
        parts = [p for p in (self.file,) if p]
        if self.node is not None or self.op is not None:
            parts.append(f"node '{self.node or '?'}' ({self.op or '?'})")
        where = ": ".join(parts)
        why = " ".join(str(self.why).split())  # always a single line
        return f"{where}: {why}" if where else why


class UnsupportedError(BnnccError):
    """The model is valid ONNX but uses something bnncc cannot map exactly to hardware."""


class VerificationMismatch(BnnccError):
    exit_code = 1
