"""The GPU proxy: spreads generation requests across GPU hosts (built by the GPU issue)."""
