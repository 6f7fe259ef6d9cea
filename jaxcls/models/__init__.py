"""Model zoo: `create_model(name, num_classes, **fields)` over the registered families.

Importing this package imports every family module, which registers its models.
"""

# Family modules register their models on import.
from jaxcls.models import resnet_v2
from jaxcls.models import resnext
from jaxcls.models import senet
from jaxcls.models import densenet
from jaxcls.models import mobilenet_v2
from jaxcls.models import mobilenet_v3
from jaxcls.models import nat
from jaxcls.models import wrn
from jaxcls.models import dpn
from jaxcls.models import efficientnet
from jaxcls.models import shake_shake
from jaxcls.models import ibn
from jaxcls.models import resnest
from jaxcls.models import tresnet
from jaxcls.models import inception_v3
from jaxcls.models import inception_v4
from jaxcls.models import xception
from jaxcls.models import airbench
from jaxcls.models import pyramidnet
from jaxcls.models.layers import weight_decay_mask
from jaxcls.models.macs import count_macs, count_params
from jaxcls.models.registry import check_buildable, create_model, list_models, register_model

__all__ = [
    'check_buildable', 'count_macs', 'count_params', 'create_model', 'list_models',
    'register_model', 'weight_decay_mask',
]
