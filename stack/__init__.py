"""llm-tui core: settings, models, engine and clients. Never imports Textual."""

__version__ = "0.1.0"
