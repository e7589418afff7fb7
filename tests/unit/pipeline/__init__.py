"""The request pipeline: every operation x every ending, over a mock provider."""
