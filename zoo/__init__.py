"""hubkit.zoo: model architectures and their weight entries, by modality (vision, text, audio)."""
