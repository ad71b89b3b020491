"""One module per hardware layer kind: golden semantics, cycles, and template parameters."""
from .dwc import WidthConverter
from .labelselect import LabelSelect
from .maxpool import MaxPool
from .mvau import MVAU
from .streams import AddStreams, Concat, Duplicate
from .sumpool import SumPool
from .swg import SlidingWindow
from .thresholding import Thresholding
from .vvau import VVAU

KINDS = {cls.kind: cls for cls in (MVAU, Thresholding, SlidingWindow, MaxPool, LabelSelect,
                                         WidthConverter, AddStreams, Concat, Duplicate,
                                         SumPool, VVAU)}
