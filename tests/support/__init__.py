"""Local servers and helpers tests share."""
