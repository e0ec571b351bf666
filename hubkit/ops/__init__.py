"""hubkit.ops: the engine's differentiable ops: elementwise and pointwise math (with special), reductions,
orderings, differences, shape/rearrange/indexing/matrix, linalg, activations, creation and layout.

Each op is a ``Function`` (forward and backward on raw arrays, side by side) plus the lowercase
function users call. ``table.py`` lists which are top-level functions and Tensor methods;
``hubkit.nn.functional`` re-exports them next to the layer ops (conv, pooling, losses, ...).
"""
