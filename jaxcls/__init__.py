"""jaxcls: CIFAR-class image classification in JAX/Flax."""
