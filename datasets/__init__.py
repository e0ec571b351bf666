"""hubkit.datasets: dataset classes with torchvision's signatures and verified, cached downloads."""
