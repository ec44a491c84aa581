"""What a Python user would pick instead of this project, run side by side with it by the benchmarks."""
