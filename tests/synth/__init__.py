"""Synthetic scenes for tests and benchmarks (seeded, rendered with numpy and cv2)."""
