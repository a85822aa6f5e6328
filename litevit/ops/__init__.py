"""litevit's custom ops, each defined once: CSA, RASA and GhostHead; and the detection ops RoIAlign
and NMS, which export to standard ONNX operators (``_standard.py``).

Each op module (``csa.py``, ``rasa.py``, ``ghost_head.py``) holds the op's whole story: the
pure-PyTorch reference, its attributes, input/output shapes, MAC formula and where its boundary
lies (what is inside the op, what stays outside as standard dense ops). Models call the op
objects below; ``OPS`` maps ONNX op_type -> :class:`OpDef`.
"""

from litevit.ops._define import DOMAIN, OP_VERSION, OPS, OpDef, define_op
from litevit.ops.csa import CSA_OP
from litevit.ops._standard import STANDARD_OPS, StandardOp
from litevit.ops.ghost_head import GHOST_HEAD_OP
from litevit.ops.nms import NMS_OP
from litevit.ops.rasa import RASA_OP
from litevit.ops.roi_align import ROI_ALIGN_OP

__all__ = [
    "DOMAIN",
    "OP_VERSION",
    "OPS",
    "OpDef",
    "define_op",
    "CSA_OP",
    "RASA_OP",
    "GHOST_HEAD_OP",
    "STANDARD_OPS",
    "StandardOp",
    "ROI_ALIGN_OP",
    "NMS_OP",
]
