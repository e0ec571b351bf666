"""hubkit.zoo: model architectures and their weight entries, by modality (vision, text, audio, generative).

Each subpackage registers its entries when imported; ``hubkit.hub.api.ZOO_PACKAGES`` lists the ones imported on
the first registry question.
"""
