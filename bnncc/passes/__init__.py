"""Passes over the IR: each a function from a design (or layer) to a new one."""
