"""Shaobing (哨兵): the spine shared by edge nodes and the hub.

Wire contract, topics, taxonomy, config loading, model resolution and the CLI root.
Importing this package is cheap: no numpy, no cv2, no web framework.
"""

__version__ = "0.1.0"
