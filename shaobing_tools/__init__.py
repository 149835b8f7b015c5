"""Tools around the runtime: benchmarks, load generation, training and quantization.

Not part of the edge node or the hub at run time; the ``shaobing bench``, ``loadgen`` and
``models train|export|quantize`` commands import these modules lazily.
"""
