"""One module per hardware layer kind: golden semantics, cycles, and template parameters."""
from .depth_to_space import DepthToSpace
from .dwc import WidthConverter
from .labelselect import LabelSelect
from .maxpool import MaxPool
from .mvau import MVAU
from .streams import AddStreams, Concat, Duplicate
from .sumpool import SumPool
from .swg import SlidingWindow
from .thresholding import Thresholding
from .vvau import VVAU
from .window_max import WindowMax

KINDS = {cls.kind: cls for cls in (MVAU, Thresholding, SlidingWindow, MaxPool, LabelSelect,
                                         WidthConverter, AddStreams, Concat, Duplicate,
                                         SumPool, VVAU, DepthToSpace, WindowMax)}


def in_elems(layer) -> int:
    """Elements per input word of a layer's stream (the stream-word geometry every stage
    shares: folding, FIFOs, estimate, both backends)."""
    if isinstance(layer, SlidingWindow):
        return layer.channels if layer.parallel else layer.simd
    if isinstance(layer, MVAU):
        return layer.simd
    if isinstance(layer, VVAU):
        return layer.in_word
    if isinstance(layer, WidthConverter):
        return layer.in_elems
    return getattr(layer, "pe", 1)


def out_elems(layer) -> int:
    """Elements per output word."""
    if isinstance(layer, SlidingWindow):
        return layer.out_shape[-1] if layer.parallel else layer.simd
    if isinstance(layer, LabelSelect):
        return 1
    if isinstance(layer, VVAU):
        return layer.out_word
    if isinstance(layer, WidthConverter):
        return layer.out_elems
    return getattr(layer, "pe", 1)
