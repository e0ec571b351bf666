"""hubkit.zoo.vision: torchvision's image classifiers with torchvision's state-dict keys and weight tags.

Importing this package registers every architecture with ``hubkit.hub.registry``; use them through
``hubkit.load("resnet50", pretrained=True)`` or call a builder directly (``resnet50()`` is untrained). Every
classifier has timm's interface (:mod:`hubkit.zoo.vision.backbone`): ``forward_features``, ``forward_head``,
``reset_classifier``, ``feature_info``, and ``hubkit.load(name, features_only=True)``.
"""

from hubkit.zoo.vision.alexnet import AlexNet, alexnet
from hubkit.zoo.vision.backbone import Backbone, FeatureInfo, FeatureListNet
from hubkit.zoo.vision.convnext import ConvNeXt, convnext_base, convnext_large, convnext_small, convnext_tiny
from hubkit.zoo.vision.densenet import DenseNet, densenet121
from hubkit.zoo.vision.efficientnet import (
    EfficientNet,
    efficientnet_b0,
    efficientnet_b1,
    efficientnet_b2,
    efficientnet_b3,
    efficientnet_b4,
    efficientnet_b5,
    efficientnet_b6,
    efficientnet_b7,
)
from hubkit.zoo.vision.fashion_mnist_cnn import FashionMNISTCNN, fashion_mnist_cnn
from hubkit.zoo.vision.lenet import LeNet5, lenet5
from hubkit.zoo.vision.mobilenetv2 import MobileNetV2, mobilenet_v2
from hubkit.zoo.vision.mobilenetv3 import MobileNetV3, mobilenet_v3_large, mobilenet_v3_small
from hubkit.zoo.vision.resnet import (
    ResNet,
    resnet18,
    resnet34,
    resnet50,
    resnet101,
    resnet152,
    resnext50_32x4d,
    resnext101_32x8d,
    resnext101_64x4d,
    wide_resnet50_2,
    wide_resnet101_2,
)
from hubkit.zoo.vision.resnet_cifar import CifarResNet, resnet20, resnet32, resnet44, resnet56, resnet110
from hubkit.zoo.vision.shufflenetv2 import ShuffleNetV2, shufflenet_v2_x0_5, shufflenet_v2_x1_0
from hubkit.zoo.vision.squeezenet import SqueezeNet, squeezenet1_1
from hubkit.zoo.vision.vgg import VGG, vgg11, vgg11_bn, vgg16, vgg16_bn
from hubkit.zoo.vision.vision_transformer import VisionTransformer, vit_b_16
