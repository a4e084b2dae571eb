"""The offline safety testbed: a tiny Llama chat model, aligned to refuse, and an attack protocol."""
from testbed.build import Testbed, build_testbed

__all__ = ["Testbed", "build_testbed"]
