"""Layer 5, the application: the CLI, the server, prediction over files and the demo."""

__all__ = []
