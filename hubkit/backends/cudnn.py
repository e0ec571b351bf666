"""``hubkit.backends.cudnn``: flags torch scripts set; hubkit's GPU convolutions do not use cuDNN.

``deterministic`` and ``benchmark`` are kept so code that sets and reads them works; hubkit's conv
kernels are deterministic (gather-style col2im, no atomics) whatever they say.
"""

enabled = True
benchmark = False
deterministic = False
allow_tf32 = True


def is_available() -> bool:
    return False


def version() -> None:
    return None
