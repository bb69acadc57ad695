"""Pure array kernels (no upward imports): population forward passes and genetic operators."""
