// Placeholder translation unit: removed once kernels/*.cu exist.
