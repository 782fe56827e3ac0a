"""Human-facing output: terminal summaries and plots."""
